"""The server-side run log (ae/run_log.py, AE_RUN_LOG): one valid JSON line per page run and per
fragment run, in the format scripts/load_test.py and scripts/profile_draw.py read."""
import json
import threading
import time

import pytest
from streamlit.testing.v1 import AppTest

from ae.run_log import ENV_VAR, read_log, timed_run

APP = "../app.py"
KEYS = {"t", "pid", "session", "page", "what", "wall_s", "cpu_s"}


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]  # every line must parse


def assert_valid(record: dict) -> None:
    assert set(record) == KEYS
    assert isinstance(record["t"], float) and abs(record["t"] - time.time()) < 600
    assert isinstance(record["pid"], int) and isinstance(record["session"], str) and record["session"]
    assert len(record["session"]) <= 8
    assert record["what"] == "page" or record["what"].startswith("fragment:")
    assert record["wall_s"] >= 0 and record["cpu_s"] >= 0


def test_a_timed_block_appends_one_line(tmp_path, monkeypatch):
    log = tmp_path / "runs.jsonl"
    monkeypatch.setenv(ENV_VAR, str(log))
    with timed_run("0123456789abcdef", "Draw", "fragment:draw") as run:
        sum(i * i for i in range(200_000))  # some CPU, so cpu_s is above zero
    with timed_run("s2") as run:
        run.page = "Home"  # learnt inside the block
    first, second = lines(log)
    assert_valid(first)
    assert (first["session"], first["page"], first["what"]) == ("01234567", "Draw", "fragment:draw")
    assert first["cpu_s"] > 0 and first["wall_s"] >= first["cpu_s"] * 0.5
    assert (second["page"], second["what"]) == ("Home", "page")


def test_a_run_that_raises_is_logged_too(tmp_path, monkeypatch):
    log = tmp_path / "runs.jsonl"
    monkeypatch.setenv(ENV_VAR, str(log))
    with pytest.raises(KeyError):
        with timed_run("s", "Draw"):
            raise KeyError("boom")
    assert len(lines(log)) == 1


def test_nothing_is_written_without_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    with timed_run("s", "Draw"):
        pass
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_log_never_breaks_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "missing-folder" / "runs.jsonl"))
    with timed_run("s", "Draw"):
        done = True
    assert done


def test_lines_from_many_threads_do_not_interleave(tmp_path, monkeypatch):
    log = tmp_path / "runs.jsonl"
    monkeypatch.setenv(ENV_VAR, str(log))

    def runs(n):
        for _ in range(50):
            with timed_run(f"thread{n}", "Draw" * 50):  # long lines, to make interleaving visible
                pass

    threads = [threading.Thread(target=runs, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = lines(log)
    assert len(records) == 400
    for r in records:
        assert_valid(r)


def test_read_log_skips_a_partial_last_line(tmp_path):
    log = tmp_path / "runs.jsonl"
    log.write_text('{"t": 1.0, "what": "page"}\n{"t": 2.0, "wh')
    assert read_log(str(log)) == [{"t": 1.0, "what": "page"}]


def test_every_page_run_of_the_app_is_logged(tmp_path, monkeypatch):
    log = tmp_path / "runs.jsonl"
    monkeypatch.setenv(ENV_VAR, str(log))
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("app_pages/draw.py").run()
    at.run()
    records = lines(log)
    assert [(r["page"], r["what"]) for r in records] == [("Home", "page"), ("Draw", "page"), ("Draw", "page")]
    for r in records:
        assert_valid(r)
    assert len({r["session"] for r in records}) == 1


def _fragment_script():
    import streamlit as st

    from app_pages.common import timed_fragment

    st.session_state["_run_log_page"] = "Probe"  # app.py does this for every page

    @timed_fragment("probe")
    def probe():
        st.write("inside the fragment")

    probe()


def test_a_fragment_rerun_is_logged_as_such(tmp_path, monkeypatch):
    """AppTest cannot rerun a fragment alone, so the run context is made to say it is one (the
    browser test sees real fragment runs); run inside a whole page, it adds no line."""
    import app_pages.common as common

    log = tmp_path / "runs.jsonl"
    monkeypatch.setenv(ENV_VAR, str(log))
    AppTest.from_function(_fragment_script, default_timeout=60).run()
    assert not log.exists()  # part of a whole run: the page's own line counts it

    real = common.get_script_run_ctx

    class FragmentRun:
        def __init__(self, ctx):
            self._ctx = ctx
            self.fragment_ids_this_run = ["probe"]

        def __getattr__(self, name):
            return getattr(self._ctx, name)

    monkeypatch.setattr(common, "get_script_run_ctx", lambda: FragmentRun(real()))
    at = AppTest.from_function(_fragment_script, default_timeout=60).run()
    assert "inside the fragment" in [m.value for m in at.markdown]
    (record,) = lines(log)
    assert_valid(record)
    assert (record["page"], record["what"]) == ("Probe", "fragment:probe")
