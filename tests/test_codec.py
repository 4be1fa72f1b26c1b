"""The codec: exact round trips, real sizes, determinism, and rejection of anything not a valid
payload of the model at hand. Uses a tiny rate-distortion model trained for a few seconds on
the bundled sample, so nothing here needs the dataset."""
import hashlib
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ae.architectures import build_model
from ae.codec import (CodecError, PointCoder, SINGLE_HEADER_BYTES, compress, compress_symbols, decompress,
                      parse_header)
from ae.entropy import ALPHABET, MAX_SYMBOL, TABLE_BITS, quantize
from ae.models import ModelConfig
from ae.rdae import TapSumConv2d
from ae.train import CodecSettings, Trainer
from ae.weights import save_model


FAST = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


TINY = {"rdae": ModelConfig(arch="rdae", latent_dim=8, hidden=64),
        "rdcnn": ModelConfig(arch="rdcnn", latent_dim=8, hidden=32, channels=(4, 8, 8)),
        "rdhybrid": ModelConfig(arch="rdhybrid", latent_dim=8, hidden=32, channels=(4, 8, 8))}


def tiny_model(sample, seed: int, target_bits: float = 40.0, steps: int = 40, arch: str = "rdae"):
    torch.manual_seed(seed)
    model = build_model(TINY[arch])
    settings = CodecSettings(model=arch, epochs=10, batch_size=100, lr=3e-3, max_steps=steps, seed=seed,
                             rate_target_bits=target_bits, beta=1e-3)
    trainer = Trainer(settings, sample, model=model)
    list(trainer.run())
    model.update()
    return model.eval()


@pytest.fixture(scope="module")
def coder(sample):
    return PointCoder(tiny_model(sample, seed=1), point_id=1, name="tiny")


@pytest.fixture(scope="module")
def other_coder(sample):
    # Another model that claims the same operating-point id.
    return PointCoder(tiny_model(sample, seed=2), point_id=1, name="other")


@pytest.fixture(scope="module")
def payloads(coder, sample):
    return [compress(sample.images[i], coder) for i in (0, 137, 555, 999)]


def test_round_trip_equals_decoding_the_rounded_latents(coder, sample):
    x = sample.images[:50]
    rounded = quantize(coder.model.analyse(x), "symbols").numpy()
    direct = coder.images(rounded)  # the integer decoder
    for i in range(0, 50, 7):
        assert torch.equal(decompress(compress(x[i], coder), [coder]).images, direct[i:i + 1])
    decoded = decompress(compress(x, coder), [coder])
    assert torch.equal(decoded.images, direct) and decoded.point == "tiny"
    assert np.array_equal(decoded.symbols, rounded)
    assert np.array_equal(decoded.pixels, coder.pixels(rounded)) and decoded.pixels.dtype == np.uint8
    # The integer decoder is the float decoder to within one 8-bit level.
    assert (direct - coder.model.decode_exact(torch.from_numpy(rounded))).abs().max() <= 1 / 255 + 1e-6


def test_single_digit_payload_and_container_layout(coder, sample):
    single = compress(sample.images[3], coder)
    point_id, container, count, header = parse_header(single)
    assert (point_id, container, count, header) == (1, False, 1, SINGLE_HEADER_BYTES)
    many = compress(sample.images[:300], coder)
    assert parse_header(many)[:3] == (1, True, 300)
    # One stream for many digits pays the coder's termination once.
    singles = sum(len(compress(sample.images[i], coder)) for i in range(300))
    assert len(many) < singles - 300 * SINGLE_HEADER_BYTES


def test_payload_size_is_close_to_the_information_content(coder, sample):
    """The body is trimmed to (almost) the entropy estimate: not whole 32-bit words."""
    symbols = coder.symbols(sample.images[:200])
    sizes = np.array([len(compress_symbols(symbols[i:i + 1], coder)) - SINGLE_HEADER_BYTES for i in range(200)])
    estimate = coder.estimated_bits(symbols) / 8
    assert np.all(sizes <= np.ceil(estimate) + 2)
    assert sizes.mean() < estimate.mean() + 1.0
    assert len({s % 4 for s in sizes}) > 1  # not padded to words


@FAST
@given(data=st.data())
def test_any_symbols_round_trip_even_improbable_ones(coder, data):
    n = data.draw(st.integers(1, 5))
    values = st.one_of(st.integers(-MAX_SYMBOL, MAX_SYMBOL), st.sampled_from([-MAX_SYMBOL, 0, MAX_SYMBOL]))
    symbols = np.array(data.draw(st.lists(values, min_size=8 * n, max_size=8 * n)), dtype=np.int32).reshape(n, 8)
    decoded = decompress(compress_symbols(symbols, coder, container=n > 1), [coder])
    assert np.array_equal(decoded.symbols, symbols)
    assert torch.equal(decoded.images, coder.images(symbols))


