"""Figures from outside this project that the Compare page draws as reference marks beside
what `python -m ae benchmark` measured. None of them was measured here: they are quoted from
the papers named beside them, under those papers' own conditions (image size, header)."""
from __future__ import annotations

from dataclasses import dataclass

MNIST_PIXELS = 28 * 28
NOT_MEASURED = "published, not measured here"  # the legend's title over these marks


@dataclass(frozen=True)
class PublishedPoint:
    setting: str              # as the paper states the rate
    bytes_per_digit: float
    psnr: float | None = None  # dB; None for a lossless method (no finite PSNR)


@dataclass(frozen=True)
class PublishedMethod:
    short: str       # the name in running text
    name: str        # the legend entry
    citation: str    # authors, venue, year (and code), shown in the hover text and the caption
    title: str       # the paper's title, in the hover text
    conditions: str  # how the paper's setting differs from this benchmark's
    points: tuple[PublishedPoint, ...]

    @property
    def lossless(self) -> bool:
        return all(p.psnr is None for p in self.points)


PUBLISHED = (
    # Bit-Swap's lossless MNIST record: 1.29 bits per pixel on the 28×28 digits, 126 B a digit.
    PublishedMethod(
        short="Bit-Swap",
        name="Bit-Swap, lossless (28×28)",
        citation="Kingma, Abbeel & Ho, ICML 2019",
        title="Bit-Swap: Recursive Bits-Back Coding for Lossless Compression with Hierarchical Latent Variables",
        conditions="lossless MNIST at 1.29 bits/dim",
        points=(PublishedPoint("1.29 bits/dim", 1.29 * MNIST_PIXELS / 8),)),
    # The NERD paper's fixed-rate DNN compressor (code: github.com/leieric/NERD-RCC): about 36 bits
    # at about 22.7 dB and 32 bits at 22.1 dB, on MNIST resized to 32×32 (the code's data loader
    # uses Resize(32)), so the PSNR is over 1,024 interpolated pixels, not the 784 originals; a
    # fixed-rate code needs no header, so none is counted.
    PublishedMethod(
        short="NERD",
        name="NERD fixed-rate DNN (32×32)",
        citation="Lei, Hassani & Saeedi Bidokhti, IEEE JSAIT 2022; code leieric/NERD-RCC",
        title="Neural Estimation of the Rate-Distortion Function With Applications to Operational Source Coding",
        conditions="a fixed-rate DNN compressor on MNIST resized to 32×32, approximate figures, bytes without a header",
        points=(PublishedPoint("36 bits", 36 / 8, 22.7), PublishedPoint("32 bits", 32 / 8, 22.1))),
)


def published_for(quality: str) -> list[PublishedMethod]:
    """The published methods that have a figure for `quality` ("psnr", "ssim", "accuracy"): a
    lossless one belongs on every chart (its decoded digits are the originals); a lossy one only
    where the paper gives that measure, which for these is PSNR."""
    return [m for m in PUBLISHED if m.lossless or (quality == "psnr" and all(p.psnr is not None for p in m.points))]
