"""Turn a drawing or an image file into an MNIST-style digit, the way MNIST was made:
crop to the ink, scale the longer side to 20 px with anti-aliasing, and paste into 28x28 so
the centre of mass sits at the centre. One path for canvas drawings and uploaded files.
"""
from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import ExifTags, Image, UnidentifiedImageError
from PIL.JpegImagePlugin import MARKER as JPEG_MARKERS
from PIL.JpegImagePlugin import JpegImageFile

from ae.errors import NothingDrawn, PreprocessError
from ae.models import IMAGE_SIDE

DIGIT_BOX = 20  # MNIST fits each digit's longer side into 20 px
INK_THRESHOLD = 0.15  # a pixel at least this bright (0..1) counts as ink
MIN_INK_FRACTION = 0.0005  # fewer ink pixels than this share of the image: nothing drawn

# Uploads: the formats a digit photo or scan comes in, and per format the largest file and the
# most pixels accepted, so the worst upload decodes in well under 0.5 s and 150 MB (measured with
# scripts/upload_costs.py). Decoding costs CPU per compressed byte (progressive JPEG ~45 ms/MB,
# lossy WebP and AVIF ~85 ms/MB, the others ~25 ms/MB) and memory per pixel (at most 4 bytes for
# PNG, TIFF, BMP and GIF; ~6 for progressive JPEG's coefficients; ~10 for AVIF and ~16 for WebP,
# which decode into several full-size buffers). JPEG XL is left out on purpose: its plugin
# (pillow-jxl) decodes the whole image while opening it, before the size can be checked.
UPLOAD_LIMITS = {  # format: (max bytes, max pixels)
    "PNG": (10 * 2**20, 4096 * 3072),
    "JPEG": (6 * 2**20, 4096 * 4096),  # a 12-megapixel phone photo is 2-6 MB; decoded at 1/2-1/8 scale
    "WEBP": (3 * 2**20, 6_000_000),
    "GIF": (10 * 2**20, 4096 * 3072),
    "BMP": (10 * 2**20, 4096 * 3072),
    "TIFF": (10 * 2**20, 4096 * 3072),
    "AVIF": (2 * 2**20, 10_000_000),
}
UPLOAD_FORMATS = tuple(UPLOAD_LIMITS)
UPLOAD_FORMAT_NAMES = "PNG, JPEG, WebP, GIF, BMP, TIFF or AVIF"
MAX_UPLOAD_BYTES = max(size for size, _ in UPLOAD_LIMITS.values())
MAX_UPLOAD_PIXELS = max(pixels for _, pixels in UPLOAD_LIMITS.values())
MAX_UPLOAD_SIDE = 8192  # decoders pay per row too: a 1x16,000,000 PNG takes seconds
# TIFF codecs whose cost stays proportional to the pixels (libtiff also has LZMA, JPEG, WebP...).
TIFF_COMPRESSIONS = ("raw", "packbits", "tiff_lzw", "tiff_deflate", "tiff_adobe_deflate",
                     "tiff_ccitt", "group3", "group4")
MAX_TIFF_ENTRIES = 256  # tags in a TIFF's directory (a scanner writes ~20)
MAX_TIFF_VALUES = 16384  # values in one tag, e.g. strips (one per row of 8192 rows, two bands)
# Pillow walks these structures in Python, a few microseconds a step: a 10 MB file of 800,000
# empty PNG chunks takes 13 s. Ordinary files need a few dozen (PNG: one chunk per 8-64 KB).
MAX_PNG_CHUNKS = 4096
MAX_GIF_BLOCKS = 4096  # extension sub-blocks before the first picture
MAX_JPEG_MARKERS = 1024  # markers, padding and junk bytes before the picture data
WORK_SIDE = 1024  # larger images are box-averaged down to this long side: plenty for a 20 px digit
TILE_PIXELS = 1 << 20  # large images are converted to grey this many pixels at a time
HIGH_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
EXIF_TRANSPOSE = {  # EXIF orientation -> the transposition that shows the image upright
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90,
}


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
    # torchvision's resize of a tensor is this call; torch's own keeps torchvision (~170 MB) out
    # of the web server.
    small = F.interpolate(torch.from_numpy(crop)[None, None], size=(new_h, new_w), mode="bilinear",
                          align_corners=False, antialias=True)[0, 0].clamp(0, 1).numpy()

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


