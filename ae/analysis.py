"""What the app shows for a digit and an autoencoder: the latent, the reconstruction, how close
it is (PSNR, SSIM) and what the classifier reads in it; and `draw_view_data`, everything the
Draw view shows for one digit as plain data (arrays, numbers, strings), so the app can cache it
per digit and share it between sessions."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from ae.codec_link import CodecStatus, compress_digit
from ae.errors import AEError
from ae.images import as_batch, as_digit_array
from ae.inference import class_probabilities, decode, encode, reconstruct
from ae.metrics import psnr, ssim
from ae.sizes import latent_representations, picture_psnr, pixel_representations


@dataclass
class Reading:
    label: int
    confidence: float  # softmax probability of that label


@dataclass
class DigitReconstruction:
    latent: np.ndarray  # (D,) float32
    image: np.ndarray  # (28,28) float32 in [0,1]
    psnr: float  # dB
    ssim: float
    reading: Reading | None  # the classifier's reading of the reconstruction


def read_digits(classifier: nn.Module, images: torch.Tensor) -> list[Reading]:
    conf, label = class_probabilities(classifier, images).max(dim=1)
    return [Reading(int(l), float(c)) for l, c in zip(label, conf)]


def reconstruct_digit(model: nn.Module, digit, classifier: nn.Module | None = None) -> DigitReconstruction:
    x = as_batch(digit)
    z = encode(model, x)
    x_hat = decode(model, z)
    return DigitReconstruction(
        latent=z[0].numpy().astype(np.float32),
        image=x_hat[0, 0].numpy(),
        psnr=float(psnr(x_hat, x)[0]),
        ssim=float(ssim(x_hat, x)[0]),
        reading=read_digits(classifier, x_hat)[0] if classifier is not None else None,
    )


@dataclass
class BatchReconstruction:
    images: torch.Tensor  # (N,1,28,28)
    psnr: torch.Tensor  # (N,) dB
    readings: list[Reading] | None


def reconstruct_batch(model: nn.Module, images: torch.Tensor, classifier: nn.Module | None = None) -> BatchReconstruction:
    x_hat = reconstruct(model, images)
    return BatchReconstruction(x_hat, psnr(x_hat, images), read_digits(classifier, x_hat) if classifier is not None else None)


# ---- everything the Draw view shows for one digit ----

@dataclass
class SizedForm:
    """One way to store the digit: `size` is len() of a payload that exists and decodes."""
    name: str
    size: int
    note: str
    decoded_psnr: float | None  # what the payload decodes back to, against the input digit
    lossless: bool = False  # decodes to exactly the digit's 8-bit pixels


@dataclass
class CodedPayload:
    """The digit through the entropy codec at one operating point (or why it could not be coded)."""
    point: str
    label: str
    size: int | None = None  # len() of the payload, decoded again by the codec
    decoded: np.ndarray | None = None  # (28,28) float32, what the receiver gets
    psnr: float | None = None
    error: str | None = None


@dataclass
class AutoencoderView:
    latent: np.ndarray  # (D,) float32
    image: np.ndarray  # (28,28) float32 reconstruction
    psnr: float
    ssim: float
    reading: Reading | None
    forms: list[SizedForm]  # the latent as float32 and as 8-bit codes
    coded: list[CodedPayload]  # codec points that code this architecture, if any


@dataclass
class DrawView:
    digit: np.ndarray  # (28,28) float32, the input
    pixel_forms: list[SizedForm]  # raw pixels and PNG
    autoencoders: dict[str, AutoencoderView]  # by architecture, for the models given
    coded: list[CodedPayload]  # the codec's own rate-distortion models
    bars: list["SizeBar"] | None = None  # every size above as one chart's bars (size_bars)


@dataclass
class SizeBar:
    """One bar of the Draw page's byte chart: a payload that exists, its length and how close
    what it decodes to is to the digit."""
    name: str  # e.g. "CNN 8-bit latent"
    size: int  # bytes
    psnr: float | None  # dB; None when lossless
    kind: str  # "pixels" | "float32" | "8-bit" | "coded": the bar's colour

    @property
    def label(self) -> str:
        return f"{self.size:,} B · " + ("lossless" if self.psnr is None else f"{self.psnr:.1f} dB")


_FORM_KINDS = {"float32 latent": "float32", "8-bit latent": "8-bit"}


def size_bars(view: DrawView) -> list[SizeBar]:
    """Raw pixels and PNG, the float32 latents of every autoencoder, then their 8-bit latents,
    then every coded payload: the byte story in the order it is told."""
    bars = [SizeBar(f.name, f.size, None if f.lossless else f.decoded_psnr, "pixels") for f in view.pixel_forms]
    for form_name, kind in _FORM_KINDS.items():
        for arch, ae_view in view.autoencoders.items():
            bars += [SizeBar(f"{arch.upper()} {f.name}", f.size, f.decoded_psnr, kind)
                     for f in ae_view.forms if f.name == form_name]
    coded = [c for v in view.autoencoders.values() for c in v.coded] + view.coded
    bars += [SizeBar(f"{c.point} payload", c.size, c.psnr, "coded") for c in coded if c.error is None]
    return bars


def warm_codec(status: CodecStatus) -> None:
    """Code a blank digit at every operating point, so the coders (weights, tables) are loaded
    before the first real digit needs them."""
    for point in status.points:
        code_digit(status, np.zeros((28, 28), dtype=np.float32), point)


def code_digit(status: CodecStatus, digit, point) -> CodedPayload:
    """The digit's payload at this point, decoded again (codec_link.compress_digit), or why not."""
    try:
        payload = compress_digit(status, digit, point.name)
    except AEError as exc:
        return CodedPayload(point.name, point.label, error=str(exc))
    decoded = payload.decoded[0]
    return CodedPayload(point.name, point.label, payload.size, decoded, picture_psnr(digit, decoded))


def _autoencoder_view(model: nn.Module, arch: str, digit: np.ndarray, classifier: nn.Module | None,
                      status: CodecStatus | None) -> AutoencoderView:
    result = reconstruct_digit(model, digit, classifier)
    forms = [SizedForm(r.name, r.size, r.note, r.psnr_against(digit))
             for r in latent_representations(model, result.latent)]
    coded = [code_digit(status, digit, p) for p in status.points_for(arch)] if status and status.available else []
    return AutoencoderView(result.latent, result.image, result.psnr, result.ssim, result.reading, forms, coded)


def draw_view_data(digit, models: dict[str, nn.Module | None], classifier: nn.Module | None = None,
                   status: CodecStatus | None = None) -> DrawView:
    """Both autoencoders, the classifier, every stored form's real size and the codec's payloads
    for one digit. `models` maps an architecture to its model (None: not available)."""
    digit = as_digit_array(digit)
    pixels = pixel_representations(digit)  # raw pixels first: the 8-bit digit itself
    pixel_forms = [SizedForm(r.name, r.size, r.note, None, lossless=np.array_equal(r.decoded, pixels[0].decoded))
                   for r in pixels]
    views = {arch: _autoencoder_view(model, arch, digit, classifier, status)
             for arch, model in models.items() if model is not None}
    coded = [code_digit(status, digit, p) for p in status.coded_model_points()] if status and status.available else []
    view = DrawView(digit, pixel_forms, views, coded)
    view.bars = size_bars(view)
    return view
