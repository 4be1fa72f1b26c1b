"""The computing behind the app pages (ae.sizes, latent, layer_diagram, registry, live_training,
benchmark_results): real models, the bundled sample, no Streamlit."""
import hashlib
import json
import time

import numpy as np
import pytest
import torch

from ae.architectures import build_model
from ae.benchmark_results import BenchmarkUnavailable, load_benchmark
from ae.errors import WeightsError
from ae.layer_diagram import to_dot, trace_layers
from ae.latent import decode, encode_all, fit_pca, interpolate, most_varying_dims, move_dims
from ae.live_training import LiveTraining, training_data
from ae.models import DEFAULT_CONFIGS
from ae.registry import is_valid_name, list_models, user_model_path
from ae.sizes import (RAW_DIGIT_BYTES, UINT8_RANGE_BYTES, float32_latent_decode, latent_representations,
                      png_decode, png_encode, pixel_representations, uint8_latent_decode, uint8_latent_encode,
                      uint8_latent_note)
from ae.train import TrainSettings
from ae.weights import save_model, user_models_dir


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {arch: build_model(DEFAULT_CONFIGS[arch]).eval() for arch in ("ff", "cnn")}


def test_pixel_sizes_are_real_decodable_bytes(sample):
    digit = sample.images[0, 0].numpy()
    raw, png = pixel_representations(digit)
    assert raw.size == RAW_DIGIT_BYTES == 784
    assert png.payload[:8] == b"\x89PNG\r\n\x1a\n" and png.size < raw.size
    as_uint8 = np.round(digit * 255) / 255
    assert np.array_equal(png_decode(png.payload), png.decoded)
    assert np.abs(png.decoded - as_uint8).max() < 1e-6  # PNG is lossless on the 8-bit digit
    assert png.psnr_against(digit) > 50


@pytest.mark.parametrize("arch", ["ff", "cnn"])
def test_latent_sizes_decode_through_the_model(models, sample, arch):
    model = models[arch]
    z = model.encode(sample.images[:1])[0].detach()
    f32, u8 = latent_representations(model, z)
    assert f32.size == 4 * model.latent_dim
    assert u8.size == model.latent_dim + 8
    assert torch.equal(torch.from_numpy(float32_latent_decode(f32.payload)), z.float())
    step = (z.max() - z.min()).item() / 255
    assert np.abs(uint8_latent_decode(u8.payload) - z.numpy()).max() <= step / 2 + 1e-6
    exact = model.decode(z[None])[0, 0].detach().numpy()
    assert np.allclose(f32.decoded, exact, atol=1e-6)


def test_uint8_latent_of_a_constant_vector():
    z = np.full(10, 0.25, dtype=np.float32)
    assert np.allclose(uint8_latent_decode(uint8_latent_encode(z)), z)


def test_uint8_latent_payload_is_codes_plus_the_range_it_states(sample):
    z = np.random.default_rng(1).normal(size=37).astype(np.float32)
    payload = uint8_latent_encode(z)
    # The payload alone decodes: the range it carries, then one code per value.
    assert len(payload) == 37 + UINT8_RANGE_BYTES
    assert np.abs(uint8_latent_decode(payload) - z).max() <= (z.max() - z.min()) / 255 / 2 + 1e-6
    assert np.allclose(uint8_latent_decode(payload)[[z.argmin(), z.argmax()]], [z.min(), z.max()], atol=1e-6)
    assert uint8_latent_note(37).startswith(f"37 one-byte codes + {UINT8_RANGE_BYTES}-byte range")


@pytest.mark.parametrize("arch", ["ff", "cnn"])
def test_benchmark_8bit_row_is_the_draw_pages_payload(models, sample, arch):
    from ae.benchmark import Quality, uint8_latent_result
    from ae.data import Digits

    model = models[arch]
    data = Digits(sample.images[:6], sample.labels[:6], "six sample digits")
    row = uint8_latent_result(arch, model, Quality(data, None))
    with torch.no_grad():
        z = model.encode(data.images)
    payloads = [latent_representations(model, v)[1] for v in z]  # the Draw page's 8-bit form
    assert row.bytes_per_digit == np.mean([p.size for p in payloads]) == model.latent_dim + UINT8_RANGE_BYTES
    assert uint8_latent_note(model.latent_dim) in row.label
    expected = torch.tensor([p.psnr_against(x) for p, x in zip(payloads, data.images)]).mean().item()
    assert row.psnr == pytest.approx(expected, abs=1e-3)


