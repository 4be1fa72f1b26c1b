"""The autoencoders (feedforward and CNN) and the digit classifier.

Every model is built from a `ModelConfig` alone, so a weights card rebuilds it
(`ae.architectures.build_model`, which also knows the codec's models in `ae.rdae`).
Images are (B, 1, 28, 28) float tensors in [0, 1]; latents are (B, latent_dim).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ae.config import IMAGE_SIDE, NUM_PIXELS, ModelConfig  # noqa: F401  (re-exported: many modules import them from here)

NUM_CLASSES = 10
MNIST_MEAN_PIXEL = 0.1307  # the average brightness of an MNIST digit image (ink 1, background 0)


def start_at_mean_pixel(output_layer: nn.Module) -> None:
    """Make an untrained autoencoder output the average digit brightness instead of 0.5 grey.

    Why: with PyTorch's default initialisation the output is sigmoid(~0) = 0.5 everywhere and
    hardly depends on the input, so every output weight's first gradient says "darker". Adam takes
    that step at full size for all of them together and its momentum carries the logits far past
    the mean into saturation (-7 after 21 steps at lr 1e-3; -500 at lr 3e-3), where
    sigmoid' ~ 0 and no gradient reaches the encoder: the black-square solution, loss ~0.10,
    that never recovers. Starting at the mean there is no common direction left to overshoot in.
    Only new training is affected: loaded weights overwrite it.
    """
    nn.init.constant_(output_layer.bias, math.log(MNIST_MEAN_PIXEL / (1 - MNIST_MEAN_PIXEL)))


# The shipped architectures; `latent_dim` may be overridden (the Train page, `--latent`).
DEFAULT_CONFIGS = {
    "ff": ModelConfig(arch="ff", latent_dim=196, hidden=1024),  # 196 = 25% of 784 pixels
    "cnn": ModelConfig(arch="cnn", latent_dim=32, channels=(32, 64)),
    "classifier": ModelConfig(arch="classifier", hidden=128, channels=(32, 64)),
}


class FeedforwardAE(nn.Module):
    """784 pixels -> hidden -> latent -> hidden -> 784 pixels (sigmoid)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.latent_dim = config.latent_dim
        h = config.hidden
        self.encoder = nn.Sequential(
            nn.Flatten(),  # (B,1,28,28) -> (B,784)
            nn.Linear(NUM_PIXELS, h), nn.ReLU(),
            nn.Linear(h, config.latent_dim),  # linear bottleneck: latents keep sign and scale
        )
        self.decoder = nn.Sequential(
            nn.Linear(config.latent_dim, h), nn.ReLU(),
            nn.Linear(h, NUM_PIXELS),
        )
        start_at_mean_pixel(self.decoder[-1])

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (B,1,28,28) -> (B,D)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        logits = self.decoder(z)  # (B,D) -> (B,784)
        return torch.sigmoid(logits).view(-1, 1, IMAGE_SIDE, IMAGE_SIDE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


class ConvAE(nn.Module):
    """Conv + max-pool stages, flattened into a dense latent; the decoder mirrors it
    with a dense layer back to feature maps and transposed convolutions (x2 each)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.latent_dim = config.latent_dim
        chans = (1, *config.channels)
        side = IMAGE_SIDE // 2 ** len(config.channels)  # 28 -> 14 -> 7
        self.feature_shape = (chans[-1], side, side)
        flat = chans[-1] * side * side

        enc: list[nn.Module] = []
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            enc += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        self.encoder = nn.Sequential(*enc, nn.Flatten(), nn.Linear(flat, config.latent_dim))

        dec: list[nn.Module] = []
        rev = chans[::-1]  # (64, 32, 1)
        for i, (c_in, c_out) in enumerate(zip(rev[:-1], rev[1:])):
            dec.append(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1))  # side x2
            if i < len(rev) - 2:
                dec.append(nn.ReLU())
        self.fc_decode = nn.Linear(config.latent_dim, flat)
        self.decoder = nn.Sequential(*dec)
        start_at_mean_pixel(self.decoder[-1])

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (B,1,28,28) -> (B,D)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.fc_decode(z)).view(-1, *self.feature_shape)  # (B,D) -> (B,64,7,7)
        return torch.sigmoid(self.decoder(h))  # -> (B,1,28,28)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


class DigitClassifier(nn.Module):
    """A small CNN that reads the digit; it judges whether a reconstruction is recognisable."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        chans = (1, *config.channels)
        layers: list[nn.Module] = []
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        side = IMAGE_SIDE // 2 ** len(config.channels)
        self.net = nn.Sequential(
            *layers, nn.Flatten(), nn.Dropout(0.25),
            nn.Linear(chans[-1] * side * side, config.hidden), nn.ReLU(), nn.Dropout(0.25),
            nn.Linear(config.hidden, NUM_CLASSES),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B,1,28,28) -> (B,10) logits

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self(x).argmax(dim=1)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
