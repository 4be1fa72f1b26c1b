"""The one PNG encoder and decoder of a digit (Pillow), without PyTorch: the receiver writes its
PNG files with it, the app and the benchmark through `ae.sizes`."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from ae.images import from_uint8, to_uint8


def png_encode(digit, fast: bool = False) -> bytes:
    """The digit's 8-bit pixels as a lossless PNG, Pillow's smallest (optimize: ~0.3 ms a digit).
    `digit` may also be a picture of it (`ae.display.digit_image`); `fast` trades bytes for time
    (zlib level 1) for pictures the app sends to the browser, whose size no one is shown."""
    picture = digit if isinstance(digit, Image.Image) else Image.fromarray(to_uint8(digit), mode="L")
    buf = io.BytesIO()
    picture.save(buf, format="PNG", **({"compress_level": 1} if fast else {"optimize": True}))
    return buf.getvalue()


def png_decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return from_uint8(np.asarray(img.convert("L")))
