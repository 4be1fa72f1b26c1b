"""Pictures of digits for the app: upscaled greyscale digits, error heat maps and strips.

Pure numpy/PIL so the pages only place images; nearest-neighbour upscaling keeps the 28x28
pixels visible instead of blurring them.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def as_digit_array(digit) -> np.ndarray:
    """(28,28), (1,28,28) or (1,1,28,28) tensor/array in [0,1] -> (28,28) float32."""
    if isinstance(digit, torch.Tensor):
        digit = digit.detach().cpu().numpy()
    a = np.asarray(digit, dtype=np.float32)
    return np.clip(a.reshape(a.shape[-2], a.shape[-1]), 0.0, 1.0)


def to_uint8(digit) -> np.ndarray:
    return np.round(as_digit_array(digit) * 255).astype(np.uint8)


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
