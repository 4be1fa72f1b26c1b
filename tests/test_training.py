import json
import math

import pytest
import torch

from ae.data import Digits
from ae.train import DEFAULT_STEPS, Trainer, TrainSettings, default_settings, mean_loss, presets
from ae.weights import load_card


@pytest.mark.slow  # 60 training steps of a CNN
def test_short_training_on_the_sample_lowers_the_loss(sample):
    settings = TrainSettings(model="cnn", latent_dim=16, epochs=3, batch_size=50, lr=2e-3,
                             report_every=5, seed=3)
    trainer = Trainer(settings, sample, sample.subset(200))
    before = mean_loss(trainer.model, sample, trainer.device)
    events = list(trainer.run())
    after = mean_loss(trainer.model, sample, trainer.device)
    assert after < 0.8 * before
    epochs = [e for e in events if e.kind == "epoch"]
    assert [e.epoch for e in epochs] == [1, 2, 3]
    assert all(e.val_loss is not None for e in epochs)
    assert events[-1].step == events[-1].total_steps == 60
    assert all(e.examples_per_s > 0 for e in events)


def test_training_is_reproducible(sample):
    def weights(seed):
        trainer = Trainer(TrainSettings(model="ff", epochs=1, max_steps=5, seed=seed), sample)
        list(trainer.run())
        return torch.cat([p.detach().flatten() for p in trainer.model.parameters()])

    assert torch.equal(weights(7), weights(7))
    assert not torch.equal(weights(7), weights(8))


def test_a_compact_training_set_trains_the_same_weights_as_its_float_pixels(sample):
    # Training on full MNIST keeps its 8-bit pixels (a quarter of the memory); the loop scales
    # each batch, which must give exactly what the float32 set gives.
    from ae.images import batch_to_uint8

    compact = Digits(torch.from_numpy(batch_to_uint8(sample.images)).unsqueeze(1), sample.labels, sample.source)
    assert compact.images.dtype == torch.uint8

    def weights(data):
        trainer = Trainer(TrainSettings(model="cnn", epochs=1, max_steps=5, seed=3), data)
        list(trainer.run())
        return torch.cat([p.detach().flatten() for p in trainer.model.parameters()])

    assert torch.equal(weights(sample), weights(compact))


def test_stops_between_steps_when_asked(sample):
    trainer = Trainer(TrainSettings(model="ff", epochs=5, report_every=1), sample)
    seen = []
    for event in trainer.run(should_stop=lambda: len(seen) >= 3):
        seen.append(event)
    assert len(seen) == 3 and trainer.stopped_early and not trainer.model.training
    assert trainer.card()["training"]["stopped_early"] is True


@pytest.mark.slow  # two epochs of the classifier
def test_classifier_trains_through_the_same_loop(sample):
    trainer = Trainer(TrainSettings(model="classifier", epochs=2, batch_size=100, report_every=100), sample)
    losses = [e.loss for e in trainer.run()]
    assert losses[-1] < losses[0]


@torch.no_grad()
def _reconstructions(trainer, images):
    trainer.model.eval()
    return trainer.model(images.to(trainer.device)).cpu()


@pytest.mark.slow  # 60 training steps of a CNN
def test_cnn_does_not_collapse_to_the_all_background_image(sample):
    # With the output starting at 0.5 grey, Adam overshot into a saturated all-black output
    # within ~10 steps (loss stuck at the black image's ~0.10, identical reconstructions).
    train, held_out = Digits(sample.images[:800], sample.labels[:800], "800 sample digits"), sample.images[800:]
    trainer = Trainer(TrainSettings(model="cnn", epochs=10, batch_size=32, lr=3e-3, max_steps=60, seed=0), train)
    list(trainer.run())
    x_hat = _reconstructions(trainer, held_out)
    black_loss = float((held_out ** 2).mean())
    assert float(((x_hat - held_out) ** 2).mean()) < 0.6 * black_loss
    # The reconstructions follow their digits: pixels vary from one digit to the next.
    assert float(x_hat.std(dim=0).mean()) > 0.05


def test_untrained_autoencoders_start_at_the_mean_digit_brightness(sample):
    from ae.architectures import build_model
    from ae.models import DEFAULT_CONFIGS, MNIST_MEAN_PIXEL

    for arch in ("ff", "cnn"):
        torch.manual_seed(0)
        model = build_model(DEFAULT_CONFIGS[arch]).eval()
        with torch.no_grad():
            mean = float(model(sample.images[:100]).mean())
        assert abs(mean - MNIST_MEAN_PIXEL) < 0.03, arch


