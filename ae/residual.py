"""A coded residual on top of an operating point's pixels: the refined points (rd-q5).

A point's integer decoder leaves most of its error in a few pixels along the strokes. A refined
point sends its base point's latent symbols and then, for every pixel, the difference between
the digit and the base reconstruction, quantised with a uniform step and a dead zone (small
differences are sent as 0). Each pixel's residual symbol is range-coded with one of a few
integer frequency tables, chosen by a context that the receiver computes from the base pixels
alone (the base pixel's level and its local gradient), so a digit's residuals are independent
given its base picture and are coded context by context.

Everything here is integer arithmetic on uint8 pixels: the same bytes on every machine, and
numpy only (a receiver needs no PyTorch). The parameters live in the point's card:

    "codec": {"id": 0, "residual": {"step": 40, "deadzone": 11,
                                    "frequencies": [[...], ...]}}   (CONTEXTS rows of 2R+1)

with R = levels(step), deadzone in sixteenths of the step, each frequency row >= 1 summing to
2**TABLE_BITS.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ae.config import TABLE_BITS

PIXELS = 28 * 28
LEVEL_SHIFT = 5  # the base pixel's level: 8 bands of 32
GRADIENT_SHIFT = 5  # |dx| + |dy| of the base picture (central differences), in bands of 32
BANDS = 8
CONTEXTS = BANDS * BANDS
DEADZONE_UNITS = 16  # the dead zone is given in sixteenths of the step


class ResidualError(ValueError):
    """A refined point's residual parameters are unusable."""


def levels(step: int) -> int:
    """R: the largest residual symbol magnitude for this step (|difference| <= 255, rounded)."""
    return (255 + step // 2) // step


@dataclass(frozen=True)
class ResidualTables:
    step: int  # the quantiser's step, in pixel levels (1-255)
    deadzone: int  # differences below deadzone/16 of a step are sent as 0 (8 = plain rounding)
    frequencies: np.ndarray  # (CONTEXTS, 2R+1) int64, rows >= 1 summing to 2**TABLE_BITS

    @property
    def radius(self) -> int:
        return levels(self.step)

    @classmethod
    def from_card(cls, block) -> ResidualTables:
        """Checked parameters from a card's codec.residual block (ResidualError says what is off)."""
        if not isinstance(block, dict):
            raise ResidualError("'residual' is not an object")
        step, deadzone, rows = block.get("step"), block.get("deadzone"), block.get("frequencies")
        if not _whole(step) or not 1 <= step <= 255:
            raise ResidualError("'step' must be a whole number from 1 to 255")
        if not _whole(deadzone) or not DEADZONE_UNITS // 2 <= deadzone <= DEADZONE_UNITS:
            raise ResidualError(f"'deadzone' must be a whole number from {DEADZONE_UNITS // 2} to {DEADZONE_UNITS}")
        width = 2 * levels(step) + 1
        if (not isinstance(rows, list) or len(rows) != CONTEXTS
                or not all(isinstance(r, list) and len(r) == width and all(_whole(v) for v in r) for r in rows)):
            raise ResidualError(f"'frequencies' must be {CONTEXTS} lists of {width} whole numbers")
        table = np.array(rows, dtype=np.int64)
        if table.min() < 1 or np.any(table.sum(1) != 1 << TABLE_BITS):
            raise ResidualError(f"each frequency row must be >= 1 and sum to 2**{TABLE_BITS}")
        return cls(step, deadzone, table)

    def card_block(self) -> dict:
        return {"step": self.step, "deadzone": self.deadzone, "frequencies": self.frequencies.tolist()}

    def to_bytes(self) -> bytes:
        """What a refined point's fingerprint covers besides its model's weights."""
        return np.array([self.step, self.deadzone], np.int64).tobytes() + self.frequencies.tobytes()


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def contexts(base: np.ndarray) -> np.ndarray:
    """(N,28,28) uint8 base pixels -> (N,784) int context of each pixel, 0..CONTEXTS-1."""
    x = np.asarray(base, dtype=np.int32)
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    gradient = (np.abs(padded[:, 1:-1, 2:] - padded[:, 1:-1, :-2])
                + np.abs(padded[:, 2:, 1:-1] - padded[:, :-2, 1:-1]))
    band = np.minimum(gradient >> GRADIENT_SHIFT, BANDS - 1)
    return ((x >> LEVEL_SHIFT) * BANDS + band).reshape(len(x), PIXELS)


def quantise(pixels: np.ndarray, base: np.ndarray, step: int, deadzone: int) -> np.ndarray:
    """(N,28,28) uint8 digit and base -> (N,784) int32 residual symbols in [-R, R]."""
    diff = np.asarray(pixels, np.int32).reshape(len(pixels), PIXELS) - np.asarray(base, np.int32).reshape(len(base), PIXELS)
    size = np.abs(diff)
    rounded = (2 * size + step) // (2 * step)  # nearest multiple of the step, halves up
    rounded[DEADZONE_UNITS * size < deadzone * step] = 0
    return (np.sign(diff) * rounded).astype(np.int32)


def refine(base: np.ndarray, residual: np.ndarray, step: int) -> np.ndarray:
    """(N,28,28) uint8 base + (N,784) residual symbols -> (N,28,28) uint8 refined pixels."""
    out = np.asarray(base, np.int32).reshape(len(base), PIXELS) + step * np.asarray(residual, np.int32)
    return np.clip(out, 0, 255).astype(np.uint8).reshape(len(base), 28, 28)


def fit_frequencies(bases: np.ndarray, residuals: np.ndarray, step: int) -> np.ndarray:
    """Integer tables from counts of training residuals: (CONTEXTS, 2R+1), each row's counts plus
    one rescaled to sum to 2**TABLE_BITS (largest remainders get the spare units), every entry >= 1."""
    radius = levels(step)
    counts = np.zeros((CONTEXTS, 2 * radius + 1), np.int64)
    np.add.at(counts, (contexts(bases).ravel(), np.asarray(residuals).ravel() + radius), 1)
    counts += 1
    total = 1 << TABLE_BITS
    spare = total - counts.shape[1]  # each entry keeps 1, the rest is shared by the counts
    exact = counts * spare
    share = exact // counts.sum(1, keepdims=True)
    remainder = exact - share * counts.sum(1, keepdims=True)
    for row in range(CONTEXTS):
        missing = spare - int(share[row].sum())
        order = np.lexsort((np.arange(counts.shape[1]), -remainder[row]))
        share[row, order[:missing]] += 1
    return share + 1
