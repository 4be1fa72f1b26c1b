"""Refined points: the quantised residual's integer rules, its tables, a refined coder's
payloads (in memory and the shipped rd-q5), and cards whose residual block is broken."""
import numpy as np
import pytest
import torch

from ae.codec import CodecError, PointCoder, compress, compress_symbols, decompress, get_coder
from ae.config import TABLE_BITS
from ae.images import batch_to_uint8
from ae.refined_coder import RefinedPointCoder, refined_from_card
from ae.registry import operating_points
from ae.residual import (CONTEXTS, ResidualError, ResidualTables, contexts, fit_frequencies, levels, quantise,
                         refine)

rng = np.random.default_rng(0)


def random_pixels(n: int) -> np.ndarray:
    return rng.integers(0, 256, size=(n, 28, 28)).astype(np.uint8)


@pytest.mark.parametrize("step, deadzone", [(1, 8), (40, 11), (64, 16), (255, 8)])
def test_the_residual_never_makes_a_pixel_worse_and_bounds_its_error(step, deadzone):
    pixels, base = random_pixels(50), random_pixels(50)
    residual = quantise(pixels, base, step, deadzone)
    assert np.abs(residual).max() <= levels(step)
    refined = refine(base, residual, step).astype(int)
    before, after = np.abs(pixels.astype(int) - base), np.abs(pixels.astype(int) - refined)
    assert np.all(after <= before)
    # Sent as zero below the dead zone; otherwise rounded to within half a step.
    assert after.max() <= max(-(-deadzone * step // 16) - 1, step // 2)


def test_contexts_come_from_the_base_pixels_alone():
    base = random_pixels(20)
    ctx = contexts(base)
    assert ctx.shape == (20, 784) and ctx.min() >= 0 and ctx.max() < CONTEXTS
    assert np.array_equal(contexts(base[3:4]), ctx[3:4])  # per digit: chunks do not matter
    assert set(np.unique(contexts(np.zeros((1, 28, 28), np.uint8)))) == {0}


def test_fitted_tables_are_integer_rows_summing_to_the_table_total():
    base, pixels = random_pixels(30), random_pixels(30)
    table = fit_frequencies(base, quantise(pixels, base, 40, 11), 40)
    assert table.shape == (CONTEXTS, 2 * levels(40) + 1) and table.dtype == np.int64
    assert table.min() >= 1 and np.all(table.sum(1) == 1 << TABLE_BITS)
    again = ResidualTables.from_card(ResidualTables(40, 11, table).card_block())
    assert np.array_equal(again.frequencies, table) and (again.step, again.deadzone) == (40, 11)


def good_block() -> dict:
    width = 2 * levels(40) + 1
    row = [1] * (width - 1) + [(1 << TABLE_BITS) - (width - 1)]
    return {"step": 40, "deadzone": 11, "frequencies": [row] * CONTEXTS}


@pytest.mark.parametrize("change, message", [
    ({"step": 0}, "'step'"), ({"step": True}, "'step'"), ({"step": 40.0}, "'step'"),
    ({"deadzone": 20}, "'deadzone'"), ({"frequencies": [[1] * 13] * 3}, "'frequencies'"),
    ({"frequencies": "many"}, "'frequencies'"), ({"frequencies": [[0] * 12 + [1 << TABLE_BITS]] * CONTEXTS}, ">= 1"),
    ({"frequencies": [[1] * 13] * CONTEXTS}, "sum to"),
])
def test_a_broken_residual_block_is_refused_with_what_is_wrong(change, message):
    ResidualTables.from_card(good_block())  # the unchanged block is fine
    with pytest.raises(ResidualError, match=message):
        ResidualTables.from_card(good_block() | change)
    with pytest.raises(ResidualError):
        ResidualTables.from_card(["not", "a", "block"])


@pytest.fixture(scope="module")
def tiny_refined(sample):
    from ae.architectures import build_model
    from ae.models import ModelConfig

    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="rdae", latent_dim=8, hidden=64))
    model.prior.update()
    base = PointCoder(model, 1, "tiny")
    images = sample.images[:200]
    pixels = base.pixels(base.symbols(images))
    tables = fit_frequencies(pixels, quantise(batch_to_uint8(images), pixels, 32, 10), 32)
    return base, RefinedPointCoder(base, ResidualTables(32, 10, tables))


def test_a_refined_coder_round_trips_single_digits_and_containers(tiny_refined, sample):
    base, refined = tiny_refined
    images = sample.images[200:230]
    symbols = refined.symbols(images)
    assert symbols.shape == (30, base.dims + 784)
    assert np.array_equal(symbols[:, :base.dims], base.symbols(images))  # the base's latents, unchanged
    pixels = refined.pixels(symbols)
    truth = batch_to_uint8(images).astype(int)
    assert np.all(np.abs(truth - pixels) <= np.abs(truth - base.pixels(symbols[:, :base.dims])))
    for i in range(3):
        payload = compress_symbols(symbols[i:i + 1], refined)
        assert np.array_equal(decompress(payload, coders=[refined]).pixels[0], pixels[i])
        # what the payload costs is its information content and a few bits of stream end
        assert 0 <= 8 * (len(payload) - 2) - refined.estimated_bits(symbols[i:i + 1])[0] < 40
    container = compress(images, refined, container=True)
    decoded = decompress(container, coders=[refined])
    assert np.array_equal(decoded.pixels, pixels) and np.array_equal(decoded.symbols, symbols)


