"""Training in a background thread for the app: the page starts it, polls `snapshot()` to draw
progress, and may `stop()` it. The worker touches only plain objects (an Event, a lock, lists):
never Streamlit. It trains its own freshly built model, saves it atomically into the user models
folder when done (or stopped), and never touches the shipped weights.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ae.catalog import user_model_path
from ae.data import Digits, dataset_available, load_digits
from ae.errors import AEError
from ae.sample import load_sample
from ae.train import Trainer, TrainSettings
from ae.weights import save_model

PREVIEW_DIGITS = 8
# One training at a time per server process: on a small CPU a second one would halve both and
# make every page slow for everybody.
_TRAINING_SLOT = threading.BoundedSemaphore(1)


class TrainingBusy(AEError):
    """Another session of this server is training right now."""


@dataclass
class TrainingData:
    train: Digits
    val: Digits
    note: str  # shown to the user: which data this trains on
    full_dataset: bool


def training_data(data_dir=None, val_size: int = 2000) -> TrainingData:
    """MNIST's training set when it is on disk; otherwise the bundled sample, split 80/20."""
    if dataset_available(data_dir):
        train = load_digits("train", data_dir)
        val = load_digits("test", data_dir).subset(val_size, seed=0)
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


def report_every(train_size: int, batch_size: int, per_epoch: int = 10) -> int:
    """Steps between progress reports: about `per_epoch` per epoch, so the chart moves smoothly."""
    steps_per_epoch = max(1, -(-train_size // batch_size))
    return max(1, steps_per_epoch // per_epoch)


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

    @property
    def finished(self) -> bool:
        return self.status != "running"


@dataclass
class LiveTraining:
    settings: TrainSettings
    data: TrainingData
    name: str
    preview_every: float = 1.0  # seconds between preview reconstructions
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self):
        self.path = user_model_path(self.name)  # refuses bad names before any work starts
        self.trainer = Trainer(self.settings, self.data.train, self.data.val)
        self._preview_images = self.data.val.images[:PREVIEW_DIGITS]
        self._events = []
        self._status = "running"
        self._preview: np.ndarray | None = None
        self._saved: Path | None = None
        self._error: str | None = None
        self._started = time.perf_counter()
        self._ended: float | None = None
        self._thread = threading.Thread(target=self._work, name=f"train-{self.name}", daemon=True)

    def start(self) -> "LiveTraining":
        if not _TRAINING_SLOT.acquire(blocking=False):
            raise TrainingBusy("Another training is running on this server right now (one at a time keeps "
                               "the app responsive for everybody). Try again when it has finished.")
        try:
            self._thread.start()
        except BaseException:
            _TRAINING_SLOT.release()
            raise
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @torch.no_grad()
    def _make_preview(self) -> np.ndarray:
        model = self.trainer.model
        was_training = model.training
        model.eval()
        x = self._preview_images.to(self.trainer.device)
        x_hat = model.decode(model.encode(x)).cpu()
        model.train(was_training)
        return np.stack([self._preview_images[:, 0].numpy(), x_hat[:, 0].numpy()])

    def _work(self) -> None:
        last_preview = 0.0
        try:
            for event in self.trainer.run(should_stop=self._stop.is_set):
                preview = None
                now = time.perf_counter()
                if event.kind == "epoch" or now - last_preview >= self.preview_every:
                    preview, last_preview = self._make_preview(), now
                with self._lock:
                    self._events.append(event)
                    if preview is not None:
                        self._preview = preview
            preview = self._make_preview()
            stopped = self._stop.is_set() and self.trainer.stopped_early
            saved = None
            if self.trainer.history:  # nothing to save if it was stopped before the first step
                card = self.trainer.card() | {"validation": self.data.val.source, "trained_in": "app"}
                saved = save_model(self.trainer.model, self.path, card)
            with self._lock:
                self._preview, self._saved = preview, saved
                self._status = "stopped" if stopped else "done"
        except AEError as exc:
            with self._lock:
                self._status, self._error = "failed", str(exc)
        except Exception as exc:  # shown on the page as a message, never as a traceback
            with self._lock:
                self._status, self._error = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            self._ended = time.perf_counter()
            _TRAINING_SLOT.release()

    def snapshot(self) -> Snapshot:
        with self._lock:
            events = list(self._events)
            status, preview, saved, error = self._status, self._preview, self._saved, self._error
        epochs = [e for e in events if e.val_loss is not None]
        last = events[-1] if events else None
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
            error=error,
            seconds=(self._ended or time.perf_counter()) - self._started,
        )
