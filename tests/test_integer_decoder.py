"""ae.integer_decoder: integer tables made from float decoders compute what PyTorch's layers
compute (to int16 weight precision), their float64 products equal exact integer arithmetic,
pixels are round(255 * sigmoid) chosen by integer thresholds, and malformed or unprovable
tables are refused."""
import dataclasses
import json

import numpy as np
import pytest
import torch
import torch.nn as nn

import ae.integer_decoder as integer_decoder
from ae.config import MAX_SYMBOL
from ae.integer_decoder import (IntegerDecoder, IntegerDecoderError, _apply, _prepared, exactness_bounds,
                                pixel_thresholds)
from ae.rdae import plain_layers

LATENT = 6


def decoders() -> dict[str, nn.Sequential]:
    """Decoder shapes the conversion must handle: dense; the rdcnn layout; a 2x2 transposed
    convolution then a stride-1 convolution widening the channels (patches) and one narrowing
    them (taps); a stride-3 transposed convolution whose kernel is smaller than two strides."""
    torch.manual_seed(0)
    return {
        "dense": nn.Sequential(nn.Linear(LATENT, 32), nn.ReLU(), nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 784)),
        "rdcnn": nn.Sequential(nn.Linear(LATENT, 40), nn.ReLU(), nn.Linear(40, 8 * 49), nn.ReLU(),
                               nn.Unflatten(1, (8, 7, 7)), nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1), nn.ReLU(),
                               nn.ConvTranspose2d(4, 3, 4, stride=2, padding=1), nn.ReLU(),
                               nn.Conv2d(3, 1, 3, padding=1), nn.Flatten()),
        "widening": nn.Sequential(nn.Linear(LATENT, 4 * 196), nn.ReLU(), nn.Unflatten(1, (4, 14, 14)),
                                  nn.ConvTranspose2d(4, 2, 2, stride=2), nn.ReLU(), nn.Conv2d(2, 3, 5, padding=2),
                                  nn.ReLU(), nn.Conv2d(3, 1, 3, padding=1), nn.Flatten()),
        "stride-3": nn.Sequential(nn.Linear(LATENT, 3 * 100), nn.ReLU(), nn.Unflatten(1, (3, 10, 10)),
                                  nn.ConvTranspose2d(3, 2, 3, stride=3, padding=1), nn.ReLU(),
                                  nn.Conv2d(2, 1, 1), nn.Flatten()),
    }


