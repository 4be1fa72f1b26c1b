"""A server-side timing log of script and fragment runs, for profiling and load tests.

When the environment variable AE_RUN_LOG names a file, every run of a page script and every
fragment run appends one JSON line to it:

    {"t": 1764651234.567, "pid": 4242, "session": "3f2a9c1e", "page": "Draw",
     "what": "page" | "fragment:<name>", "wall_s": 0.0412, "cpu_s": 0.0380}

`t` is the unix time the run started, `wall_s` its duration, `cpu_s` the CPU seconds of the
thread that ran it (`time.thread_time()`: work that torch hands to its own worker threads is not
counted). Each line is written with one `write` on a file opened for appending, so lines from
several threads or processes (replicas) do not interleave. Without AE_RUN_LOG nothing is
measured or written. This module knows nothing of Streamlit: callers pass the session id.
"""
from __future__ import annotations

import json
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

ENV_VAR = "AE_RUN_LOG"
SESSION_CHARS = 8  # a short session id is enough to tell a class of sessions apart

log = logging.getLogger(__name__)


def log_path() -> str | None:
    return os.environ.get(ENV_VAR) or None


def record(path: str, *, t: float, session: str, page: str, what: str, wall_s: float, cpu_s: float) -> None:
    line = json.dumps({"t": round(t, 4), "pid": os.getpid(), "session": str(session)[:SESSION_CHARS],
                       "page": page, "what": what, "wall_s": round(wall_s, 5), "cpu_s": round(cpu_s, 5)})
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


@dataclass
class Run:
    session: str
    page: str
    what: str


@contextmanager
def timed_run(session: str, page: str = "", what: str = "page") -> Iterator[Run]:
    """Time the block and append its line to AE_RUN_LOG, also when the block raises or is cut
    short by a rerun. The block may fill in `page` once it knows it (the app learns the page's
    title from its navigation). A log that cannot be written is a warning in the server log,
    never the user's problem."""
    run = Run(session, page, what)
    path = log_path()
    if path is None:
        yield run
        return
    t, wall, cpu = time.time(), time.perf_counter(), time.thread_time()
    try:
        yield run
    finally:
        try:
            record(path, t=t, session=run.session, page=run.page, what=run.what,
                   wall_s=time.perf_counter() - wall, cpu_s=time.thread_time() - cpu)
        except OSError as exc:
            log.warning("cannot write the run log %s: %s", path, exc)


def read_log(path: str) -> list[dict]:
    """The log's records, skipping a partial last line (a run still being written)."""
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records
