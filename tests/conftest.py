import os
import sys
from pathlib import Path

import pytest

import ae  # noqa: F401  (first: it sets the OpenMP wait policy before torch loads)
import torch
torch.set_num_threads(min(2, os.cpu_count() or 1))
ROOT = Path(__file__).resolve().parent.parent  # the checkout, for tests that read its files


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path, monkeypatch):
    # No test writes into the real user folders or reads a dataset the machine happens to have.
    monkeypatch.setenv("AE_USER_MODELS_DIR", str(tmp_path / "user_models"))
    monkeypatch.setenv("AE_DATA_DIR", str(tmp_path / "no_data"))


@pytest.fixture(scope="session")
def sample():
    from ae.sample import load_sample

    return load_sample()


@pytest.fixture(scope="session", autouse=True)
def _app_tests_reuse_what_never_changes_in_a_run():
    """Each AppTest scans every installed package for Streamlit components and each of its runs
    compiles the app's scripts again: neither changes while the tests run, so both are done once
    (a tenth of a second per app, seconds over the suite). Only when a test module uses AppTest."""
    app_test = sys.modules.get("streamlit.testing.v1.app_test")
    if app_test is None:
        yield
        return
    import streamlit.components.v2.manifest_scanner as scanner

    found = scanner.scan_component_manifests()
    shared_scripts = app_test.ScriptCache()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scanner, "scan_component_manifests", lambda *args, **kwargs: list(found))
        patch.setattr(app_test, "ScriptCache", lambda: shared_scripts)
        yield
