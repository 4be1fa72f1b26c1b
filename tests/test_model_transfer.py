"""Models in and out (ae.model_transfer): the Train page's .zip holds the files the CLI writes and
comes back as the same weights; every bad upload is refused with a WeightsError that says why,
nothing is written to disk and, in the app, nothing is kept in the session."""
import hashlib
import io
import json
import pickle
import zipfile
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from ae import model_transfer
from ae.architectures import build_model
from ae.errors import AEError, WeightsError
from ae.model_transfer import load_upload, pack_model, read_upload, unpack_zip
from ae.models import DEFAULT_CONFIGS
from ae.weights import MAX_CARD_BYTES, card_path, load_model, save_model, user_models_dir

APP = "../app.py"


@pytest.fixture(scope="module")
def trained_cnn():
    """A small CNN, trained for a few steps on the bundled sample (once: the tests only read it)."""
    from ae.sample import load_sample
    from ae.train import TrainSettings, Trainer

    settings = TrainSettings(model="cnn", latent_dim=6, epochs=1, batch_size=32, max_steps=3, device="cpu")
    trainer = Trainer(settings, load_sample())
    for _ in trainer.run():
        pass
    return trainer.model


@pytest.fixture
def saved(tmp_path, trained_cnn) -> Path:
    """That CNN saved as the app saves it, in this test's own folder."""
    return save_model(trained_cnn, tmp_path / "out" / "mine.safetensors", {"note": "three steps"})


