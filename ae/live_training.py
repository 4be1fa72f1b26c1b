"""Training for the app, in its own process: the page starts a `LiveTraining`, polls `snapshot()`
to draw progress, and may `stop()` it. The training itself runs in `ae.training_worker` (its
own process, `python -m ae.training_worker`, at low priority with one torch thread, holding the
deployment's one training slot, `ae.training_slot`); a thread of this process only reads its
messages into plain objects, never Streamlit. Polling is also the heartbeat: a job nobody polls
is stopped and saved after AE_TRAIN_HEARTBEAT_S. The trained model is saved into the user models folder under a name nobody
else has (`name-2`... if taken; the snapshot says which), never over the shipped weights.

Whoever runs the server sets the limits with environment variables:

    AE_TRAIN_BUDGET_S      wall-clock seconds one training may use (default 600; 0: no limit)
    AE_TRAIN_MAX_STEPS     steps one training may take (default: no limit); the schedule is
                           planned for the capped steps, so the run still ends properly
    AE_TRAIN_HEARTBEAT_S   a training whose page has not polled it for this long is stopped and
                           saved: its session has gone (default: Streamlit's
                           server.disconnectedSessionTTL, 120 s unless configured; 0: never).
                           Not much shorter: browsers slow the timers of hidden tabs (Chrome
                           to once a minute after 5 minutes), and the page polls by a timer
    AE_TRAIN_SLOT_DIR      the folder of the training slot's lock and status files (default:
                           the user models folder); replicas that share it share one slot

When the budget runs out, the training stops between two steps and saves what it has, and the
page says so. On server shutdown (SIGTERM or SIGINT to the server, or the server's exit) the
training process stops and saves the same way; it never aborts.
"""
from __future__ import annotations

import atexit
import json
import math
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np
import torch

from ae import training_worker
from ae.child_process import child_env
from ae.data import Digits, dataset_available, describe_split, resolve_data_dir
from ae.errors import AEError
from ae.models import DEFAULT_CONFIGS
from ae.registry import user_model_path
from ae.sample import load_sample
from ae.train import TrainEvent, TrainSettings, training_data as dataset_split
from ae.training_slot import SlotHolder, TrainingSlot, format_seconds, slot_dir

PREVIEW_DIGITS = training_worker.PREVIEW_DIGITS
START_TIMEOUT_S = 60.0  # the training process must have taken the slot by then
SHUTDOWN_GRACE_S = 30.0  # at exit: time for a training process to finish its step and save


class TrainingBusy(AEError):
    """Another session of this deployment is training right now."""


@dataclass
class TrainingData:
    train: Digits
    val: Digits
    note: str  # shown to the user: which data this trains on
    full_dataset: bool


def training_data(data_dir=None, val_size: int = 2000) -> TrainingData:
    """MNIST's training set when it is on disk; otherwise the bundled sample, split 80/20."""
    if dataset_available(data_dir):
        train, val = dataset_split(sample=False, data_dir=data_dir, val_size=val_size)
        return TrainingData(train, val, f"Training on {train.source}; validation on {len(val):,} test digits.", True)
    sample = load_sample()
    order = torch.randperm(len(sample), generator=torch.Generator().manual_seed(0))
    cut = int(0.8 * len(sample))
    train = Digits(sample.images[order[:cut]], sample.labels[order[:cut]], f"bundled sample ({cut} digits)")
    val = Digits(sample.images[order[cut:]], sample.labels[order[cut:]], f"bundled sample ({len(sample) - cut} held-out digits)")
    note = (f"No MNIST data folder found, so this trains on the bundled sample: {cut} digits for "
            f"training and {len(sample) - cut} held out for validation. Set AE_DATA_DIR to a folder with "
            f"MNIST to train on all 60,000.")
    return TrainingData(train, val, note, False)


@dataclass
class TrainingDataInfo:
    train_size: int
    note: str
    full_dataset: bool


def training_data_info(data_dir=None, val_size: int = 2000) -> TrainingDataInfo:
    """What `training_data()` would give, without loading 60,000 images into the web server: the
    training process loads them itself. MNIST's count comes from its label file's header."""
    if dataset_available(data_dir):
        root = resolve_data_dir(data_dir)
        with open(root / "MNIST" / "raw" / "train-labels-idx1-ubyte", "rb") as f:
            count = int.from_bytes(f.read(8)[4:8], "big")
        return TrainingDataInfo(count, f"Training on {describe_split('mnist', 'train', count)}; validation on "
                                       f"{val_size:,} test digits.", True)
    data = training_data(data_dir, val_size)  # the bundled sample: small
    return TrainingDataInfo(len(data.train), data.note, False)


