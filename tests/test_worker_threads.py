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
