"""Reading dataset splits in a child process, so the reading process never imports torchvision.

Importing torchvision costs ~160 MB of resident memory and ~1.5 s, for good: it pulls in
torch._dynamo and triton (`python scripts/split_read_costs.py`). So:
- the app's server, which loads the test set once and then serves for days, asks
  `ae.data.load_digits(..., apart=True)`, and torchvision runs in a child that exits;
- the training worker calls `read_ahead` before it imports torch itself, so the child's torch and
  the worker's are never resident together, and later `load_digits` calls take the arrays from
  here. (A child started after the worker's own torch import held two of them while it read:
  the load test's peak rose to 2.23 GB.)

This module imports neither torch nor torchvision; its child does:

    python -m ae.split_reader NAME ROOT DOWNLOAD(0/1) OUT.npz SPLIT...
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ae.child_process import child_env
from ae.dataset_files import DATASETS
from ae.errors import AEError, DatasetUnavailable

SPLIT_READ_TIMEOUT_S = 900  # a first download on a slow link included
UNAVAILABLE_EXIT = 3  # the child's exit status for DatasetUnavailable (its message on stderr)

Arrays = tuple[np.ndarray, np.ndarray]  # images (N, 28, 28) uint8, labels (N,) int64
_read_ahead: dict[tuple[str, str, str], Arrays] = {}


class ReadStopped(AEError):
    """`should_stop` said so while the child was reading; the child was killed."""


def read_apart(name: str, splits: tuple[str, ...], root: Path, download: bool,
               should_stop: Callable[[], bool] = lambda: False) -> dict[str, Arrays]:
    """{split: arrays} of dataset `name`, read (or first downloaded) by torchvision in one child.
    DatasetUnavailable or AEError, with the child's message, when it can't; ReadStopped when
    `should_stop()` (asked a few times a second) turns true first."""
    what = f"the {DATASETS[name]} {' and '.join(splits)} set{'s' if len(splits) > 1 else ''}"
    with tempfile.TemporaryDirectory(prefix="ae-split-") as tmp:
        out, errors = Path(tmp) / "splits.npz", Path(tmp) / "stderr.txt"
        command = [sys.executable, "-m", "ae.split_reader", name, str(root), str(int(download)), str(out), *splits]
        with open(errors, "w+") as stderr:
            child = subprocess.Popen(command, env=child_env(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=stderr)
            deadline = time.monotonic() + SPLIT_READ_TIMEOUT_S
            try:
                while child.poll() is None:
                    if should_stop():
                        raise ReadStopped(f"Stopped while reading {what}.")
                    if time.monotonic() > deadline:
                        raise AEError(f"Reading {what} took over {SPLIT_READ_TIMEOUT_S} s.")
                    time.sleep(0.1)
            finally:
                if child.poll() is None:
                    child.kill()
                    child.wait()
            stderr.seek(0)
            message = stderr.read().strip()
        if child.returncode == UNAVAILABLE_EXIT:
            raise DatasetUnavailable(message)
        if child.returncode != 0:
            last = (message.splitlines() or [f"exit status {child.returncode}"])[-1]
            raise AEError(f"Reading {what} failed: {last}")
        with np.load(out) as f:
            return {split: (f[f"{split}_images"], f[f"{split}_labels"]) for split in splits}


def read_ahead(name: str, splits: tuple[str, ...], root: Path, should_stop: Callable[[], bool] = lambda: False) -> None:
    """Read these splits now, apart (no download), for this process's later `load_digits` calls."""
    for split, arrays in read_apart(name, splits, Path(root), False, should_stop).items():
        _read_ahead[(name, split, str(root))] = arrays


def take_read_ahead(name: str, split: str, root: Path) -> Arrays | None:
    """The arrays `read_ahead` kept for this split, handed over once (so they are not held twice)."""
    return _read_ahead.pop((name, split, str(root)), None)


def main(argv: list[str]) -> int:
    from ae.data import read_split  # torchvision: the reason this runs in a child

    name, root, download, out, *splits = argv
    arrays = {}
    try:
        for split in splits:
            arrays[f"{split}_images"], arrays[f"{split}_labels"] = read_split(name, split, Path(root), download == "1")
    except DatasetUnavailable as exc:
        print(exc, file=sys.stderr)
        return UNAVAILABLE_EXIT
    from ae.files import atomic_write

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # straight to the file: no second copy of the arrays in memory
            np.savez(f, **arrays)

    atomic_write(Path(out), write)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
