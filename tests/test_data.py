import hashlib
import struct

import pytest

from ae.cli import main
from ae.data import SPLIT_FILES, dataset_available, describe_split, load_digits
from ae.errors import DatasetUnavailable
from ae.architectures import build_model
from ae.models import ModelConfig
from ae.sample import load_sample, sample_test_indices
from ae.weights import load_card, save_model


def _tiny_mnist(root, count=3):
    """MNIST's four raw idx files in torchvision's layout, `count` digits per split."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, (images, labels) in SPLIT_FILES.items():
        (raw / images).write_bytes(struct.pack(">IIII", 0x803, count, 28, 28) + bytes(range(count)) * 784)
        (raw / labels).write_bytes(struct.pack(">II", 0x801, count) + bytes(range(count)))
    return raw


def test_absent_dataset_names_the_folder_and_the_four_files(tmp_path):
    with pytest.raises(DatasetUnavailable) as err:
        load_digits("test", tmp_path / "nowhere", download=False)
    message = str(err.value)
    assert str(tmp_path / "nowhere") in message
    for name in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]:
        assert name in message
    assert not dataset_available(tmp_path / "nowhere")


def test_data_dir_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("AE_DATA_DIR", str(tmp_path / "from_env"))
    with pytest.raises(DatasetUnavailable, match="from_env"):
        load_digits("train", download=False)


def test_cli_reports_a_missing_dataset_without_a_traceback(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("ae.data._online", lambda timeout=3.0: False)  # this machine is offline anyway
    assert main(["evaluate", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: MNIST is not available") and "Traceback" not in err


def test_bundled_sample_is_balanced_real_test_digits(sample):
    assert len(sample) == 1000
    assert sample.labels.bincount().tolist() == [100] * 10
    assert sample.images.shape == (1000, 1, 28, 28)
    assert 0.0 == sample.images.min() and sample.images.max() == 1.0
    indices = sample_test_indices()
    assert len(set(indices.tolist())) == 1000 and indices.max() < 10_000
    assert 0.10 < sample.images.mean() < 0.16  # MNIST's mean ink (0.13)
    assert load_sample().images.equal(sample.images)


def test_a_split_is_named_by_its_checksum_never_its_folder(tmp_path):
    raw = _tiny_mnist(tmp_path / "data")
    files = b"".join((raw / f).read_bytes() for f in SPLIT_FILES["test"])
    test = load_digits("test", tmp_path / "data", download=False)
    assert test.source == f"MNIST test set (3 digits, sha256 {hashlib.sha256(files).hexdigest()[:16]})"
    assert test.subset(2).source == f"{test.source}, 2 of them"
    assert describe_split("mnist", "train", 60_000) == "MNIST train set (60,000 digits)"


def test_cards_record_the_data_and_the_command_without_the_folder(tmp_path):
    data = tmp_path / "data"
    _tiny_mnist(data)
    path = save_model(build_model(ModelConfig(arch="ff", latent_dim=4, hidden=8)), tmp_path / "tiny.safetensors", {})
    assert main(["evaluate", "--models", str(path), "--classifier", "", "--data-dir", str(data), "--update-cards"]) == 0
    card = load_card(path)
    assert card["metrics_data"] == load_digits("test", data, download=False).source
    assert "--data-dir" not in card["metrics_command"] and str(data) not in card["metrics_command"]


READ_APART = """
import json, sys
import ae.data as data
from ae.errors import DatasetUnavailable
test = data.load_digits("test", sys.argv[1], download=False, apart=True)
try:
    data.load_digits("test", sys.argv[2], download=False, apart=True)
    missing = None
except DatasetUnavailable as exc:
    missing = str(exc)
print(json.dumps({"torchvision": "torchvision" in sys.modules, "missing": missing,
                  "test": [test.source, str(test.images.dtype), test.images.sum().item(), test.labels.tolist()]}))
"""


@pytest.mark.slow  # three processes that import torch
def test_a_split_read_apart_is_the_same_and_keeps_torchvision_out(tmp_path):
    # What the app's server does: torchvision reads in a child process.
    import json
    import subprocess
    import sys

    _tiny_mnist(tmp_path / "data")
    out = subprocess.run([sys.executable, "-c", READ_APART, str(tmp_path / "data"), str(tmp_path / "nowhere")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["torchvision"] is False
    test = load_digits("test", tmp_path / "data", download=False)  # in this process
    assert got["test"] == [test.source, "torch.float32", test.images.sum().item(), test.labels.tolist()]
    # An absent dataset gets the same message as in-process, from the child.
    with pytest.raises(DatasetUnavailable) as err:
        load_digits("test", tmp_path / "nowhere", download=False)
    assert got["missing"] == str(err.value)


READ_AHEAD = """
import json, sys
from ae.training_worker import _read_training_splits_ahead
_read_training_splits_ahead(sys.argv[1])
torch_while_reading = "torch" in sys.modules
from ae.live_training import training_data
from ae import split_reader
data = training_data(sys.argv[1], val_size=2)
print(json.dumps({"torch_while_reading": torch_while_reading, "torchvision": "torchvision" in sys.modules,
                  "left": len(split_reader._read_ahead), "train": [data.train.source, data.train.images.sum().item()],
                  "val": data.val.source}))
"""


@pytest.mark.slow  # two processes that import torch
def test_the_training_worker_reads_its_splits_before_it_imports_torch(tmp_path):
    import json
    import subprocess
    import sys

    from ae.live_training import training_data

    _tiny_mnist(tmp_path / "data")
    out = subprocess.run([sys.executable, "-c", READ_AHEAD, str(tmp_path / "data")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["torch_while_reading"] is False and got["torchvision"] is False
    assert got["left"] == 0  # handed over, not kept twice
    here = training_data(tmp_path / "data", val_size=2)  # torchvision in this process
    assert got["train"] == [here.train.source, here.train.images.sum().item()] and got["val"] == here.val.source


@pytest.mark.slow  # a child that imports torch
def test_a_stop_while_a_child_reads_kills_it(tmp_path):
    # Asked a second in: the child is still importing torch, the reading's slow part.
    import os
    import time

    from ae.split_reader import ReadStopped, read_apart

    _tiny_mnist(tmp_path / "data")
    asked = time.monotonic() + 1
    with pytest.raises(ReadStopped, match="Stopped while reading the MNIST test set"):
        read_apart("mnist", ("test",), tmp_path / "data", False, should_stop=lambda: time.monotonic() > asked)
    assert not [p for p in os.listdir("/proc") if p.isdigit() and "ae.split_reader" in _cmdline(p)]


def _cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
