"""Do the default training settings visibly work? A check script (not a test): for each dataset the
app can train on (the bundled sample; full MNIST when its files are there) and each architecture,
train with `ae.train.default_settings` on one torch thread (what the app's training worker uses) and
print the time, the final losses, the PSNR and the shipped classifier's accuracy on the
reconstructions of the held-out digits the app validates on. Exits 1 if any accuracy is under 90%.

    python scripts/check_train_defaults.py [--data-dir ../shared/data] [--old]

--old adds, for comparison, the previous defaults (3 epochs, lr 1e-3, batch 128, up to 10,000
digits) with the previous initialisation (output bias from PyTorch's default, not the mean pixel).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import ae  # noqa: F401  (first: it sets the OpenMP wait policy before torch loads)
import torch

import ae.models
from ae.architectures import build_model
from ae.data import dataset_available
from ae.evaluate import classify, reconstruct
from ae.live_training import training_data
from ae.metrics import psnr
from ae.models import DEFAULT_CONFIGS
from ae.train import Trainer, TrainSettings, default_settings
from ae.weights import load_model

REQUIRED_ACCURACY = 0.90


def old_settings(arch: str, train_digits: int) -> TrainSettings:
    """What the Train page started with before: 3 epochs of batch 128 at lr 1e-3, up to 10,000 digits."""
    return TrainSettings(model=arch, epochs=3, lr=1e-3, batch_size=128, train_size=min(10_000, train_digits))


def old_model(arch: str, seed: int) -> torch.nn.Module:
    """The model as it was initialised before: the same random draws, minus the mean-pixel output bias."""
    torch.manual_seed(seed)
    with mock.patch.object(ae.models, "start_at_mean_pixel", lambda layer: None):
        return build_model(DEFAULT_CONFIGS[arch])


def measure(settings: TrainSettings, data, classifier, model=None) -> dict:
    settings.device, settings.report_every = "cpu", 10**9  # progress events only at epoch ends
    trainer = Trainer(settings, data.train, data.val, model=model)
    cpu0 = time.process_time()
    events = list(trainer.run())
    cpu = time.process_time() - cpu0
    x_hat = reconstruct(trainer.model, data.val.images)
    return {
        "seconds": trainer.seconds,
        "cpu_seconds": cpu,
        "steps": events[-1].step,
        "train_loss": events[-1].loss,
        "val_loss": events[-1].val_loss,
        "psnr": psnr(x_hat, data.val.images).mean().item(),
        "accuracy": (classify(classifier, x_hat) == data.val.labels).float().mean().item(),
    }


def describe(s: TrainSettings, n_train: int) -> str:
    digits = min(s.train_size or n_train, n_train)
    return f"{digits:,} digits x {s.epochs} epochs, batch {s.batch_size}, lr {s.lr:g}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=str(Path(__file__).resolve().parent.parent.parent / "shared" / "data"),
                   help="MNIST root for the full-dataset rows (skipped when absent; default ../shared/data)")
    p.add_argument("--old", action="store_true", help="also train with the previous defaults and initialisation")
    p.add_argument("--arch", nargs="+", choices=["ff", "cnn"], default=["ff", "cnn"])
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as empty:  # a data folder without MNIST: the app's sample split
        datasets = [("sample", training_data(empty))]
    if dataset_available(args.data_dir):
        datasets.append(("MNIST", training_data(args.data_dir)))
    else:
        print(f"No MNIST in {args.data_dir}: checking the bundled sample only.")
    classifier = load_model("classifier")

    print("one torch thread; seconds = wall-clock training time (cpu = this process's CPU time)")
    print(f"{'data':7} {'arch':4} {'settings':8} {'seconds':>7} {'cpu':>6} {'steps':>5} {'train':>7} {'val':>7} "
          f"{'PSNR':>6} {'accuracy':>8}  what")
    failed = []
    for name, data in datasets:
        n_train = len(data.train)
        for arch in args.arch:
            runs = [("default", default_settings(arch, data.full_dataset, n_train), None)]
            if args.old:
                runs.append(("old", old_settings(arch, n_train), old_model(arch, args.seed)))
            for label, settings, model in runs:
                settings.seed = args.seed
                r = measure(settings, data, classifier, model)
                ok = r["accuracy"] >= REQUIRED_ACCURACY
                if label == "default" and not ok:
                    failed.append(f"{name} {arch}")
                print(f"{name:7} {arch:4} {label:8} {r['seconds']:7.1f} {r['cpu_seconds']:6.1f} {r['steps']:5d} "
                      f"{r['train_loss']:7.4f} {r['val_loss']:7.4f} {r['psnr']:6.2f} {r['accuracy']:8.1%}  "
                      f"{describe(settings, n_train)}; {len(data.val):,} held-out digits", flush=True)
    if failed:
        print(f"FAIL: under {REQUIRED_ACCURACY:.0%} with the defaults: {', '.join(failed)}")
        return 1
    print(f"OK: every default reaches {REQUIRED_ACCURACY:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
