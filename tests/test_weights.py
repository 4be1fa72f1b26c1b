import json

import pytest
import torch

from ae.errors import WeightsError
from ae.architectures import build_model
from ae.models import DEFAULT_CONFIGS, ModelConfig
from ae.weights import card_path, load_card, load_model, save_model, weights_path


@pytest.fixture
def saved_cnn(tmp_path):
    torch.manual_seed(1)
    model = build_model(ModelConfig(arch="cnn", latent_dim=8, channels=(4, 8)))
    path = save_model(model, tmp_path / "tiny.safetensors", {"dataset": "none (a test)"})
    return model, path


def test_save_load_round_trip_rebuilds_from_the_card(saved_cnn):
    model, path = saved_cnn
    card = json.loads(card_path(path).read_text())
    assert card["config"]["latent_dim"] == 8 and len(card["sha256"]) == 64
    loaded = load_model(path)
    assert not loaded.training
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))


def test_truncated_file_is_a_clear_error(saved_cnn):
    _, path = saved_cnn
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="sha256"):
        load_model(path)
    card = load_card(path)
    del card["sha256"]  # without the checksum, safetensors itself must notice
    card_path(path).write_text(json.dumps(card))
    with pytest.raises(WeightsError, match="not a readable safetensors"):
        load_model(path)


def test_weights_that_do_not_fit_the_card(saved_cnn, tmp_path):
    _, path = saved_cnn
    card = load_card(path)
    card["config"]["latent_dim"] = 16
    del card["sha256"]
    card_path(path).write_text(json.dumps(card))
    with pytest.raises(WeightsError, match="does not fit"):
        load_model(path)


def test_missing_file_card_and_bad_card(tmp_path, saved_cnn):
    with pytest.raises(WeightsError, match="No weights file"):
        load_model(tmp_path / "absent.safetensors")
    _, path = saved_cnn
    card_path(path).write_text("{not json")
    with pytest.raises(WeightsError, match="not valid JSON"):
        load_model(path)
    card_path(path).unlink()
    with pytest.raises(WeightsError, match="No weights card"):
        load_model(path)


def test_a_pickle_is_refused(tmp_path):
    path = tmp_path / "pickled.safetensors"
    torch.save(build_model(DEFAULT_CONFIGS["cnn"]).state_dict(), path)
    card_path(path).write_text(json.dumps({"config": DEFAULT_CONFIGS["cnn"].to_dict()}))
    with pytest.raises(WeightsError):
        load_model(path)


def test_names_resolve_to_shipped_then_user_models(tmp_path):
    assert weights_path("cnn").name == "cnn.safetensors" and weights_path("cnn").parent.name == "weights"
    user = save_model(build_model(DEFAULT_CONFIGS["cnn"]), tmp_path / "user_models" / "mine.safetensors")
    assert weights_path("mine") == user  # AE_USER_MODELS_DIR points at tmp_path/user_models


@pytest.mark.parametrize("name", ["ff", "cnn", "classifier"])
def test_shipped_weights_load_and_have_measured_cards(name):
    model = load_model(name)
    card = load_card(name)
    assert card["training"]["train_size"] is None and "60,000 digits" in card["dataset"]
    assert card["metrics"]["digits"] == 10_000  # measured on the full test set
    assert card["parameters"] == sum(p.numel() for p in model.parameters())


def test_half_precision_storage_halves_the_file_and_still_loads(tmp_path):
    torch.manual_seed(0)
    model = build_model(DEFAULT_CONFIGS["ff"]).eval()
    full = save_model(model, tmp_path / "full.safetensors")
    half = save_model(model, tmp_path / "half.safetensors", half=True)
    assert half.stat().st_size < 0.55 * full.stat().st_size
    assert load_card(half)["storage_dtype"] == "float16"
    restored = load_model(half)
    assert all(p.dtype == torch.float32 for p in restored.parameters())
    x = torch.rand(8, 1, 28, 28)
    with torch.no_grad():
        assert (restored(x) - model(x)).abs().max() < 1e-2


def test_half_command_converts_in_place_and_drops_stale_figures(saved_cnn, capsys):
    from ae.cli import main
    model, path = saved_cnn
    card = load_card(path) | {"metrics": {"psnr": 1.0}, "training": {"epochs": 3}}
    card_path(path).write_text(json.dumps(card))
    old_sha, old_size = card["sha256"], path.stat().st_size
    assert main(["half", str(path)]) == 0
    new = load_card(path)
    assert new["storage_dtype"] == "float16" and "metrics" not in new and new["training"] == {"epochs": 3}
    assert new["converted"]["from_sha256"] == old_sha and path.stat().st_size < 0.6 * old_size
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(load_model(path)(x), model.eval()(x), atol=1e-2)
    assert main(["half", str(path)]) == 0 and "already float16" in capsys.readouterr().out
    assert main(["half", str(path.with_name("absent.safetensors"))]) == 2
