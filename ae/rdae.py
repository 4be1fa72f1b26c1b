"""The codec's rate-distortion autoencoder: an autoencoder (feedforward `rdae`, or convolutional
`rdcnn`) whose latents are rounded to integers and priced in bits by a learned prior (`ae.entropy`).

Training minimises `RateDistortionLoss`: `distortion + beta * bits`, the distortion being the MSE
or the mean over digits of ln MSE (uniform noise stands in for rounding in the rate term; the
decoder sees straight-through rounded latents). With a `rate_target_bits`, beta is tuned on the
fly (a multiplicative dual step) so the model lands on that rate: one operating point per target.
The knobs are the run's settings (`ae.train.CodecSettings`), never attributes of the model.
`encode` returns the rounded latents the codec sends, so `decode(encode(x))` is the codec's
reconstruction. The codec decodes with integer arithmetic (`ae.integer_decoder`, made from
`decoder_layers()`); `decode_exact`, float64 rounded to 8 bits, is the float reference the
integer decoder is checked against.
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ae.entropy import LogisticMixturePrior, quantize
from ae.models import IMAGE_SIDE, NUM_PIXELS, ModelConfig

BETA_STEP = 0.02  # how fast beta follows the rate target (per training step)


class RateDistortionAE(nn.Module):
    """784 -> hidden -> hidden/2 -> latent (rounded) -> hidden/2 -> hidden -> 784 (sigmoid).
    Subclasses change only `build_transforms`; rate, training and exact decoding are shared."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.latent_dim = config.latent_dim
        self.encoder, self.decoder = self.build_transforms(config)
        self.prior = LogisticMixturePrior(config.latent_dim)
        self._decoder64: nn.Module | None = None

    @staticmethod
    def build_transforms(config: ModelConfig) -> tuple[nn.Module, nn.Module]:
        """(encoder: (B,1,28,28) -> (B,D), decoder: (B,D) -> (B,784) pixel logits)."""
        h = config.hidden
        encoder = nn.Sequential(
            nn.Flatten(),  # (B,1,28,28) -> (B,784)
            nn.Linear(NUM_PIXELS, h), nn.ReLU(),
            nn.Linear(h, h // 2), nn.ReLU(),
            nn.Linear(h // 2, config.latent_dim),
        )
        decoder = nn.Sequential(
            nn.Linear(config.latent_dim, h // 2), nn.ReLU(),
            nn.Linear(h // 2, h), nn.ReLU(),
            nn.Linear(h, NUM_PIXELS),
        )
        return encoder, decoder

    # --- the model API shared with the other autoencoders -------------------------------------
    def analyse(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (B,1,28,28) -> (B,D) continuous latents

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return quantize(self._in_chunks(self.analyse, x), "symbols").float()  # (B,D) integer-valued

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z)).view(-1, 1, IMAGE_SIDE, IMAGE_SIDE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    # --- rate-distortion training -------------------------------------------------------------
    def training_objective(self, settings) -> "RateDistortionLoss":
        """The loss of one training run with these settings (`ae.train.CodecSettings`)."""
        if not hasattr(settings, "rate_target_bits"):
            raise TypeError("a rate-distortion model trains with ae.train.CodecSettings, "
                            f"not {type(settings).__name__}")
        return RateDistortionLoss(settings.rate_target_bits, settings.beta, settings.distortion,
                                  getattr(settings, "rate_ramp_steps", 0))

    def update(self) -> torch.Tensor:
        """Freeze the prior into the integer tables the coder uses (after training)."""
        return self.prior.update()

    # --- the decoder as plain arrays, for the codec's integer decoder ----------------------------
    def decoder_layers(self) -> list[dict]:
        """The decoder as `plain_layers` (what `ae.integer_decoder` converts to integers)."""
        return plain_layers(self.decoder)

    # --- exact decoding for the codec ----------------------------------------------------------
    def train(self, mode: bool = True):
        object.__setattr__(self, "_decoder64", None)  # weights may change: drop the float64 copy
        return super().train(mode)

    # Digits encoded / exactly decoded at a time (None: all at once). Convolutions on a CPU run
    # 2-3x faster on chunks whose feature maps stay in the caches; dense layers prefer big batches.
    INFERENCE_CHUNK: int | None = None

    def _in_chunks(self, fn, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([fn(part) for part in x.split(self.INFERENCE_CHUNK or max(len(x), 1))])

    @torch.no_grad()
    def decode_exact(self, symbols: torch.Tensor) -> torch.Tensor:
        """(B,D) integer symbols -> (B,1,28,28) float32 images on the 8-bit grid (k/255).
        Computed in float64 and rounded to 8 bits: the float reference of the codec's integer
        decoder (identical across machines in practice only, where the integer one is by
        construction)."""
        if self._decoder64 is None:
            decoder64 = copy.deepcopy(self.decoder).double().eval()
            for i, layer in enumerate(decoder64):
                if isinstance(layer, nn.Conv2d):
                    decoder64[i] = TapSumConv2d(layer)
            # object.__setattr__: a plain attribute, not a registered submodule (so it is never
            # saved with the weights nor part of the model's fingerprint).
            object.__setattr__(self, "_decoder64", decoder64)
        logits = self._in_chunks(self._decoder64, symbols.to(torch.float64))
        pixels = torch.round(torch.sigmoid(logits) * 255.0)
        return (pixels / 255.0).float().view(-1, 1, IMAGE_SIDE, IMAGE_SIDE)


def plain_layers(sequential: nn.Sequential) -> list[dict]:
    """A decoder's layers in order as plain dicts of float32 numpy arrays and settings, which
    `ae.integer_decoder.IntegerDecoder.from_layers` turns into integers: "linear" (weight
    (out,in), bias), "relu", "unflatten" (shape (C,H,W)), "conv_transpose" (weight (in,out,k,k),
    bias, stride, padding), "conv" (weight (out,in,k,k), bias, padding; stride 1), "flatten"."""
    def arrays(layer) -> dict:
        return {"weight": layer.weight.detach().cpu().float().numpy().copy(),
                "bias": layer.bias.detach().cpu().float().numpy().copy()}

    def plain(conv) -> bool:
        return (conv.kernel_size[0] == conv.kernel_size[1] and conv.stride[0] == conv.stride[1]
                and conv.padding[0] == conv.padding[1] and conv.dilation == (1, 1) and conv.groups == 1
                and conv.bias is not None and getattr(conv, "output_padding", (0, 0)) == (0, 0)
                and conv.padding_mode == "zeros")

    layers = []
    for layer in sequential:
        if isinstance(layer, nn.Linear) and layer.bias is not None:
            layers.append({"kind": "linear", **arrays(layer)})
        elif isinstance(layer, nn.ConvTranspose2d) and plain(layer):
            layers.append({"kind": "conv_transpose", **arrays(layer), "stride": layer.stride[0], "padding": layer.padding[0]})
        elif isinstance(layer, nn.Conv2d) and plain(layer) and layer.stride == (1, 1):
            layers.append({"kind": "conv", **arrays(layer), "padding": layer.padding[0]})
        elif isinstance(layer, nn.ReLU):
            layers.append({"kind": "relu"})
        elif isinstance(layer, nn.Unflatten):
            layers.append({"kind": "unflatten", "shape": list(layer.unflattened_size)})
        elif isinstance(layer, nn.Flatten):
            layers.append({"kind": "flatten"})
        else:
            raise ValueError(f"the integer decoder has no counterpart of the layer {layer}")
    return layers


DISTORTIONS = ("mse", "log-mse")  # log-mse: mean over digits of ln(MSE), i.e. what the mean PSNR measures


class RateDistortionLoss:
    """What one training run of a RateDistortionAE minimises: `distortion + beta * bits`.
    The knobs are fixed for the run; `beta` is the run's current rate weight, which each
    training batch moves towards `rate_target_bits` (when there is one). `last_bits` and
    `last_mse` describe the latest batch, for progress displays.

    With `rate_ramp_steps`, the target beta steers to glides geometrically from the rate of the
    first batch to `rate_target_bits` over that many steps. Fine-tuning a model far from its
    target (288 -> 112 bits) without it makes beta race ahead of the weights: it grew 500x in
    the first epoch and the reconstructions collapsed to blanks before the model relearnt them."""

    def __init__(self, rate_target_bits: float | None = None, beta: float = 1e-4, distortion: str = "mse",
                 rate_ramp_steps: int = 0):
        if distortion not in DISTORTIONS:
            raise ValueError(f"distortion must be one of {DISTORTIONS}, not {distortion!r}")
        self.rate_target_bits, self.beta, self.distortion = rate_target_bits, beta, distortion
        self.rate_ramp_steps, self.steps_taken, self.start_bits = rate_ramp_steps, 0, None
        self.last_bits = self.last_mse = math.nan

    def current_target(self, bits: float) -> float:
        """The rate this training step steers to (`bits`: this batch's rate)."""
        if self.start_bits is None:
            self.start_bits = bits
        if self.steps_taken >= self.rate_ramp_steps:
            return self.rate_target_bits
        progress = self.steps_taken / self.rate_ramp_steps
        return self.start_bits * (self.rate_target_bits / self.start_bits) ** progress

    def __call__(self, model: RateDistortionAE, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        y = model.analyse(x)
        if model.training:
            bits = model.prior.bits(quantize(y, "noise")).mean()
        else:  # validation: the real rounded latents
            bits = model.prior.bits(quantize(y, "ste")).mean()
        per_digit = (model.decode(quantize(y, "ste")) - x).pow(2).flatten(1).mean(1)  # (B,)
        mse = per_digit.mean()
        # The reported PSNR is a mean over digits: "log-mse" optimises exactly that.
        distortion = per_digit.add(1e-5).log().mean() if self.distortion == "log-mse" else mse
        if model.training and self.rate_target_bits:
            target = self.current_target(bits.item())
            error = (bits.item() - target) / target
            self.beta *= math.exp(BETA_STEP * max(min(error, 1.0), -1.0))
            self.steps_taken += 1
        self.last_bits, self.last_mse = bits.item(), mse.item()
        return distortion + self.beta * bits

    def results(self) -> dict:
        """What the card records about the run beyond its settings: where beta ended."""
        return {"final_beta": self.beta}


def conv_analysis(config: ModelConfig) -> nn.Sequential:
    """(B,1,28,28) -> (B,latent): conv3x3 c0 -> conv4x4/2 c1 (14x14) -> conv4x4/2 c2 (7x7)
    -> dense hidden -> latent. The encoder of the convolutional codec models."""
    c0, c1, c2 = config.channels
    side = IMAGE_SIDE // 4
    return nn.Sequential(
        nn.Conv2d(1, c0, 3, padding=1), nn.ReLU(),
        nn.Conv2d(c0, c1, 4, stride=2, padding=1), nn.ReLU(),  # 28 -> 14
        nn.Conv2d(c1, c2, 4, stride=2, padding=1), nn.ReLU(),  # 14 -> 7
        nn.Flatten(), nn.Linear(c2 * side * side, config.hidden), nn.ReLU(),
        nn.Linear(config.hidden, config.latent_dim),
    )


class TapSumConv2d(nn.Module):
    """Float64 stand-in for a stride-1 'same' Conv2d (the decoder's last layer): one matrix
    product mixes the channels for every kernel tap, then k*k shifted sums. PyTorch's own
    float64 conv2d takes a slow generic path on CPUs (about 2x slower for this layer)."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        (k, _), (p, _) = conv.kernel_size, conv.padding
        if conv.stride != (1, 1) or conv.groups != 1 or conv.dilation != (1, 1) or 2 * p != k - 1:
            raise ValueError(f"TapSumConv2d needs a stride-1 'same' convolution, got {conv}")
        self.k, self.p, self.c_out = k, p, conv.out_channels
        # (k*k*Cout, Cin): row (u, v, o) holds the weights of output channel o at tap (u, v).
        self.weight = conv.weight.detach().permute(2, 3, 0, 1).reshape(k * k * self.c_out, conv.in_channels)
        self.bias = conv.bias.detach().view(1, -1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        k, p = self.k, self.p
        taps = (self.weight @ x.flatten(2)).view(b, k, k, self.c_out, h, w)
        taps = F.pad(taps, (p, p, p, p))  # output (y, x) takes tap (u, v) of input (y+u-p, x+v-p)
        out = self.bias.expand(b, -1, h, w).clone()
        for u in range(k):
            for v in range(k):
                out += taps[:, u, v, :, u:u + h, v:v + w]
        return out


class ConvRateDistortionAE(RateDistortionAE):
    """The same codec model with convolutional transforms (better pixels per bit):
    encoder  conv3x3 c0 -> conv4x4/2 c1 (14x14) -> conv4x4/2 c2 (7x7) -> dense hidden -> latent;
    decoder  latent -> dense hidden -> dense c2x7x7 -> convT/2 c1 (14x14) -> convT/2 c0 (28x28)
             -> conv3x3 -> 784 logits."""

    INFERENCE_CHUNK = 128

    @staticmethod
    def build_transforms(config: ModelConfig) -> tuple[nn.Module, nn.Module]:
        c0, c1, c2 = config.channels
        h, side = config.hidden, IMAGE_SIDE // 4
        encoder = conv_analysis(config)
        decoder = nn.Sequential(
            nn.Linear(config.latent_dim, h), nn.ReLU(),
            nn.Linear(h, c2 * side * side), nn.ReLU(),
            nn.Unflatten(1, (c2, side, side)),
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1), nn.ReLU(),  # 7 -> 14
            nn.ConvTranspose2d(c1, c0, 4, stride=2, padding=1), nn.ReLU(),  # 14 -> 28
            nn.Conv2d(c0, 1, 3, padding=1), nn.Flatten(),
        )
        return encoder, decoder


class HybridRateDistortionAE(RateDistortionAE):
    """Convolutional encoder (`conv_analysis`), feedforward decoder (as `rdae`): the encoder
    runs in float32 at sender's speed, while the decoder, which must be exact (float64) on
    every receiver, stays a few dense layers: fast to decode, unlike transposed convolutions."""

    @staticmethod
    def build_transforms(config: ModelConfig) -> tuple[nn.Module, nn.Module]:
        _, decoder = RateDistortionAE.build_transforms(config)
        return conv_analysis(config), decoder
