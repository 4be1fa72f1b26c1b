"""Turn a drawing or an image file into an MNIST-style digit, the way MNIST was made:
crop to the ink, scale the longer side to 20 px with anti-aliasing, and paste into 28x28 so
the centre of mass sits at the centre. One path for canvas drawings and uploaded files.
"""
from __future__ import annotations

import io
import os
import warnings

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image, ImageOps, UnidentifiedImageError

from ae.errors import NothingDrawn, PreprocessError
from ae.models import IMAGE_SIDE

DIGIT_BOX = 20  # MNIST fits each digit's longer side into 20 px
INK_THRESHOLD = 0.15  # a pixel at least this bright (0..1) counts as ink
MIN_INK_FRACTION = 0.0005  # fewer ink pixels than this share of the image: nothing drawn
MAX_UPLOAD_PIXELS = 40_000_000  # refuse larger images before decoding them
MAX_UPLOAD_BYTES = 25 * 1024 * 1024


def to_grey(image: np.ndarray) -> np.ndarray:
    """(H,W), (H,W,1), (H,W,3) or (H,W,4) array of any numeric type -> (H,W) float in [0,1]."""
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)) or min(a.shape[:2]) < 1:
        raise PreprocessError(f"Expected a 2-D grey or RGB(A) image, got an array of shape {a.shape}.")
    if a.dtype == np.bool_:
        a = a.astype(np.float32)
    elif np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.float32) / (65535.0 if a.max(initial=0) > 255 else 255.0)
    else:
        a = np.nan_to_num(a.astype(np.float32))
    a = np.clip(a, 0.0, 1.0)
    if a.ndim == 2:
        return a
    grey = a[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    if a.shape[2] == 4:
        grey = grey * a[..., 3]  # transparent pixels carry no ink (canvas strokes over nothing)
    return grey


def _centre_of_mass(img: np.ndarray) -> tuple[float, float]:
    total = img.sum()
    rows, cols = np.indices(img.shape)
    return float((rows * img).sum() / total), float((cols * img).sum() / total)


def ink_to_digit(ink: np.ndarray) -> np.ndarray:
    """White-on-black (H,W) float image in [0,1] -> (28,28) float32 MNIST-style digit."""
    ink = np.asarray(ink, dtype=np.float32)
    peak = float(ink.max(initial=0.0))
    mask = ink >= INK_THRESHOLD
    if peak < INK_THRESHOLD or mask.sum() < max(1, MIN_INK_FRACTION * ink.size):
        raise NothingDrawn("Nothing drawn: the image holds no digit strokes.")
    ink = ink / peak  # the strongest stroke becomes full white, like MNIST's ink
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    crop = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]

    h, w = crop.shape
    scale = DIGIT_BOX / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    small = TF.resize(torch.from_numpy(crop)[None], [new_h, new_w], antialias=True,
                      interpolation=TF.InterpolationMode.BILINEAR)[0].clamp(0, 1).numpy()

    # Shift so the centre of mass lands on the frame's centre, keeping the box inside the frame.
    com_r, com_c = _centre_of_mass(small)
    centre = (IMAGE_SIDE - 1) / 2
    top = int(np.clip(round(centre - com_r), 0, IMAGE_SIDE - new_h))
    left = int(np.clip(round(centre - com_c), 0, IMAGE_SIDE - new_w))
    digit = np.zeros((IMAGE_SIDE, IMAGE_SIDE), dtype=np.float32)
    digit[top:top + new_h, left:left + new_w] = small
    return digit


def drawing_to_digit(canvas: np.ndarray) -> np.ndarray:
    """A canvas drawing (white strokes on black, or on transparent) -> (28,28) digit."""
    return ink_to_digit(to_grey(canvas))


def _open_image(source) -> Image.Image:
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, (str, os.PathLike)):
        try:
            data = open(source, "rb").read(MAX_UPLOAD_BYTES + 1)
        except OSError as exc:
            raise PreprocessError(f"Cannot read {source}: {exc.strerror or exc}.") from None
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:  # a file-like object, such as Streamlit's UploadedFile
        data = source.read(MAX_UPLOAD_BYTES + 1)
    if not data:
        raise PreprocessError("The file is empty.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise PreprocessError(f"The file is larger than {MAX_UPLOAD_BYTES // 2**20} MB: use a smaller image.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if img.width * img.height > MAX_UPLOAD_PIXELS:
                raise PreprocessError(f"The image is {img.width}x{img.height} pixels: too large to process.")
            img.load()
    except PreprocessError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PreprocessError("The image has too many pixels: too large to process.") from None
    except UnidentifiedImageError:
        raise PreprocessError("This file is not an image that can be read (PNG, JPEG, WebP, GIF, BMP, ...).") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise PreprocessError(f"The image file is damaged or truncated ({exc}).") from None
    return img


def image_to_array(img: Image.Image) -> np.ndarray:
    """Any PIL mode (palette, 16-bit, CMYK, with alpha...) -> (H,W) float in [0,1];
    the first frame of an animation; EXIF rotation applied."""
    try:
        img.seek(0)
    except EOFError:
        pass
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(img, dtype=np.float32)
        top = 65535.0 if a.max(initial=0) > 255 else 255.0
        return np.clip(a / top, 0, 1)
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    if has_alpha:
        # Flatten onto white: a transparent background reads as paper, like a scanned page.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.asarray(img.convert("L"), dtype=np.float32) / 255.0


def photo_to_ink(grey: np.ndarray) -> np.ndarray:
    """Make ink bright and background black: dark-on-light images (paper) are inverted,
    judged by the border, and the background level is subtracted."""
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    background = float(np.median(border))
    ink = (1.0 - grey) if background > 0.5 else grey
    return np.clip(ink - (1.0 - background if background > 0.5 else background), 0, 1)


def image_file_to_digit(source) -> np.ndarray:
    """An uploaded image (path, bytes, file object or PIL image) -> (28,28) digit."""
    return ink_to_digit(photo_to_ink(image_to_array(_open_image(source))))
