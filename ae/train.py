"""One training loop for the CLI and the app.

`Trainer.run()` is a generator of `TrainEvent`s: the CLI feeds a tqdm bar from it
(`train_and_save`, the one driver of `train` and `train-codec`), the app draws a chart. It stops
between steps when `should_stop()` says so (or when the caller simply stops iterating). Seeded:
the same settings and data give the same weights. The settings are one dataclass (`TrainSettings`,
or `CodecSettings` for a codec operating point), recorded in the card as they are.
"""
from __future__ import annotations

import math
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from ae.architectures import build_model, is_autoencoder
from ae.data import Digits, load_digits
from ae.images import from_uint8
from ae.inference import CHUNK, evaluating
from ae.models import DEFAULT_CONFIGS, ModelConfig, parameter_count
from ae.rdae import RateDistortionAE, RateDistortionLoss
from ae.sample import load_sample


@dataclass
class TrainSettings:
    model: str = "ff"  # an architecture from models.DEFAULT_CONFIGS
    latent_dim: int | None = None  # None: the architecture's default
    epochs: int = 10
    lr: float = 1e-3
    batch_size: int = 128
    train_size: int | None = None  # None: every training digit
    seed: int = 0
    max_steps: int | None = None  # stop early (tests, dry runs)
    report_every: int = 50  # steps between progress events
    device: str = "auto"  # "auto": a GPU when present

    @classmethod
    def from_dict(cls, d: dict) -> "TrainSettings":
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown training settings: {sorted(unknown)}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_card(cls, card: dict):
        """The settings a weights card's "training" record was made with: its own fields, not
        what the run measured (steps, seconds...)."""
        known = {f.name for f in fields(cls)}
        return cls.from_dict({k: v for k, v in card["training"].items() if k in known})


@dataclass
class CodecSettings(TrainSettings):
    """A codec operating point's training run (`python -m ae train-codec`): the knobs of the
    model's rate-distortion loss (`ae.rdae.RateDistortionLoss`) beside the usual settings."""
    rate_target_bits: float | None = None  # bits per digit beta steers to (None: beta stays put)
    beta: float = 1e-4  # the initial rate weight
    distortion: str = "mse"  # or "log-mse": mean over digits of ln(MSE), i.e. the mean PSNR
    init: str | None = None  # the weights training started from (None: from scratch)
    rate_ramp_steps: int = 0  # steps over which the rate target glides there from the start's rate

    @classmethod
    def from_card(cls, card: dict) -> "CodecSettings":
        """As TrainSettings.from_card. Cards written before `beta` was recorded kept the initial
        beta only in their `training_command` (the CLI's default when it has no --beta)."""
        settings = super().from_card(card)
        if "beta" not in card["training"]:
            words = shlex.split(card.get("training_command", ""))
            if "--beta" in words[:-1]:
                settings.beta = float(words[words.index("--beta") + 1])
        return settings


# The recommended settings for a run that visibly works in about 20 s on one CPU thread.
# A fixed number of optimiser steps, not of epochs: 3 epochs of the 800-digit sample in batches
# of 128 is 21 steps, which no autoencoder learns digits in; 500 steps of 32 digits is enough on
# either dataset (scripts/check_train_defaults.py measures each case against the classifier).
DEFAULT_STEPS = 500
DEFAULT_BATCH_SIZE = 32
DEFAULT_LR = {"ff": 1e-3, "cnn": 3e-3}  # the CNN trains well at 3e-3; the feedforward one overfits the sample there
FULL_DATASET_DIGITS = 8_000  # of MNIST's 60,000: two passes of 250 steps fit the time
SAMPLE_TRAIN_DIGITS = 800  # the app's share of the bundled sample (200 are held out)


def epochs_for_steps(steps: int, train_digits: int, batch_size: int) -> int:
    """Whole epochs that give at least `steps` optimiser steps on `train_digits` digits."""
    steps_per_epoch = max(1, math.ceil(train_digits / batch_size))
    return max(1, math.ceil(steps / steps_per_epoch))


