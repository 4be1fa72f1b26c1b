"""MNIST and Fashion-MNIST through torchvision, as whole tensors (they fit in memory).

The data root comes from `--data-dir`, else `AE_DATA_DIR`, else a user cache folder.
When the files are absent the loader tries to download them; offline it raises
`DatasetUnavailable` naming the folder and the files it expected. What cards and pages say
about the data (`describe_split`) names the dataset and a checksum of its files, never a folder.
"""
from __future__ import annotations

import functools
import hashlib
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ae.dataset_files import DATASETS, RAW_FILES, SPLIT_FILES, dataset_available, resolve_data_dir
from ae.errors import AEError, DatasetUnavailable
from ae.images import from_uint8
from ae.split_reader import read_apart, take_read_ahead

# torchvision itself is imported only when a split is loaded (and with `apart`, in a child): a
# web server that only draws and codes digits never needs it.
DOWNLOAD_HOST = ("ossci-datasets.s3.amazonaws.com", 443)  # torchvision's first MNIST mirror


@dataclass
class Digits:
    """Images (N, 1, 28, 28) float32 in [0, 1] and labels (N,) int64. A training set may keep
    MNIST's own 8-bit pixels instead (`load_digits(..., compact=True)`): a quarter of the memory,
    and the training loop divides each batch by 255 as `load_digits` would have."""

    images: torch.Tensor
    labels: torch.Tensor
    source: str  # what a user should read about where they came from

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, n: int | None, seed: int = 0) -> "Digits":
        """A seeded random subset of n digits (all of them when n is None or too big)."""
        if n is None or n >= len(self):
            return self
        idx = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n]
        return Digits(self.images[idx], self.labels[idx], f"{self.source}, {n:,} of them")


def describe_split(name: str, split: str, count: int, checksum: str | None = None) -> str:
    """A split as cards and pages name it: "MNIST test set (10,000 digits, sha256 18489308deedfe2f)".
    The checksum (`split_checksum`, its first 16 hex digits here) says which files, where a
    folder would only say where they happened to be."""
    text = f"{DATASETS[name]} {split} set ({count:,} digits"
    return text + (f", sha256 {checksum[:16]})" if checksum else ")")


def split_checksum(raw_dir: str | os.PathLike, split: str) -> str:
    """sha256 of a split's raw files, images then labels: what
    `cat t10k-images-idx3-ubyte t10k-labels-idx1-ubyte | sha256sum` prints for the test set.
    Hashed once per version of the files (every `load_digits` names its split by it)."""
    paths = tuple(Path(raw_dir) / file for file in SPLIT_FILES[split])
    stamps = tuple((p.stat().st_mtime_ns, p.stat().st_size) for p in paths)
    return _sha256_of_files(paths, stamps)


@functools.lru_cache(maxsize=8)
def _sha256_of_files(paths: tuple[Path, ...], stamps: tuple) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:  # in blocks: the train images are 47 MB
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _online(timeout: float = 3.0) -> bool:
    # A quick check so an offline machine gets its message in seconds, not after
    # torchvision has tried every mirror.
    try:
        socket.create_connection(DOWNLOAD_HOST, timeout=timeout).close()
        return True
    except OSError:
        return False


def _missing_message(name: str, root: Path, why: str) -> str:
    cls = DATASETS[name]
    files = "\n".join(f"  {root / cls / 'raw' / f}  (or {f}.gz)" for f in RAW_FILES)
    return (
        f"{cls} is not available: {why}.\n"
        f"Looked in {root} (set --data-dir or AE_DATA_DIR) for these four files:\n{files}\n"
        f"On a machine with internet they are downloaded there automatically."
    )


