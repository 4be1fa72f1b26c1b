"""Where the benchmark's batch round trip spends its time, per operating point: a container of
--digits digits through each stage (best of --repeats, milliseconds per 1,000 digits, wall and
CPU). The stages are the codec's own calls; "round trip" is what `ae benchmark` times.

Usage: python -m scripts.codec_stages --data-dir /work/shared/data [--points rd-q1 ...]
       [--digits 1000] [--threads 2]   (AE_DECODER_THREADS sets the integer decoder's threads)
"""
from __future__ import annotations

import argparse
import time

import ae  # noqa: F401  (first: it sets the thread policies before numpy and torch load)


def best(fn, repeats: int) -> tuple[float, float]:
    """(wall, CPU) seconds of the fastest of `repeats` calls, after one warm-up call."""
    fn()
    runs = []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        runs.append((time.perf_counter() - wall, time.process_time() - cpu))
    return min(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="dataset root (default: the bundled 1,000-digit sample)")
    parser.add_argument("--points", nargs="*", help="operating points (default: every shipped one)")
    parser.add_argument("--digits", type=int, default=1000, help="digits in the container")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the encoder)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import torch

    from ae.codec import compress, compress_symbols, decompress, get_coder
    from ae.registry import operating_points

    torch.set_num_threads(args.threads)
    if args.data_dir:
        from ae.data import load_digits
        images = load_digits("test", args.data_dir).subset(args.digits, seed=0).images
    else:
        from ae.sample import load_sample
        images = load_sample().images[:args.digits]
    n = len(images)
    for name in args.points or [p.name for p in operating_points()]:
        coder = get_coder(name)
        symbols = coder.symbols(images)
        body = coder.encode_stream(symbols, trim=False)
        payload = compress_symbols(symbols, coder, container=True)
        stages = {
            "encoder (torch)": lambda: coder.symbols(images),
            "range encode": lambda: coder.encode_stream(symbols, trim=False),
            "canonical check": lambda: coder.verify_stream(body, n, trim=False),
            "integer decoder": lambda: coder.pixels(symbols),
            "compress": lambda: compress(images, coder, container=True),
            "decompress": lambda: decompress(payload, [coder]).images,
            "round trip": lambda: decompress(compress(images, coder, container=True), [coder]).images,
        }
        print(f"{name} ({n:,} digits; ms per 1,000 digits, wall / CPU)")
        for stage, fn in stages.items():
            wall, cpu = best(fn, args.repeats)
            print(f"  {stage:<16} {1000 * wall * 1000 / n:7.1f} / {1000 * cpu * 1000 / n:7.1f}")
        wall, _ = best(stages["round trip"], args.repeats)
        print(f"  -> {n / wall:,.0f} digits/s", flush=True)


if __name__ == "__main__":
    main()