def default_settings(arch: str, full_dataset: bool, train_digits: int | None = None) -> TrainSettings:
    """The settings a Start with no changes should use: `arch` "ff" or "cnn", on full MNIST
    (`full_dataset`) or on the bundled sample. `train_digits` is how many training digits there
    are (default: 60,000 for MNIST, the app's 800 for the sample); the epochs follow from it.
    The classifier keeps TrainSettings' plain defaults (all digits, 10 epochs)."""
    if arch not in DEFAULT_LR:
        return TrainSettings(model=arch)
    available = train_digits or (60_000 if full_dataset else SAMPLE_TRAIN_DIGITS)
    train_size = min(FULL_DATASET_DIGITS, available) if full_dataset else None
    epochs = epochs_for_steps(DEFAULT_STEPS, train_size or available, DEFAULT_BATCH_SIZE)
    return TrainSettings(model=arch, epochs=epochs, lr=DEFAULT_LR[arch], batch_size=DEFAULT_BATCH_SIZE,
                         train_size=train_size)


# Seconds one Start with the defaults takes, one torch thread (scripts/check_train_defaults.py,
# CPU time on this 2-core machine; both datasets train 500 steps of 32 digits, so they agree).
FAST_DEMO_SECONDS = {"ff": 10, "cnn": 20}


@dataclass(frozen=True)
class Preset:
    settings: TrainSettings
    expected_seconds: float  # on this 2-core machine, one torch thread
    about: str  # one line for the page


def presets(arch: str, full_dataset: bool, train_digits: int | None = None) -> dict[str, Preset]:
    """The Train page's presets for "ff" or "cnn": "fast demo" (the defaults) always, and on full
    MNIST "as shipped", the settings behind weights/<arch>.safetensors with the time its card records."""
    from ae.weights import load_card  # here: ae.weights imports ae.models, which is all this module needs

    found = {"fast demo": Preset(default_settings(arch, full_dataset, train_digits), FAST_DEMO_SECONDS[arch],
                                 "500 steps of 32 digits: recognisable digits in seconds")}
    if full_dataset:
        card = load_card(arch)
        recorded = card["training"]
        shipped = replace(TrainSettings.from_card(card), device="auto")
        found["as shipped"] = Preset(shipped, recorded["seconds"],
                                     f"every training digit, {shipped.epochs} epochs of batch {shipped.batch_size}: "
                                     "the shipped model's quality")
    return found


@dataclass
class TrainEvent:
    kind: str  # "step": progress within an epoch; "epoch": an epoch ended (has val_loss)
    epoch: int  # 1-based
    step: int  # steps done so far
    total_steps: int
    loss: float  # mean training loss since the previous event
    examples_per_s: float
    val_loss: float | None = None

    @property
    def progress(self) -> float:
        return self.step / max(self.total_steps, 1)


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


Loss = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]  # (model, images, labels) -> loss


