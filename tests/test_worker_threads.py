"""ae.worker_threads: every item is worked on exactly once whatever the thread count, a failure
in any thread reaches the caller, and AE_DECODER_THREADS sets the count."""
import threading

import pytest

from ae.worker_threads import MAX_THREADS, run_all, thread_count


@pytest.mark.parametrize("threads", ["1", "2", "5"])
def test_every_item_is_done_once(threads, monkeypatch):
    monkeypatch.setenv("AE_DECODER_THREADS", threads)
    done, names, lock = [], set(), threading.Lock()

    def work(item: int) -> None:
        with lock:
            done.append(item)
            names.add(threading.current_thread().name)

    run_all(work, range(40))
    assert sorted(done) == list(range(40))
    main = threading.current_thread().name
    assert len(names) <= int(threads) and all(n == main or n.startswith("ae-decoder") for n in names)
    assert threads != "1" or names == {main}
    run_all(work, [])  # nothing to do


def test_a_failure_in_any_thread_is_raised(monkeypatch):
    monkeypatch.setenv("AE_DECODER_THREADS", "3")

    def work(item: int) -> None:
        if item == 17:
            raise ValueError("item 17")

    with pytest.raises(ValueError, match="item 17"):
        run_all(work, range(30))


def test_the_thread_count_follows_the_environment(monkeypatch):
    monkeypatch.setenv("AE_DECODER_THREADS", "3")
    assert thread_count() == 3
    for unusable in ("0", "-2", "two", ""):
        monkeypatch.setenv("AE_DECODER_THREADS", unusable)
        assert 1 <= thread_count() <= MAX_THREADS


OPENBLAS_THREADS = """
import json, sys
{imports}
from threadpoolctl import threadpool_info
print(json.dumps([i["num_threads"] for i in threadpool_info() if i["internal_api"] == "openblas"]))
"""


def openblas_threads(imports: str, blas_threads: str | None) -> list[int]:
    """OpenBLAS's thread counts in a fresh interpreter after `imports`, with OPENBLAS_NUM_THREADS
    set to `blas_threads` or, for None, unset as in a fresh shell."""
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if blas_threads is not None:
        env["OPENBLAS_NUM_THREADS"] = blas_threads
    out = subprocess.run([sys.executable, "-c", OPENBLAS_THREADS.format(imports=imports)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.parametrize("imports", [
    "import ae\nimport numpy",  # the variable reaches OpenBLAS before numpy loads it
    "import numpy, pandas\nimport ae.run_log",  # app.py's order before: numpy first, then ae
], ids=["ae-first", "numpy-first"])
def test_openblas_runs_one_thread_whatever_came_first(imports):
    # OpenBLAS's spinning second thread cost the app's server ~110 ms of CPU a stroke on Draw.
    assert openblas_threads(imports, None) == [1]


def test_a_thread_count_chosen_by_the_caller_is_kept():
    assert openblas_threads("import numpy\nimport ae", "2") == [2]