@pytest.mark.parametrize("arch", ["ff", "cnn"])
@pytest.mark.parametrize("full,available", [(False, 800), (False, 1000), (True, 60_000)])
def test_default_settings_give_enough_steps_whatever_the_dataset(arch, full, available):
    s = default_settings(arch, full, available)
    digits = min(s.train_size or available, available)
    steps_per_epoch = math.ceil(digits / s.batch_size)
    assert DEFAULT_STEPS <= steps_per_epoch * s.epochs < DEFAULT_STEPS + steps_per_epoch
    assert s.model == arch and (s.train_size is not None) == full


def test_classifier_defaults_and_as_shipped_preset_follow_the_cards():
    assert default_settings("classifier", True) == TrainSettings(model="classifier")
    for arch in ("ff", "cnn"):
        assert set(presets(arch, False)) == {"fast demo"}
        shipped = presets(arch, True)["as shipped"]
        recorded = load_card(arch)["training"]
        assert (shipped.settings.epochs, shipped.settings.lr, shipped.settings.batch_size) == \
            (recorded["epochs_completed"], recorded["lr"], recorded["batch_size"])
        assert shipped.expected_seconds == recorded["seconds"]


def test_cli_train_fills_unset_settings_from_the_defaults(tmp_path):
    from ae.cli import main

    def card(*extra):
        out = tmp_path / "m.safetensors"
        assert main(["train", "--model", "cnn", "--latent", "4", "--sample", "--max-steps", "1",
                     "--out", str(out), *extra]) == 0
        return json.loads(out.with_suffix(".json").read_text())["training"]

    got = card()
    assert (got["epochs"], got["lr"], got["batch_size"]) == (16, 3e-3, 32)  # 1,000 digits: 32 steps an epoch
    got = card("--batch-size", "100", "--lr", "1e-3")
    assert (got["epochs"], got["lr"], got["batch_size"]) == (50, 1e-3, 100)  # still 500 steps


@pytest.mark.parametrize("arch", ["ff", "cnn"])
def test_ten_seeded_steps_lower_the_loss_on_digits_never_trained_on(sample, arch):
    # The fast subset's "training works": the 60-step runs above are marked slow.
    from ae.train import DEFAULT_LR

    train = Digits(sample.images[:200], sample.labels[:200], "200 sample digits")
    held_out = Digits(sample.images[800:], sample.labels[800:], "200 other sample digits")
    trainer = Trainer(TrainSettings(model=arch, epochs=5, batch_size=32, lr=DEFAULT_LR[arch], max_steps=10, seed=3),
                      train)
    before = mean_loss(trainer.model, held_out, trainer.device)
    events = list(trainer.run())
    assert events[-1].step == 10 and not trainer.model.training
    assert mean_loss(trainer.model, held_out, trainer.device) < 0.85 * before


def test_the_rate_target_glides_from_the_first_batch_rate_to_the_target():
    from ae.rdae import RateDistortionLoss

    loss = RateDistortionLoss(rate_target_bits=100.0, rate_ramp_steps=4)
    targets = []
    for _ in range(6):
        targets.append(loss.current_target(400.0))  # what the loss asks of a batch at 400 bits
        loss.steps_taken += 1
    assert targets[0] == 400.0 and targets[2] == pytest.approx(200.0)  # geometric: halfway is the mean of the logs
    assert targets[4:] == [100.0, 100.0]
    assert RateDistortionLoss(rate_target_bits=100.0).current_target(400.0) == 100.0  # no ramp: the target at once


def test_a_ramped_fine_tune_keeps_beta_from_racing_ahead(sample):
    """Far from its target, the unramped controller multiplies beta by e^0.02 every step; with
    the ramp the relative error stays small, so beta grows far less over the same steps."""
    from ae.architectures import build_model
    from ae.models import ModelConfig
    from ae.train import CodecSettings

    def final_beta(ramp_steps: int) -> float:
        settings = CodecSettings(model="rdae", epochs=1, batch_size=64, max_steps=12, rate_target_bits=1.0,
                                 beta=1e-3, rate_ramp_steps=ramp_steps, device="cpu")
        model = build_model(ModelConfig(arch="rdae", latent_dim=8, hidden=32))
        trainer = Trainer(settings, sample, model=model)
        for _ in trainer.run():
            pass
        assert trainer.card()["training"]["rate_ramp_steps"] == ramp_steps
        return trainer.loss.beta

    assert final_beta(0) == pytest.approx(1e-3 * math.exp(0.02 * 12))  # every step at the clipped maximum
    assert final_beta(1000) < 1e-3 * math.exp(0.02 * 2)
