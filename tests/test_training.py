import torch

from ae.train import Trainer, TrainSettings, mean_loss


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


def test_stops_between_steps_when_asked(sample):
    trainer = Trainer(TrainSettings(model="ff", epochs=5, report_every=1), sample)
    seen = []
    for event in trainer.run(should_stop=lambda: len(seen) >= 3):
        seen.append(event)
    assert len(seen) == 3 and trainer.stopped_early and not trainer.model.training
    assert trainer.card()["training"]["stopped_early"] is True


def test_classifier_trains_through_the_same_loop(sample):
    trainer = Trainer(TrainSettings(model="classifier", epochs=2, batch_size=100, report_every=100), sample)
    losses = [e.loss for e in trainer.run()]
    assert losses[-1] < losses[0]
