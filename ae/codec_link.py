"""Reach the entropy codec (`ae.codec`) if this build has it, and say why when it does not.

The app works without a codec (it then shows only float32 / 8-bit latent sizes); with one, the
payload sizes it shows are `len(compress(...))` of payloads that `decompress` really decodes.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import numpy as np

from ae.display import as_digit_array
from ae.errors import AEError


@dataclass
class CodecStatus:
    module: object | None = None
    points: list = field(default_factory=list)  # codec.OperatingPoint objects
    message: str = ""  # why the codec is not usable (empty when it is)

    @property
    def available(self) -> bool:
        return self.module is not None and bool(self.points)

    def points_for(self, arch: str) -> list:
        return [p for p in self.points if getattr(p, "arch", None) == arch]

    def coded_model_points(self) -> list:
        """Points whose model is not one of the plain autoencoders (the codec's own models)."""
        return [p for p in self.points if getattr(p, "arch", None) not in ("ff", "cnn")]

    def point(self, name: str):
        for p in self.points:
            if p.name == name:
                return p
        raise KeyError(name)


def point_metric(point, key: str):
    """A measured figure of an operating point from its card (top level, "codec" or "metrics")."""
    card = getattr(point, "card", None) or {}
    for where in (card, card.get("codec") or {}, card.get("metrics") or {}):
        if isinstance(where, dict) and where.get(key) is not None:
            return where[key]
    return None


def codec_status() -> CodecStatus:
    try:
        codec = importlib.import_module("ae.codec")
    except ModuleNotFoundError as exc:
        if exc.name == "ae.codec":
            return CodecStatus(message="This build has no entropy codec (ae/codec.py is absent).")
        return CodecStatus(message=f"The codec needs a missing module: {exc.name}.")
    except Exception as exc:  # a broken codec must not take the app down with it
        return CodecStatus(message=f"The codec failed to load ({type(exc).__name__}: {exc}).")
    try:
        points = list(codec.operating_points())
    except AEError as exc:
        return CodecStatus(module=codec, message=str(exc))
    except Exception as exc:
        return CodecStatus(module=codec, message=f"The codec has no usable operating points ({type(exc).__name__}: {exc}).")
    if not points:
        return CodecStatus(module=codec, message="The codec has no trained operating points yet (no coded weights shipped).")
    return CodecStatus(module=codec, points=points)


@dataclass
class Payload:
    point: str
    data: bytes
    decoded: np.ndarray  # (N,28,28) float32, what the receiver gets

    @property
    def size(self) -> int:
        return len(self.data)


def compress_digit(status: CodecStatus, digit, point: str) -> Payload:
    """One digit -> its payload, decoded again so the size shown belongs to a working payload.
    Decoded with the point's own coder: `decompress` alone would first reread every card in
    weights/ to find it (a few ms per payload)."""
    coder = status.module.get_coder(point)
    data = status.module.compress(as_digit_array(digit), coder)
    return _payload(data, status.module.decompress(data, coders=[coder]))


def receive(status: CodecStatus, data: bytes, max_digits: int | None = None) -> Payload:
    """Decode a payload; the codec raises its CodecError (an AEError) on anything not its own,
    or holding more than `max_digits` digits (None: the codec's default)."""
    limit = {} if max_digits is None else {"max_digits": max_digits}
    return _payload(bytes(data), status.module.decompress(bytes(data), **limit))


def _payload(data: bytes, decoded) -> Payload:
    images = decoded.images
    if hasattr(images, "detach"):
        images = images.detach().cpu().numpy()
    images = np.asarray(images, dtype=np.float32).reshape(-1, images.shape[-2], images.shape[-1])
    return Payload(point=str(decoded.point), data=bytes(data), decoded=images)
