"""What receiving costs, per shipped operating point (measured, not asserted):

- one digit end to end in a fresh process, `python -m ae decompress one.aez -o one.png`: wall time
  (median of --repeats runs) and peak RSS (the largest, from the child's own rusage);
- one digit decoded in a warm process (payload -> pixels, the point already loaded);
- batch: a container of the bundled sample's 1,000 digits decoded (entropy decoding, the
  canonical check and the integer decoder), and the integer decoder alone, in digits/s.

The baseline `python -c "import numpy, constriction"` is measured the same way. The payloads are
made here (the sender imports PyTorch); every measurement runs in a child process that only
receives. Usage: python -m scripts.receiver_costs [--threads N] [--repeats R] [--points rd-q1 ...]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BATCH_CHILD = """
import json, sys, time
import numpy as np
from ae.codec import decompress, get_coder
single, batch, point = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read(), sys.argv[3]
coder = get_coder(point)
decompress(single)  # load the point
def best(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter(); out = fn(); times.append(time.perf_counter() - start)
    return min(times), out
single_s, _ = best(lambda: decompress(single), 50)
batch_s, decoded = best(lambda: decompress(batch), 3)
decoder_s, _ = best(lambda: coder.pixels(decoded.symbols), 3)
print(json.dumps({"warm_single_ms": 1000 * single_s, "batch_digits_per_s": len(decoded.pixels) / batch_s,
                  "decoder_digits_per_s": len(decoded.pixels) / decoder_s, "torch": "torch" in sys.modules}))
"""


def child_output(argv: list[str], env: dict) -> str:
    run = subprocess.run(argv, env=env, capture_output=True, text=True)
    if run.returncode:
        raise SystemExit(f"{' '.join(argv[:3])} failed:\n{run.stderr[-2000:]}")
    return run.stdout


# Forks and times one command from a bare interpreter: a child's peak RSS counts the memory of
# the process it was forked from, which must not be this one (it holds PyTorch).
LAUNCHER = """
import json, os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
_, status, usage = os.wait4(pid, 0)
print(json.dumps({"wall_s": time.perf_counter() - start, "peak_kb": usage.ru_maxrss, "status": status}))
"""


def fresh_process_costs(argv: list[str], env: dict, repeats: int) -> tuple[float, int]:
    """(median wall seconds, largest peak RSS in MB) of `repeats` fresh runs of `python argv...`."""
    runs = [json.loads(child_output([sys.executable, "-c", LAUNCHER, *argv], env).strip().splitlines()[-1])
            for _ in range(repeats)]
    if any(r["status"] for r in runs):
        raise SystemExit(f"python {' '.join(argv)} failed")
    return statistics.median(r["wall_s"] for r in runs), round(max(r["peak_kb"] for r in runs) / 1024)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, help="BLAS/OpenMP threads of the children (default: the environment's)")
    parser.add_argument("--repeats", type=int, default=5, help="fresh-process runs per point (median wall time)")
    parser.add_argument("--points", nargs="*", help="operating points (default: every shipped one)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)

    from ae.codec import compress
    from ae.registry import operating_points
    from ae.sample import load_sample

    env = dict(os.environ)
    if args.threads:
        env.update(OPENBLAS_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads),
                   MKL_NUM_THREADS=str(args.threads))
    digits = load_sample().images
    points = [p.name for p in operating_points() if not args.points or p.name in args.points]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wall, peak = fresh_process_costs(["-c", "import numpy, constriction"], env, args.repeats)
        results["import numpy, constriction"] = {"fresh_process_s": wall, "peak_rss_mb": peak}
        for point in points:
            single, batch = tmp / f"{point}.aez", tmp / f"{point}-batch.aez"
            single.write_bytes(compress(digits[0], point))
            batch.write_bytes(compress(digits, point, container=True))
            command = ["-m", "ae", "decompress", str(single), "-o", str(tmp / f"{point}.png")]
            wall, peak = fresh_process_costs(command, env, args.repeats)
            out = child_output([sys.executable, "-c", BATCH_CHILD, str(single), str(batch), point], env)
            results[point] = {"fresh_process_s": wall, "peak_rss_mb": peak} | json.loads(out.strip().splitlines()[-1])

    threads = env.get("OPENBLAS_NUM_THREADS", "default")
    print(f"Receiving costs ({len(digits):,}-digit batch; BLAS threads: {threads}; cores: {os.cpu_count()})")
    print(f"{'':28} {'1 digit, fresh':>15} {'peak RSS':>9} {'1 digit, warm':>14} {'batch':>14} {'decoder only':>14}")
    for name, r in results.items():
        row = f"{name:28} {r['fresh_process_s']:>13.3f} s {r['peak_rss_mb']:>6} MB"
        if "batch_digits_per_s" in r:
            row += (f" {r['warm_single_ms']:>11.2f} ms {r['batch_digits_per_s']:>8,.0f} dig/s"
                    f" {r['decoder_digits_per_s']:>8,.0f} dig/s" + ("  (torch imported!)" if r["torch"] else ""))
        print(row)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