def report_every(train_size: int, batch_size: int, per_epoch: int = 10) -> int:
    """Steps between progress reports: about `per_epoch` per epoch, so the chart moves smoothly."""
    steps_per_epoch = max(1, -(-train_size // batch_size))
    return max(1, steps_per_epoch // per_epoch)


def _env_number(name: str, default, kind=float):
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        value = -1
    if value < 0 or (kind is float and not math.isfinite(value)):
        raise AEError(f"{name}={text!r} is not a usable setting: give a number of "
                      f"{'steps' if kind is int else 'seconds'} (0 for no limit).")
    return value


@dataclass(frozen=True)
class TrainingBudget:
    """What one training may use on this server. None or 0 means no limit."""

    seconds: float | None = 600.0
    max_steps: int | None = None
    heartbeat_s: float | None = 120.0

    @classmethod
    def from_env(cls, heartbeat_s: float = 120.0) -> "TrainingBudget":
        """The server's settings; `heartbeat_s` is the default when AE_TRAIN_HEARTBEAT_S is unset
        (the app passes Streamlit's server.disconnectedSessionTTL)."""
        return cls(seconds=_env_number("AE_TRAIN_BUDGET_S", 600.0) or None,
                   max_steps=_env_number("AE_TRAIN_MAX_STEPS", 0, int) or None,
                   heartbeat_s=_env_number("AE_TRAIN_HEARTBEAT_S", float(heartbeat_s)) or None)

    def describe(self) -> str:
        parts = []
        if self.seconds:
            parts.append(format_seconds(self.seconds))
        if self.max_steps:
            parts.append(f"{self.max_steps:,} steps")
        return " or ".join(parts) if parts else "no limit"


@dataclass
class Estimate:
    steps: int  # what the settings ask for
    budget_steps: int | None  # what the step budget allows (None: no step limit)
    seconds: float | None  # expected training time, from the last measured speed; None: unknown
    digits_per_s: float | None

    @property
    def planned_steps(self) -> int:
        return min(self.steps, self.budget_steps) if self.budget_steps else self.steps


def measured_speed(arch: str, folder: str | os.PathLike | None = None) -> float | None:
    """Digits per second of the last training of `arch` on this deployment, if any."""
    try:
        speeds = json.loads((Path(folder or slot_dir()) / training_worker.SPEEDS_FILE).read_text())
        return float(speeds[arch]["digits_per_s"]) or None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def estimate(settings: TrainSettings, train_size: int, budget: TrainingBudget) -> Estimate:
    """Steps the settings need and, when a speed was measured here before, about how long."""
    size = min(settings.train_size or train_size, train_size)
    steps = math.ceil(size / settings.batch_size) * settings.epochs
    if settings.max_steps:
        steps = min(steps, settings.max_steps)
    speed = measured_speed(settings.model)
    est = Estimate(steps, budget.max_steps, None, speed)
    if speed:
        est.seconds = est.planned_steps * settings.batch_size / speed
    return est


def busy_message(holder: SlotHolder) -> str:
    return (f"The training slot of this server is taken: {holder.describe()}. One training at a "
            f"time keeps the app responsive for everybody; try again when it has finished.")


@dataclass
class Snapshot:
    status: str  # "running", "done", "stopped", "failed"
    progress: float  # 0..1
    epoch: int
    epochs: int
    steps: list[int]
    train_loss: list[float]
    val_steps: list[int]
    val_loss: list[float]
    examples_per_s: float
    preview: np.ndarray | None  # (2, PREVIEW_DIGITS, 28, 28): originals, reconstructions
    saved_path: Path | None
    error: str | None
    seconds: float
    reason: str | None = None  # why it stopped: see ae.training_worker
    name: str = ""  # the name it is (or will be) saved under
    seconds_left: float | None = None  # of the time budget, while running
    total_steps: int | None = None

    @property
    def finished(self) -> bool:
        return self.status != "running"

    @property
    def saved_name(self) -> str | None:
        return self.saved_path.stem if self.saved_path else None


STOP_REASONS = {
    "asked": "Stopped early",
    "budget": "Stopped at this server's training budget",
    "heartbeat": "Stopped because its page was closed",
    "shutdown": "Stopped because the server is shutting down",
    "signal": "Stopped because the server is shutting down",
    "parent": "Stopped because the server process ended",
}


def outcome_text(snap: Snapshot) -> str:
    """'Stopped at this server's training budget and saved' and the like, for the page."""
    if snap.status == "done":
        return "Finished and saved"
    return STOP_REASONS.get(snap.reason, "Stopped") + (" and saved" if snap.saved_path else "")


class _JobState:
    """What the reader thread has received; read by snapshot() under the lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.answered = threading.Event()  # the process took the slot, or could not
        self.finished = threading.Event()
        self.events: list[TrainEvent] = []
        self.preview: np.ndarray | None = None
        self.holder: SlotHolder | None = None
        self.busy: SlotHolder | None = None
        self.was_busy = False
        self.outcome: dict | None = None
        self.ended_at: float | None = None

    def receive(self, message: tuple) -> None:
        kind = message[0]
        with self.lock:
            if kind == "started":
                self.holder = message[1]
            elif kind == "busy":
                self.was_busy, self.busy = True, message[1]
            elif kind == "event":
                if message[1] is not None:
                    self.events.append(message[1])
                if message[2] is not None:
                    self.preview = message[2]
            elif kind == "outcome":
                self.outcome = message[1]
        if kind in ("started", "busy"):
            self.answered.set()


class _Child:
    """A training process (`python -m ae.training_worker`) and the lines we send it. Writes
    never block and a process that has gone is simply not told any more."""

    def __init__(self, spec: dict):
        receiver, sender = os.pipe()
        # Before the interpreter starts, so before torch: one OpenMP thread that sleeps, never spins.
        env = child_env(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "ae.training_worker", str(sender)], env=env,
                                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, pass_fds=(sender,))
        except BaseException:
            os.close(receiver)
            raise
        finally:
            os.close(sender)  # only the process writes: its end closing is how we learn it ended
        self.conn = Connection(receiver, writable=False)
        self._lock = threading.Lock()
        self.tell(json.dumps(spec))
        os.set_blocking(self.proc.stdin.fileno(), False)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def tell(self, line: str) -> None:
        with self._lock:
            try:
                os.write(self.proc.stdin.fileno(), (line + "\n").encode())
            except (OSError, ValueError):
                pass  # it has ended (or is stuck with a full pipe: it can't be told anything anyway)

    def wait(self, timeout: float) -> bool:
        try:
            self.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def close(self) -> None:
        with self._lock:
            self.proc.stdin.close()  # end of file: the process knows we have gone
        self.conn.close()


# Running training processes of this server process: stopped (and given time to save) at exit.
_CHILDREN: dict[int, _Child] = {}
_CHILDREN_LOCK = threading.Lock()


def _read_messages(child: _Child, state: _JobState) -> None:
    try:
        while True:
            try:
                state.receive(child.conn.recv())
            except (EOFError, OSError):
                break  # the process has ended (or closed its end)
    except Exception as exc:  # a garbled message: the job is over for us
        with state.lock:
            state.outcome = state.outcome or {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    finally:
        if not child.wait(10):
            child.proc.kill()
            child.wait(5)
        child.close()
        with state.lock:
            if state.outcome is None and not state.was_busy:
                state.outcome = {"status": "failed", "error": "The training process ended unexpectedly "
                                                              f"(exit code {child.proc.returncode}); nothing was saved."}
            state.ended_at = time.monotonic()
        with _CHILDREN_LOCK:
            _CHILDREN.pop(child.pid, None)
        state.answered.set()
        state.finished.set()


@atexit.register
def _stop_children(grace: float = SHUTDOWN_GRACE_S) -> None:
    """At server exit: ask every training to stop and save, then wait for it (a step and a save)."""
    with _CHILDREN_LOCK:
        children = list(_CHILDREN.values())
    for child in children:
        child.tell("shutdown")
    deadline = time.monotonic() + grace
    for child in children:
        if not child.wait(max(0.0, deadline - time.monotonic())):
            child.proc.terminate()  # SIGTERM: it still saves at its next step
            if not child.wait(5):
                child.proc.kill()


class LiveTraining:
    """One training job of one session. `start()` returns once its process holds the slot, or
    raises `TrainingBusy`. `snapshot()` also tells the process the page is still there."""

    def __init__(self, settings: TrainSettings, name: str, budget: TrainingBudget | None = None,
                 preview_every: float = 1.0, slot_folder: str | os.PathLike | None = None,
                 data_dir: str | os.PathLike | None = None):
        self.path = user_model_path(name)  # refuses bad names before any work starts
        if settings.model not in DEFAULT_CONFIGS or settings.model == "classifier":
            raise AEError(f"{settings.model!r} is not an autoencoder architecture this app trains.")
        self.settings, self.name = settings, name
        self.budget = budget if budget is not None else TrainingBudget.from_env()
        self.preview_every = preview_every
        self.job_id = uuid.uuid4().hex
        self.slot = TrainingSlot(slot_folder)
        self.data_dir = data_dir
        self._state = _JobState()
        self._child: _Child | None = None
        self._reader: threading.Thread | None = None
        self._stop_asked = False
        self._started = time.monotonic()

    def start(self, timeout: float = START_TIMEOUT_S) -> "LiveTraining":
        holder = self.slot.holder()
        if holder is not None:
            raise TrainingBusy(busy_message(holder))
        spec = {"settings": self.settings.to_dict(), "name": self.name, "path": str(self.path),
                "slot_dir": str(self.slot.folder), "job_id": self.job_id, "budget_s": self.budget.seconds,
                "max_steps": self.budget.max_steps, "heartbeat_s": self.budget.heartbeat_s,
                "preview_every": self.preview_every, "parent_pid": os.getpid(),
                "data_dir": None if self.data_dir is None else str(self.data_dir), "stop": self._stop_asked}
        self._started = time.monotonic()
        self._child = child = _Child(spec)
        with _CHILDREN_LOCK:
            _CHILDREN[child.pid] = child
        self._reader = threading.Thread(target=_read_messages, args=(child, self._state),
                                        name=f"train-reader-{self.name}", daemon=True)
        self._reader.start()
        if not self._state.answered.wait(timeout):
            child.proc.terminate()
            raise AEError(f"The training process did not start within {timeout:.0f} s: the server is "
                          f"overloaded. Try again in a minute.")
        if self._state.was_busy:
            self.join(10)
            raise TrainingBusy(busy_message(self._state.busy or SlotHolder()))
        if self._state.holder is None:  # it ended without taking the slot
            self.join(10)
            raise AEError(self._state.outcome.get("error") or "The training process did not start.")
        return self

    def stop(self) -> None:
        self._stop_asked = True
        if self._child is not None:
            self._child.tell("stop")

    def heartbeat(self) -> None:
        if self._child is not None and not self._state.finished.is_set():
            self._child.tell("beat")

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the job to end (outcome received and process gone); True when it has."""
        if self._reader is None:
            return True
        self._reader.join(timeout)
        return not self._reader.is_alive()

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    def snapshot(self, heartbeat: bool = True) -> Snapshot:
        """The job's progress so far; by default also the heartbeat that keeps it going."""
        if heartbeat:
            self.heartbeat()
        s = self._state
        with s.lock:
            events, preview, outcome, holder = list(s.events), s.preview, s.outcome, s.holder
            ended = s.ended_at
        if outcome is None and self._reader is None:
            status = "running"  # not started yet
        elif outcome is None or ended is None:
            status = "running"  # the outcome arrives just before the process ends
        else:
            status = outcome.get("status", "failed")
        epochs = [e for e in events if e.val_loss is not None]
        last = events[-1] if events else None
        saved = Path(outcome["saved_path"]) if outcome and outcome.get("saved_path") else None
        left = None
        if status == "running" and holder is not None and holder.deadline is not None:
            left = holder.seconds_left()
        return Snapshot(
            status=status,
            progress=1.0 if status == "done" else (last.progress if last else 0.0),
            epoch=last.epoch if last else 0,
            epochs=self.settings.epochs,
            steps=[e.step for e in events],
            train_loss=[e.loss for e in events],
            val_steps=[e.step for e in epochs],
            val_loss=[e.val_loss for e in epochs],
            examples_per_s=last.examples_per_s if last else 0.0,
            preview=preview,
            saved_path=saved,
            error=outcome.get("error") if outcome else None,
            seconds=((ended if status != "running" else None) or time.monotonic()) - self._started,
            reason=outcome.get("reason") if outcome else None,
            name=saved.stem if saved else self.name,
            seconds_left=left,
            total_steps=(outcome or {}).get("total_steps") or (last.total_steps if last else None),
        )
