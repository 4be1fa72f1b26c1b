"""Where a dataset's raw files are, and whether they are there: plain paths, no torch, so a
process can look before it imports PyTorch (the training worker reads its splits first)."""
from __future__ import annotations

import os
from pathlib import Path

# torchvision's dataset class for each name (and its folder under the data root).
DATASETS = {"mnist": "MNIST", "fashion": "FashionMNIST"}
SPLIT_FILES = {  # images, then labels
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
RAW_FILES = SPLIT_FILES["train"] + SPLIT_FILES["test"]


def default_data_dir() -> Path:
    if os.environ.get("AE_DATA_DIR"):
        return Path(os.environ["AE_DATA_DIR"]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "ae-digits" / "data"


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path:
    return Path(data_dir).expanduser() if data_dir else default_data_dir()


def dataset_available(data_dir: str | os.PathLike | None = None, name: str = "mnist") -> bool:
    root = resolve_data_dir(data_dir)
    raw = root / DATASETS[name] / "raw"
    return all((raw / f).exists() for f in RAW_FILES)
