"""The bundled sample: 1,000 real MNIST test digits (100 per class) shipped in the repo,
so the app and the tests work with no dataset. `python -m ae make-sample` rebuilds it.

MNIST is by Yann LeCun, Corinna Cortes and Christopher J.C. Burges, CC BY-SA 3.0.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ae.data import Digits, load_digits
from ae.images import batch_to_uint8, from_uint8

SAMPLE_PATH = Path(__file__).parent / "assets" / "mnist_test_sample.npz"
PER_CLASS = 100
ATTRIBUTION = "MNIST (Y. LeCun, C. Cortes, C.J.C. Burges), CC BY-SA 3.0"


def build_sample(data_dir: str | os.PathLike | None = None, out: Path = SAMPLE_PATH,
                 per_class: int = PER_CLASS) -> Path:
    """Take the first `per_class` digits of each class, in test-set order."""
    test = load_digits("test", data_dir)
    labels = test.labels.numpy()
    chosen = np.sort(np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(10)]))
    images = batch_to_uint8(test.images[chosen])
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, images=images, labels=labels[chosen].astype(np.uint8),
                        test_indices=chosen.astype(np.int32), attribution=np.array(ATTRIBUTION))
    return out


@lru_cache(maxsize=1)
def _load_arrays(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with np.load(path) as f:
        return f["images"], f["labels"], f["test_indices"]


def load_sample() -> Digits:
    """The bundled digits; `test_indices` (via `sample_test_indices`) say where each sits in the test set."""
    images, labels, _ = _load_arrays(str(SAMPLE_PATH))
    x = from_uint8(torch.from_numpy(images))[:, None]
    return Digits(x, torch.from_numpy(labels).long(), f"bundled sample ({len(labels)} MNIST test digits)")


def sample_test_indices() -> np.ndarray:
    return _load_arrays(str(SAMPLE_PATH))[2]
