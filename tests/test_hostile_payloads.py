"""Payloads and CLI arguments made to cost a lot: each is refused from what is cheap to check
(the header, the body's length, the index ranges) before the expensive work, with the codec's
or the CLI's own message and no output left behind. Decoding in chunks changes no pixel."""
import re

import numpy as np
import pytest
import torch

import ae.codec as codec
from ae.cli import main
from ae.codec import (CodecError, MAX_CONTAINER_DIGITS, PointCoder, compress, compress_symbols, decompress,
                      open_payload, parse_header)
from ae.entropy import MAX_SYMBOL
from ae.registry import operating_points
from ae.sample import sample_test_indices

from conftest import ROOT
from test_codec import tiny_model

shipped = pytest.mark.skipif(not operating_points(), reason="no shipped codec weights")


@pytest.fixture(scope="module")
def coder(sample):
    return PointCoder(tiny_model(sample, seed=1), point_id=1, name="tiny")


def crafted_container(coder: PointCoder, count: int, body: bytes) -> bytes:
    """A container header with a valid CRC-32 (the fingerprint is public) around any body."""
    return codec.frame(coder, body, count, container=True)


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if anything reaches the entropy decoder or the reconstruction."""
    def forbidden(*args, **kwargs):
        pytest.fail("a payload refused from its header was decoded")
    monkeypatch.setattr(PointCoder, "decode_chunks", forbidden)
    monkeypatch.setattr(PointCoder, "pixels", forbidden)
    monkeypatch.setattr(PointCoder, "images", forbidden)


def test_the_12_byte_container_of_2_20_digits_is_refused_from_its_length(coder, no_decoding):
    payload = crafted_container(coder, 1 << 20, bytes(4))
    assert len(payload) == 12 and parse_header(payload)[1:3] == (True, 1 << 20)
    with pytest.raises(CodecError, match="claims 1,048,576 digits"):
        decompress(payload, [coder], max_digits=MAX_CONTAINER_DIGITS)
    with pytest.raises(CodecError, match="more than the 100,000"):  # the default cap comes first
        decompress(payload, [coder])


@shipped
@pytest.mark.parametrize("point", [p.name for p in operating_points()])
def test_the_12_byte_container_is_refused_at_every_shipped_point(point, no_decoding):
    crafted = crafted_container(codec.get_coder(point), 1 << 20, bytes(4))
    with pytest.raises(CodecError, match="claims"):
        decompress(crafted, max_digits=MAX_CONTAINER_DIGITS)


def test_a_count_too_large_for_its_body_is_refused_before_decoding(coder, sample, monkeypatch):
    genuine = compress(sample.images[:40], coder)
    _, _, count, header = parse_header(genuine)
    body = genuine[header:]
    most = coder.max_digits_in(len(body))
    assert most >= count  # the genuine count fits...
    monkeypatch.setattr(PointCoder, "decode_chunks", lambda *a: pytest.fail("decoded"))
    with pytest.raises(CodecError, match="corrupt or truncated"):  # ...one more than the most does not
        decompress(crafted_container(coder, most + 1, body), [coder], max_digits=MAX_CONTAINER_DIGITS)


def test_the_length_bound_never_refuses_a_genuine_container(coder):
    """The tightest genuine case: every digit at its most probable symbols (the fewest bits)."""
    top = np.argmax(coder.frequencies, 1).astype(np.int32) - MAX_SYMBOL
    for count in (2, 3, 50, 1500):
        symbols = np.tile(top, (count, 1))
        payload = compress_symbols(symbols, coder, container=True)
        body = len(payload) - parse_header(payload)[3]
        assert 8 * body < count * coder.min_bits_per_digit + 200  # the bound is near the real size
        assert np.array_equal(decompress(payload, [coder]).symbols, symbols)


def test_max_digits_is_enforced_from_the_header(coder, sample, monkeypatch):
    payload = compress(sample.images[:5], coder)
    assert len(decompress(payload, [coder], max_digits=5).images) == 5
    monkeypatch.setattr(PointCoder, "decode_chunks", lambda *a: pytest.fail("decoded"))
    for limit in (1, 4):
        with pytest.raises(CodecError, match=f"holds 5 digits, more than the {limit}"):
            decompress(payload, [coder], max_digits=limit)
        with pytest.raises(CodecError, match="more than"):
            open_payload(payload, [coder], max_digits=limit)


def test_chunked_decoding_gives_the_pixels_of_whole_decoding(coder, sample, monkeypatch):
    x = sample.images[:50]
    symbols = coder.symbols(x)
    whole = coder.images(symbols)  # all 50 in one call
    monkeypatch.setattr(codec, "CHUNK_DIGITS", 7)
    payload = compress(x, coder)
    reader = open_payload(payload, [coder])
    parts = list(reader.chunks())
    assert [p.start for p in parts] == list(range(0, 50, 7)) and [len(p.images) for p in parts][-1] == 1
    assert torch.equal(torch.cat([p.images for p in parts]), whole)
    decoded = decompress(payload, [coder])
    assert torch.equal(decoded.images, whole) and np.array_equal(decoded.symbols, symbols)


def test_a_one_chunk_payload_is_decoded_once_by_its_check(coder, sample, monkeypatch):
    """The canonical check's decoded symbols are the ones the reader reconstructs (one decode for a
    payload of one chunk); past one chunk the reader decodes again, chunk by chunk."""
    symbols = coder.symbols(sample.images[:30])
    for payload, count in ((compress_symbols(symbols, coder), 30), (compress_symbols(symbols[:1], coder), 1)):
        reader = open_payload(payload, [coder])
        assert np.array_equal(reader.checked - MAX_SYMBOL, symbols[:count])
        monkeypatch.setattr(PointCoder, "decode_chunks", lambda *args: pytest.fail("decoded twice"))
        (part,) = reader.chunks()
        assert np.array_equal(part.pixels, coder.pixels(symbols[:count]))
        monkeypatch.undo()
    monkeypatch.setattr(codec, "CHUNK_DIGITS", 7)
    assert open_payload(compress_symbols(symbols, coder), [coder]).checked is None


def test_a_multi_chunk_container_round_trips_and_keeps_one_stream(coder, sample, monkeypatch):
    symbols = np.concatenate([coder.symbols(sample.images)] * 2)[:codec.CHUNK_DIGITS + 300]  # two chunks
    payload = compress_symbols(symbols, coder)
    decoded = decompress(payload, [coder])
    assert np.array_equal(decoded.symbols, symbols)
    assert torch.equal(decoded.images[-300:], coder.images(symbols[-300:]))
    # Chunk-major order is a different stream from one dimension-major chunk, of the same length
    # up to the last word: the termination is paid once either way.
    monkeypatch.setattr(codec, "CHUNK_DIGITS", len(symbols))
    one_chunk = compress_symbols(symbols, coder)
    assert one_chunk != payload and abs(len(one_chunk) - len(payload)) <= 8
    with pytest.raises(CodecError):  # each layout is only valid as itself
        decompress(payload, [coder])


def reference_body(coder: PointCoder, symbols: np.ndarray, chunk: int) -> bytes:
    """The container layout written out directly: chunks of `chunk` digits, dimension-major inside."""
    import constriction
    encoder = constriction.stream.queue.RangeEncoder()
    shifted = symbols + MAX_SYMBOL
    for start in range(0, len(shifted), chunk):
        for d, model in enumerate(coder.categoricals):
            encoder.encode(np.ascontiguousarray(shifted[start:start + chunk, d]), model)
    return encoder.get_compressed().astype(">u4").tobytes()


def test_container_bodies_follow_the_documented_layout(coder, sample):
    """Up to CHUNK_DIGITS digits the body is the one dimension-major stream of before; beyond,
    one stream over successive chunks."""
    symbols = np.concatenate([coder.symbols(sample.images)] * 3)
    for count in (2, 300, codec.CHUNK_DIGITS, codec.CHUNK_DIGITS + 1, 2500):
        payload = compress_symbols(symbols[:count], coder)
        body = payload[parse_header(payload)[3]:]
        assert body == reference_body(coder, symbols[:count], codec.CHUNK_DIGITS)
        if count <= codec.CHUNK_DIGITS:
            assert body == reference_body(coder, symbols[:count], count)


def test_a_truncated_multi_chunk_container_is_refused(coder, sample, monkeypatch):
    monkeypatch.setattr(codec, "CHUNK_DIGITS", 16)
    payload = compress(sample.images[:100], coder)
    for cut in (4, 8, len(payload) // 2):
        with pytest.raises(CodecError):
            decompress(payload[:-cut], [coder])


@pytest.mark.parametrize("failure", [MemoryError(), RuntimeError("DefaultCPUAllocator: can't allocate memory")])
def test_allocation_failures_become_codec_errors(coder, sample, monkeypatch, failure):
    payload = compress(sample.images[:20], coder)

    def out_of_memory(*args, **kwargs):
        raise failure
    monkeypatch.setattr(PointCoder, "pixels", out_of_memory)
    with pytest.raises(CodecError, match="Not enough memory"):
        decompress(payload, [coder])
    real_empty = np.empty

    def no_room_for_pixels(shape, dtype=float, **kwargs):  # only the decoded digits' array fails
        if dtype == np.uint8:
            raise failure
        return real_empty(shape, dtype, **kwargs)
    monkeypatch.setattr(np, "empty", no_room_for_pixels)
    with pytest.raises(CodecError, match="Not enough memory to hold 20"):
        decompress(payload, [coder])
    monkeypatch.setattr(coder.model, "encode", out_of_memory)
    with pytest.raises(CodecError, match="Not enough memory to encode"):
        compress(sample.images[:20], coder)


def test_other_runtime_errors_are_not_disguised_as_memory(coder, sample, monkeypatch):
    payload = compress(sample.images[:3], coder)
    monkeypatch.setattr(PointCoder, "pixels", lambda *a: (_ for _ in ()).throw(RuntimeError("shape mismatch")))
    with pytest.raises(RuntimeError, match="shape mismatch"):
        decompress(payload, [coder])


# ------------------------------------------------------------------------------------------------
# The CLI and the app
# ------------------------------------------------------------------------------------------------

@shipped
@pytest.mark.parametrize("indices, extra, message", [
    ("0-2000000000", [], "0 to 9999"),
    ("5,9999-10000", [], "0 to 9999"),
    ("19-10", [], "low to high"),
    ("0-99", ["--max-digits", "50"], "more than 50"),
    ("0-9,0-9,0-9", ["--max-digits", "25"], "more than 25"),
])
def test_cli_index_ranges_are_refused_before_expansion(tmp_path, capsys, monkeypatch, indices, extra, message):
    import ae.data
    monkeypatch.setattr(ae.data, "mnist_test_digits", lambda *a: pytest.fail("digits were loaded"))
    out = tmp_path / "x.aez"
    assert main(["compress", "--test-indices", indices, "-o", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


@shipped
def test_cli_decompress_of_hostile_payloads_leaves_nothing(tmp_path, capsys, monkeypatch):
    q1 = codec.get_coder("rd-q1")
    genuine = compress(torch.zeros(3, 1, 28, 28), q1)
    cases = {"crafted.aez": (crafted_container(q1, 1 << 20, bytes(4)), "more than the 100,000"),
             "short.aez": (crafted_container(q1, 90_000, bytes(64)), "claims 90,000 digits"),
             "many.aez": (genuine, "more than the 2")}
    for name, (data, _) in cases.items():
        (tmp_path / name).write_bytes(data)
    before = set(tmp_path.iterdir())
    for name, (_, message) in cases.items():
        for target in ("out", "out.png"):
            assert main(["decompress", str(tmp_path / name), "-o", str(tmp_path / target), "--max-digits", "2"
                         if name == "many.aez" else "100000"]) == 2
            err = capsys.readouterr().err
            assert err.startswith("error: ") and message in err and "Traceback" not in err
            assert set(tmp_path.iterdir()) == before
    # A failure while the PNGs are being written (here: out of memory in the second chunk).
    monkeypatch.setattr(codec, "CHUNK_DIGITS", 2)
    (tmp_path / "many.aez").write_bytes(compress(torch.zeros(3, 1, 28, 28), q1))  # two chunks now
    real_pixels = PointCoder.pixels
    calls = []

    def fail_second(self, symbols):
        calls.append(len(symbols))
        if len(calls) > 1:
            raise MemoryError
        return real_pixels(self, symbols)
    monkeypatch.setattr(PointCoder, "pixels", fail_second)
    assert main(["decompress", str(tmp_path / "many.aez"), "-o", str(tmp_path / "out")]) == 2
    assert "Not enough memory" in capsys.readouterr().err and calls == [2, 1]
    assert set(tmp_path.iterdir()) == before


@shipped
def test_cli_streams_a_multi_chunk_container_into_its_folder(tmp_path, sample, monkeypatch):
    from PIL import Image

    monkeypatch.setattr(codec, "CHUNK_DIGITS", 4)
    idx = ",".join(map(str, sample_test_indices()[:10]))
    out = tmp_path / "ten.aez"
    assert main(["compress", "--test-indices", idx, "-o", str(out), "--point", "rd-q1"]) == 0
    assert main(["decompress", str(out), "-o", str(tmp_path / "digits")]) == 0
    files = sorted((tmp_path / "digits").iterdir())
    assert [f.name for f in files] == [f"digit_{i:05d}.png" for i in range(10)]
    expected = decompress(out.read_bytes()).images
    for f, img in zip(files, expected):
        assert np.array_equal(np.asarray(Image.open(f)), (img[0].numpy() * 255).round().astype("uint8"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits", "ten.aez"]  # no temporary folder left
    assert main(["decompress", str(out), "-o", str(tmp_path / "digits"), "--max-digits", "9"]) == 2


@shipped
def test_send_and_receive_refuses_big_and_crafted_payloads(sample):
    """The page's own cap (1,000 digits) and the length bound, shown as its error box."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_resource.clear()
    at = AppTest.from_file("../app.py", default_timeout=60).run()
    at.switch_page("app_pages/send_receive.py").run()
    limit = int(re.search(r"^MAX_RECEIVE_DIGITS = ([\d_]+)", (ROOT / "app_pages" / "send_receive.py").read_text(),
                          re.M).group(1))
    q1 = codec.get_coder("rd-q1")
    too_many = compress_symbols(np.zeros((limit + 1, q1.dims), dtype=np.int32), q1)
    for payload, message in [(too_many, f"more than the {limit:,}"),
                             (crafted_container(q1, limit, bytes(4)), f"claims {limit:,} digits")]:
        at.text_input(key="receive_hex").set_value(payload.hex()).run()
        assert not at.exception
        errors = " ".join(e.value for e in at.error)
        assert "could not be decoded" in errors and message in errors
    st.cache_resource.clear()
