import json

import pytest
import torch

from ae.cli import main
from ae.metrics import psnr, ssim
from ae.weights import load_model

# The targets on the full test set; on the bundled sample the shipped
# weights must reach at least 90% of them.
PSNR_TARGET = {"ff": 30.0, "cnn": 24.0}


def test_metrics_behave():
    x = torch.rand(4, 1, 28, 28)
    assert torch.all(psnr(x, x) == 100) and torch.allclose(ssim(x, x), torch.ones(4))
    noisy = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    noisier = (x + 0.3 * torch.randn_like(x)).clamp(0, 1)
    assert torch.all(psnr(x, noisy) > psnr(x, noisier))
    assert torch.all(ssim(x, noisy) > ssim(x, noisier))
    half = torch.full((1, 1, 28, 28), 0.5)
    assert psnr(half, torch.zeros_like(half)).item() == pytest.approx(10 * torch.log10(torch.tensor(4.0)).item())


@pytest.mark.slow  # evaluates both shipped autoencoders on all 1,000 sample digits, timed
def test_evaluate_json_on_the_sample_meets_ninety_percent_of_targets(capsys):
    assert main(["evaluate", "--sample", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert set(results) == {"ff", "cnn", "classifier"}
    assert results["ff"]["latent_dim"] == 196 and results["cnn"]["latent_dim"] == 32
    for name, target in PSNR_TARGET.items():
        assert results[name]["psnr"] >= 0.9 * target, name
        assert results[name]["digits"] == 1000 and results[name]["digits_per_s"] > 0
        assert 0 < results[name]["ssim"] <= 1
    assert results["classifier"]["accuracy"] >= 0.97
    assert results["ff"]["accuracy"] >= 0.9 and results["cnn"]["accuracy"] >= 0.9


def test_shipped_autoencoders_reconstruct_a_digit_they_never_saw(sample):
    for name in PSNR_TARGET:
        model = load_model(name)
        with torch.no_grad():
            x_hat = model(sample.images[:1])
        assert psnr(x_hat, sample.images[:1]).item() > 18


def test_cli_train_on_the_sample_saves_a_loadable_model(tmp_path, capsys):
    out = tmp_path / "tiny.safetensors"
    assert main(["train", "--model", "cnn", "--latent", "4", "--sample", "--max-steps", "3",
                 "--out", str(out)]) == 0
    model = load_model(out)
    assert model.latent_dim == 4
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["training"]["steps"] == 3 and "bundled sample" in card["dataset"]


@pytest.mark.parametrize("bad", [["--epochs", "0"], ["--lr", "-1"], ["--latent", "abc"], ["--batch-size", "-5"]])
def test_cli_train_refuses_bad_settings_with_a_message(bad, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--sample", *bad])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert bad[0] in err and "Traceback" not in err


def test_evaluate_json_on_a_hundred_sample_digits(capsys):
    # The fast subset's evaluation: the same measures and targets on a seeded tenth of the sample.
    assert main(["evaluate", "--sample", "--limit", "100", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert set(results) == {"ff", "cnn", "classifier"}
    for name, target in PSNR_TARGET.items():
        assert results[name]["digits"] == 100 and results[name]["latent_dim"] == load_model(name).latent_dim
        assert results[name]["psnr"] >= 0.9 * target and results[name]["accuracy"] >= 0.9, name
    assert results["classifier"]["digits"] == 100 and results["classifier"]["accuracy"] >= 0.97


def test_python_dash_m_ae_runs_the_cli(monkeypatch, capsys):
    import runpy
    import sys

    monkeypatch.setattr(sys, "argv", ["python -m ae", "--help"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("ae", run_name="__main__")
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert all(command in out for command in ("train", "evaluate", "compress", "decompress", "benchmark"))
