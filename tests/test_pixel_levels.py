"""ae.pixel_levels: the lookup table counts the thresholds at or below each logit exactly as
np.searchsorted does, at, just below and just above every threshold and far beyond them, and
falls back to searchsorted for thresholds it cannot tabulate."""
import numpy as np
import pytest

from ae.integer_decoder import pixel_thresholds
from ae.pixel_levels import MAX_BUCKETS, PixelLevels


def probes(thresholds: np.ndarray, seed: int) -> np.ndarray:
    spread = float(thresholds[-1] - thresholds[0])
    rng = np.random.default_rng(seed)
    near = np.concatenate([thresholds + d for d in (-2, -1, 0, 1, 2)])
    far = [thresholds[0] - 10 * spread, thresholds[-1] + 10 * spread, -(2 ** 51), 2 ** 51 - 1, 0]
    spread_out = np.rint(rng.uniform(-0.6, 0.6, 50_000) * spread)
    return np.concatenate([near, far, spread_out]).astype(np.int64)


@pytest.mark.parametrize("exponent", [8, 17, 26, 33, 40, 47])
def test_levels_are_searchsorteds_for_the_decoders_thresholds(exponent):
    thresholds = pixel_thresholds(exponent)
    levels = PixelLevels(thresholds)
    assert levels.table is not None and len(levels.table[2]) <= MAX_BUCKETS + 2
    logits = probes(thresholds, exponent)
    expected = np.searchsorted(thresholds, logits, side="right")
    for given in (logits, logits.astype(np.float64)):
        found = levels.levels(given)
        assert found.dtype == np.uint8 and np.array_equal(found, expected)
    assert set(np.unique(expected)) == set(range(256))  # every level is probed


def test_thresholds_the_table_cannot_hold_fall_back_to_searchsorted():
    crowded = np.concatenate([[0, 1], np.arange(1, 254, dtype=np.int64) * (MAX_BUCKETS + 7)])
    huge = pixel_thresholds(52)  # beyond the float64-exact range the table relies on
    for thresholds in (crowded, huge):
        levels = PixelLevels(thresholds)
        assert levels.table is None
        logits = probes(thresholds, 0)
        assert np.array_equal(levels.levels(logits), np.searchsorted(thresholds, logits, side="right"))