def _read_upload(source) -> bytes:
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb") as f:
                data = f.read(MAX_UPLOAD_BYTES + 1)
        except OSError as exc:
            raise PreprocessError(f"Cannot read the file: {exc.strerror or exc}.") from None
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:  # a file-like object, such as Streamlit's UploadedFile
        data = source.read(MAX_UPLOAD_BYTES + 1)
    if not data:
        raise PreprocessError("The file is empty.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise PreprocessError(f"The file is larger than {MAX_UPLOAD_BYTES // 2**20} MB: use a smaller image.")
    return data


def _check_png_chunks(data: bytes) -> None:
    pos = 8
    for _ in range(MAX_PNG_CHUNKS):
        if pos + 8 > len(data) or data[pos + 4:pos + 8] == b"IEND":
            return
        pos += 12 + int.from_bytes(data[pos:pos + 4], "big")
    raise PreprocessError(f"The PNG file has more than {MAX_PNG_CHUNKS} chunks: save the image again as an ordinary PNG.")


def _check_gif_blocks(data: bytes) -> None:
    flags = data[10] if len(data) > 10 else 0
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)  # after the global colour table
    blocks = 0
    while pos + 1 < len(data) and data[pos] == 0x21:  # an extension: label, then sub-blocks
        pos += 2
        while pos < len(data) and blocks <= MAX_GIF_BLOCKS:
            size, pos, blocks = data[pos], pos + 1 + data[pos], blocks + 1
            if size == 0:
                break
        if blocks > MAX_GIF_BLOCKS:
            raise PreprocessError(f"The GIF file has more than {MAX_GIF_BLOCKS} extension blocks: "
                                  f"save the image again as an ordinary GIF or PNG.")


def _check_jpeg_markers(data: bytes) -> None:
    pos, steps = 2, 0  # after the start-of-image marker
    while pos + 1 < len(data) and steps <= MAX_JPEG_MARKERS:
        if data[pos] != 0xFF:  # junk, which Pillow skips a byte at a time
            found = data.find(b"\xff", pos)
            end = found if found >= 0 else len(data)
            steps, pos = steps + end - pos, end
            continue
        marker, steps = data[pos + 1], steps + 1
        if marker == 0xDA:  # start of scan: libjpeg decodes the rest
            return
        known = JPEG_MARKERS.get(0xFF00 | marker)
        if marker in (0x00, 0xFF) or (known is not None and known[2] is None):
            pos += 1 if marker == 0xFF else 2  # padding, or a marker without a segment
        elif known is None:
            return  # Pillow refuses it at once
        else:
            pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    if steps > MAX_JPEG_MARKERS:
        raise PreprocessError(f"The JPEG file has more than {MAX_JPEG_MARKERS} markers before its picture: "
                              f"save the image again as an ordinary JPEG.")


def _check_tiff_directory(data: bytes) -> None:
    """Pillow makes a Python object for every strip or tile a TIFF lists while opening it: a
    10 MB file listing a million strips costs ~10 s and 400 MB. Read the first directory's
    entry counts first and refuse oversized ones (and BigTIFF, which this check cannot read)."""
    order = {b"II": "<", b"MM": ">"}.get(data[:2])
    if order is None:
        return  # not a TIFF: Pillow decides
    try:
        (magic, ifd) = struct.unpack(order + "HI", data[2:8])
        if magic != 42:  # BigTIFF (43) or a byte order Pillow guesses at
            raise PreprocessError("This kind of TIFF is not supported: save the image as PNG.")
        (entries,) = struct.unpack(order + "H", data[ifd:ifd + 2])
        counts = [struct.unpack(order + "I", data[ifd + 6 + 12 * i:ifd + 10 + 12 * i])[0]
                  for i in range(min(entries, MAX_TIFF_ENTRIES + 1))]
    except struct.error:
        raise PreprocessError("The TIFF file is damaged or truncated.") from None
    if entries > MAX_TIFF_ENTRIES or max(counts, default=0) > MAX_TIFF_VALUES:
        raise PreprocessError("The TIFF file lists too many strips, tiles or tag values: save the image as PNG.")


def _open_image(data: bytes) -> Image.Image:
    """Identify the upload among the accepted formats and check its cost, before decoding it."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        _check_png_chunks(data)
    elif data.startswith((b"GIF87a", b"GIF89a")):
        _check_gif_blocks(data)
    elif data.startswith(b"\xff\xd8\xff"):
        _check_jpeg_markers(data)
    _check_tiff_directory(data)
    img = Image.open(io.BytesIO(data), formats=UPLOAD_FORMATS)
    max_bytes, max_pixels = UPLOAD_LIMITS[img.format if img.format in UPLOAD_LIMITS else "JPEG"]  # MPO is a JPEG
    if img.width * img.height > max_pixels or max(img.size) > MAX_UPLOAD_SIDE:
        raise PreprocessError(f"The image is {img.width}x{img.height} pixels: too large to process "
                              f"(at most {max_pixels / 1e6:.0f} megapixels for {img.format}, and "
                              f"{MAX_UPLOAD_SIDE} pixels a side). Use a smaller image.")
    if len(data) > max_bytes:
        raise PreprocessError(f"The file is larger than {max_bytes // 2**20} MB, the most accepted for "
                              f"{img.format}: use a smaller image or save it as PNG.")
    if any(tile[0] == "bmp_rle" for tile in img.tile):
        # Pillow decodes run-length BMPs in Python: seconds for a small crafted file.
        raise PreprocessError("Run-length compressed BMP files are not supported: save the image as PNG.")
    if img.format == "TIFF" and img.info.get("compression") not in TIFF_COMPRESSIONS:
        raise PreprocessError(f"TIFF files compressed with {img.info.get('compression')!r} are not supported: "
                              f"save the image as PNG.")
    if isinstance(img, JpegImageFile) and max(img.size) > WORK_SIDE:
        img.draft(None, (WORK_SIDE, WORK_SIDE))  # libjpeg decodes at 1/2, 1/4 or 1/8 scale: cheap
    img.load()
    return img


def _decoder_failure(exc: Exception) -> PreprocessError:
    """A readable message for whatever a decoder raised on a damaged or hostile file."""
    if isinstance(exc, UnidentifiedImageError):
        return PreprocessError(f"This file is not an image that can be read here: use {UPLOAD_FORMAT_NAMES}.")
    if isinstance(exc, Image.DecompressionBombError):
        return PreprocessError("The image has too many pixels: too large to process.")
    if isinstance(exc, MemoryError):
        return PreprocessError("The image needs more memory to decode than this server allows: use a smaller image.")
    if isinstance(exc, (OSError, ValueError, SyntaxError, EOFError)):
        reason = (str(exc).strip().splitlines() or [""])[0][:120]
        if "<" not in reason and reason:  # skip reprs such as <_io.BytesIO object at 0x...>
            return PreprocessError(f"The image file is damaged or truncated ({reason}).")
    return PreprocessError(f"The image file is damaged or truncated (its decoder failed with {type(exc).__name__}).")


def _frame_to_grey(img: Image.Image, top: float) -> np.ndarray:
    """(A strip of) a decoded image in any mode -> (H,W) float32 in [0,1]. `top` is the white
    level of high-bit modes (255 or 65535), judged on the whole image."""
    if img.mode in HIGH_BIT_MODES:
        return np.clip(np.nan_to_num(np.asarray(img, dtype=np.float32) / top), 0, 1)
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    if has_alpha:
        # Flatten onto white: a transparent background reads as paper, like a scanned page.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.asarray(img.convert("L"), dtype=np.float32) / 255.0


def _reduced_tile(tile: Image.Image, factor: int, top: float) -> np.ndarray:
    if tile.mode in HIGH_BIT_MODES:
        return np.asarray(Image.fromarray(_frame_to_grey(tile, top), "F").reduce(factor))
    if tile.mode in ("1", "P", "PA"):  # palette indices and bits cannot be averaged
        has_alpha = tile.mode == "PA" or "transparency" in tile.info
        tile = tile.convert("RGBA" if has_alpha else "L")
    # 8-bit boxes are averaged before the grey conversion (cheaper; with alpha Pillow averages
    # premultiplied colours, so flattening onto white afterwards gives the same grey).
    return _frame_to_grey(tile.reduce(factor), top)


def _shrunk_grey(img: Image.Image, factor: int, top: float) -> np.ndarray:
    """Grey image box-averaged by `factor`, a tile at a time (whole boxes, about TILE_PIXELS
    each), so no full-size copy of the image ever exists, whatever its shape."""
    w, h = img.size
    step = factor * max(1, int(TILE_PIXELS ** 0.5) // factor)
    rows = [np.concatenate([_reduced_tile(img.crop((x, y, min(x + step, w), min(y + step, h))), factor, top)
                            for x in range(0, w, step)], axis=1)
            for y in range(0, h, step)]
    return np.concatenate(rows)


def image_to_array(img: Image.Image) -> np.ndarray:
    """Any PIL mode (palette, 16-bit, CMYK, with alpha...) -> (H,W) float in [0,1], at most
    WORK_SIDE px on the long side; the first frame of an animation; EXIF rotation applied."""
    try:
        img.seek(0)
    except EOFError:
        pass
    img.load()
    orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
    top = 255.0
    if img.mode in HIGH_BIT_MODES:
        top = 65535.0 if img.getextrema()[1] > 255 else 255.0
    factor = -(-max(img.size) // WORK_SIDE)
    grey = _frame_to_grey(img, top) if factor == 1 else _shrunk_grey(img, factor, top)
    if orientation in EXIF_TRANSPOSE:
        grey = np.asarray(Image.fromarray(grey, "F").transpose(EXIF_TRANSPOSE[orientation]))
    return grey


def upload_to_grey(source) -> np.ndarray:
    """An uploaded image (path, bytes, file object or PIL image) -> (H,W) grey float in [0,1],
    at most WORK_SIDE px on the long side. Every decoder failure becomes a PreprocessError."""
    # No warnings.catch_warnings here: it changes process-wide filters, and the app serves
    # sessions in threads. Pillow's bomb warning needs no catching either: the pixel limits
    # above are far below it and are checked before decoding.
    try:
        img = source if isinstance(source, Image.Image) else _open_image(_read_upload(source))
        return image_to_array(img)
    except PreprocessError:
        raise
    except Exception as exc:  # noqa: BLE001  (decoders of hostile files raise anything: struct.error, ZeroDivisionError...)
        raise _decoder_failure(exc) from None


def photo_to_ink(grey: np.ndarray) -> np.ndarray:
    """Make ink bright and background black: dark-on-light images (paper) are inverted,
    judged by the border, and the background level is subtracted."""
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    background = float(np.median(border))
    ink = (1.0 - grey) if background > 0.5 else grey
    return np.clip(ink - (1.0 - background if background > 0.5 else background), 0, 1)


def image_file_to_digit(source) -> np.ndarray:
    """An uploaded image (path, bytes, file object or PIL image) -> (28,28) digit."""
    try:
        return ink_to_digit(photo_to_ink(upload_to_grey(source)))
    except PreprocessError as exc:
        if isinstance(source, (str, os.PathLike)):  # a command line names several files: say which
            raise type(exc)(f"{Path(source).name}: {exc}") from None
        raise
