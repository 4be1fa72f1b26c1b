"""How rd-q5's residual was chosen: a base point plus a coded residual, over quantiser steps and
dead zones, with the tables counted on training digits and the cost measured on test digits.

For each base point, step and dead zone (in sixteenths of a step) it prints the mean PSNR of the
refined pixels and the information content of the residual under integer tables fitted on the
first --train digits of MNIST's train split (`ae.residual.fit_frequencies`), in bytes per digit,
and the estimated single-digit payload: base latents + residual + 2.3 B of framing (the 2-byte
header and ~0.3 B of stream end, measured for the shipped points). No payloads are written: the
benchmark measures the chosen point's real ones.

    python scripts/residual_sweep.py --data-dir ../shared/data
"""
from __future__ import annotations

import argparse

import numpy as np

FRAMING_BYTES = 2.3


def mean_psnr(truth, pixels: np.ndarray) -> float:
    """The benchmark's PSNR (`ae.metrics.psnr`, mean over digits) of 8-bit pixels against the digits."""
    import torch

    from ae.images import from_uint8
    from ae.metrics import psnr

    return float(psnr(from_uint8(torch.from_numpy(pixels[:, None])), truth).mean())


def main(argv=None) -> None:
    from ae.codec import get_coder
    from ae.data import load_digits
    from ae.images import batch_to_uint8
    from ae.refined_coder import RefinedPointCoder
    from ae.residual import ResidualTables, fit_frequencies, quantise

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--bases", nargs="+", default=["rd-q2", "rd-q3"])
    parser.add_argument("--steps", nargs="+", type=int, default=[32, 40, 48])
    parser.add_argument("--deadzones", nargs="+", type=int, default=[10, 11, 12])
    parser.add_argument("--train", type=int, default=20_000, help="training digits the tables are counted on")
    args = parser.parse_args(argv)
    train = load_digits("train", args.data_dir).images[:args.train]
    test = load_digits("test", args.data_dir).images
    train_x, test_x = batch_to_uint8(train), batch_to_uint8(test)
    print(f"tables from {len(train):,} training digits; costs on {len(test):,} test digits")
    for name in args.bases:
        coder = get_coder(name)
        train_base = coder.pixels(coder.symbols(train))
        latents = coder.symbols(test)
        test_base, latent_bytes = coder.pixels(latents), coder.estimated_bits(latents).mean() / 8
        print(f"{name}: {mean_psnr(test, test_base):.2f} dB, latents {latent_bytes:.2f} B")
        for step in args.steps:
            for deadzone in args.deadzones:
                tables = fit_frequencies(train_base, quantise(train_x, train_base, step, deadzone), step)
                refined = RefinedPointCoder(coder, ResidualTables(step, deadzone, tables))
                symbols = np.concatenate([latents, quantise(test_x, test_base, step, deadzone)], axis=1)
                total_bytes = refined.estimated_bits(symbols).mean() / 8
                print(f"  step {step:3d}, dead zone {deadzone}/16: {mean_psnr(test, refined.pixels(symbols)):.2f} dB, "
                      f"residual {total_bytes - latent_bytes:5.2f} B, payload ~{total_bytes + FRAMING_BYTES:5.1f} B")


if __name__ == "__main__":
    main()
