"""Digits as arrays: the shapes and types the code passes around, and the conversions between them.

A digit is 28x28 float32 pixels in [0, 1] (MNIST's bytes divided by 255). Models take batches,
(N,1,28,28) tensors; pictures and payloads take one (28,28) array or its 8-bit pixels. Every
conversion between these is here, written once. PyTorch is imported only by the conversions
that make tensors: a receiver handling numpy arrays alone never loads it.
"""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import numpy as np

from ae.config import IMAGE_SIDE
from ae.errors import AEError

if TYPE_CHECKING:
    import torch


def _is_tensor(x) -> bool:
    """A torch.Tensor (which only exists once something imported torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


class NotDigitImages(AEError):
    """An input is not 28x28 digit images with pixels in [0, 1]."""


def as_digit_array(digit) -> np.ndarray:
    """(28,28), (1,28,28) or (1,1,28,28) tensor/array in [0,1] -> (28,28) float32."""
    if _is_tensor(digit):
        digit = digit.detach().cpu().numpy()
    a = np.asarray(digit, dtype=np.float32)
    return np.clip(a.reshape(a.shape[-2], a.shape[-1]), 0.0, 1.0)


def _quantise(pixels: np.ndarray) -> np.ndarray:
    return np.round(pixels * 255).astype(np.uint8)


def to_uint8(digit) -> np.ndarray:
    """One digit -> its (28,28) 8-bit pixels, each rounded to the nearest of 256 levels."""
    return _quantise(as_digit_array(digit))


def batch_to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N,1,28,28) digits in [0,1] -> (N,28,28) 8-bit pixels, rounded as `to_uint8` rounds."""
    return _quantise(np.clip(images[:, 0].detach().cpu().numpy(), 0.0, 1.0))


def from_uint8(pixels):
    """8-bit pixels -> float32 in [0,1], same shape; a tensor stays a tensor, anything else is numpy."""
    if _is_tensor(pixels):
        import torch

        return pixels.to(torch.float32, copy=True).div_(255)  # divided in place: one float copy
    return np.asarray(pixels, dtype=np.float32) / 255


def as_batch(digit) -> torch.Tensor:
    """One digit, any shape `as_digit_array` takes -> a (1,1,28,28) batch for a model."""
    import torch

    return torch.from_numpy(as_digit_array(digit))[None, None]


def as_image_batch(images) -> torch.Tensor:
    """(28,28), (N,28,28) or (N,1,28,28), numpy or torch, float in [0,1] or uint8 -> (N,1,28,28)
    float32 on the CPU. Unlike `as_batch` it checks rather than clips: anything else raises
    NotDigitImages."""
    import torch

    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    if not isinstance(images, torch.Tensor):
        raise NotDigitImages(f"Expected an image array, got {type(images).__name__}.")
    if images.dtype == torch.uint8:
        images = from_uint8(images)
    if not images.is_floating_point():
        raise NotDigitImages(f"Expected float pixels in [0, 1] or uint8, got {images.dtype}.")
    if images.dim() == 2:
        images = images[None, None]
    elif images.dim() == 3:
        images = images[:, None]
    if images.dim() != 4 or tuple(images.shape[1:]) != (1, IMAGE_SIDE, IMAGE_SIDE) or len(images) == 0:
        raise NotDigitImages(f"Expected 28x28 digit images, got shape {tuple(images.shape)}.")
    images = images.detach().cpu().float()
    low, high = torch.aminmax(images)  # one pass; a NaN makes both NaN, failing the test below
    if not (low >= 0 and high <= 1):
        raise NotDigitImages("Pixels must be finite and within [0, 1].")
    return images