def symbols(n: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(-6, 7, size=(n, LATENT))
    extreme = rng.choice([-MAX_SYMBOL, MAX_SYMBOL], size=(8, LATENT))  # the bounds' worst cases
    return np.concatenate([small, extreme]).astype(np.int32)


def exact_logits(decoder: IntegerDecoder, sym: np.ndarray) -> np.ndarray:
    """The same layers in int64 arithmetic (numpy's integer products: no BLAS, no rounding)."""
    x = sym.astype(np.int64)
    for layer in decoder.layers:
        x = _apply(layer, x, _prepared(layer).astype(np.int64), layer.column_bias().astype(np.int64))
        if layer.shift is not None:
            x = np.maximum(x, 0) >> layer.shift
    return (x.transpose(0, 3, 1, 2) if x.ndim == 4 else x).reshape(len(x), -1)


@pytest.mark.parametrize("name", list(decoders()))
def test_integer_logits_are_pytorchs_to_weight_precision(name):
    torch_decoder = decoders()[name].double().eval()
    decoder = IntegerDecoder.from_layers(plain_layers(torch_decoder))
    sym = symbols()
    ours = decoder.logits(sym) * 2.0 ** -decoder.logit_exponent
    with torch.no_grad():
        reference = torch_decoder(torch.from_numpy(sym).double()).numpy()
    assert ours.shape == reference.shape == (len(sym), 784)
    assert np.abs(ours - reference).max() <= 1e-3 * np.abs(reference).max()


@pytest.mark.parametrize("name", list(decoders()))
def test_float64_products_equal_integer_arithmetic(name):
    """What makes the pixels the same everywhere: BLAS in float64 gives exactly the int64 result."""
    decoder = IntegerDecoder.from_layers(plain_layers(decoders()[name]))
    sym = symbols(seed=1)
    assert np.array_equal(decoder.logits(sym), exact_logits(decoder, sym))
    assert max(decoder.bounds) < 2.0 ** 52 and len(decoder.bounds) == len(decoder.layers)


@pytest.mark.parametrize("name", list(decoders()))
def test_pixels_are_the_thresholds_counted_on_integer_logits(name):
    """The fast path (float64 activations with the shifts in the weights, convolution steps, the
    lookup of `ae.pixel_levels`) gives exactly searchsorted on the int64 reference's logits."""
    decoder = IntegerDecoder.from_layers(plain_layers(decoders()[name]))
    sym = symbols(n=200, seed=2)
    expected = np.searchsorted(decoder.thresholds, exact_logits(decoder, sym), side="right")
    pixels = decoder.pixels(sym)
    assert pixels.dtype == np.uint8 and np.array_equal(pixels.reshape(len(sym), -1), expected)
    assert len(np.unique(pixels)) > 20  # not a degenerate image of a few levels


@pytest.mark.parametrize("name", ["rdcnn", "widening"])
def test_chunks_steps_and_threads_do_not_change_the_result(name, monkeypatch):
    decoder = IntegerDecoder.from_layers(plain_layers(decoders()[name]))
    sym = symbols(n=100)
    whole = decoder.pixels(sym)
    assert whole.shape == (len(sym), 28, 28)
    monkeypatch.setattr(integer_decoder, "CHUNK_DIGITS", 7)
    monkeypatch.setattr(integer_decoder, "STEP_BYTES", 1)  # convolutions one digit at a time
    stepped = IntegerDecoder(decoder.layers, decoder.logit_exponent, decoder.thresholds)
    assert stepped._steps[-1] == 1 and stepped._steps[0] == 7
    for threads in ("1", "3"):
        monkeypatch.setenv("AE_DECODER_THREADS", threads)
        assert np.array_equal(stepped.pixels(sym), whole)
        assert np.array_equal(decoder.logits(sym), stepped.logits(sym))
    assert np.array_equal(np.concatenate([decoder.pixels(sym[i:i + 1]) for i in range(len(sym))]), whole)


def test_pixels_are_round_255_sigmoid_of_the_logit():
    for exponent in (0, 7, 26, 40):
        thresholds = pixel_thresholds(exponent)
        assert thresholds[127] == 0  # pixel 128 starts at logit 0
        assert np.all(thresholds[:127] + thresholds[:127:-1] == 1)  # logit is odd: T_k + T_(256-k) = 1
        logit = np.random.default_rng(exponent).normal(0, 4, 20_000) * 2.0 ** exponent
        logit = np.concatenate([np.rint(logit), thresholds, thresholds - 1]).astype(np.int64)
        levels = np.searchsorted(thresholds, logit, side="right")
        expected = 255 / (1 + np.exp(-logit * 2.0 ** -exponent))
        clear = np.abs(expected - np.floor(expected) - 0.5) > 1e-6 * 2.0 ** -min(exponent, 20)
        assert np.array_equal(levels[clear], np.round(expected[clear])) and clear.mean() > 0.8  # ties: L = 0 at exponent 0
    assert np.array_equal(pixel_thresholds(26), pixel_thresholds(26))


def test_tables_that_could_overflow_2_53_are_refused():
    decoder = IntegerDecoder.from_layers(plain_layers(decoders()["dense"]))
    big = dataclasses.replace(decoder.layers[1], weight=decoder.layers[1].weight.astype(np.int64) << 30)
    with pytest.raises(IntegerDecoderError, match="not provably exact"):
        IntegerDecoder([decoder.layers[0], big, decoder.layers[2]], decoder.logit_exponent, decoder.thresholds)
    with pytest.raises(IntegerDecoderError, match="not provably exact"):
        exactness_bounds(decoder.layers, max_symbol=1 << 40)


def test_tables_round_trip_through_their_file_and_bad_files_are_refused():
    decoder = IntegerDecoder.from_layers(plain_layers(decoders()["rdcnn"]))
    data = decoder.to_bytes("ab" * 32)
    again, made_from = IntegerDecoder.from_bytes(data)
    assert made_from == "ab" * 32 and again.to_bytes(made_from) == data
    assert np.array_equal(again.logits(symbols()), decoder.logits(symbols()))
    assert IntegerDecoder.from_layers(plain_layers(decoders()["rdcnn"])).to_bytes("ab" * 32) == data  # deterministic

    header_len = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + header_len])
    meta = json.loads(header["__metadata__"]["integer_decoder"])

    def with_meta(**changes) -> bytes:
        new = dict(header, __metadata__={"integer_decoder": json.dumps(meta | changes)})
        text = json.dumps(new).encode()
        return len(text).to_bytes(8, "little") + text + data[8 + header_len:]

    layers = meta["layers"]
    bad = [data[:100], data[:-1], b"", with_meta(format=2), with_meta(logit_exponent="x"),
           with_meta(layers=layers[:-1]), with_meta(layers=[layers[0] | {"shift": 70}, *layers[1:]]),
           with_meta(layers=[*layers[:-1], layers[-1] | {"shift": 3}]),
           with_meta(layers=[layers[0], layers[1] | {"kind": "attention"}, *layers[2:]]),
           with_meta(layers=[*layers[:2], layers[2] | {"crop": 40}, *layers[3:]])]
    for blob in bad:
        with pytest.raises(IntegerDecoderError):
            IntegerDecoder.from_bytes(blob)


def test_decoders_without_an_integer_form_are_refused():
    with pytest.raises(ValueError, match="no counterpart"):
        plain_layers(nn.Sequential(nn.Linear(LATENT, 784), nn.Sigmoid()))
    relu_last = plain_layers(nn.Sequential(nn.Linear(LATENT, 784), nn.ReLU()))
    with pytest.raises(IntegerDecoderError, match="last"):
        IntegerDecoder.from_layers(relu_last)
    with pytest.raises(IntegerDecoderError, match="784"):
        IntegerDecoder.from_layers(plain_layers(nn.Sequential(nn.Linear(LATENT, 100))))
    decoder = IntegerDecoder.from_layers(plain_layers(decoders()["dense"]))
    for bad in (np.zeros((2, LATENT + 1), np.int32), np.full((1, LATENT), MAX_SYMBOL + 1), np.zeros((1, LATENT))):
        with pytest.raises(IntegerDecoderError):
            decoder.pixels(bad)
