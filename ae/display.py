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


POSITIVE, NEGATIVE, GAP = np.array([214, 39, 40]), np.array([31, 119, 180]), (240, 242, 246)


def latent_grid_shape(size: int) -> tuple[int, int]:
    """Rows and columns for `size` neurons: the squarest grid at most twice as wide as high that
    they fill exactly (196 -> 14x14, 32 -> 4x8), else one row."""
    for rows in range(int(size ** 0.5), 0, -1):
        if size % rows == 0 and size // rows <= 2 * rows:
            return rows, size // rows
    return 1, size


def latent_image(latent, cell: int = 12) -> Image.Image:
    """A latent vector as a picture, one square cell per neuron, in reading order: red above zero,
    blue below, white at zero, the colour's strength scaled to the largest |value|. A picture
    instead of a chart because the browser redraws it per stroke for the cost of one small PNG."""
    v = np.asarray(latent, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("an empty latent has no picture")
    rows, cols = latent_grid_shape(v.size)
    peak = np.abs(v).max()
    t = (v / peak if peak > 0 else np.zeros_like(v))[:, None]
    colours = np.where(t >= 0, 255 - t * (255 - POSITIVE), 255 + t * (255 - NEGATIVE))  # t < 0 here
    cells = colours.round().astype(np.uint8).reshape(rows, cols, 3)
    # Each neuron a cell of `cell` px with a 1-px light line around it, so white cells stay visible.
    picture = np.repeat(np.repeat(cells, cell, axis=0), cell, axis=1)
    picture[::cell, :] = GAP
    picture[:, ::cell] = GAP
    return Image.fromarray(np.ascontiguousarray(picture), mode="RGB")


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
