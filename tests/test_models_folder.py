"""The user models folder holds files from anyone: every broken or hostile entry is skipped by
`list_models` with a note naming the file, and `load_model` refuses it with a `WeightsError`
before anything is allocated."""
import json
import os

import pytest
import torch

from ae import architectures, weights
from ae.architectures import build_model
from ae.errors import WeightsError
from ae.models import ModelConfig
from ae.registry import MODEL_NAME, is_valid_name, list_models, scan_models, shipped_entry, skipped_models
from ae.weights import WEIGHTS_DIR, card_path, check_config, load_model, save_model, user_models_dir


@pytest.fixture
def folder():
    torch.manual_seed(0)
    save_model(build_model(ModelConfig(arch="cnn", latent_dim=8, channels=(4, 8))),
               user_models_dir() / "good.safetensors")
    return user_models_dir()


def broken(folder, name: str, card_text: str):
    """A small valid safetensors file beside a card with this text (no sha256: the card decides)."""
    save_model(build_model(ModelConfig(arch="ff", latent_dim=4, hidden=8)), folder / f"{name}.safetensors")
    card_path(folder / f"{name}.safetensors").write_text(card_text)
    return folder / f"{name}.safetensors"


def card(**config) -> str:
    return json.dumps({"config": config})


BAD_CARDS = {
    "config-is-a-string": (json.dumps({"config": "ff"}), "not an object"),
    "latent-minus-5": (card(arch="ff", latent_dim=-5, hidden=64), "-5 latent"),
    "latent-too-big": (card(arch="cnn", latent_dim=785, channels=[4, 8]), "785 latent"),
    "latent-a-string": (card(arch="ff", latent_dim="8", hidden=64), "whole number"),
    "latent-a-bool": (card(arch="ff", latent_dim=True, hidden=64), "whole number"),
    "latent-a-float": (card(arch="ff", latent_dim=8.5, hidden=64), "whole number"),
    "hidden-3000000": (card(arch="ff", latent_dim=8, hidden=3_000_000), "3000000 hidden"),
    "channels-not-ints": (card(arch="cnn", latent_dim=8, channels=[4, "8"]), "list of whole numbers"),
    "channels-a-dict": (card(arch="cnn", latent_dim=8, channels={"a": 1}), "list of whole numbers"),
    "too-many-stages": (card(arch="cnn", latent_dim=8, channels=[4] * 10), "stages"),
    "too-many-parameters": (card(arch="cnn", latent_dim=784, channels=[1024, 1024]), "parameters"),
    "unknown-arch": (card(arch="transformer", latent_dim=8), "no known architecture"),
    "unknown-key": (card(arch="ff", latent_dim=8, hidden=64, dropout=0.5), "unknown model config keys"),
    "rdcnn-two-stages": (card(arch="rdcnn", latent_dim=8, hidden=64, channels=[4, 8]), "describes no model"),
    "no-config": (json.dumps({"name": "x"}), "no 'config'"),
    "a-list": ("[1, 2, 3]", "no 'config'"),
    "nested-100000": ('{"config": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    "huge-integer": ('{"config": {"arch": "ff", "latent_dim": ' + "9" * 5000 + "}}", "not valid JSON"),
    "not-json": ("{not json", "not valid JSON"),
    "not-utf8": ("\udcff", None),  # written as bytes below
    "oversized": (json.dumps({"config": {"arch": "ff"}, "pad": "x" * (weights.MAX_CARD_BYTES + 1)}), "larger than"),
}


@pytest.mark.parametrize("name", sorted(BAD_CARDS))
def test_a_bad_card_is_skipped_with_a_note_and_refused_before_allocating(folder, name, monkeypatch):
    text, message = BAD_CARDS[name]
    path = broken(folder, name, "" if name == "not-utf8" else text)
    if name == "not-utf8":
        card_path(path).write_bytes(b'{"config": "\xff"}')
        message = "not valid JSON"

    assert [e.name for e in list_models(("ff", "cnn"))] == ["ff", "cnn", "good"]
    notes = dict(skipped_models())
    assert message in notes[path.name] and path.stem in notes[path.name]
    assert str(folder) not in notes[path.name]  # the file's name, never the server's folders

    built_on = []  # every model built while refusing the card must be shapes only ("meta")
    real_build = architectures.build_model  # ae.weights imports it when it builds (it loads torch)
    monkeypatch.setattr(architectures, "build_model",
                        lambda c: built_on.append(str(torch.get_default_device())) or real_build(c))
    with pytest.raises(WeightsError, match=message) as caught:
        load_model(path)
    assert str(folder) not in str(caught.value)
    assert all(device == "meta" for device in built_on)


def test_a_dangling_symlink_is_skipped_not_fatal(folder):
    (folder / "x.safetensors").symlink_to(folder / "nowhere.safetensors")
    assert [e.name for e in list_models(("cnn",))] == ["cnn", "good"]
    assert ("x.safetensors", "a broken link") in skipped_models()
    with pytest.raises(WeightsError, match="No weights file x.safetensors"):
        load_model(folder / "x.safetensors")


def test_weights_without_a_card_folders_and_fifos_are_skipped(folder):
    (folder / "lonely.safetensors").write_bytes(b"\0" * 16)
    (folder / "dir.safetensors").mkdir()
    card_path(folder / "dir.safetensors").write_text(card(arch="ff", latent_dim=4, hidden=8))
    fifo = broken(folder, "fifo", "")
    card_path(fifo).unlink()
    os.mkfifo(card_path(fifo))  # opening it to read would block forever
    notes = dict(skipped_models())
    assert notes["lonely.safetensors"] == "no JSON card beside it"
    assert "cannot be read" in notes["dir.safetensors"] and "cannot be read" in notes["fifo.safetensors"]
    assert [e.name for e in list_models(("cnn",))] == ["cnn", "good"]
    with pytest.raises(WeightsError, match="not a regular file"):
        load_model(fifo)
    with pytest.raises(WeightsError, match="not a regular file"):
        load_model(folder / "dir.safetensors")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_card_is_skipped(folder):
    path = broken(folder, "secret", card(arch="ff", latent_dim=4, hidden=8))
    card_path(path).chmod(0)
    assert "cannot be read" in dict(skipped_models())["secret.safetensors"]
    with pytest.raises(WeightsError, match="cannot be read"):
        load_model(path)


def test_files_with_unusable_names_are_skipped(folder):
    broken(folder, "cnn", card(arch="ff", latent_dim=4, hidden=8))  # would shadow the shipped cnn
    broken(folder, "two\nlines", card(arch="ff", latent_dim=4, hidden=8))
    notes = dict(skipped_models())
    assert notes["cnn.safetensors"] == "a shipped model's name"
    assert notes["two\nlines.safetensors"] == "not a usable model name"
    assert [e.name for e in list_models(("ff", "cnn"))] == ["ff", "cnn", "good"]


def test_an_oversized_weights_file_is_refused_before_it_is_hashed(folder, monkeypatch):
    path = folder / "good.safetensors"
    with open(path, "r+b") as f:
        f.truncate(weights.MAX_WEIGHTS_BYTES + 1)  # sparse: no disk used
    monkeypatch.setattr(weights, "sha256_of", lambda p: pytest.fail("hashed an oversized file"))
    with pytest.raises(WeightsError, match="far more than its model needs"):
        load_model(path)


def test_the_folder_listing_follows_changes_and_is_capped(folder, monkeypatch):
    path = broken(folder, "later", card(arch="ff", latent_dim=4, hidden=8))
    assert "later" in [e.name for e in list_models(("ff",))]
    card_path(path).write_text(card(arch="ff", latent_dim=-1, hidden=8))  # broken after being listed
    assert "later" not in [e.name for e in list_models(("ff",))] and "later.safetensors" in dict(skipped_models())
    card_path(path).write_text(card(arch="ff", latent_dim=4, hidden=8, channels=[]))  # mended: newest again
    monkeypatch.setattr("ae.registry.MAX_USER_MODELS", 1)
    scan = scan_models(("ff", "cnn"))
    assert [e.name for e in scan.entries if not e.shipped] == ["later"]
    assert ("1 older files", "at most 1 user models are offered") in scan.skipped


def test_a_missing_folder_lists_the_shipped_models_only():
    assert not user_models_dir().exists()
    assert [e.name for e in list_models(("ff", "cnn"))] == ["ff", "cnn"] and skipped_models() == []


def test_metrics_from_a_card_are_numbers_only(folder):
    path = folder / "good.safetensors"
    data = json.loads(card_path(path).read_text()) | {"metrics": {"psnr": "high", "ssim": 0.5, "ok": True}}
    card_path(path).write_text(json.dumps(data))
    entry = next(e for e in list_models(("cnn",)) if e.name == "good")
    assert entry.metrics == {"ssim": 0.5}


@pytest.mark.parametrize("path", sorted(p for p in WEIGHTS_DIR.glob("*.safetensors") if not p.name.endswith(".int.safetensors")),
                         ids=lambda p: p.stem)  # not the codec points' integer decoder tables
def test_every_shipped_card_passes_the_checks(path):
    config = check_config(json.loads(card_path(path).read_text())["config"], path.name)
    assert config.arch and (path.stem not in ("ff", "cnn", "classifier") or shipped_entry(path.stem) is not None)


def test_names_must_match_whole():
    assert is_valid_name("mine-2.b_c") and is_valid_name("a" * 64)
    for bad in ["ff\n", "mine\n", "a" * 65, "", ".hidden", "a/b", "cnn", "x y", "é"]:
        assert not is_valid_name(bad), bad
    assert MODEL_NAME.fullmatch("ok") and not MODEL_NAME.fullmatch("ok\n")


def test_a_link_to_shipped_weights_is_checked_like_any_user_file(folder):
    link = folder / "borrowed.safetensors"
    link.symlink_to(WEIGHTS_DIR / "cnn.safetensors")
    card_path(link).write_text(card(arch="cnn", latent_dim=784, channels=[1024, 1024]))
    with pytest.raises(WeightsError, match="parameters"):
        load_model(link)
