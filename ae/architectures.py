"""Every architecture a weights card may name, and `build_model`. This is the one module that
imports both model families (`ae.models`: the autoencoders and the classifier; `ae.rdae`: the
codec's rate-distortion autoencoders), so neither family imports the other."""
from __future__ import annotations

import torch.nn as nn

from ae.config import ARCHITECTURE_NAMES
from ae.models import ConvAE, DigitClassifier, FeedforwardAE, ModelConfig
from ae.rdae import ConvRateDistortionAE, HybridRateDistortionAE, RateDistortionAE

ARCHITECTURES: dict[str, type[nn.Module]] = {
    "ff": FeedforwardAE,
    "cnn": ConvAE,
    "classifier": DigitClassifier,
    "rdae": RateDistortionAE,
    "rdcnn": ConvRateDistortionAE,
    "rdhybrid": HybridRateDistortionAE,
}
assert tuple(ARCHITECTURES) == ARCHITECTURE_NAMES, "ae.config.ARCHITECTURE_NAMES names the cards' architectures"


def build_model(config: ModelConfig | dict) -> nn.Module:
    """The untrained model a config (or a card's config dict) describes."""
    if isinstance(config, dict):
        config = ModelConfig.from_dict(config)
    if config.arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {config.arch!r}; known: {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[config.arch](config)


def is_autoencoder(model: nn.Module) -> bool:
    """An autoencoder of either family (it has `encode` and `decode`), not the classifier."""
    return hasattr(model, "encode") and hasattr(model, "decode")
