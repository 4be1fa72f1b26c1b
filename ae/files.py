"""Atomic file writes: a crash or a bad input never leaves half a file (or folder) behind."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterable


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call `write(tmp)` on a temporary file in the same folder, then rename it to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; these are ordinary readable files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_folder(folder: Path, files: Iterable[tuple[str, bytes]]) -> None:
    """Write the (name, bytes) pairs into `folder`, all of them or none: each is written as it
    comes (memory holds one file's bytes) into a fresh hidden folder beside `folder`, which is
    renamed to `folder` at the end; into an existing folder the files are moved in last. On any
    error, `files` raising included, the hidden folder is removed and no file appears."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        for name, data in files:
            (tmp / name).write_bytes(data)
        if not folder.exists():
            tmp.replace(folder)  # the whole folder appears at once
        else:
            for f in sorted(tmp.iterdir()):
                f.replace(folder / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_png_folder(folder: Path, images: Iterable, count: int) -> None:
    """Digit images as PNG files digit_00000.png, digit_00001.png... in `folder`, atomically
    (`atomic_write_folder`). `count` (how many there are) sets the zero padding, so the names
    sort in digit order."""
    from ae.png import png_encode  # the one PNG encoder of a digit (Pillow: only when writing)

    width = max(5, len(str(count - 1)))
    atomic_write_folder(folder, ((f"digit_{i:0{width}d}.png", png_encode(image)) for i, image in enumerate(images)))