def zip_of(files: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return out.getvalue()


def pair(path: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes(), card_path(path).name: card_path(path).read_bytes()}


def files_on_disk(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")} if root.exists() else set()


def model_files() -> list[Path]:
    """Model files in the user folder (the Train page also keeps its training slot's lock there)."""
    folder = user_models_dir()
    return [*folder.glob("*.safetensors"), *folder.glob("*.json")] if folder.exists() else []


def test_the_zip_holds_the_two_files_byte_for_byte(saved):
    archive = pack_model(saved)
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        assert sorted(zf.namelist()) == ["mine.json", "mine.safetensors"]
    assert unpack_zip(archive) == pair(saved)


@pytest.mark.parametrize("as_zip", [True, False])
def test_an_upload_round_trips_to_the_same_weights(saved, as_zip, tmp_path):
    files = [("mine.zip", pack_model(saved))] if as_zip else list(pair(saved).items())
    before = files_on_disk(tmp_path)
    entry = load_upload(files)
    assert files_on_disk(tmp_path) == before  # nothing written anywhere
    expected = load_model(saved).state_dict()
    got = entry.model.state_dict()
    assert got.keys() == expected.keys()
    assert all(torch.equal(got[k], expected[k]) for k in expected)
    assert (entry.name, entry.arch, entry.latent_dim, entry.path) == ("mine", "cnn", 6, None)
    assert entry.label == "mine · 6 latent · uploaded"
    assert entry.cache_key[0].startswith("uploaded:") and entry.card["note"] == "three steps"
    assert not entry.model.training


def rewrite_card(saved: Path, **changes) -> bytes:
    card = json.loads(card_path(saved).read_text())
    for key, value in changes.items():
        if value is None:
            card.pop(key)
        elif key == "config":
            card["config"] = {**card["config"], **value}
        else:
            card[key] = value
    return json.dumps(card).encode()


def pickle_pair(saved: Path) -> dict[str, bytes]:
    """A pickle renamed .safetensors, with a card that carries its sha256 (so only parsing can tell)."""
    blob = pickle.dumps({k: v for k, v in load_model(saved).state_dict().items()})
    return {"mine.safetensors": blob, "mine.json": rewrite_card(saved, sha256=hashlib.sha256(blob).hexdigest())}


def classifier_pair(tmp_path: Path) -> dict[str, bytes]:
    path = save_model(build_model(DEFAULT_CONFIGS["classifier"]), tmp_path / "clf" / "clf.safetensors")
    return pair(path)


BAD_UPLOADS = {
    # name: (files to upload, from the saved pair -> list of (name, bytes); words the message must hold)
    "not-a-zip": (lambda s, t: [("mine.zip", b"PK\x03\x04 this is not a zip")], "not a readable zip"),
    "a-png": (lambda s, t: [("digit.png", b"\x89PNG\r\n")], "Upload a model's .zip"),
    "zip-with-an-extra-file": (lambda s, t: [("m.zip", zip_of({**pair(s), "notes.txt": b"hi"}))], "exactly two files"),
    "zip-without-its-card": (lambda s, t: [("m.zip", zip_of({s.name: s.read_bytes()}))], "exactly two files"),
    "zip-with-two-weights": (lambda s, t: [("m.zip", zip_of({"a.safetensors": b"1", "b.safetensors": b"2"}))],
                             "exactly two files"),
    "empty-zip": (lambda s, t: [("m.zip", zip_of({}))], "holds 0"),
    "path-traversal": (lambda s, t: [("m.zip", zip_of({"../../mine.safetensors": s.read_bytes(),
                                                        "mine.json": card_path(s).read_bytes()}))], "plain file names"),
    "a-folder-inside": (lambda s, t: [("m.zip", zip_of({"models/mine.safetensors": s.read_bytes(),
                                                         "models/mine.json": card_path(s).read_bytes()}))],
                        "plain file names"),
    "zip-bomb-card": (lambda s, t: [("m.zip", zip_of({s.name: s.read_bytes(), "mine.json": b" " * (MAX_CARD_BYTES + 1)}))],
                      "unpacks to"),
    "oversized-file": (lambda s, t: [("mine.safetensors", b"\0" * (model_transfer.MAX_UPLOAD_BYTES + 1)),
                                     ("mine.json", card_path(s).read_bytes())], "larger than any model"),
    "weights-alone": (lambda s, t: [(s.name, s.read_bytes())], "two files together"),
    "two-cards": (lambda s, t: [("a.json", b"{}"), ("b.json", b"{}")], "two files together"),
    "sha-mismatch": (lambda s, t: [(s.name, s.read_bytes()), ("mine.json", rewrite_card(s, sha256="0" * 64))],
                     "does not match the sha256"),
    "no-sha": (lambda s, t: [(s.name, s.read_bytes()), ("mine.json", rewrite_card(s, sha256=None))], "no sha256"),
    "latent-minus-5": (lambda s, t: [("m.zip", zip_of({s.name: s.read_bytes(),
                                                        "mine.json": rewrite_card(s, config={"latent_dim": -5})}))],
                       "-5 latent"),
    "too-many-parameters": (lambda s, t: [(s.name, s.read_bytes()),
                                          ("mine.json", rewrite_card(s, config={"latent_dim": 784, "channels": [1024, 1024]}))],
                            "parameters"),
    "card-not-json": (lambda s, t: [(s.name, s.read_bytes()), ("mine.json", b"{not json")], "not valid JSON"),
    "card-of-another-model": (lambda s, t: [(s.name, s.read_bytes()),
                                            ("mine.json", rewrite_card(s, config={"latent_dim": 7}))],
                              "does not fit the architecture"),
    "pickle-renamed-safetensors": (lambda s, t: list(pickle_pair(s).items()), "not a readable safetensors"),
    "a-classifier": (lambda s, t: list(classifier_pair(t).items()), "only the ff and cnn"),
}


@pytest.mark.parametrize("case", sorted(BAD_UPLOADS))
def test_a_bad_upload_is_refused_with_a_reason_and_writes_nothing(saved, tmp_path, case, monkeypatch):
    make, words = BAD_UPLOADS[case]
    files = make(saved, tmp_path)
    loaded = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: loaded.append(a))  # pickle is never even tried
    before = files_on_disk(tmp_path)
    with pytest.raises(WeightsError, match=None) as caught:
        load_upload(files)
    assert words in str(caught.value), str(caught.value)
    assert isinstance(caught.value, AEError) and not loaded
    assert files_on_disk(tmp_path) == before


def test_a_zip_whose_directory_lies_about_a_size_is_refused(saved):
    # The central directory says the card unpacks to 5 bytes: the read stops there, and the
    # checksum tells the rest was cut off.
    archive = bytearray(pack_model(saved))
    record = archive.index(b"PK\x01\x02", archive.index(b"PK\x01\x02") + 4)  # the second entry: the card
    assert archive[record + 46:record + 46 + 9] == b"mine.json"
    archive[record + 24:record + 28] = (5).to_bytes(4, "little")
    with pytest.raises(WeightsError, match="cannot be unpacked"):
        load_upload([("mine.zip", bytes(archive))])


def test_read_upload_names_the_files(saved):
    name, weights, card = read_upload([("mine.zip", pack_model(saved))])
    assert (name, weights, card) == ("mine.safetensors", saved.read_bytes(), card_path(saved).read_bytes())


# ---- in the app: the Train page's uploader, the other pages' pickers ----

def train_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("app_pages/train.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture(autouse=True)
def _fresh_caches():
    import streamlit as st

    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    st.cache_resource.clear()
    st.cache_data.clear()


def test_an_uploaded_model_is_offered_on_the_other_pages_of_this_session_only(saved):
    at = train_page()
    at.file_uploader[0].set_value(("mine.zip", pack_model(saved), "application/zip")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "mine · 6 latent · uploaded" in at.success[0].value
    assert [e.label for e in at.session_state["uploaded_models"]] == ["mine · 6 latent · uploaded"]
    assert not model_files()  # kept in memory only
    for page in ("draw", "gallery", "latent_explorer"):
        at.switch_page(f"app_pages/{page}.py").run()
        assert not at.exception and not at.error, (page, [e.value for e in [*at.exception, *at.error]])
        picker = at.selectbox(key="_pick_cnn")
        assert picker.value == "mine · 6 latent · uploaded", page  # selected, and it renders
    fresh = AppTest.from_file(APP, default_timeout=60).run()
    fresh.switch_page("app_pages/draw.py").run()
    assert not any("uploaded" in o for o in fresh.selectbox(key="_pick_cnn").options)


@pytest.mark.parametrize("case", ["not-a-zip", "path-traversal", "sha-mismatch", "pickle-renamed-safetensors"])
def test_a_bad_upload_shows_its_reason_and_keeps_nothing(saved, tmp_path, case):
    make, words = BAD_UPLOADS[case]
    files = make(saved, tmp_path)
    at = train_page()
    at.file_uploader[0].set_value([(name, data, "application/octet-stream") for name, data in files]).run()
    assert not at.exception
    assert len(at.error) == 1 and words in at.error[0].value, [e.value for e in at.error]
    assert not at.session_state["uploaded_models"] if "uploaded_models" in at.session_state else True
    assert not model_files()
    at.switch_page("app_pages/draw.py").run()
    assert not any("uploaded" in o for o in at.selectbox(key="_pick_cnn").options)
