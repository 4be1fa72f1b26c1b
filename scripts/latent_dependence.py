"""How much a prior conditioned across latent dimensions could save at a codec point: bits per
digit of its rounded latents on the MNIST test set under tables counted on the training set,
(a) one table per dimension, as the shipped factorised prior, and (b) per dimension, the best
of its own table and tables conditioned on one earlier dimension's symbol (clipped to
[-clip, clip], one table per value). (b) is what a range coder decoding the dimensions in
order could use; when it is close to (a), the dimensions are close to independent and such a
prior has little to win. With --mixtures K ..., also (c): K factorised tables, each digit coded
with the cheapest and its index priced by how often that table is used, fitted by hard EM on the
training digits (what a prior with one discrete latent of K values could win). Counts get +0.5
each (so unseen symbols cost finite bits).

    python scripts/latent_dependence.py --data-dir /work/shared/data [--points rd-q1 rd-q2] [--clip 3] [--mixtures 10 32]
"""
from __future__ import annotations

import argparse

import numpy as np

import ae  # noqa: F401  (first: its thread settings)

SYMBOLS = 255  # symbols -127..127


def cross_entropy_bits(train: np.ndarray, test: np.ndarray) -> float:
    """Total bits of `test` under the +0.5-smoothed frequencies of `train` (symbols -127..127)."""
    counts = np.bincount(train + 127, minlength=SYMBOLS) + 0.5
    return float(-np.log2(counts[test + 127] / counts.sum()).sum())


def conditioned_bits(train: np.ndarray, test: np.ndarray, d: int, e: int, clip: int) -> float:
    """Total bits of test dimension d, one table per clipped value of dimension e."""
    context_train, context_test = np.clip(train[:, e], -clip, clip), np.clip(test[:, e], -clip, clip)
    return sum(cross_entropy_bits(train[context_train == k, d], test[context_test == k, d])
               for k in range(-clip, clip + 1) if (context_test == k).any())


def table_log2(symbols: np.ndarray, which: np.ndarray, tables: int) -> np.ndarray:
    """(tables, D, SYMBOLS) log2 of the +0.5-smoothed frequencies of the digits each table is given."""
    dims = symbols.shape[1]
    counts = np.full((tables, dims, SYMBOLS), 0.5)
    np.add.at(counts, (which[:, None], np.arange(dims)[None, :], symbols + 127), 1)
    return np.log2(counts / counts.sum(2, keepdims=True))


def digit_costs(symbols: np.ndarray, logs: np.ndarray, use: np.ndarray) -> np.ndarray:
    """(N, tables) bits of each digit under each table, the table's index included."""
    dims = np.arange(symbols.shape[1])
    index_bits = -np.log2(np.maximum(use, 1e-12))
    return np.stack([-logs[k][dims, symbols + 127].sum(1) for k in range(len(logs))], 1) + index_bits


def mixture_bits(train: np.ndarray, test: np.ndarray, tables: int, rounds: int = 8) -> float:
    """Mean bits per test digit under `tables` factorised tables fitted by hard EM (random start)."""
    which = np.random.default_rng(0).integers(tables, size=len(train))
    for _ in range(rounds + 1):
        logs, use = table_log2(train, which, tables), np.bincount(which, minlength=tables) / len(train)
        which = digit_costs(train, logs, use).argmin(1)
    return float(digit_costs(test, logs, use).min(1).mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--points", nargs="+", default=["rd-q1", "rd-q2"])
    p.add_argument("--clip", type=int, default=3)
    p.add_argument("--mixtures", nargs="*", type=int, default=[], help="table counts K for (c)")
    args = p.parse_args()
    import torch

    from ae.codec import get_coder
    from ae.data import load_digits

    torch.set_num_threads(2)
    train_images = load_digits("train", args.data_dir).images
    test_images = load_digits("test", args.data_dir).images
    for point in args.points:
        coder = get_coder(point)
        train, test = coder.symbols(train_images), coder.symbols(test_images)
        n = len(test)
        active = [d for d in range(train.shape[1]) if len(np.unique(train[:, d])) > 1]
        own = {d: cross_entropy_bits(train[:, d], test[:, d]) for d in range(train.shape[1])}
        best = dict(own)
        for i, d in enumerate(active):
            for e in active[:i]:
                best[d] = min(best[d], conditioned_bits(train, test, d, e, args.clip))
        print(f"{point}: {len(active)} of {train.shape[1]} dimensions ever nonzero; bits per test digit: "
              f"factorised {sum(own.values()) / n:.2f}, conditioned on the best earlier dimension "
              f"{sum(best.values()) / n:.2f} ({100 * (1 - sum(best.values()) / sum(own.values())):.1f}% less)")
        for tables in args.mixtures:
            print(f"  a mixture of {tables} factorised tables: {mixture_bits(train, test, tables):.2f}")


if __name__ == "__main__":
    main()
