"""Honest byte counts: every size the app shows is `len()` of bytes that exist and decode.

Raw 8-bit pixels, a PNG of the digit, and a model's latent stored as float32 or as 8-bit
codes. Each representation carries its payload and what it decodes back to, so the app can
show the size beside the picture. The entropy-coded payload comes from `ae.codec`
(`compress_digit`).

What each size counts, here and only here (the Draw page, the benchmark and so the Compare
page, and the evaluation cards all use these definitions):
- raw pixels: one byte a pixel, 784 (`RAW_DIGIT_BYTES`);
- PNG: `png_encode`, the one PNG encoder (`ae.png`, re-exported here; the benchmark's PNG row,
  the CLI's files, the app's pictures);
- float32 latent: D values of 4 bytes, nothing else: the weights say what D is
  (`float32_latent_bytes`);
- 8-bit latent: D one-byte codes plus what a receiver needs to undo the scaling that the
  weights do not ship, the vector's own lowest and highest value as two float32: D + 8 bytes
  (`uint8_latent_encode`; ff: 204 B, cnn: 40 B).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from ae.images import as_batch, from_uint8, to_uint8
from ae.inference import decode
from ae.metrics import psnr
from ae.models import IMAGE_SIDE, NUM_PIXELS
from ae.png import png_decode, png_encode  # the one PNG codec (torch-free, for the receiver too)

RAW_DIGIT_BYTES = NUM_PIXELS  # 784 pixels, one byte each
_RANGE_HEADER = struct.Struct("<ff")  # lowest and highest latent value, float32
UINT8_RANGE_BYTES = _RANGE_HEADER.size  # 8
FLOAT32_BYTES = np.dtype("<f4").itemsize  # 4


@dataclass
class Representation:
    name: str  # e.g. "PNG"
    payload: bytes
    decoded: np.ndarray  # (28,28) float32: what the payload decodes back to
    note: str  # how it is stored / decoded, for a caption

    @property
    def size(self) -> int:
        return len(self.payload)

    def psnr_against(self, digit) -> float:
        return picture_psnr(digit, self.decoded)


def picture_psnr(original, decoded) -> float:
    """PSNR in dB of one decoded picture against the original digit."""
    return float(psnr(as_batch(decoded), as_batch(original))[0])


def raw_encode(digit) -> bytes:
    return to_uint8(digit).tobytes()


def raw_decode(data: bytes) -> np.ndarray:
    return from_uint8(np.frombuffer(data, dtype=np.uint8).reshape(IMAGE_SIDE, IMAGE_SIDE))


def float32_latent_encode(z) -> bytes:
    return np.asarray(_flat(z), dtype="<f4").tobytes()


def float32_latent_bytes(latent_dim: int) -> int:
    """len(float32_latent_encode(z)) for any latent of `latent_dim` values."""
    return latent_dim * FLOAT32_BYTES


def float32_latent_decode(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<f4").astype(np.float32)


def uint8_latent_note(latent_dim: int) -> str:
    """What an 8-bit latent payload holds, for every label that shows its size."""
    return f"{latent_dim} one-byte codes + {UINT8_RANGE_BYTES}-byte range (min, max)"


def uint8_latent_encode(z) -> bytes:
    """Each latent value rounded to one of 256 levels between the vector's min and max; the
    payload is the range (8 bytes) then the codes (one byte per latent value): D + 8 bytes."""
    z = _flat(z).astype(np.float32)
    lo, hi = float(z.min()), float(z.max())
    span = hi - lo if hi > lo else 1.0
    codes = np.round((z - lo) / span * 255).astype(np.uint8)
    return _RANGE_HEADER.pack(lo, hi) + codes.tobytes()


def uint8_latent_decode(data: bytes) -> np.ndarray:
    lo, hi = _RANGE_HEADER.unpack_from(data)
    codes = np.frombuffer(data, dtype=np.uint8, offset=_RANGE_HEADER.size).astype(np.float32)
    span = hi - lo if hi > lo else 1.0
    return (lo + codes / 255 * span).astype(np.float32)


def _flat(z) -> np.ndarray:
    if isinstance(z, torch.Tensor):
        z = z.detach().cpu().numpy()
    return np.asarray(z).reshape(-1)


def _decode(model: nn.Module, z: np.ndarray) -> np.ndarray:
    return decode(model, z)[0, 0].numpy()


def pixel_representations(digit) -> list[Representation]:
    """The digit itself: raw 8-bit pixels and a lossless PNG of them."""
    raw, png = raw_encode(digit), png_encode(digit)
    return [
        Representation("raw pixels", raw, raw_decode(raw), "28×28 pixels, 1 byte each"),
        Representation("PNG", png, png_decode(png), "lossless PNG of the 8-bit digit"),
    ]


def latent_representations(model: nn.Module, z) -> list[Representation]:
    """A latent vector stored as float32 and as 8-bit codes, each decoded by the model."""
    f32, u8 = float32_latent_encode(z), uint8_latent_encode(z)
    d = model.latent_dim
    return [
        Representation("float32 latent", f32, _decode(model, float32_latent_decode(f32)),
                       f"{d} numbers × {FLOAT32_BYTES} bytes"),
        Representation("8-bit latent", u8, _decode(model, uint8_latent_decode(u8)),
                       uint8_latent_note(d)),
    ]
