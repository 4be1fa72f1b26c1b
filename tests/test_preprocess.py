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


# ---- hostile and oversized uploads: always a PreprocessError, in bounded time and memory ----

import struct  # noqa: E402

from ae import preprocess  # noqa: E402


def paper_digit(width=120, height=90, mode="L"):
    return Image.fromarray(dark_on_light((width, height))).convert(mode)


def blp_with_unsupported_compression() -> bytes:
    # A 64x64 BLP1 header whose compression Pillow's decoder refuses with BLPFormatError.
    return b"BLP1" + struct.pack("<iIIIii", 5, 0, 64, 64, 4, 0) + bytes(256)


@pytest.mark.parametrize("fmt", ["BLP", "ICO", "PCX", "TGA", "PPM", "QOI", "SGI", "DDS", "JPEG2000"])
def test_formats_outside_the_whitelist_are_refused(fmt):
    data = encode(Image.new("P" if fmt == "BLP" else "RGB", (16, 16)), fmt)
    assert Image.open(io.BytesIO(data)).format == fmt  # Pillow itself would open it
    with pytest.raises(PreprocessError, match="not an image that can be read here.*PNG, JPEG"):
        image_file_to_digit(data)


def test_a_file_that_pillow_would_decode_as_blp_is_refused():
    with pytest.raises(Exception, match="BLP"):  # what Pillow alone does with it
        Image.open(io.BytesIO(blp_with_unsupported_compression())).load()
    with pytest.raises(PreprocessError, match="not an image that can be read here"):
        image_file_to_digit(blp_with_unsupported_compression())


def test_jpeg_xl_is_refused_even_when_its_plugin_is_loaded():
    pytest.importorskip("pillow_jxl")
    with pytest.raises(PreprocessError, match="not an image that can be read here"):
        image_file_to_digit(encode(paper_digit(mode="RGB"), "JXL"))


def seed_files():
    img = paper_digit(48, 40)
    return {
        "png": encode(img, "PNG"), "png-rgba-interlaced": encode(img.convert("RGBA"), "PNG", interlace=1),
        "jpeg": encode(img.convert("RGB"), "JPEG"), "jpeg-progressive": encode(img, "JPEG", progressive=True),
        "gif": encode(img, "GIF", save_all=True, append_images=[img]), "webp": encode(img, "WEBP"),
        "webp-lossless": encode(img, "WEBP", lossless=True), "bmp": encode(img, "BMP"),
        "tiff-lzw": encode(img, "TIFF", compression="tiff_lzw"), "tiff-cmyk": encode(img.convert("CMYK"), "TIFF"),
    }


@pytest.mark.parametrize("name", sorted(seed_files()))
def test_truncated_or_bit_flipped_files_give_a_preprocess_error_and_nothing_else(name):
    data = seed_files()[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    cases = [data[:k] for k in rng.integers(0, len(data), 25)]
    for _ in range(60):
        flipped = bytearray(data)
        for i in rng.integers(0, len(data), rng.integers(1, 4)):
            flipped[i] ^= 1 << int(rng.integers(0, 8))
        cases.append(bytes(flipped))
    for case in cases:
        try:
            digit = image_file_to_digit(case)
        except PreprocessError as exc:
            assert str(exc) and "/" not in str(exc)  # a message, and no server path in it
        else:
            assert digit.shape == (28, 28)  # a flip in metadata may leave the picture readable


@pytest.mark.parametrize("error", [struct.error("unpack requires a buffer"), ZeroDivisionError("division by zero"),
                                   MemoryError(), EOFError(), IndexError("list index out of range"),
                                   RuntimeError("<_io.BytesIO object at 0x7f00>")])
def test_any_exception_a_decoder_raises_becomes_a_readable_message(monkeypatch, error):
    from PIL import PngImagePlugin

    def broken_load(self):
        raise error
    data = encode(paper_digit(), "PNG")
    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", broken_load)
    with pytest.raises(PreprocessError) as caught:
        image_file_to_digit(data)
    message = str(caught.value)
    assert ("memory" if isinstance(error, MemoryError) else "damaged") in message and "0x7f" not in message


def test_run_length_bmp_and_costly_tiff_codecs_are_refused():
    header = struct.pack("<IiiHHIIiiII", 40, 16, 16, 1, 8, 1, 4, 0, 0, 256, 0)  # 16x16, BI_RLE8
    rle_bmp = b"BM" + struct.pack("<IHHI", 14 + 40 + 1024 + 4, 0, 0, 14 + 40 + 1024) + header + bytes(1024) + b"\0\1\0\0"
    with pytest.raises(PreprocessError, match="Run-length"):
        image_file_to_digit(rle_bmp)
    with pytest.raises(PreprocessError, match="'jpeg' are not supported"):
        image_file_to_digit(encode(paper_digit(), "TIFF", compression="jpeg"))


def test_a_tiff_listing_a_million_strips_is_refused_before_pillow_parses_it():
    # Pillow would build a million tiles (seconds, hundreds of MB) while opening a 10 MB file like it.
    entries = [(256, 4, 1, 64), (257, 4, 1, 64), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1_000_000, 200), (278, 4, 1, 1), (279, 4, 1_000_000, 200)]
    tiff = b"II*\0" + struct.pack("<IH", 8, len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries)
    with pytest.raises(PreprocessError, match="too many strips"):
        image_file_to_digit(tiff + bytes(4 + 100))