def test_benchmark_png_is_the_draw_pages_png(sample):
    from ae.benchmark import classic_round_trip

    digit = sample.images[5, 0].numpy()
    pixels = (digit * 255).round().astype(np.uint8)
    size, decoded = classic_round_trip(pixels, "PNG", {})
    assert size == len(png_encode(digit)) and np.array_equal(decoded, pixels)


def test_principal_directions_and_moves(models, sample):
    z = encode_all(models["cnn"], sample.images[:300]).numpy()
    pca = fit_pca(z, k=6)
    assert pca.components.shape == (6, 32)
    assert np.allclose(pca.components @ pca.components.T, np.eye(6), atol=1e-4)
    assert np.all(np.diff(pca.explained) <= 1e-6) and pca.explained.sum() <= 1 + 1e-6
    assert np.allclose(pca.move(z[0], np.zeros(6)), z[0])
    moved = pca.move(z[0], [2.0])
    assert np.isclose(pca.coords(moved)[0, 0] - pca.coords(z[0])[0, 0], 2 * pca.scales[0], rtol=1e-3)
    assert np.allclose(pca.coords(pca.latent_at([1.5, -0.5]))[0, :2], [1.5, -0.5], atol=1e-4)
    dims, stds = most_varying_dims(z, 4)
    assert np.all(np.diff(stds) <= 0) and np.isclose(stds[0], z.std(0).max())
    assert np.isclose(move_dims(z[0], dims[:1], [1.0], stds[:1])[dims[0]], z[0, dims[0]] + stds[0])
    path = interpolate(z[0], z[1], 5)
    assert path.shape == (5, 32) and np.allclose(path[0], z[0]) and np.allclose(path[-1], z[1])
    assert decode(models["cnn"], path).shape == (5, 28, 28)


@pytest.mark.parametrize("arch,latent_shape", [("ff", (196,)), ("cnn", (32,))])
def test_layer_diagram_follows_the_model(models, arch, latent_shape):
    layers = trace_layers(models[arch])
    encoder = [l for l in layers if l.part == "encoder"]
    assert encoder[-1].shape == latent_shape
    assert layers[-1].shape in ((784,), (1, 28, 28)) and layers[-1].kind.endswith("Sigmoid")
    assert sum(l.parameters for l in layers) == sum(p.numel() for p in models[arch].parameters())
    dot = to_dot(models[arch])
    assert dot.startswith("digraph") and "latent z" in dot and "×".join(map(str, latent_shape)) in dot


def test_registry_lists_user_models_and_skips_broken_files(models):
    folder = user_models_dir()
    save_model(models["cnn"], user_model_path("my-cnn"), {"note": "test"})
    folder.joinpath("broken.safetensors").write_bytes(b"not weights")
    folder.joinpath("broken.json").write_text("{not json")
    names = [e.name for e in list_models(("cnn",)) if not e.shipped]
    assert names == ["my-cnn"]
    assert [e for e in list_models(("ff",)) if not e.shipped] == []
    assert not is_valid_name("cnn") and not is_valid_name("../evil") and not is_valid_name("")
    with pytest.raises(WeightsError):
        user_model_path("a/b")


def _wait(job, seconds=60):
    assert job.join(seconds), "training did not finish"
    return job.snapshot()


@pytest.mark.slow  # starts training processes
def test_live_training_saves_a_loadable_model_in_the_user_folder():
    from ae.weights import WEIGHTS_DIR, load_model

    data = training_data()
    assert not data.full_dataset and "bundled sample" in data.note
    shipped_before = sorted(p.name for p in WEIGHTS_DIR.glob("*")) if WEIGHTS_DIR.exists() else []
    job = LiveTraining(TrainSettings(model="cnn", latent_dim=8, epochs=1, train_size=120, batch_size=40,
                                     report_every=1, device="cpu"), "tiny-cnn").start()
    snap = _wait(job)
    assert snap.status == "done" and snap.error is None and snap.progress == 1.0
    assert snap.steps == [1, 2, 3] and len(snap.val_loss) == 1
    assert snap.preview.shape == (2, 8, 28, 28)
    assert snap.saved_path == user_models_dir() / "tiny-cnn.safetensors"
    model = load_model(snap.saved_path)
    assert model.latent_dim == 8
    card = json.loads(snap.saved_path.with_suffix(".json").read_text())
    assert card["trained_in"] == "app" and card["training"]["epochs_completed"] == 1
    assert card["training"]["threads"] == 1  # trained in its own one-thread process
    assert card["sha256"] == hashlib.sha256(snap.saved_path.read_bytes()).hexdigest()
    assert (sorted(p.name for p in WEIGHTS_DIR.glob("*")) if WEIGHTS_DIR.exists() else []) == shipped_before


