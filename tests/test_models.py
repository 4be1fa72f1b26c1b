import pytest
import torch

from ae.architectures import build_model
from ae.models import DEFAULT_CONFIGS, ModelConfig, parameter_count


@pytest.mark.parametrize("arch,latent", [("ff", 196), ("cnn", 32)])
def test_autoencoder_shapes_and_range(arch, latent):
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


def test_ff_latent_is_a_quarter_of_the_pixels():
    assert DEFAULT_CONFIGS["ff"].latent_dim * 4 == 28 * 28


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


def test_parameter_count_matches_layers():
    # 784*1024+1024 + 1024*196+196 + 196*1024+1024 + 1024*784+784
    assert parameter_count(build_model(DEFAULT_CONFIGS["ff"])) == 2_010_068
