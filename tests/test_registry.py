"""ae.registry, the one reader of the weights cards: each card is read once until it changes,
the codec's operating points are the shipped cards with a "codec" block, and decoding a payload
reads no card once its point is known."""
import json
from pathlib import Path

import pytest
import torch

import ae.registry as registry
from ae.architectures import build_model
from ae.codec import CodecError, compress, decompress, get_coder, receive
from ae.integer_decoder import export_tables
from ae.models import ModelConfig
from ae.registry import codec_status, list_models, operating_points, skipped_models
from ae.weights import card_path, save_model, user_models_dir, write_card

TINY_CODED = ModelConfig(arch="rdae", latent_dim=8, hidden=64)


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """An empty shipped weights folder: the registry finds only what a test saves there."""
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setattr(registry, "WEIGHTS_DIR", folder)
    return folder


def save_point(folder: Path, name: str, point_id, seed: int = 0, **card) -> Path:
    """An untrained tiny rate-distortion model with integer tables (update() works from any
    weights), saved with a codec block naming its operating-point id, and its integer decoder."""
    torch.manual_seed(seed)
    model = build_model(TINY_CODED)
    model.prior.update()
    path = save_model(model, folder / f"{name}.safetensors", {"codec": {"id": point_id, "label": f"{name} (a test)"}} | card)
    export_tables(path)
    return path


def counting(monkeypatch, module, name: str) -> list:
    calls = []
    real = getattr(module, name)
    monkeypatch.setattr(module, name, lambda *args, **kwargs: calls.append(args) or real(*args, **kwargs))
    return calls


def test_a_card_is_read_once_until_it_changes(monkeypatch):
    path = save_model(build_model(ModelConfig(arch="cnn", latent_dim=8, channels=(4, 8))),
                      user_models_dir() / "mine.safetensors", {"note": "first"})
    reads = counting(monkeypatch, registry, "load_card")
    for _ in range(3):  # page reruns
        assert [e.card["note"] for e in list_models(("cnn",)) if e.name == "mine"] == ["first"]
    skipped_models()
    assert [Path(p).stem for (p,) in reads].count("mine") == 1
    write_card(path, json.loads(card_path(path).read_text()) | {"note": "second, longer"})
    assert [e.card["note"] for e in list_models(("cnn",)) if e.name == "mine"] == ["second, longer"]
    assert [Path(p).stem for (p,) in reads].count("mine") == 2


def test_operating_points_are_the_coded_cards_lowest_id_first(shipped):
    save_point(shipped, "tiny-b", 5)
    save_point(shipped, "tiny-a", 2, metrics={"psnr": 20.5, "mean_bytes": "many", "accuracy": True})
    save_model(build_model(ModelConfig(arch="ff", latent_dim=4, hidden=8)), shipped / "plain.safetensors")
    points = operating_points()
    assert [(p.name, p.id, p.arch) for p in points] == [("tiny-a", 2, "rdae"), ("tiny-b", 5, "rdae")]
    assert points[0].label == "tiny-a (a test)" and points[0].path == shipped / "tiny-a.safetensors"
    assert points[0].metrics == {"psnr": 20.5} and points[1].metrics == {}  # measured numbers only
    status = codec_status()
    assert status.available and status.message == "" and status.point("tiny-b") == points[1]


def test_codec_status_says_why_there_are_no_points(shipped):
    status = codec_status()
    assert not status.available and "no trained operating points" in status.message
    save_model(build_model(TINY_CODED), shipped / "no-id.safetensors", {"codec": {"label": "forgot its id"}})
    status = codec_status()
    assert not status.available and "no-id.safetensors: its 'codec' block has no whole-number 'id'" in status.message
    save_point(shipped, "first", 3)
    save_point(shipped, "second", 3)  # the same id: a payload could not say which model made it
    assert [p.name for p in operating_points()] == ["first"]


def test_a_point_id_beyond_the_header_is_not_offered(shipped):
    save_point(shipped, "eighth", 8)  # a single digit's header (format version 2) has three bits for it
    status = codec_status()
    assert not status.available
    assert "eighth.safetensors: operating-point id 8 does not fit a payload header (ids 0-7)" in status.message
    save_point(shipped, "seventh", 7)
    assert [p.name for p in operating_points()] == ["seventh"]


def test_decompress_reads_no_card_once_its_point_is_known(shipped, sample, monkeypatch):
    save_point(shipped, "tiny", 1)
    payload = compress(sample.images[0], "tiny")
    first = decompress(payload)  # loads the point's coder
    parses = counting(monkeypatch, json, "loads")
    for _ in range(3):
        again = decompress(payload)
        assert torch.equal(again.images, first.images) and again.point == "tiny"
    assert receive(payload).size == len(payload)
    assert parses == []  # no card parsed again, however many payloads arrive


def test_a_retrained_point_is_loaded_again(shipped, sample):
    save_point(shipped, "tiny", 1, seed=0)
    old_payload = compress(sample.images[:3], "tiny")
    old_coder = get_coder("tiny")
    save_point(shipped, "tiny", 1, seed=1, note="retrained")  # new weights under the same name and id
    assert get_coder("tiny") is not old_coder and get_coder("tiny").fingerprint != old_coder.fingerprint
    with pytest.raises(CodecError, match="another model"):
        decompress(old_payload)
    assert len(decompress(compress(sample.images[:3], "tiny")).images) == 3
