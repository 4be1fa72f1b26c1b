"""What `python -m ae` calls in `ae`: test digits by index, folder writes, figures written into
cards, and the one training driver with its settings recorded in the card as they are."""
import json
import shutil
import time

import numpy as np
import pytest
import torch
from PIL import Image

from ae.data import digits_from, mnist_test_digits, parse_test_indices
from ae.errors import AEError
from ae.files import atomic_write_folder, write_png_folder
from ae.architectures import build_model
from ae.models import ModelConfig
from ae.sample import sample_test_indices
from ae.train import CodecSettings, Trainer, TrainSettings, codec_start_model, train_and_save
from ae.weights import WEIGHTS_DIR, load_card, load_model, record_metrics, save_model, store_half

TINY_CODEC = dict(arch="rdae", latent_dim=4, hidden=32)


# --- test digits by index -------------------------------------------------------------------------

def test_index_ranges_expand_in_order():
    assert parse_test_indices("0, 5,10-12") == [0, 5, 10, 11, 12]
    assert parse_test_indices("3-3,3") == [3, 3]


@pytest.mark.parametrize("text, message", [
    ("0-2000000000", "0 to 9999"), ("-1", "numbers and ranges"), ("12-10", "low to high"),
    ("a", "numbers and ranges"), ("0-9,0-9", "more than 15"),
])
def test_bad_index_ranges_are_refused_before_expansion(text, message):
    start = time.perf_counter()
    with pytest.raises(AEError, match=message):
        parse_test_indices(text, limit=15)
    assert time.perf_counter() - start < 0.1  # never builds the list of two billion numbers


def test_test_digits_come_from_the_sample_without_the_dataset(sample, tmp_path):
    where = sample_test_indices()
    got = mnist_test_digits([int(where[7]), int(where[2])], tmp_path / "no_data")
    assert torch.equal(got, sample.images[[7, 2]])
    absent = next(i for i in range(10_000) if i not in set(where.tolist()))
    with pytest.raises(AEError, match="--data-dir"):
        mnist_test_digits([absent], tmp_path / "no_data")


def test_image_files_come_before_the_test_digits(sample, tmp_path):
    png = tmp_path / "d.png"
    Image.fromarray((sample.images[3, 0].numpy() * 255).round().astype("uint8"), mode="L").save(png)
    batch = digits_from([png], [int(sample_test_indices()[0])], tmp_path / "no_data")
    assert batch.shape == (2, 1, 28, 28) and torch.equal(batch[1], sample.images[0])
    assert digits_from([], [], None).shape == (0, 1, 28, 28)


# --- folder writes --------------------------------------------------------------------------------

def test_a_folder_appears_whole(tmp_path):
    atomic_write_folder(tmp_path / "out", [("a.txt", b"1"), ("b.txt", b"22")])
    assert {f.name: f.read_bytes() for f in (tmp_path / "out").iterdir()} == {"a.txt": b"1", "b.txt": b"22"}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no hidden folder left beside it


def failing_after_one():
    yield "a.txt", b"1"
    raise MemoryError


