"""The child process that reads a dataset split for `ae.data.load_digits(..., apart=True)`: torchvision
reads (or downloads) it here and the arrays go back in an .npz file, so the long-lived parent
never imports torchvision.

    python -m ae.split_reader NAME SPLIT ROOT DOWNLOAD(0/1) OUT.npz
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ae.data import UNAVAILABLE_EXIT, read_split
from ae.errors import DatasetUnavailable
from ae.files import atomic_write_bytes


def main(argv: list[str]) -> int:
    name, split, root, download, out = argv
    try:
        images, labels = read_split(name, split, Path(root), download == "1")
    except DatasetUnavailable as exc:
        print(exc, file=sys.stderr)
        return UNAVAILABLE_EXIT
    import io

    buffer = io.BytesIO()
    np.savez(buffer, images=images, labels=labels)
    atomic_write_bytes(Path(out), buffer.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
