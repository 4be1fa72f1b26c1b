"""A few worker threads for numpy work that releases the GIL (matrix products, array passes):
the integer decoder decodes its chunks of digits on them, one core each.

Why threads of our own rather than OpenBLAS's: OpenBLAS's threads busy-wait between products,
which collapses when the range decoder or another process wants the cores (see ae/__init__.py,
which keeps OpenBLAS at one thread); these block on a queue when idle and cost nothing. The
results never depend on the thread count: each chunk is computed by one thread alone, in exact
integer arithmetic.

AE_DECODER_THREADS sets the count (1: everything on the calling thread); the default is one per
CPU this process may use, at most MAX_THREADS.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

MAX_THREADS = 4  # past this, the decoder's chunks are too few to share
ENV = "AE_DECODER_THREADS"

_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()


def thread_count() -> int:
    """AE_DECODER_THREADS if it is a positive integer, else one per usable CPU (at most MAX_THREADS)."""
    value = os.environ.get(ENV, "")
    if value.strip().isdigit() and int(value) >= 1:
        return int(value)
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(MAX_THREADS, cpus))


def run_all(work: Callable[[int], None], items: Iterable[int]) -> None:
    """work(item) for every item, on the worker threads and the calling thread, each taking the
    next item when done with one (so a core busy with something else just takes fewer); returns
    when all are done, raising the first exception any of them raised."""
    items = list(items)
    threads = min(thread_count(), len(items))
    if threads <= 1:
        for item in items:
            work(item)
        return
    queue, lock, failed = iter(items), threading.Lock(), []

    def drain() -> None:
        while not failed:
            with lock:
                item = next(queue, None)
            if item is None:
                return
            try:
                work(item)
            except BaseException as exc:
                failed.append(exc)
                raise

    futures = [_executor(threads - 1).submit(drain) for _ in range(threads - 1)]
    try:
        drain()
    finally:
        for future in futures:
            future.exception()  # wait for every thread, even after a failure
    if failed:
        raise failed[0]


def _executor(workers: int) -> ThreadPoolExecutor:
    """The shared pool, made again when more workers are asked for (threads start on first use)."""
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < workers:
            old, _pool, _pool_size = _pool, ThreadPoolExecutor(workers, thread_name_prefix="ae-decoder"), workers
            if old is not None:
                old.shutdown(wait=False)
        return _pool
