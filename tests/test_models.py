"""The models' behaviour, whatever their sizes: shapes through the latent and back, a model rebuilt
from its card's config computes the same, every parameter learns, the classifier trains."""
import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F

from ae.architectures import build_model
from ae.models import DEFAULT_CONFIGS, ModelConfig, parameter_count


@pytest.mark.parametrize("arch", ["ff", "cnn"])
def test_autoencoder_shapes_and_range(arch):
    latent = DEFAULT_CONFIGS[arch].latent_dim  # the latent size is the config's, whatever it is
    model = build_model(DEFAULT_CONFIGS[arch]).eval()
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        z = model.encode(x)
        x_hat = model.decode(z)
        again = model(x)
    assert model.latent_dim == latent
    assert z.shape == (5, latent)
    assert x_hat.shape == (5, 1, 28, 28)
    assert float(x_hat.min()) >= 0.0 and float(x_hat.max()) <= 1.0
    assert torch.allclose(again, x_hat)


@pytest.mark.parametrize("latent", [2, 8, 64])
def test_cnn_latent_is_configurable(latent):
    config = ModelConfig(arch="cnn", latent_dim=latent, channels=(16, 32))
    model = build_model(config.to_dict())  # rebuilt from a plain dict, as from a card
    assert model.encode(torch.rand(2, 1, 28, 28)).shape == (2, latent)
    assert model.decode(torch.zeros(3, latent)).shape == (3, 1, 28, 28)


def test_classifier_outputs_logits_for_ten_classes():
    model = build_model(DEFAULT_CONFIGS["classifier"]).eval()
    assert model(torch.rand(4, 1, 28, 28)).shape == (4, 10)
    assert model.predict(torch.rand(4, 1, 28, 28)).shape == (4,)


def test_config_round_trip_and_unknown_keys():
    config = DEFAULT_CONFIGS["cnn"]
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown"):
        ModelConfig.from_dict(config.to_dict() | {"dropout": 0.5})
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model({"arch": "transformer", "latent_dim": 4})


# Small configs of each architecture besides the shipped ones: what holds must not depend on the sizes.
SMALL = {"ff": ModelConfig(arch="ff", latent_dim=3, hidden=16),
         "cnn": ModelConfig(arch="cnn", latent_dim=5, channels=(4, 8)),
         "classifier": ModelConfig(arch="classifier", hidden=16, channels=(4, 8))}
CONFIGS = [*DEFAULT_CONFIGS.values(), *SMALL.values()]


def _config_id(config):
    return f"{config.arch}-{config.latent_dim or config.hidden}"


@pytest.mark.parametrize("config", [c for c in CONFIGS if c.arch != "classifier"], ids=_config_id)
@pytest.mark.parametrize("batch", [1, 7])
def test_a_batch_goes_through_the_latent_the_config_names_and_back(config, batch):
    model = build_model(config).eval()
    x = torch.rand(batch, 1, 28, 28)
    with torch.no_grad():
        z = model.encode(x)
        assert z.shape == (batch, config.latent_dim) == (batch, model.latent_dim)
        assert model.decode(z).shape == x.shape
        assert torch.equal(model(x), model.decode(z))  # forward is exactly decode(encode(x))


@pytest.mark.parametrize("config", CONFIGS, ids=_config_id)
def test_a_model_rebuilt_from_its_card_config_computes_the_same(config):
    torch.manual_seed(3)
    model = build_model(config).eval()
    as_in_a_card = json.loads(json.dumps(model.config.to_dict()))
    rebuilt = build_model(as_in_a_card)
    rebuilt.load_state_dict(model.state_dict(), strict=True)  # same layers, same shapes
    rebuilt.eval()
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), model(x))
    assert rebuilt.config == config


@pytest.mark.parametrize("arch", ["ff", "cnn"])
def test_weights_of_another_latent_size_do_not_fit(arch):
    other = dataclasses.replace(SMALL[arch], latent_dim=SMALL[arch].latent_dim + 1)
    with pytest.raises(RuntimeError, match="size mismatch"):
        build_model(other).load_state_dict(build_model(SMALL[arch]).state_dict())


@pytest.mark.parametrize("config", [c for c in CONFIGS if c.arch != "classifier"], ids=_config_id)
def test_each_digit_is_coded_on_its_own(config):
    # In eval mode nothing mixes digits of a batch: a digit's latent and pixels do not depend on its neighbours.
    torch.manual_seed(0)
    model = build_model(config).eval()
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        z = model.encode(x)
        for i in range(len(x)):
            assert torch.allclose(model.encode(x[i:i + 1]), z[i:i + 1], atol=1e-6)
            assert torch.allclose(model.decode(z[i:i + 1]), model.decode(z)[i:i + 1], atol=1e-6)


def test_the_classifier_drops_out_while_training_only():
    torch.manual_seed(0)
    model = build_model(DEFAULT_CONFIGS["classifier"])
    x = torch.rand(8, 1, 28, 28)
    assert not torch.equal(model.train()(x), model(x))  # dropout: two passes differ
    with torch.no_grad():
        assert torch.equal(model.eval()(x), model(x))


def _loss(model, x, y):
    # What each model is trained on: pixel error for an autoencoder, cross-entropy for the classifier.
    if hasattr(model, "decode"):
        return F.mse_loss(model(x), x)
    return F.cross_entropy(model(x), y)


@pytest.mark.parametrize("config", SMALL.values(), ids=_config_id)
def test_every_parameter_gets_a_gradient(config, sample):
    torch.manual_seed(0)
    model = build_model(config).train()
    _loss(model, sample.images[:32], sample.labels[:32]).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name  # no layer is cut off from the loss


def test_the_classifier_is_trainable(sample):
    torch.manual_seed(0)
    model = build_model(DEFAULT_CONFIGS["classifier"])
    x, y = sample.images[:32], sample.labels[:32]
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    with torch.no_grad():
        before = _loss(model.eval(), x, y).item()
    model.train()
    for _ in range(10):
        optimiser.zero_grad()
        _loss(model, x, y).backward()
        optimiser.step()
    with torch.no_grad():
        after = _loss(model.eval(), x, y).item()
    assert after < 0.25 * before
    assert (model.predict(x) == y).float().mean() > 0.8  # it reads the digits it learnt


@pytest.mark.parametrize("config", CONFIGS, ids=_config_id)
def test_parameter_count_is_what_the_weights_file_stores(config, tmp_path):
    from safetensors.torch import load_file

    from ae.weights import save_model

    model = build_model(config)
    stored = load_file(save_model(model, tmp_path / "m.safetensors"))
    assert parameter_count(model) == sum(t.numel() for t in stored.values())
    assert parameter_count(model) == sum(p.numel() for p in model.parameters() if p.requires_grad)
