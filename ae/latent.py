"""The latent space: principal directions of many digits' latents, moving a latent along them,
interpolating between two digits, and decoding any latent back to a picture.

With 196 feedforward latent neurons, sliders on raw neurons would be both too many and mostly
meaningless; the directions along which real digits vary most (PCA) make a few useful sliders.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from ae import inference


def encode_all(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """(N,1,28,28) digits -> (N,D) latents."""
    return inference.encode(model, images)


def decode(model: nn.Module, z) -> np.ndarray:
    """(D,) or (N,D) latents -> (N,28,28) float32 pictures."""
    return inference.decode(model, z)[:, 0].numpy()


@dataclass
class LatentPCA:
    mean: np.ndarray  # (D,)
    components: np.ndarray  # (k,D) unit vectors, most variance first
    scales: np.ndarray  # (k,) standard deviation of the latents along each direction
    explained: np.ndarray  # (k,) share of the total latent variance each direction explains

    def coords(self, z) -> np.ndarray:
        """(N,D) latents -> (N,k) positions along the directions."""
        return (np.atleast_2d(z) - self.mean) @ self.components.T

    def latent_at(self, coords) -> np.ndarray:
        """(k',) positions along the first k' directions -> a (D,) latent (the rest at the mean)."""
        c = np.asarray(coords, dtype=np.float32)
        return (self.mean + c @ self.components[:len(c)]).astype(np.float32)

    def move(self, z, offsets_in_std) -> np.ndarray:
        """Shift a (D,) latent along the first directions by offsets counted in standard deviations."""
        o = np.asarray(offsets_in_std, dtype=np.float32)
        k = len(o)
        return (np.asarray(z, dtype=np.float32) + (o * self.scales[:k]) @ self.components[:k]).astype(np.float32)


def fit_pca(latents: torch.Tensor | np.ndarray, k: int = 8) -> LatentPCA:
    z = torch.as_tensor(np.asarray(latents, dtype=np.float64))
    mean = z.mean(0)
    _, s, vh = torch.linalg.svd(z - mean, full_matrices=False)
    k = min(k, vh.shape[0])
    var = s**2 / max(len(z) - 1, 1)
    return LatentPCA(
        mean=mean.float().numpy(),
        components=vh[:k].float().numpy(),
        scales=var[:k].sqrt().float().numpy(),
        explained=(var[:k] / var.sum().clamp_min(1e-12)).float().numpy(),
    )


def most_varying_dims(latents, k: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the k latent neurons that vary most across digits, and their std."""
    std = np.asarray(latents, dtype=np.float32).std(0)
    order = np.argsort(-std)[:k]
    return order, std[order]


def move_dims(z, dims, offsets_in_std, stds) -> np.ndarray:
    z = np.array(z, dtype=np.float32, copy=True)
    z[np.asarray(dims)] += np.asarray(offsets_in_std, dtype=np.float32) * np.asarray(stds, dtype=np.float32)
    return z


def interpolate(z0, z1, steps: int) -> np.ndarray:
    """(steps, D) latents on the straight line from z0 to z1, both ends included."""
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    return ((1 - t) * np.asarray(z0, dtype=np.float32) + t * np.asarray(z1, dtype=np.float32)).astype(np.float32)