def batch_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Autoencoders: pixel MSE (what PSNR measures). Classifier: cross-entropy."""
    if is_autoencoder(model):
        return F.mse_loss(model(x), x)
    return F.cross_entropy(model(x), y)


def training_loss(model: nn.Module, settings: TrainSettings) -> Loss:
    """What a run minimises: the model's own objective built from the run's settings when it has
    one (a codec model's `RateDistortionLoss`), else `batch_loss`."""
    if hasattr(model, "training_objective"):
        return model.training_objective(settings)
    return batch_loss


@torch.no_grad()
def mean_loss(model: nn.Module, data: Digits, device: torch.device, batch_size: int = CHUNK,
              loss: Loss = batch_loss) -> float:
    total = 0.0
    with evaluating(model):
        for x, y in zip(data.images.split(batch_size), data.labels.split(batch_size)):
            total += loss(model, x.to(device), y.to(device)).item() * len(x)
    return total / max(len(data), 1)


@dataclass
class Trainer:
    settings: TrainSettings
    train_data: Digits
    val_data: Digits | None = None
    model: nn.Module | None = None  # built from the settings when None
    history: list[TrainEvent] = field(default_factory=list)
    stopped_early: bool = False
    seconds: float = 0.0

    def __post_init__(self):
        s = self.settings
        torch.manual_seed(s.seed)
        if self.model is None:
            config = DEFAULT_CONFIGS[s.model]
            if s.latent_dim is not None and s.model != "classifier":
                config = type(config)(**{**config.to_dict(), "latent_dim": s.latent_dim})
            self.model = build_model(config)
        self.loss = training_loss(self.model, s)
        self.device = pick_device(s.device)
        self.model.to(self.device)
        self.data = self.train_data.subset(s.train_size, seed=s.seed)
        self.steps_per_epoch = math.ceil(len(self.data) / s.batch_size)
        self.total_steps = self.steps_per_epoch * s.epochs
        if s.max_steps is not None:
            self.total_steps = min(self.total_steps, s.max_steps)

    @property
    def epochs_done(self) -> int:
        return sum(e.kind == "epoch" for e in self.history)

    def run(self, should_stop: Callable[[], bool] = lambda: False) -> Iterator[TrainEvent]:
        s, model, dev = self.settings, self.model, self.device
        opt = torch.optim.Adam(model.parameters(), lr=s.lr)
        # Cosine decay to zero over the planned steps: the last epochs polish the weights.
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda i: 0.5 * (1 + math.cos(math.pi * min(i / self.total_steps, 1.0))))
        shuffle = torch.Generator().manual_seed(s.seed)
        images, labels = self.data.images, self.data.labels
        step, start = 0, time.perf_counter()
        model.train()
        for epoch in range(1, s.epochs + 1):
            order = torch.randperm(len(images), generator=shuffle)
            run_loss, run_n, t0 = 0.0, 0, time.perf_counter()
            for b in range(self.steps_per_epoch):
                if step >= self.total_steps or should_stop():
                    self.stopped_early = step < self.steps_per_epoch * s.epochs
                    self.seconds += time.perf_counter() - start
                    model.eval()
                    return
                idx = order[b * s.batch_size:(b + 1) * s.batch_size]
                x, y = images[idx], labels[idx].to(dev)
                x = (from_uint8(x) if x.dtype == torch.uint8 else x).to(dev)  # a compact set's 8-bit pixels
                loss = self.loss(model, x, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                step += 1
                run_loss += loss.item() * len(idx)
                run_n += len(idx)
                last_of_epoch = b == self.steps_per_epoch - 1
                if step % s.report_every == 0 or last_of_epoch or step == self.total_steps:
                    rate = run_n / max(time.perf_counter() - t0, 1e-9)
                    kind = "epoch" if last_of_epoch else "step"
                    val = (mean_loss(model, self.val_data, dev, loss=self.loss)
                           if kind == "epoch" and self.val_data else None)
                    event = TrainEvent(kind, epoch, step, self.total_steps, run_loss / run_n, rate, val)
                    self.history.append(event)
                    yield event
                    run_loss, run_n, t0 = 0.0, 0, time.perf_counter()
        self.seconds += time.perf_counter() - start
        model.eval()

    def card(self) -> dict:
        """What a weights card records about this training run."""
        return {
            "dataset": self.data.source,
            "training": self.settings.to_dict() | {
                "epochs_completed": self.epochs_done,
                "steps": self.history[-1].step if self.history else 0,
                "stopped_early": self.stopped_early,
                "seconds": round(self.seconds, 1),
                "device": str(self.device),
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
            } | (self.loss.results() if hasattr(self.loss, "results") else {}),
            "parameters": parameter_count(self.model),
            "history": [{"epoch": e.epoch, "train_loss": e.loss, "val_loss": e.val_loss}
                        for e in self.history if e.kind == "epoch"],
        }


# --- the terminal's training runs: `python -m ae train` and `train-codec` ----------------------------

def training_data(sample: bool, data_dir=None, dataset: str = "mnist", val_size: int = 2000,
                  seed: int = 0) -> tuple[Digits, Digits | None]:
    """(training digits, validation digits): the bundled sample with no validation set, or a
    dataset's training split with `val_size` seeded digits of its test split."""
    if sample:
        return load_sample(), None
    train = load_digits("train", data_dir, dataset, compact=True)  # 8-bit: the training loop scales each batch
    return train, load_digits("test", data_dir, dataset).subset(val_size, seed=seed)


def settings_with_defaults(arch: str, full_dataset: bool, train_digits: int, **given) -> TrainSettings:
    """The recommended settings (`default_settings`) with what the user gave (values not None)
    in their place. Epochs that are not given still make DEFAULT_STEPS steps when the batch or
    the subset size changed."""
    given = {k: v for k, v in given.items() if v is not None}
    settings = replace(default_settings(arch, full_dataset, train_digits), **given)
    if "epochs" not in given and arch in DEFAULT_LR:
        digits = min(settings.train_size or train_digits, train_digits)
        settings.epochs = epochs_for_steps(DEFAULT_STEPS, digits, settings.batch_size)
    return settings


def codec_start_model(arch: str, latent_dim: int, hidden: int, channels=(), seed: int = 0,
                      init: str | None = None) -> nn.Module:
    """The model a codec run starts from: the weights `init` (a name or path) to fine-tune, or a
    fresh model initialised from `seed` (`channels`: the conv stages, which `rdae` has none of)."""
    if init:
        from ae.weights import load_model  # here, as in presets: only fine-tuning reads weights

        return load_model(init).train()
    torch.manual_seed(seed)
    return build_model(ModelConfig(arch=arch, latent_dim=latent_dim, hidden=hidden,
                                   channels=tuple(channels) if arch != "rdae" else ()))


def _postfix(trainer: Trainer, event: TrainEvent) -> dict:
    loss = trainer.loss
    if isinstance(loss, RateDistortionLoss):  # a codec run: its rate and the weight steering it
        return {"bits": f"{loss.last_bits:.1f}", "mse": f"{loss.last_mse:.5f}", "beta": f"{loss.beta:.2e}"}
    post = {"epoch": event.epoch, "loss": f"{event.loss:.5f}", "ex/s": f"{event.examples_per_s:,.0f}"}
    if event.val_loss is not None:
        post["val"] = f"{event.val_loss:.5f}"
    return post


def _epoch_line(trainer: Trainer, event: TrainEvent) -> str:
    loss = trainer.loss
    if isinstance(loss, RateDistortionLoss):
        return (f"epoch {event.epoch}: loss {event.loss:.5f} bits {loss.last_bits:.1f} "
                f"mse {loss.last_mse:.5f} beta {loss.beta:.3e}"
                + (f" val {event.val_loss:.5f}" if event.val_loss is not None else ""))
    return (f"epoch {event.epoch}: train {event.loss:.5f}"
            + (f", validation {event.val_loss:.5f}" if event.val_loss is not None else "")
            + f", {event.examples_per_s:,.0f} digits/s")


def train_and_save(trainer: Trainer, out: str | Path, card: dict | None = None, half: bool = False,
                   quiet: bool = False, interruptible: bool = False) -> Path:
    """Run `trainer` to the end with a tqdm bar on stderr and a line per epoch, then save the
    model with its card (`trainer.card()`, then `card`'s entries) and return the path written.
    With `interruptible`, Ctrl-C ends the training, not the program: what was trained so far is
    saved. A codec model saves the integer tables frozen from its prior."""
    from tqdm import tqdm

    from ae.weights import save_model  # here, as in presets: the loop itself reads and writes no files

    with tqdm(total=trainer.total_steps, unit="step", file=sys.stderr, disable=quiet) as bar:
        try:
            for event in trainer.run():
                bar.update(event.step - bar.n)
                bar.set_postfix(_postfix(trainer, event))
                if event.kind == "epoch":
                    bar.write(_epoch_line(trainer, event))
        except KeyboardInterrupt:
            if not interruptible:
                raise
            bar.write("Interrupted: saving what was trained so far.")
            trainer.stopped_early = True
    if isinstance(trainer.model, RateDistortionAE):
        trainer.model.cpu().update()
    return save_model(trainer.model, out, trainer.card() | (card or {}), half=half)