def test_the_base_picture_cache_keeps_a_few_chunks_and_no_big_batch(tiny_refined, sample):
    from ae.codec import CHUNK_DIGITS

    _, refined = tiny_refined
    symbols = refined.symbols(sample.images[:20])
    many = np.repeat(symbols, CHUNK_DIGITS // 20 + 1, axis=0)  # one more than a chunk
    refined.pixels(many)
    assert all(len(key) <= CHUNK_DIGITS * 4 * refined.latent_dims for key in refined._recent_bases)
    for n in range(1, 8):
        refined.pixels(symbols[:n])
    assert len(refined._recent_bases) == refined.RECENT_BASES


def test_a_refined_payload_is_not_its_base_points(tiny_refined, sample):
    base, refined = tiny_refined
    assert refined.id == base.id and refined.fingerprint != base.fingerprint  # the tables are in it
    for payload in (compress(sample.images[0], refined), compress(sample.images[:5], refined, container=True)):
        with pytest.raises(CodecError):
            decompress(payload, coders=[base])
    with pytest.raises(CodecError):
        decompress(compress(sample.images[0], base), coders=[refined])


def test_a_container_too_short_for_its_count_is_refused_from_its_length(tiny_refined, sample):
    from ae.codec import frame

    _, refined = tiny_refined
    body = compress(sample.images[:4], refined, container=True)[6:]  # after tag, count (1 byte) and CRC-32
    claims = refined.max_digits_in(len(body)) + 1
    with pytest.raises(CodecError, match="can hold at most"):
        decompress(frame(refined, body, claims, container=True), coders=[refined], max_digits=1 << 20)


def test_a_card_with_a_broken_residual_block_gives_the_codecs_message(tiny_refined):
    base, _ = tiny_refined
    with pytest.raises(CodecError, match="tiny's residual tables are unusable: 'step'"):
        refined_from_card(base, good_block() | {"step": -1})


shipped = pytest.mark.skipif("rd-q5" not in [p.name for p in operating_points()], reason="no shipped rd-q5")


@shipped
def test_the_shipped_refined_point_improves_every_pixel_of_its_base(sample):
    from ae.images import from_uint8
    from ae.metrics import psnr

    refined = get_coder("rd-q5")
    base = get_coder("rd-q2")
    # rd-q5's files are a copy of rd-q2's: one coder in memory serves both
    assert isinstance(refined, RefinedPointCoder) and refined.base is base and (refined.name, refined.id) == ("rd-q5", 0)
    images = sample.images[:300]
    latents = base.symbols(images)
    assert np.array_equal(refined.symbols(images)[:, :base.dims], latents)  # rd-q2's encoder, rd-q2's latents
    truth = batch_to_uint8(images).astype(int)
    ours, theirs = decompress(compress(images, "rd-q5")).pixels, base.pixels(latents)
    assert np.all(np.abs(truth - ours) <= np.abs(truth - theirs))
    gain = psnr(from_uint8(torch.from_numpy(ours[:, None])), images).mean() \
        - psnr(from_uint8(torch.from_numpy(theirs[:, None])), images).mean()
    assert gain > 5  # dB: what the residual's ~24 bytes buy


@shipped
@pytest.mark.parametrize("argv, message", [
    (["rd-q2", "--out", "rd-q9", "--id", "4"], "Point id 4 is rd-q4's"),
    (["rd-q2", "--out", "rd-q9", "--id", "2"], "Point id 2 is a retired point's"),
    (["rd-q2", "--out", "rd-q9", "--id", "9"], "does not fit a payload header"),
    (["rd-q2", "--out", "rd-q4", "--id", "0"], "Point id 0 is rd-q5's"),
    (["rd-q5", "--out", "rd-q9", "--id", "0"], "refined point already"),
    (["rd-q2", "--out", "bad name", "--id", "0"], "not a usable point name"),
])
def test_refine_point_refuses_what_it_cannot_make_before_reading_data(argv, message, capsys, tmp_path, monkeypatch):
    from ae.cli import main
    from ae.weights import WEIGHTS_DIR

    monkeypatch.setenv("AE_DATA_DIR", str(tmp_path))  # no dataset: a refusal must come first
    before = sorted(p.name for p in WEIGHTS_DIR.iterdir())
    assert main(["refine-point", *argv]) == 2
    assert message in capsys.readouterr().err
    assert sorted(p.name for p in WEIGHTS_DIR.iterdir()) == before
