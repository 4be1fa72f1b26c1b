"""What reading a dataset split costs a process: in-process (torchvision imported for good) against
`ae.data.load_digits(..., apart=True)` (torchvision in a child), each in a fresh process that has torch
loaded already, as the app's server has: wall seconds and resident memory gained.

    python scripts/split_read_costs.py --data-dir /work/shared/data [--split test]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--split", default="test", choices=["train", "test"])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    for _ in range(args.repeats):
        for how in ("in-process", "apart"):
            out = subprocess.run([sys.executable, "-c", CHILD, args.data_dir, args.split, how], cwd=ROOT,
                                 capture_output=True, text=True, check=True)
            got = json.loads(out.stdout)
            print(f"{how:10}  {got['seconds']:.2f} s  +{got['rss_gain_mb']:.0f} MB resident  "
                  f"torchvision stays: {got['torchvision']}  ({got['source']})")


if __name__ == "__main__":
    main()
