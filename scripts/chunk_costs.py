"""What the digits-per-forward-pass chunk (`ae.inference.CHUNK`) costs: speed and the peak of
resident memory over the process before, for reconstructing digits with a shipped model and for
the training loop's validation pass (`ae.train.mean_loss`), each size in a fresh process.

    python scripts/chunk_costs.py [--models ff cnn] [--chunks 1000 250 100 50] [--threads 1]

The digits are the bundled sample, five times over (5,000 digits).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def resident_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def measure(model_name: str, chunk: int, threads: int, what: str) -> dict:
    """One size, in this process: digits/s (best of 3) and the peak RSS over the start, sampled
    every 5 ms."""
    import torch

    from ae.inference import reconstruct
    from ae.sample import load_sample
    from ae.train import mean_loss
    from ae.weights import load_model

    torch.set_num_threads(threads)
    model = load_model(model_name).eval()
    sample = load_sample()
    images = torch.cat([sample.images] * 5)
    data = type(sample)(images, torch.cat([sample.labels] * 5), "sample x5")

    def run():
        if what == "reconstruct":
            reconstruct(model, images, chunk=chunk)
        else:
            mean_loss(model, data, torch.device("cpu"), batch_size=chunk)

    reconstruct(model, images[:200], chunk=100)  # first-call costs out of the way
    peak, stop = [0.0], threading.Event()

    def sample_rss():
        while not stop.is_set():
            peak[0] = max(peak[0], resident_mb())
            time.sleep(0.005)

    before = resident_mb()
    watcher = threading.Thread(target=sample_rss, daemon=True)
    watcher.start()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    stop.set()
    watcher.join()
    return {"model": model_name, "what": what, "chunk": chunk, "threads": threads,
            "digits_per_s": len(images) / best, "peak_over_start_mb": peak[0] - before}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["ff", "cnn"])
    p.add_argument("--chunks", nargs="+", type=int, default=[1000, 250, 100, 50])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--one", nargs=3, metavar=("MODEL", "CHUNK", "WHAT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], int(args.one[1]), args.threads, args.one[2])))
        return 0
    print(f"{'model':<6} {'pass':<12} {'chunk':>6} {'digits/s':>9} {'peak RSS over start':>20}")
    for model_name in args.models:
        for what in ("reconstruct", "validation"):
            for chunk in args.chunks:
                out = subprocess.run([sys.executable, __file__, "--threads", str(args.threads),
                                      "--one", model_name, str(chunk), what],
                                     capture_output=True, text=True, cwd=ROOT, check=True)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"{model_name:<6} {what:<12} {chunk:>6} {r['digits_per_s']:>9.0f} {r['peak_over_start_mb']:>17.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
