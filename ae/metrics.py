"""Image-quality metrics on (B, 1, 28, 28) tensors in [0, 1], one value per image.

PSNR and SSIM are averaged over digits (the mean of per-digit values), which is what the
README, the cards and the benchmark report.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

MAX_PSNR = 100.0  # a perfect reconstruction; keeps means finite


def mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((x - y) ** 2).flatten(1).mean(1)  # (B,)


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB for a peak of 1.0, per image."""
    err = mse(x, y)
    return torch.where(err > 0, -10 * torch.log10(err.clamp_min(1e-20)), torch.full_like(err, MAX_PSNR)).clamp_max(MAX_PSNR)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-t**2 / (2 * sigma**2))
    g = (g / g.sum()).float()
    return (g[:, None] * g[None, :])[None, None]  # (1,1,size,size)


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5,
    K1=0.01, K2=0.03, peak 1.0), averaged over valid windows, per image."""
    x, y = x.double(), y.double()
    w = _gaussian_window().to(x.device, torch.float64)
    c1, c2 = 0.01**2, 0.03**2
    mu_x, mu_y = F.conv2d(x, w), F.conv2d(y, w)
    sxx = F.conv2d(x * x, w) - mu_x**2
    syy = F.conv2d(y * y, w) - mu_y**2
    sxy = F.conv2d(x * y, w) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1).float()
