"""Pictures of digits for the app: upscaled greyscale digits, error heat maps and strips.

Pure numpy/PIL so the pages only place images; nearest-neighbour upscaling keeps the 28x28
pixels visible instead of blurring them. The array conversions are in `ae.images`.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from ae.images import as_digit_array, to_uint8


def digit_image(digit, size: int = 140) -> Image.Image:
    """A digit as a greyscale picture, `size` pixels square."""
    return Image.fromarray(to_uint8(digit), mode="L").resize((size, size), Image.NEAREST)


def _heat_colours(v: np.ndarray) -> np.ndarray:
    # black -> red -> yellow -> white: small errors stay dark, big ones glow.
    r = np.clip(v * 3, 0, 1)
    g = np.clip(v * 3 - 1, 0, 1)
    b = np.clip(v * 3 - 2, 0, 1)
    return (np.stack([r, g, b], axis=-1) * 255).round().astype(np.uint8)


def error_image(original, reconstruction, size: int = 140) -> Image.Image:
    """|original - reconstruction| per pixel as a heat map (black: exact, white: off by 1.0)."""
    err = np.abs(as_digit_array(original) - as_digit_array(reconstruction))
    return Image.fromarray(_heat_colours(err), mode="RGB").resize((size, size), Image.NEAREST)


def strip(images: list[Image.Image], gap: int = 4, background=(255, 255, 255)) -> Image.Image:
    """Pictures side by side in one image, with a small gap between them."""
    if not images:
        raise ValueError("no images to place in a strip")
    h = max(im.height for im in images)
    w = sum(im.width for im in images) + gap * (len(images) - 1)
    out = Image.new("RGB", (w, h), background)
    x = 0
    for im in images:
        out.paste(im.convert("RGB"), (x, 0))
        x += im.width + gap
    return out
