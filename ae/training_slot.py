"""The one training slot of a server deployment, shared by every replica that sees the same folder.

The slot is an exclusive `fcntl.flock` on a lock file, held by the training process for its
whole life: when that process ends, even by SIGKILL, the kernel releases the lock. Beside it a
small JSON status file (written atomically by the holder) says who holds the slot: the model
name, the architecture, when it started and its deadline. Whether the slot is busy is decided
by the lock alone, never by the status file, so a file left behind by a dead holder blocks
nobody.

The folder is `$AE_TRAIN_SLOT_DIR` when set, else the user models folder
(`ae.weights.user_models_dir()`, itself `$AE_USER_MODELS_DIR`). Replicas on several machines
share the slot when that folder is shared; on NFS, Linux maps `flock` onto NFS byte-range locks.
This module imports neither torch nor numpy: the training process takes the slot before it
loads them.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ae.files import atomic_write

LOCK_FILE = ".training-slot.lock"
STATUS_FILE = ".training-slot.json"


def slot_dir() -> Path:
    if os.environ.get("AE_TRAIN_SLOT_DIR"):
        return Path(os.environ["AE_TRAIN_SLOT_DIR"]).expanduser()
    from ae.weights import user_models_dir  # the models folder: shared by replicas anyway

    return user_models_dir()


@dataclass
class SlotHolder:
    """Who trains right now (from the status file; fields are None while it is being written)."""

    job_id: str | None = None
    name: str | None = None
    arch: str | None = None
    started: float | None = None  # wall-clock seconds (time.time()), comparable across machines
    deadline: float | None = None
    host: str | None = None
    pid: int | None = None

    def seconds_left(self, now: float | None = None) -> float | None:
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - (time.time() if now is None else now))

    def describe(self) -> str:
        """'cnn-latent8 (cnn), 4 min 10 s left' for the page's messages."""
        who = f"**{self.name}**" if self.name else "a model"
        if self.arch:
            who += f" ({self.arch})"
        left = self.seconds_left()
        return who + (f", {format_seconds(left)} left" if left is not None else "")


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min" + (f" {rest} s" if rest else "")


def _would_block(exc: OSError) -> bool:
    return exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK)


class TrainingSlot:
    """`acquire()` takes the slot without waiting; `holder()` tells anyone who holds it."""

    def __init__(self, folder: str | os.PathLike | None = None):
        self.folder = Path(folder) if folder is not None else slot_dir()
        self.lock_path = self.folder / LOCK_FILE
        self.status_path = self.folder / STATUS_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _open(self) -> int:
        self.folder.mkdir(parents=True, exist_ok=True)
        # The lock file is never deleted: removing it while someone waits would split the lock.
        return os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def acquire(self, holder: SlotHolder, tries: int = 5) -> bool:
        """Take the slot and publish `holder`; False when someone else holds it. A few quick
        retries ride over another session's `holder()` probe, which holds a shared lock for
        microseconds."""
        if self._fd is not None:
            raise RuntimeError("this slot is already held")
        fd = self._open()
        for attempt in range(tries):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if not _would_block(exc) or attempt == tries - 1:
                    os.close(fd)
                    if _would_block(exc):
                        return False
                    raise
                time.sleep(0.02)
        self._fd = fd
        try:
            self.update(holder)
        except BaseException:
            self.release()
            raise
        return True

    def update(self, holder: SlotHolder) -> None:
        """Rewrite the status file (the holder only), e.g. with the deadline once training begins."""
        if self._fd is None:
            raise RuntimeError("only the slot's holder writes its status")
        text = json.dumps(asdict(holder)) + "\n"
        atomic_write(self.status_path, lambda p: p.write_text(text))

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.status_path.unlink(missing_ok=True)  # before unlocking: the next holder writes its own
        except OSError:
            pass
        fd, self._fd = self._fd, None
        os.close(fd)  # closing the only descriptor releases the flock

    def holder(self) -> SlotHolder | None:
        """Who holds the slot, or None when it is free (a stale status file does not count)."""
        if self._fd is not None:
            return self._read_status() or SlotHolder()
        try:
            fd = self._open()
        except OSError:
            return None  # no folder we can use: nobody can be training there either
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if not _would_block(exc):
                raise
            return self._read_status() or SlotHolder()
        finally:
            os.close(fd)  # also drops the shared lock if we got it
        return None

    def _read_status(self) -> SlotHolder | None:
        try:
            data = json.loads(self.status_path.read_text())
            known = SlotHolder.__dataclass_fields__
            return SlotHolder(**{k: v for k, v in data.items() if k in known}) if isinstance(data, dict) else None
        except (OSError, ValueError, TypeError):
            return None  # being written, or the holder has just released it