def png_chunk(kind: bytes, body: bytes = b"") -> bytes:
    import zlib
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@pytest.mark.parametrize("where", ["before the pixels", "after the pixels"])
def test_a_png_of_thousands_of_empty_chunks_is_refused_before_pillow_walks_them(where):
    png = encode(paper_digit(), "PNG")
    head, tail = (png[:33], png[33:]) if where == "before the pixels" else (png[:-12], png[-12:])
    assert image_file_to_digit(head + png_chunk(b"abCd") * 100 + tail).shape == (28, 28)  # a few: fine
    with pytest.raises(PreprocessError, match="more than 4096 chunks"):
        image_file_to_digit(head + png_chunk(b"abCd") * preprocess.MAX_PNG_CHUNKS + tail)


def test_a_gif_or_jpeg_full_of_empty_blocks_or_markers_is_refused():
    gif = encode(paper_digit(), "GIF")
    picture = 13 + (3 << ((gif[10] & 7) + 1) if gif[10] & 0x80 else 0)  # after the colour table
    many = preprocess.MAX_GIF_BLOCKS + 1
    with pytest.raises(PreprocessError, match="extension blocks"):
        image_file_to_digit(gif[:picture] + b"\x21\xfe\x00" * many + gif[picture:])
    with pytest.raises(PreprocessError, match="extension blocks"):
        image_file_to_digit(gif[:picture] + b"\x21\xfe" + b"\x01a" * many + b"\x00" + gif[picture:])
    jpeg = encode(paper_digit(mode="RGB"), "JPEG")
    assert image_file_to_digit(jpeg[:2] + b"\xff\xfe\x00\x02" * 50 + jpeg[2:]).shape == (28, 28)
    for filler in [b"\xff\xfe\x00\x02", b"\xff", b"\xff\xd0", b"\x00"]:  # comments, padding, RSTs, junk
        with pytest.raises(PreprocessError, match="markers before its picture"):
            image_file_to_digit(jpeg[:20] + filler * (preprocess.MAX_JPEG_MARKERS + 1) + jpeg[20:])


def test_images_too_large_or_too_long_a_side_are_refused_before_decoding(monkeypatch):
    decoded = []
    monkeypatch.setattr(preprocess, "image_to_array", lambda img: decoded.append(img) or 1 / 0)
    with pytest.raises(PreprocessError, match="too large"):
        image_file_to_digit(encode(Image.new("1", (1, preprocess.MAX_UPLOAD_SIDE + 1)), "PNG"))
    width, pixels = 2000, preprocess.UPLOAD_LIMITS["WEBP"][1]
    with pytest.raises(PreprocessError, match="too large.*WEBP"):
        image_file_to_digit(encode(Image.new("L", (width, pixels // width + 1), 255), "WEBP", lossless=True))
    assert decoded == []


def test_each_format_has_its_own_file_size_limit(monkeypatch):
    jpeg = encode(paper_digit(mode="RGB"), "JPEG")
    monkeypatch.setitem(preprocess.UPLOAD_LIMITS, "JPEG", (len(jpeg) - 1, 4096 * 4096))
    with pytest.raises(PreprocessError, match="most accepted for JPEG"):
        image_file_to_digit(jpeg)
    image_file_to_digit(encode(paper_digit(), "PNG"))  # other formats keep theirs


def test_a_big_mostly_black_image_is_shrunk_before_any_float_conversion(monkeypatch):
    small = np.zeros((750, 1000), np.uint8)
    small[150:600, 450:520] = 255  # a light bar on black
    big = np.kron(small, np.ones((4, 4), np.uint8))  # the same picture at 4000x3000
    converted = []
    real = preprocess._frame_to_grey
    monkeypatch.setattr(preprocess, "_frame_to_grey", lambda img, top: converted.append(img.size) or real(img, top))
    digit = image_file_to_digit(encode(Image.fromarray(big), "PNG"))
    assert max(w * h for w, h in converted) <= preprocess.TILE_PIXELS  # never a full-size float copy
    reference = image_file_to_digit(encode(Image.fromarray(small), "PNG"))
    assert digit.max() > 0.9 and np.abs(digit - reference).max() < 0.05


def test_a_big_jpeg_is_decoded_at_a_reduced_scale():
    big = np.kron(dark_on_light((1000, 750)), np.ones((4, 4), np.uint8))
    data = encode(Image.fromarray(big), "JPEG", quality=90)
    assert max(preprocess._open_image(data).size) <= 2 * preprocess.WORK_SIDE  # libjpeg's draft scaling
    reference = image_file_to_digit(encode(Image.fromarray(dark_on_light((1000, 750))), "PNG"))
    assert np.abs(image_file_to_digit(data) - reference).max() < 0.1


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16"])
def test_normal_images_give_exactly_the_full_resolution_result(mode):
    # Below WORK_SIDE nothing is shrunk: the digit is the one computed from every pixel.
    base = paper_digit(900, 700)
    img = Image.fromarray(np.asarray(base).astype(np.uint16) * 257) if mode == "I;16" else base.convert(mode)
    grey = np.asarray(base, dtype=np.float32) / 255.0
    expected = preprocess.ink_to_digit(preprocess.photo_to_ink(grey))
    assert np.array_equal(image_file_to_digit(encode(img, "PNG")), expected)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_pillow_does(orientation):
    from PIL import ImageOps
    img = paper_digit(90, 60)
    img.paste(20, (5, 5, 25, 15))  # an off-centre blob, so every transposition looks different
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(img, "PNG", exif=exif)
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    assert np.array_equal(image_file_to_digit(data), image_file_to_digit(encode(upright, "PNG")))


def test_cli_compress_refuses_an_odd_file_with_error_and_exit_2(tmp_path, capsys):
    from ae.cli import main
    odd = tmp_path / "digit.png"  # any name: the content decides
    odd.write_bytes(blp_with_unsupported_compression())
    out = tmp_path / "x.aez"
    assert main(["compress", str(odd), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "digit.png" in err and "Traceback" not in err
    assert not out.exists()
