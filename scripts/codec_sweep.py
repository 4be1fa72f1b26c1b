"""Train several codec model variants side by side within a time budget, then measure each on
the full MNIST test set (real single-digit payloads, exact decoder). A tool for choosing an
operating point's architecture on a GPU machine; the shipped points are trained by
scripts/train_codec.sh.

Usage: python scripts/codec_sweep.py DATA_DIR OUT_DIR SECONDS [--device cuda] [--threads 3] [--epochs N]
         [--only NAME ...]
Each variant first runs 100 steps to time itself, then gets as many epochs as fit SECONDS.
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TARGET = ["--target-bits", "288", "--distortion", "log-mse", "--beta", "0.002", "--lr", "2e-3"]
VARIANTS = {
    "ff64": ["--arch", "rdae", "--latent", "64", "--hidden", "1024"],
    "ff128": ["--arch", "rdae", "--latent", "128", "--hidden", "1024"],
    "ff96w": ["--arch", "rdae", "--latent", "96", "--hidden", "1536"],
    "hybrid": ["--arch", "rdhybrid", "--latent", "128", "--hidden", "1024", "--channels", "16", "32", "64"],
    "cnn": ["--arch", "rdcnn", "--latent", "128", "--hidden", "512", "--channels", "16", "32", "64"],
    "cnn-s": ["--arch", "rdcnn", "--latent", "128", "--hidden", "512", "--channels", "8", "16", "32"],
    "cnn-m": ["--arch", "rdcnn", "--latent", "128", "--hidden", "512", "--channels", "16", "32", "32"],
    "cnn-l": ["--arch", "rdcnn", "--latent", "192", "--hidden", "1024", "--channels", "16", "32", "64"],
}
STEPS_PER_EPOCH = math.ceil(60000 / 128)


def train_cmd(name: str, out: Path, args, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "ae", "train-codec", "--out", str(out / f"{name}.safetensors"), "--id", "4",
            "--label", name, *VARIANTS[name], *TARGET, "--device", args.device, "--threads", str(args.threads),
            "--data-dir", args.data_dir, "--quiet", "--half", *extra]


def run_all(cmds: dict[str, list[str]], log_dir: Path) -> None:
    procs = {n: subprocess.Popen(c, cwd=ROOT, stdout=open(log_dir / f"{n}.log", "w"), stderr=subprocess.STDOUT)
             for n, c in cmds.items()}
    for name, p in procs.items():
        if p.wait() != 0:
            print(f"{name} failed:\n" + (log_dir / f"{name}.log").read_text()[-2000:])


def measure(path: Path, quality) -> dict:
    """One trained variant through the real codec on the test set that `quality` judges."""
    import torch

    from ae.benchmark import codec_results
    from ae.codec import PointCoder
    from ae.weights import load_model
    coder = PointCoder(load_model(path), 4, path.stem)
    single = codec_results(coder, quality)[0]
    card = json.loads(path.with_suffix(".json").read_text())
    return {"name": path.stem, "bytes": round(single.bytes_per_digit, 2), "psnr": round(single.psnr, 3),
            "accuracy": round(single.accuracy, 4), "epochs": card["training"]["epochs_completed"],
            "seconds": card["training"]["seconds"], "params": card["parameters"],
            "cpu_digits_per_s": round(single.digits_per_s_batch), "threads": torch.get_num_threads()}


def probe(names: list[str], out: Path, args, start: float) -> dict[str, int]:
    """Time 100 steps of each variant (all at once, as they will run), then share out the budget."""
    run_all({n: train_cmd(n, out, args, ["--epochs", "1", "--max-steps", "100"]) for n in names}, out)
    rate = {n: 100 / json.loads((out / f"{n}.json").read_text())["training"]["seconds"] for n in names}
    left = args.seconds - (time.time() - start)
    epochs = {n: max(1, int(left * 0.92 * rate[n] / STEPS_PER_EPOCH)) for n in names}
    print("steps/s:", {n: round(r, 1) for n, r in rate.items()}, "epochs:", epochs, flush=True)
    return epochs


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("data_dir")
    p.add_argument("out")
    p.add_argument("seconds", type=float)
    p.add_argument("--device", default="cuda")
    p.add_argument("--threads", type=int, default=3)
    p.add_argument("--only", nargs="*")
    p.add_argument("--epochs", type=int, help="skip the timing probe: this many epochs each")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = args.only or list(VARIANTS)
    start = time.time()
    epochs = {n: args.epochs for n in names} if args.epochs else probe(names, out, args, start)
    run_all({n: train_cmd(n, out, args, ["--epochs", str(epochs[n])]) for n in names}, out)
    from ae.benchmark import Quality
    from ae.data import load_digits
    from ae.weights import load_model
    quality = Quality(load_digits("test", args.data_dir), load_model("classifier"))
    rows = []
    for n in names:
        try:
            rows.append(measure(out / f"{n}.safetensors", quality))
        except Exception as exc:  # keep the other variants' figures
            rows.append({"name": n, "error": repr(exc)})
        print(json.dumps(rows[-1]), flush=True)
    (out / "sweep.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
