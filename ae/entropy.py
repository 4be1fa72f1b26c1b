"""Quantisation of latents and their learned prior, down to the integer tables the coder uses.

One `quantize()` serves training (uniform noise, straight-through rounding), coding (integer
symbols) and decoding (symbols back to floats). The prior is a small per-dimension mixture of
logistics, trained through its continuous likelihood; `update()` then turns it into integer
frequency tables (one row per latent dimension, summing to 2**TABLE_BITS) that are saved with
the weights. Encoder and decoder use those integers only, so the probabilities are identical on
every machine: nothing is recomputed from floats at decode time.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ae.config import ALPHABET, MAX_SYMBOL, TABLE_BITS  # noqa: F401  (the latent alphabet, shared with the receiver)

MIN_LIKELIHOOD = 1e-9


def quantize(y: torch.Tensor, mode: str) -> torch.Tensor:
    """"noise": y + U(-1/2, 1/2), the differentiable stand-in for rounding (rate term);
    "ste": rounded values with a straight-through gradient (what the decoder sees in training);
    "symbols": clamped integer symbols (int32), what the entropy coder writes;
    "dequantize": symbols back to float latents, what the decoder reads."""
    if mode == "noise":
        return y + torch.empty_like(y).uniform_(-0.5, 0.5)
    if mode == "ste":
        return y + (y.clamp(-MAX_SYMBOL, MAX_SYMBOL).round() - y).detach()
    if mode == "symbols":
        return y.clamp(-MAX_SYMBOL, MAX_SYMBOL).round().to(torch.int32)
    if mode == "dequantize":
        return y.to(torch.float32)
    raise ValueError(f"unknown quantize mode {mode!r}")


def frequencies_from_pmf(pmf: torch.Tensor, total_bits: int = TABLE_BITS) -> torch.Tensor:
    """(D, A) float64 probabilities -> (D, A) int32 frequencies, each >= 1, rows summing to
    2**total_bits. Largest-remainder rounding, ties broken by symbol index: deterministic."""
    total = 1 << total_bits
    d, a = pmf.shape
    pmf = pmf.double().clamp_min(0)
    pmf = pmf / pmf.sum(1, keepdim=True)
    spare = total - a  # every symbol gets 1 first, so each stays encodable
    scaled = pmf * spare
    freq = scaled.floor()
    remainder = scaled - freq
    missing = (spare - freq.sum(1)).long()  # 0 <= missing < a
    order = torch.argsort(-remainder, dim=1, stable=True)
    for row in range(d):
        freq[row, order[row, :missing[row]]] += 1
    freq = freq.long() + 1
    assert bool((freq.sum(1) == total).all())
    return freq.to(torch.int32)


class LogisticMixturePrior(nn.Module):
    """p(y_d) for each latent dimension d: a mixture of `components` logistics, integrated over
    the unit bin around y (the noise-quantised latent's density, CompressAI-style)."""

    def __init__(self, dims: int, components: int = 3):
        super().__init__()
        self.dims = dims
        self.weight_logits = nn.Parameter(torch.zeros(dims, components))
        self.means = nn.Parameter(torch.linspace(-1.0, 1.0, components).repeat(dims, 1))
        self.log_scales = nn.Parameter(torch.zeros(dims, components))
        # Filled by update() after training, saved in the safetensors file, used by the coder.
        self.register_buffer("frequencies", torch.zeros(dims, ALPHABET, dtype=torch.int32))

    def likelihood(self, y: torch.Tensor) -> torch.Tensor:
        """(B, D) latents -> (B, D) probability of the unit bin centred on each value."""
        y = y.unsqueeze(-1)  # (B,D,1) against (D,K) components
        inv_scale = torch.exp(-self.log_scales)
        upper = (y + 0.5 - self.means) * inv_scale
        lower = (y - 0.5 - self.means) * inv_scale
        # sigmoid(u) - sigmoid(l) loses everything to rounding in the upper tail; flip the sign there.
        flip = torch.sign(upper + lower).detach()
        mass = (torch.sigmoid(-flip * lower) - torch.sigmoid(-flip * upper)).abs()
        weights = F.softmax(self.weight_logits, dim=-1)
        return (weights * mass).sum(-1).clamp_min(MIN_LIKELIHOOD)

    def bits(self, y: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B,) estimated bits per digit."""
        return -torch.log2(self.likelihood(y)).sum(1)

    @torch.no_grad()
    def update(self) -> torch.Tensor:
        """Compute the integer tables from the trained mixture (idempotent); returns them."""
        support = torch.arange(-MAX_SYMBOL, MAX_SYMBOL + 1, dtype=torch.float64)
        inv_scale = torch.exp(-self.log_scales.double())[:, None, :]  # (D,1,K)
        means = self.means.double()[:, None, :]
        edges_hi = support[None, :, None] + 0.5
        edges_lo = support[None, :, None] - 0.5
        cdf_hi = torch.sigmoid((edges_hi - means) * inv_scale)
        cdf_lo = torch.sigmoid((edges_lo - means) * inv_scale)
        cdf_hi[:, -1, :] = 1.0  # the edge symbols absorb the tails (clamped latents land there)
        cdf_lo[:, 0, :] = 0.0
        weights = F.softmax(self.weight_logits.double(), dim=-1)[:, None, :]
        pmf = (weights * (cdf_hi - cdf_lo)).sum(-1)  # (D, A)
        self.frequencies.copy_(frequencies_from_pmf(pmf))
        return self.frequencies

    @property
    def ready(self) -> bool:
        return bool(self.frequencies.sum() > 0)

    def table_bits(self, symbols: torch.Tensor) -> torch.Tensor:
        """(B, D) int symbols -> (B,) information content under the integer tables, in bits."""
        idx = (symbols.long() + MAX_SYMBOL).clamp(0, ALPHABET - 1)
        freq = self.frequencies.long().gather(1, idx.T).T.double()  # (B, D)
        return (TABLE_BITS - torch.log2(freq)).sum(1)
