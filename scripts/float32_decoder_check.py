"""Would float32 products keep the integer decoder exact, and at what cost in PSNR? An experiment,
not the shipped decoder (`ae/integer_decoder.py` multiplies in float64, exact below 2**53).

float32 is exact while every partial sum stays below 2**24. The design tried here makes that a
proof without any data: each ReLU's output is clamped to [0, 2**bits - 1], each output column gets
the finest power-of-two weight scale whose worst case sum(|w|) * clamp + |bias| stays below 2**22,
and each activation scale maps the largest activation seen on the bundled sample to the clamp.
It is simulated in float64 (exact), pixels rounded from the logits, and compared with the shipped
integer decoder on the bundled sample's 1,000 digits. It also times the shipped decoder's layers
with float64 and with float32 arrays (one thread), the speed such a decoder could have.

    python scripts/float32_decoder_check.py [--points rd-q1 rd-q4] [--bits 8 9 10 11]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import ae  # noqa: F401  (first: its thread settings)
import ae.integer_decoder as integer

BOUND = float(1 << 22)  # half of float32's 2**24: room for the bias and the rounding half


def mean_psnr(pixels: np.ndarray, originals: np.ndarray) -> float:
    mse = ((pixels - originals) ** 2).mean(axis=(1, 2))
    return float(np.mean(10 * np.log10(1 / np.maximum(mse, 1e-10))))


def clamped_pixels(plan, symbols: np.ndarray, bits: int) -> np.ndarray:
    """Pixels in [0, 1] of the clamped design, for `symbols` (which also calibrate the scales)."""
    x, largest = symbols.astype(np.float64), []
    for layer in plan:  # the float decoder's largest activation after each ReLU
        g = layer.geometry
        x = integer._apply(g, x, integer._prepared(g), g.column_bias())
        if layer.relu:
            x = np.maximum(x, 0)
            largest.append(float(x.max()))
    clamp, e_in, x = float(integer.MAX_SYMBOL), 0, symbols.astype(np.float64)
    for i, layer in enumerate(plan):
        g = layer.geometry
        column_sum = np.maximum(np.abs(g.weight).sum(0), 1e-30)
        exponent = np.floor(np.log2(BOUND / (column_sum * clamp)))
        if g.kind == "patches":  # one scale per output channel, the same at every block position
            per_channel = exponent.reshape(-1, g.out_shape[2]).min(0)
            exponent, out_exponent = np.tile(per_channel, g.block ** 2), per_channel
        else:
            out_exponent = exponent
        weights = np.rint(g.weight * 2.0 ** exponent)
        scaled = integer._with(g, weights, g.bias, None)
        sums = integer._apply(scaled, x, integer._prepared(scaled), np.rint(g.column_bias() * 2.0 ** (e_in + exponent)))
        assert np.abs(sums).max() < 2 * BOUND
        e_acc = e_in + out_exponent
        if not layer.relu:
            logits = sums * 2.0 ** -e_acc
            break
        top = float(2 ** bits - 1)
        e_out = int(np.floor(np.log2(top / largest[i])))
        shift = e_acc - e_out
        x = np.minimum(np.floor((np.maximum(sums, 0) + np.where(shift > 0, 2.0 ** (shift - 1), 0)) * 2.0 ** -shift), top)
        clamp, e_in = top, e_out
    if logits.ndim == 4:
        logits = logits.transpose(0, 3, 1, 2)
    return np.rint(255 / (1 + np.exp(-logits.reshape(len(symbols), -1)))).reshape(-1, 28, 28) / 255


def layer_seconds(decoder, symbols: np.ndarray, dtype) -> float:
    """CPU seconds per 1,000 digits of the shipped decoder's layers run on `dtype` arrays."""
    weights = [w.astype(dtype) for w in decoder._weights]
    biases = [b.astype(dtype) for b in decoder._biases]

    def run():
        for start in range(0, len(symbols), integer.CHUNK_DIGITS):
            x = symbols[start:start + integer.CHUNK_DIGITS].astype(dtype)
            for layer, w, b, step in zip(decoder.layers, weights, biases, decoder._steps):
                x = integer._layer_output(layer, x, w, b, step)

    run()
    t = time.process_time()
    run()
    return (time.process_time() - t) * 1000 / len(symbols)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--points", nargs="+", default=["rd-q1", "rd-q4"])
    p.add_argument("--bits", nargs="+", type=int, default=[8, 9, 10, 11])
    args = p.parse_args()
    from ae.codec import get_coder
    from ae.sample import load_sample

    images = load_sample().images
    originals = images[:, 0].numpy().astype(np.float64)
    for point in args.points:
        coder = get_coder(point)
        plan = integer._plan(coder.model.decoder_layers())
        symbols = coder.symbols(images)
        shipped = mean_psnr(coder.pixels(symbols) / 255.0, originals)
        losses = ", ".join(f"{bits} bits {mean_psnr(clamped_pixels(plan, symbols, bits), originals) - shipped:+.3f} dB"
                           for bits in args.bits)
        f64, f32 = (layer_seconds(coder.decoder, symbols, t) for t in (np.float64, np.float32))
        print(f"{point}: shipped decoder {shipped:.3f} dB on the sample; clamped float32-exact design: {losses}; "
              f"products per 1,000 digits, one thread: float64 {f64 * 1000:.0f} ms, float32 {f32 * 1000:.0f} ms CPU")


if __name__ == "__main__":
    main()
