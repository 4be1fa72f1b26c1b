"""Measure trained codec models that are not (yet) shipped points, the way the benchmark measures
shipped ones: every MNIST test digit as its own single-digit payload (real bytes, header
included), decoded by the integer decoder, PSNR against the original and the shipped classifier's
reading of the decoded digit.

    python scripts/measure_codec_points.py --data-dir ../shared/data FILE.safetensors [...]

Prints one line per file: mean payload bytes, mean information content of the symbols under the
point's tables (so bytes - information = framing), PSNR, recognised share, and the encoder's speed
(digits/s to symbols, batched). `--refine-steps N --refine-lambda L` refines the symbols at
encode time (`ae.latent_refinement`); each refined payload is decoded again by the receiver's
`decompress`, which also runs the canonical check.
"""
from __future__ import annotations

import argparse
import time

import ae  # noqa: F401  (first: thread settings before torch loads)
import numpy as np
import torch

from ae.codec import PointCoder, compress_symbols, decompress
from ae.data import load_digits
from ae.inference import classify
from ae.latent_refinement import Refinement
from ae.metrics import psnr
from ae.weights import load_model


def measure(path: str, data, classifier, point_id: int = 1, refinement: Refinement | None = None) -> str:
    coder = PointCoder(load_model(path), point_id, path)
    refined = refinement is not None and refinement.active
    start = time.perf_counter()
    symbols = coder.symbols(data.images, refinement)
    encode_s = time.perf_counter() - start
    payloads = [compress_symbols(symbols[i:i + 1], coder, container=False) for i in range(len(symbols))]
    sizes = np.array([len(p) for p in payloads])
    if refined:  # the receiver decodes refined payloads as any other
        for i, payload in enumerate(payloads):
            assert np.array_equal(decompress(payload, coders=[coder]).symbols[0], symbols[i]), i
    info = coder.estimated_bits(symbols) / 8
    decoded = coder.images(symbols)
    quality = psnr(decoded, data.images).mean().item()
    how = (f" (refined: {refinement.steps} {refinement.relaxation} steps, lambda {refinement.lam:g} bits/dB)"
           if refined else "")
    recognised = (classify(classifier, decoded) == data.labels).float().mean().item()
    return (f"{path}: {sizes.mean():.2f} B per digit (information {info.mean():.2f} B, framing "
            f"{sizes.mean() - info.mean():.2f} B), {quality:.2f} dB, recognised {recognised:.2%}, "
            f"encode {len(sizes) / encode_s:,.0f} digits/s{how} "
            f"[{len(sizes):,} digits, {time.perf_counter() - start:.0f} s]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--data-dir", required=True, help="MNIST in torchvision's layout")
    parser.add_argument("--limit", type=int, help="only the first N test digits")
    parser.add_argument("--refine-steps", type=int, default=0, help="latent refinement steps (0: off)")
    parser.add_argument("--refine-lambda", type=float, action="append",
                        help="bits per dB for the refinement; repeat to measure several")
    parser.add_argument("--refine-relaxation", default="ste", help="how rounding is relaxed: ste, ste-anneal, sga")
    args = parser.parse_args()
    torch.set_num_threads(2)
    data = load_digits("test", args.data_dir)
    if args.limit:
        data = data.subset(args.limit)
    classifier = load_model("classifier")
    print(f"MNIST test set, {len(data):,} digits; {data.source}")
    refinements = [Refinement(args.refine_steps, lam, args.refine_relaxation) for lam in (args.refine_lambda or [None])]
    for path in args.files:
        for refinement in refinements:
            print(measure(path, data, classifier, refinement=refinement), flush=True)


if __name__ == "__main__":
    main()
