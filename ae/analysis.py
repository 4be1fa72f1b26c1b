"""What the app shows for a digit and an autoencoder: the latent, the reconstruction, how close
it is (PSNR, SSIM) and what the classifier reads in it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from ae.display import as_digit_array
from ae.metrics import psnr, ssim


@dataclass
class Reading:
    label: int
    confidence: float  # softmax probability of that label


@dataclass
class DigitReconstruction:
    latent: np.ndarray  # (D,) float32
    image: np.ndarray  # (28,28) float32 in [0,1]
    psnr: float  # dB
    ssim: float
    reading: Reading | None  # the classifier's reading of the reconstruction


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def as_batch(digit) -> torch.Tensor:
    return torch.from_numpy(as_digit_array(digit))[None, None]  # (1,1,28,28)


@torch.no_grad()
def read_digits(classifier: nn.Module, images: torch.Tensor) -> list[Reading]:
    probs = torch.softmax(classifier(images.to(_device(classifier))), dim=1).cpu()
    conf, label = probs.max(dim=1)
    return [Reading(int(l), float(c)) for l, c in zip(label, conf)]


@torch.no_grad()
def reconstruct_digit(model: nn.Module, digit, classifier: nn.Module | None = None) -> DigitReconstruction:
    x = as_batch(digit)
    z = model.encode(x.to(_device(model)))
    x_hat = model.decode(z).cpu()
    return DigitReconstruction(
        latent=z[0].cpu().numpy().astype(np.float32),
        image=x_hat[0, 0].numpy(),
        psnr=float(psnr(x_hat, x)[0]),
        ssim=float(ssim(x_hat, x)[0]),
        reading=read_digits(classifier, x_hat)[0] if classifier is not None else None,
    )


@dataclass
class BatchReconstruction:
    images: torch.Tensor  # (N,1,28,28)
    psnr: torch.Tensor  # (N,) dB
    readings: list[Reading] | None


@torch.no_grad()
def reconstruct_batch(model: nn.Module, images: torch.Tensor, classifier: nn.Module | None = None) -> BatchReconstruction:
    x_hat = model.decode(model.encode(images.to(_device(model)))).cpu()
    return BatchReconstruction(x_hat, psnr(x_hat, images), read_digits(classifier, x_hat) if classifier is not None else None)
