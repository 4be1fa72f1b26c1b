import os
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
