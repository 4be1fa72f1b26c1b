"""Measure trained codec models that are not (yet) shipped points, the way the benchmark measures
shipped ones: every MNIST test digit as its own single-digit payload (real bytes, header
included), decoded by the integer decoder, PSNR against the original and the shipped classifier's
reading of the decoded digit.

    python scripts/measure_codec_points.py --data-dir ../shared/data FILE.safetensors [...]

Prints one line per file: mean payload bytes, mean information content of the symbols under the
point's tables (so bytes - information = framing), PSNR, recognised share.
"""
from __future__ import annotations

import argparse
import time

import ae  # noqa: F401  (first: thread settings before torch loads)
import numpy as np
import torch

from ae.codec import PointCoder, compress_symbols
from ae.data import load_digits
from ae.inference import classify
from ae.metrics import psnr
from ae.weights import load_model


def measure(path: str, data, classifier, point_id: int = 1) -> str:
    coder = PointCoder(load_model(path), point_id, path)
    start = time.perf_counter()
    symbols = coder.symbols(data.images)
    sizes = np.array([len(compress_symbols(symbols[i:i + 1], coder, container=False))
                      for i in range(len(symbols))])
    info = coder.estimated_bits(symbols) / 8
    decoded = coder.images(symbols)
    quality = psnr(decoded, data.images).mean().item()
    recognised = (classify(classifier, decoded) == data.labels).float().mean().item()
    return (f"{path}: {sizes.mean():.2f} B per digit (information {info.mean():.2f} B, framing "
            f"{sizes.mean() - info.mean():.2f} B), {quality:.2f} dB, recognised {recognised:.2%} "
            f"[{len(sizes):,} digits, {time.perf_counter() - start:.0f} s]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--data-dir", required=True, help="MNIST in torchvision's layout")
    parser.add_argument("--limit", type=int, help="only the first N test digits")
    args = parser.parse_args()
    torch.set_num_threads(2)
    data = load_digits("test", args.data_dir)
    if args.limit:
        data = data.subset(args.limit)
    classifier = load_model("classifier")
    print(f"MNIST test set, {len(data):,} digits; {data.source}")
    for path in args.files:
        print(measure(path, data, classifier), flush=True)


if __name__ == "__main__":
    main()