@pytest.mark.slow  # starts training processes
def test_live_training_stops_when_asked():
    job = LiveTraining(TrainSettings(model="ff", epochs=50, batch_size=16, report_every=1, device="cpu"),
                       "stopped-ff")
    job.stop()  # before the first step: nothing to save
    snap = _wait(job.start())
    assert snap.status == "stopped" and snap.reason == "asked" and snap.saved_path is None
    assert list(user_models_dir().glob("stopped-ff*")) == []
    job = LiveTraining(TrainSettings(model="ff", epochs=50, batch_size=16, report_every=1, device="cpu"),
                       "stopped-ff").start()
    deadline = time.monotonic() + 30
    while not job.snapshot().steps and time.monotonic() < deadline:
        time.sleep(0.01)
    job.stop()
    snap = _wait(job)
    assert snap.status == "stopped" and snap.reason == "asked" and 0 < snap.steps[-1] < 50 * 50
    assert snap.saved_path.exists()


@pytest.mark.slow  # starts training processes
def test_one_live_training_at_a_time():
    from ae.live_training import TrainingBusy

    settings = TrainSettings(model="ff", epochs=50, batch_size=16, report_every=1, device="cpu")
    first = LiveTraining(settings, "first").start()
    try:
        with pytest.raises(TrainingBusy, match="first"):  # says who holds the slot
            LiveTraining(settings, "second").start()
    finally:
        first.stop()
        _wait(first)
    second = LiveTraining(settings, "second")
    second.stop()
    assert _wait(second.start()).status == "stopped"  # the slot is free again


def test_live_training_refuses_a_shipped_name():
    with pytest.raises(WeightsError):
        LiveTraining(TrainSettings(model="ff", epochs=1), "ff")


def test_benchmark_reader(tmp_path):
    with pytest.raises(BenchmarkUnavailable, match="python -m ae benchmark"):
        load_benchmark(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(BenchmarkUnavailable):
        load_benchmark(bad)
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"meta": {"digits": 10}, "results": [
        {"method": "png", "family": "classic", "label": "PNG", "setting": None, "bytes_per_digit": 120.5,
         "psnr": 100.0, "ssim": 1.0, "accuracy": 0.99, "digits_per_s_batch": None, "ms_single": 0.2},
        "junk"]}))
    bench = load_benchmark(good)
    assert len(bench.results) == 1 and bench.results[0]["family"] == "classic codec"
    assert bench.results[0]["digits_per_s_batch"] is None and bench.meta == {"digits": 10}
    assert bench.results[0]["series"] == "PNG"


def test_benchmark_series_group_settings_of_one_codec():
    from ae.benchmark_results import series_of

    assert series_of("webp-q50", "classic", "WebP q50") == series_of("webp-q90", "classic", "WebP q90") == "WebP"
    assert series_of("rd-q1", "neural", "x") != series_of("rd-q1-container", "neural", "y")
    assert series_of("ff-float32", "latent", "ff latents") == "ff latents"
    # Feedforward and convolutional codec points are separate lines, not one zigzag.
    assert series_of("rd-q3", "neural", "x", "rdae") != series_of("rd-q4", "neural", "y", "rdcnn")
    assert series_of("rd-q3", "neural", "x", "rdae") == series_of("rd-q1", "neural", "z", "rdae")
    assert series_of("rd-q3-fixed", "latent", "x", "rdae") != series_of("rd-q4-fixed", "latent", "y", "rdcnn")


def test_committed_benchmark_counts_the_8bit_latent_like_ae_sizes():
    from ae.registry import shipped_entry

    rows = {r["method"]: r for r in load_benchmark().results}
    for arch in ("ff", "cnn"):
        entry = shipped_entry(arch)
        if entry is None or f"{arch}-uint8" not in rows:
            continue
        row = rows[f"{arch}-uint8"]
        assert row["bytes_per_digit"] == entry.latent_dim + UINT8_RANGE_BYTES
        assert uint8_latent_note(entry.latent_dim) in row["label"]
