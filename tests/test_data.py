import pytest

from ae.cli import main
from ae.data import dataset_available, load_digits
from ae.errors import DatasetUnavailable
from ae.sample import load_sample, sample_test_indices


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
