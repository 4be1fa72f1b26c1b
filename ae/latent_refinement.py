"""Encoder-side latent refinement: better symbols for the same decoder (Yang, Bamler & Mandt,
"Improving Inference for Neural Image Compression", NeurIPS 2020).

The encoder's latents are only an amortised guess at the best symbols for a digit. At encode
time we can do better per digit: starting from the encoder's latents y, minimise

    J(y) = bits(round(y)) + lam * 10*log10(MSE(decode(round(y)), x))      (lam in bits per dB)

i.e. rate minus lam times the digit's PSNR, with `lam` the price of one dB in bits. Rounding
has no gradient, so the optimisation sees a relaxation of it (`RELAXATIONS`): by default the one
training used (the rate of y plus uniform noise, the decoder on straight-through rounded y), or
the paper's stochastic Gumbel annealing (SGA: each latent a Gumbel-softmax mix of its floor and
ceiling, weighted by closeness, with a temperature annealed from TAU_START to TAU_END over the
steps, so late steps see nearly hard rounding). The rate is the point's own prior, as training
measures it (`LogisticMixturePrior.bits`: exact for integer values). Adam runs a fixed number of
steps over a chunk of digits at once; every digit's problem is separate (a summed objective,
elementwise Adam), so batching changes nothing but the speed.

What is finally chosen is decided by what the receiver really gets: for each digit, the rounded
refined symbols replace the encoder's only if they score a lower J with the coder's integer
tables (`PointCoder.estimated_bits`) and the integer decoder's pixels. A refined digit thus never
costs more rate + lam * distortion than the unrefined one, by construction. The decoder, the
tables and the payload format are unchanged: refined symbols are just other symbols.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ae.config import MAX_SYMBOL
from ae.entropy import quantize
from ae.errors import AEError

MAX_STEPS = 1000  # more is a typo, not a setting: 1,000 steps are ~1,000 decoder passes a digit
TAU_START, TAU_END = 0.5, 0.05  # SGA's temperature, annealed geometrically over the steps
LEARNING_RATE = 0.05  # Adam's step in latent units (symbols are integers; a step moves ~lr)
CHUNK = 512  # digits optimised together (memory: a few decoder activations per digit)
MSE_FLOOR = 1e-10  # keeps log10(MSE) finite for a perfect reconstruction
SGA_EPS = 1e-5
# How rounding is relaxed while optimising (docs/measurements.md compares them at 50 steps: "ste"
# is the default, the one that works for the convolutional points; "sga" did better on the
# feedforward ones). "ste": as in training, the rate of noisy latents y + U(-1/2, 1/2) and the decoder
# on straight-through rounded ones. "ste-anneal": the same, the rate moving from the noisy to the
# rounded latents as the temperature falls. "sga": the paper's stochastic Gumbel annealing for both.
RELAXATIONS = ("ste", "ste-anneal", "sga")


class RefinementError(AEError):
    """Refinement settings a user can fix (steps or lambda out of range)."""


@dataclass(frozen=True)
class Refinement:
    """How the sender refines: `steps` Adam steps (0: off), `lam` bits per dB of PSNR, and how
    rounding is relaxed (`RELAXATIONS`)."""
    steps: int = 0
    lam: float | None = None
    relaxation: str = "ste"

    def __post_init__(self):
        if isinstance(self.steps, bool) or not isinstance(self.steps, (int, np.integer)):
            raise RefinementError(f"Refinement steps must be a whole number, not {self.steps!r}.")
        if not 0 <= self.steps <= MAX_STEPS:
            raise RefinementError(f"Refinement steps must be between 0 (off) and {MAX_STEPS:,}, not {self.steps:,}.")
        if self.steps and self.lam is None:
            raise RefinementError("Refinement needs lambda, the bits one dB of PSNR is worth (e.g. 20).")
        if self.lam is not None and not (isinstance(self.lam, (int, float)) and math.isfinite(self.lam)
                                         and 0 < self.lam <= 1e6):
            raise RefinementError(f"Refinement lambda must be a positive number of bits per dB, not {self.lam!r}.")
        if self.relaxation not in RELAXATIONS:
            raise RefinementError(f"Refinement relaxation must be one of {', '.join(RELAXATIONS)}, not {self.relaxation!r}.")

    @property
    def active(self) -> bool:
        return self.steps > 0


def objective(bits: np.ndarray | torch.Tensor, mse, lam: float):
    """J = bits + lam * 10*log10(MSE) per digit (numpy or torch alike): rate minus lam * PSNR."""
    if isinstance(mse, torch.Tensor):
        return bits + lam * 10 * torch.log10(mse.clamp_min(MSE_FLOOR))
    return bits + lam * 10 * np.log10(np.maximum(mse, MSE_FLOOR))


def sga_round(y: torch.Tensor, tau: float, uniform: torch.Tensor | None = None) -> torch.Tensor:
    """Stochastic Gumbel annealing: a relaxed sample between floor(y) and ceil(y), nearer the
    closer one, becoming hard rounding as tau -> 0 (the paper's two-way Gumbel-softmax).
    `uniform`: U(0,1) draws broadcastable to (B,D,2) (default: fresh ones)."""
    lower = torch.floor(y)
    frac = y - lower  # in [0, 1)
    logits = torch.stack([-torch.atanh((frac).clamp(-1 + SGA_EPS, 1 - SGA_EPS)),
                          -torch.atanh((1 - frac).clamp(-1 + SGA_EPS, 1 - SGA_EPS))], -1) / tau
    if uniform is None:
        uniform = torch.rand_like(logits)
    gumbel = -torch.log(-torch.log(uniform.clamp(1e-10, 1 - 1e-10)))
    weights = torch.softmax((logits + gumbel) / tau, -1)
    return lower + weights[..., 1]  # floor * w0 + (floor + 1) * w1


def _relaxed_objective(model, y: torch.Tensor, x: torch.Tensor, lam: float, tau: float,
                       relaxation: str, uniform: torch.Tensor) -> torch.Tensor:
    """The summed relaxed J; `uniform` (1,D,2) U(0,1) draws, the same for every digit of the batch."""
    if relaxation == "sga":
        y_rate = y_decoded = sga_round(y, tau, uniform)
        bits = model.prior.bits(y_rate)
    else:  # as training sees rounding: noisy latents for the rate, straight-through ones for the decoder
        y_decoded = quantize(y, "ste")
        bits = model.prior.bits(y + uniform[..., 0] - 0.5)  # quantize(y, "noise"), with these draws
        if relaxation == "ste-anneal":  # the rate moves from the noisy latents to the rounded ones
            hardness = 1 - tau / TAU_START
            bits = (1 - hardness) * bits + hardness * model.prior.bits(y_decoded)
    mse = (model.decode(y_decoded) - x).pow(2).flatten(1).mean(1)  # (B,)
    return objective(bits, mse, lam).sum()  # a sum: every digit's gradient is its own


def refine_latents(model, images: torch.Tensor, steps: int, lam: float, relaxation: str = "ste",
                   seed: int = 0) -> torch.Tensor:
    """(B,1,28,28) digits -> (B,D) refined continuous latents (round them to get symbols).
    Starts from the encoder's latents; `steps` Adam steps on the relaxed J."""
    Refinement(steps, lam, relaxation)  # the same checks as the codec's option
    # Our own generator, and the same draws for every digit of a batch: a digit's payload does
    # not depend on the digits sent beside it, and the global generator is left alone.
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        y = model.analyse(images).clamp(-MAX_SYMBOL, MAX_SYMBOL)
    y = y.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([y], lr=LEARNING_RATE)
    for step in range(steps):
        tau = TAU_START * (TAU_END / TAU_START) ** (step / max(steps - 1, 1))
        uniform = torch.rand((1, y.shape[1], 2), generator=generator)
        with torch.enable_grad():
            loss = _relaxed_objective(model, y, images, lam, tau, relaxation, uniform)
            (y.grad,) = torch.autograd.grad(loss, y)  # gradients for y only, none for the weights
        optimizer.step()
        with torch.no_grad():
            y.clamp_(-MAX_SYMBOL, MAX_SYMBOL)
    return y.detach()


def exact_objective(coder, symbols: np.ndarray, images: torch.Tensor, lam: float) -> np.ndarray:
    """J of integer symbols as the receiver sees them: bits under the coder's integer tables,
    MSE of the integer decoder's pixels against the digits. (N,) float64."""
    pixels = coder.pixels(symbols).astype(np.float64) / 255.0
    target = images.detach().cpu().double().numpy().reshape(len(images), -1)
    mse = ((pixels.reshape(len(pixels), -1) - target) ** 2).mean(1)
    return objective(coder.estimated_bits(symbols), mse, lam)


def refine_symbols(coder, images: torch.Tensor, refinement: Refinement) -> np.ndarray:
    """(N,1,28,28) -> (N,D) int32 symbols: the encoder's, or per digit the refined ones where
    they score a lower exact J (so never worse). A chunk of CHUNK digits at a time."""
    model = coder.model
    parts = []
    for part in images.split(CHUNK):
        plain = coder.symbols(part)  # the encoder's own symbols
        refined = refine_latents(model, part, refinement.steps, refinement.lam, refinement.relaxation)
        refined = quantize(refined, "symbols").numpy()
        better = exact_objective(coder, refined, part, refinement.lam) < exact_objective(coder, plain, part, refinement.lam)
        parts.append(np.where(better[:, None], refined, plain))
    return np.concatenate(parts) if parts else np.zeros((0, coder.dims), np.int32)
