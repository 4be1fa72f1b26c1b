import io

import numpy as np
import pytest
from PIL import Image

from ae.errors import NothingDrawn, PreprocessError
from ae.preprocess import drawing_to_digit, image_file_to_digit


def centre_of_mass(img):
    rows, cols = np.indices(img.shape)
    return (rows * img).sum() / img.sum(), (cols * img).sum() / img.sum()


def canvas(height=280, width=280):
    c = np.zeros((height, width, 4), np.uint8)
    c[..., 3] = 255  # opaque black background, as the canvas returns it
    return c


def test_off_centre_stroke_lands_centred_at_mnist_scale():
    c = canvas()
    c[20:120, 200:215, :3] = 255  # a short vertical bar in the top-right corner
    digit = drawing_to_digit(c)
    assert digit.shape == (28, 28) and digit.dtype == np.float32
    r, col = centre_of_mass(digit)
    assert abs(r - 13.5) <= 1 and abs(col - 13.5) <= 1
    rows = np.flatnonzero((digit > 0.1).any(1))
    assert 19 <= rows[-1] - rows[0] + 1 <= 21  # longer side scaled to 20 px
    assert digit.max() == pytest.approx(1.0, abs=1e-3)


def test_diagonal_stroke_centre_of_mass_within_one_pixel():
    c = canvas()
    for t in range(0, 150):
        c[40 + t:52 + t, 30 + t // 2:42 + t // 2, :3] = 255
    r, col = centre_of_mass(drawing_to_digit(c))
    assert abs(r - 13.5) <= 1 and abs(col - 13.5) <= 1


@pytest.mark.parametrize("bad", [canvas(), np.zeros((280, 280), np.uint8)])
def test_empty_canvas_says_nothing_drawn(bad):
    with pytest.raises(NothingDrawn):
        drawing_to_digit(bad)


def test_a_few_stray_pixels_count_as_nothing_drawn():
    c = canvas()
    c[100, 100, :3] = 255
    with pytest.raises(NothingDrawn):
        drawing_to_digit(c)


def test_transparent_canvas_with_strokes():
    c = np.zeros((200, 300, 4), np.uint8)  # transparent, strokes opaque white
    c[50:150, 100:120] = 255
    assert drawing_to_digit(c).max() > 0.9


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def dark_on_light(size=(120, 90)):
    a = np.full(size[::-1], 245, np.uint8)
    a[20:70, 40:52] = 20  # a dark bar on light paper
    return a


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "1", "I;16", "CMYK"])
def test_uploaded_image_modes_are_inverted_and_centred(mode):
    base = Image.fromarray(dark_on_light())
    if mode == "I;16":
        img = Image.fromarray(np.asarray(base).astype(np.uint16) * 257)  # 16-bit grey
    else:
        img = base.convert(mode)
    fmt = "TIFF" if mode == "CMYK" else "PNG"
    digit = image_file_to_digit(encode(img, fmt))
    r, col = centre_of_mass(digit)
    assert abs(r - 13.5) <= 1 and abs(col - 13.5) <= 1
    assert digit[0].max() == 0  # the paper became black background


def test_jpeg_and_animated_gif_use_the_first_frame():
    light = Image.fromarray(dark_on_light())
    assert image_file_to_digit(encode(light.convert("RGB"), "JPEG", quality=80)).max() > 0.9
    blank = Image.new("L", light.size, 245)
    gif = encode(light, "GIF", save_all=True, append_images=[blank, blank])
    assert image_file_to_digit(gif).max() > 0.9


def test_same_digit_from_a_file_or_a_drawing():
    c = canvas()
    c[60:220, 120:140, :3] = 255
    drawn = drawing_to_digit(c)
    png = encode(Image.fromarray(255 - c[..., 0]), "PNG")  # the same strokes, dark on white
    assert np.abs(image_file_to_digit(png) - drawn).max() < 1e-5


@pytest.mark.parametrize("data", [b"", b"not an image at all", encode(Image.new("L", (8, 8)), "PNG")[:30]])
def test_bad_files_raise_a_clear_error(data):
    with pytest.raises(PreprocessError):
        image_file_to_digit(data)


def test_blank_upload_is_nothing_drawn():
    with pytest.raises(NothingDrawn):
        image_file_to_digit(encode(Image.new("L", (50, 50), 255), "PNG"))


def test_huge_image_is_refused_before_decoding():
    # 10,000 x 10,000 pixels compresses to a few hundred kilobytes but would take 100 MB decoded.
    huge = encode(Image.new("1", (10_000, 10_000), 1), "PNG")
    with pytest.raises(PreprocessError, match="too large"):
        image_file_to_digit(huge)