def test_integer_tables_are_valid_and_update_is_idempotent(coder):
    freq = coder.model.prior.frequencies
    assert freq.shape == (8, ALPHABET) and freq.dtype == torch.int32
    assert torch.all(freq >= 1) and torch.all(freq.sum(1) == 2 ** TABLE_BITS)
    before = freq.clone()
    coder.model.update()
    assert torch.equal(coder.model.prior.frequencies, before)


def test_symbols_are_clamped_to_the_alphabet():
    y = torch.tensor([[-1000.0, -0.6, 0.4, 0.5, 2.5, 1000.0]])
    assert quantize(y, "symbols").tolist() == [[-MAX_SYMBOL, -1, 0, 0, 2, MAX_SYMBOL]]


def in_fresh_processes(script: str, *args: str) -> list[str]:
    """The script's output in a new process with one BLAS/OpenMP thread, then with two."""
    outputs = []
    for threads in ("1", "2"):
        env = os.environ | {"OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        run = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120, env=env)
        assert run.returncode == 0, run.stderr
        outputs.append(run.stdout.strip())
    return outputs


@pytest.mark.slow  # starts two Python processes
def test_decoding_is_bit_identical_across_processes_and_thread_counts(coder, sample, tmp_path):
    path = save_model(coder.model, tmp_path / "tiny.safetensors", {})
    payload = compress(sample.images[:200], coder)
    (tmp_path / "p.aez").write_bytes(payload)
    script = textwrap.dedent(f"""
        import hashlib
        from ae.codec import PointCoder, decompress
        from ae.weights import load_model
        coder = PointCoder(load_model({str(path)!r}), 1, "tiny")
        out = decompress(open({str(tmp_path / 'p.aez')!r}, "rb").read(), [coder]).images
        print(hashlib.sha256(out.numpy().tobytes()).hexdigest())
    """)
    here = hashlib.sha256(decompress(payload, [coder]).images.numpy().tobytes()).hexdigest()
    assert in_fresh_processes(script) == [here, here]


@pytest.mark.slow  # trains a model and starts a Python process
def test_convolutional_model_codes_exactly_and_identically_across_thread_counts(sample, tmp_path):
    """The convolutional codec model shares the machinery: a payload decodes to the rounded
    latents' exact decoding, the same bytes with one thread and with two."""
    conv = PointCoder(tiny_model(sample, seed=3, steps=20, arch="rdcnn"), point_id=2, name="tiny-conv")
    x = sample.images[:40]
    rounded = quantize(conv.model.analyse(x), "symbols")
    direct = conv.images(rounded.numpy())
    payload = compress(x, conv)
    assert torch.equal(decompress(payload, [conv]).images, direct)
    assert torch.equal(decompress(compress(x[5], conv), [conv]).images, direct[5:6])
    assert (direct * 255 - (direct * 255).round()).abs().max() < 1e-4  # on the 8-bit grid
    assert (direct - conv.model.decode_exact(rounded)).abs().max() <= 1 / 255 + 1e-6
    path = save_model(conv.model, tmp_path / "conv.safetensors", {})
    script = textwrap.dedent(f"""
        import hashlib, sys
        from ae.codec import PointCoder, decompress
        from ae.weights import load_model
        coder = PointCoder(load_model({str(path)!r}), 2, "tiny-conv")
        out = decompress(bytes.fromhex(sys.argv[1]), [coder]).images
        print(hashlib.sha256(out.numpy().tobytes()).hexdigest())
    """)
    assert in_fresh_processes(script, payload.hex()) == [hashlib.sha256(direct.numpy().tobytes()).hexdigest()] * 2


@pytest.mark.parametrize("arch", ["rdcnn", "rdhybrid"])
def test_exact_decoding_is_chunk_independent_and_matches_the_float32_decoder(sample, arch):
    """decode_exact works through the digits in chunks (conv models) in float64: the chunking must
    not change a pixel, and the result is the float32 decoder's output rounded to 8 bits."""
    model = tiny_model(sample, seed=4, steps=10, arch=arch)
    symbols = quantize(model.analyse(sample.images[:300]), "symbols")  # 300: several 128-digit chunks
    chunked = model.decode_exact(symbols)
    type(model).INFERENCE_CHUNK, saved = None, type(model).INFERENCE_CHUNK
    try:
        model.train().eval()  # drops the cached float64 copy
        whole = model.decode_exact(symbols)
    finally:
        type(model).INFERENCE_CHUNK = saved
    assert torch.equal(chunked, whole)
    with torch.no_grad():
        assert (chunked - model.decode(symbols.float())).abs().max() <= 0.5 / 255 + 1e-5
    assert torch.equal(model.encode(sample.images[:300]), symbols.float())  # chunked encoder too


@pytest.mark.parametrize("kernel,c_in,c_out", [(3, 8, 1), (3, 4, 6), (5, 3, 2)])
def test_tap_sum_convolution_equals_pytorchs(kernel, c_in, c_out):
    torch.manual_seed(kernel * c_in + c_out)
    conv = torch.nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2).double()
    x = torch.randn(5, c_in, 28, 28, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(TapSumConv2d(conv)(x), conv(x), rtol=0, atol=1e-12)
    with pytest.raises(ValueError):
        TapSumConv2d(torch.nn.Conv2d(c_in, c_out, kernel, stride=2).double())


def test_every_single_byte_change_is_rejected(coder, payloads):
    for payload in payloads[:2]:
        for pos in range(len(payload)):
            for value in range(256):
                if value != payload[pos]:
                    corrupt = payload[:pos] + bytes([value]) + payload[pos + 1:]
                    with pytest.raises(CodecError):
                        decompress(corrupt, [coder])


@FAST
@given(data=st.data())
def test_byte_flips_anywhere_are_rejected(coder, payloads, data):
    payload = data.draw(st.sampled_from(payloads))
    pos = data.draw(st.integers(0, len(payload) - 1))
    flip = data.draw(st.integers(1, 255))
    corrupt = payload[:pos] + bytes([payload[pos] ^ flip]) + payload[pos + 1:]
    with pytest.raises(CodecError):
        decompress(corrupt, [coder])


def test_every_truncation_and_extension_is_rejected(coder, payloads, sample):
    container = compress(sample.images[:20], coder)
    for payload in [*payloads, container]:
        for cut in range(len(payload)):
            with pytest.raises(CodecError):
                decompress(payload[:cut], [coder])
        with pytest.raises(CodecError):
            decompress(payload + b"\x00", [coder])


@FAST
@given(blob=st.binary(max_size=64))
def test_random_bytes_are_rejected(coder, blob):
    with pytest.raises(CodecError):
        decompress(blob, [coder])


def test_empty_and_non_bytes_inputs_are_rejected(coder):
    for bad in (b"", b"\x21", "not bytes", None):
        with pytest.raises(CodecError):
            decompress(bad, [coder])


def test_payload_of_another_model_is_rejected(coder, other_coder, sample):
    for i in range(20):
        foreign = compress(sample.images[i], other_coder)
        assert parse_header(foreign)[0] == coder.id  # same id in the header...
        with pytest.raises(CodecError, match="another model"):
            decompress(foreign, [coder])  # ...but not this model's payload
    with pytest.raises(CodecError, match="another model"):
        decompress(compress(sample.images[:10], other_coder), [coder])
    renumbered = PointCoder(coder.model, point_id=5, name="five")
    with pytest.raises(CodecError, match="does not have"):
        decompress(compress(sample.images[0], renumbered), [coder])


@pytest.mark.parametrize("bad", [np.zeros((27, 28)), np.full((28, 28), 2.0), np.full((28, 28), np.nan),
                                 np.zeros((0, 1, 28, 28)), "digit", np.zeros((28, 28), dtype=np.int64)])
def test_bad_images_are_rejected(coder, bad):
    with pytest.raises(CodecError):
        compress(bad, coder)


def test_accepts_numpy_uint8_and_torch_inputs(coder, sample):
    x = sample.images[7, 0]
    as_uint8 = (x * 255).round().to(torch.uint8).numpy()
    assert compress(x.numpy(), coder) == compress(x, coder) == compress(as_uint8, coder)


def test_compress_refuses_a_model_without_tables(sample, tmp_path, monkeypatch):
    import ae.registry

    untrained = build_model(TINY["rdae"])  # update() never ran: its integer tables are empty
    for model in (untrained, build_model(ModelConfig(arch="ff", latent_dim=8, hidden=16))):  # no prior at all
        with pytest.raises(CodecError, match="no integer probability tables"):
            PointCoder(model, point_id=1, name="raw")
    # The same refusal through compress, for an operating point whose card names such weights.
    monkeypatch.setattr(ae.registry, "WEIGHTS_DIR", tmp_path)
    save_model(untrained, tmp_path / "raw-q1.safetensors", {"codec": {"id": 1, "label": "no tables"}})
    with pytest.raises(CodecError, match="raw-q1 has no integer probability tables"):
        compress(sample.images[0], "raw-q1")