def load_digits(
    split: str = "test",
    data_dir: str | os.PathLike | None = None,
    name: str = "mnist",
    download: bool = True,
    compact: bool = False,
    apart: bool = False,
) -> Digits:
    """Load a whole split ("train" or "test") of MNIST or Fashion-MNIST ("fashion"); `compact`
    keeps the 8-bit pixels (47 MB for MNIST's training set, not 188 MB of float32). With `apart`,
    torchvision reads it in a child process (`ae.split_reader`), unless it is loaded already.
    A split this process read ahead (`ae.split_reader.read_ahead`) is taken from there."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}, not {name!r}")
    root = resolve_data_dir(data_dir)
    arrays = take_read_ahead(name, split, root)
    if arrays is None and apart and "torchvision" not in sys.modules:
        arrays = read_apart(name, (split,), root, download)[split]
    images, labels = arrays or read_split(name, split, root, download)
    images = torch.from_numpy(images).unsqueeze(1)  # (N,28,28) -> (N,1,28,28)
    if not compact:
        images = from_uint8(images)  # [0, 1]
    checksum = split_checksum(root / DATASETS[name] / "raw", split)  # torchvision's raw_folder
    return Digits(images, torch.from_numpy(labels).long(), describe_split(name, split, len(labels), checksum))


def read_split(name: str, split: str, root: Path, download: bool) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 28, 28) uint8, labels (N,) int64) of a split, read (or first downloaded) by
    torchvision's dataset class; DatasetUnavailable when it can't be had."""
    from torchvision import datasets

    cls = getattr(datasets, DATASETS[name])
    train = split == "train"
    try:
        ds = cls(root=str(root), train=train, download=False)
    except RuntimeError:  # torchvision: "Dataset not found"
        if not download:
            raise DatasetUnavailable(_missing_message(name, root, "the files are not there")) from None
        if not _online():
            raise DatasetUnavailable(
                _missing_message(name, root, "the files are not there and there is no network")
            ) from None
        try:
            ds = cls(root=str(root), train=train, download=True)
        except Exception as exc:  # network errors come in many types
            raise DatasetUnavailable(_missing_message(name, root, f"download failed ({exc})")) from None
    return ds.data.numpy(), ds.targets.numpy().astype(np.int64)


# --- MNIST test digits by index (`python -m ae compress --test-indices`) -----------------------

MNIST_TEST_DIGITS = 10_000


def parse_test_indices(text: str, size: int = MNIST_TEST_DIGITS, limit: int | None = None) -> list[int]:
    """'0,5,10-19' -> [0, 5, 10, ..., 19]. Every range is checked against `size` and the total
    against `limit` before anything is expanded, so '0-2000000000' costs nothing."""
    ranges, total = [], 0
    for part in text.split(","):
        lo, dash, hi = part.strip().partition("-")
        try:
            first, last = int(lo), int(hi if dash else lo)
        except ValueError:
            raise AEError(f"--test-indices takes numbers and ranges like 0,5,10-19, not {text!r}.") from None
        if not 0 <= first < size or not 0 <= last < size:
            raise AEError(f"--test-indices {part.strip()}: MNIST test indices run from 0 to {size - 1}.")
        if last < first:
            raise AEError(f"--test-indices {part.strip()}: a range runs from low to high.")
        total += last - first + 1
        if limit is not None and total > limit:
            raise AEError(f"--test-indices asks for more than {limit:,} digits (--max-digits).")
        ranges.append((first, last))
    return [i for first, last in ranges for i in range(first, last + 1)]


def mnist_test_digits(indices: list[int], data_dir: str | os.PathLike | None = None) -> torch.Tensor:
    """(N,1,28,28) MNIST test digits by index: from the dataset, or from the bundled sample when
    the dataset is absent and every index is in the sample."""
    from ae.sample import load_sample, sample_test_indices  # ae.sample imports this module

    if any(i < 0 or i >= MNIST_TEST_DIGITS for i in indices):
        raise AEError(f"MNIST test indices run from 0 to {MNIST_TEST_DIGITS - 1}.")
    if dataset_available(data_dir):
        return load_digits("test", data_dir).images[indices]
    where = {int(t): k for k, t in enumerate(sample_test_indices())}
    missing = [i for i in indices if i not in where]
    if missing:
        raise AEError(f"The MNIST test set is not available here and the bundled sample lacks test "
                      f"indices {missing[:5]}{'...' if len(missing) > 5 else ''}: pass --data-dir.")
    return load_sample().images[torch.tensor([where[i] for i in indices], dtype=torch.long)]


def digits_from(image_files: list, test_indices: list[int], data_dir: str | os.PathLike | None = None) -> torch.Tensor:
    """(N,1,28,28): the image files, each preprocessed like an upload, then the test digits."""
    from ae.preprocess import image_file_to_digit  # Pillow and the upload checks: only for files

    digits = [torch.from_numpy(np.asarray(image_file_to_digit(Path(f)), dtype=np.float32))[None]
              for f in image_files]
    batch = torch.stack(digits) if digits else torch.empty(0, 1, 28, 28)
    if test_indices:
        batch = torch.cat([batch, mnist_test_digits(test_indices, data_dir)])
    return batch
