"""What reading a dataset split costs a process: in-process (torchvision imported for good) against
`ae.data.load_digits(..., apart=True)` (torchvision in a child), each in a fresh process that has torch
loaded already, as the app's server has: wall seconds and resident memory gained. With
`--worker`, the training worker's start instead: MNIST's train and test splits loaded after
`import torch` in-process, against read ahead in a child before it (`ae.split_reader.read_ahead`):
seconds until the data is ready, the process's resident memory then, and its peak (the child's
apart).

    python scripts/split_read_costs.py --data-dir /work/shared/data [--split test | --worker]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHILD = """
import json, sys, time
import ae.data as data
import torch  # noqa: F401  (the server has it before it reads a split)
def rss_mb():
    return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1]) / 1024
before, t = rss_mb(), time.perf_counter()
digits = data.load_digits(sys.argv[2], sys.argv[1], download=False, apart=sys.argv[3] == "apart")
print(json.dumps({"seconds": time.perf_counter() - t, "rss_gain_mb": rss_mb() - before,
                  "torchvision": "torchvision" in sys.modules, "source": digits.source}))
"""

WORKER = """
import json, sys, time
t = time.perf_counter()
if sys.argv[2] == "read ahead":
    from ae.training_worker import _read_training_splits_ahead
    _read_training_splits_ahead(sys.argv[1])
import torch  # noqa: F401
from ae.live_training import training_data
data = training_data(sys.argv[1])
status = open('/proc/self/status').read().splitlines()
kb = lambda key: int(next(l for l in status if l.startswith(key)).split()[1])
print(json.dumps({"seconds": time.perf_counter() - t, "rss_mb": kb('VmRSS') / 1024, "peak_mb": kb('VmHWM') / 1024,
                  "torchvision": "torchvision" in sys.modules, "source": data.train.source}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--split", default="test", choices=["train", "test"])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--worker", action="store_true", help="the training worker's start, both splits")
    args = parser.parse_args()
    for _ in range(args.repeats if args.worker else 0):
        for how in ("in-process", "read ahead"):
            out = subprocess.run([sys.executable, "-c", WORKER, args.data_dir, how], cwd=ROOT,
                                 capture_output=True, text=True, check=True)
            got = json.loads(out.stdout)
            print(f"{how:10}  ready in {got['seconds']:.2f} s  {got['rss_mb']:.0f} MB resident (peak {got['peak_mb']:.0f})  "
                  f"torchvision stays: {got['torchvision']}  ({got['source']})")
    for _ in range(0 if args.worker else args.repeats):
        for how in ("in-process", "apart"):
            out = subprocess.run([sys.executable, "-c", CHILD, args.data_dir, args.split, how], cwd=ROOT,
                                 capture_output=True, text=True, check=True)
            got = json.loads(out.stdout)
            print(f"{how:10}  {got['seconds']:.2f} s  +{got['rss_gain_mb']:.0f} MB resident  "
                  f"torchvision stays: {got['torchvision']}  ({got['source']})")


if __name__ == "__main__":
    main()