def test_a_failed_folder_write_leaves_nothing(tmp_path):
    with pytest.raises(MemoryError):
        atomic_write_folder(tmp_path / "out", failing_after_one())
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_gets_all_the_files_or_none(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_bytes(b"old")
    with pytest.raises(MemoryError):
        atomic_write_folder(out, failing_after_one())
    assert [f.name for f in out.iterdir()] == ["old.txt"] and [p.name for p in tmp_path.iterdir()] == ["out"]
    atomic_write_folder(out, [("a.txt", b"1")])
    assert sorted(f.name for f in out.iterdir()) == ["a.txt", "old.txt"]


def test_png_folder_names_sort_in_digit_order(sample, tmp_path):
    images = sample.images[:3]
    write_png_folder(tmp_path / "few", iter(images), count=3)
    files = sorted((tmp_path / "few").iterdir())
    assert [f.name for f in files] == ["digit_00000.png", "digit_00001.png", "digit_00002.png"]
    for f, image in zip(files, images):
        assert np.array_equal(np.asarray(Image.open(f)), (image[0].numpy() * 255).round().astype("uint8"))
    write_png_folder(tmp_path / "many", iter(images[:1]), count=123_456)
    assert [f.name for f in (tmp_path / "many").iterdir()] == ["digit_000000.png"]


# --- figures written into cards -------------------------------------------------------------------

def copy_of_shipped(name, folder):
    for suffix in (".safetensors", ".json"):
        shutil.copy(WEIGHTS_DIR / f"{name}{suffix}", folder / f"{name}{suffix}")
    return folder / f"{name}.safetensors"


def test_metrics_go_into_the_card_and_the_model_still_loads(tmp_path):
    path = copy_of_shipped("rd-q1", tmp_path)
    before = load_card(path)
    record_metrics(path, {"psnr": 12.5}, "some digits", "python -m ae benchmark", label="rd-q1: new")
    card = load_card(path)
    assert (card["metrics"], card["metrics_data"], card["metrics_command"]) == \
        ({"psnr": 12.5}, "some digits", "python -m ae benchmark", )
    assert card["codec"] == before["codec"] | {"label": "rd-q1: new"}
    assert card["training"] == before["training"] and card["sha256"] == before["sha256"]
    load_model(path)


def test_half_keeps_the_model_and_drops_the_old_figures(tmp_path):
    path = tmp_path / "m.safetensors"
    torch.manual_seed(0)
    save_model(build_model(ModelConfig(**TINY_CODEC)), path, {"metrics": {"psnr": 1.0}, "training": {"epochs": 3}})
    size = path.stat().st_size
    assert store_half(path, "python -m ae half m") == size
    card = load_card(path)
    assert card["storage_dtype"] == "float16" and "metrics" not in card and card["training"] == {"epochs": 3}
    assert card["converted"]["command"] == "python -m ae half m" and path.stat().st_size < size
    assert store_half(path, "again") is None and load_card(path)["converted"]["command"] == "python -m ae half m"


# --- settings in cards, and the one training driver -----------------------------------------------

def test_shipped_cards_read_back_into_their_settings():
    assert TrainSettings.from_card(load_card("ff")).epochs == load_card("ff")["training"]["epochs"]
    q2 = CodecSettings.from_card(load_card("rd-q2"))
    assert (q2.rate_target_bits, q2.distortion, q2.init, q2.beta, q2.rate_ramp_steps) == \
        (110.0, "log-mse", "weights/rd-q3.safetensors", 0.0032, 1407)  # 3 epochs of 469 steps
    assert CodecSettings.from_card(load_card("rd-q4")).beta == 0.002  # written before `beta` was recorded


def codec_trainer(sample, **knobs):
    model = codec_start_model(TINY_CODEC["arch"], TINY_CODEC["latent_dim"], TINY_CODEC["hidden"], seed=0)
    settings = CodecSettings(model="rdae", latent_dim=4, epochs=1, max_steps=3, device="cpu", **knobs)
    return Trainer(settings, sample, sample.subset(100), model=model), settings


def test_the_codec_settings_are_the_card_s_training_record(sample, tmp_path):
    trainer, settings = codec_trainer(sample, rate_target_bits=20.0, beta=1e-2, distortion="log-mse")
    path = train_and_save(trainer, tmp_path / "p.safetensors", {"codec": {"id": 9, "label": "p"}}, quiet=True)
    card = json.loads(path.with_suffix(".json").read_text())
    assert {k: card["training"][k] for k in settings.to_dict()} == settings.to_dict()
    assert card["training"]["final_beta"] == trainer.loss.beta != settings.beta  # beta followed the target
    assert CodecSettings.from_card(card) == settings and card["codec"]["id"] == 9
    assert load_model(path).prior.ready  # the tables were frozen before saving


def test_a_codec_model_refuses_settings_without_its_knobs(sample):
    model = build_model(ModelConfig(**TINY_CODEC))
    with pytest.raises(TypeError, match="CodecSettings"):
        Trainer(TrainSettings(model="rdae", epochs=1), sample, model=model)


def interrupted_after_one_step(trainer):
    real = trainer.run

    def run(should_stop=lambda: False):
        for event in real(should_stop):
            yield event
            raise KeyboardInterrupt
    trainer.run = run


def test_an_interrupted_run_saves_what_was_trained_when_allowed(sample, tmp_path):
    trainer = Trainer(TrainSettings(model="ff", epochs=1, report_every=1, device="cpu"), sample)
    interrupted_after_one_step(trainer)
    path = train_and_save(trainer, tmp_path / "ff.safetensors", quiet=True, interruptible=True)
    assert json.loads(path.with_suffix(".json").read_text())["training"]["stopped_early"] is True
    trainer, _ = codec_trainer(sample)
    interrupted_after_one_step(trainer)
    with pytest.raises(KeyboardInterrupt):  # train-codec: Ctrl-C never replaces a point with half a run
        train_and_save(trainer, tmp_path / "rd.safetensors", quiet=True)
    assert not (tmp_path / "rd.safetensors").exists()
