"""Every way of sending a digit, measured on the same digits: bytes per digit (headers included),
PSNR, SSIM, the shipped classifier's accuracy on the reconstructions, and speed.

Methods: raw pixels; the shipped autoencoders' float32 latents; quantised latents without
entropy coding; the entropy-coded operating points (`ae.codec`, single-digit payloads and one
container); PNG, WebP lossless and lossy JPEG / WebP / JPEG XL / AVIF at several qualities.
The neural rows call `ae.codec.compress` / `decompress` and the models' own encode/decode (through
`ae.inference`); sizes are `ae.sizes`' payloads: the benchmark measures the real code, it never
re-implements it.
"""
from __future__ import annotations

import datetime as _dt
import io
import json
import math
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from ae.data import Digits
from ae.images import batch_to_uint8, from_uint8
from ae.inference import classify, decode, encode, reconstruct
from ae.metrics import MAX_PSNR, psnr, ssim
from ae.sizes import (RAW_DIGIT_BYTES, float32_latent_bytes, png_encode, uint8_latent_decode, uint8_latent_encode,
                      uint8_latent_note)

CLASSIC_QUALITIES = {
    "JPEG": [5, 10, 20, 30, 50, 75, 90],
    "WebP": [0, 5, 10, 20, 40, 70],
    "JPEG XL": [5, 10, 20, 40, 70, 90],
    "AVIF": [0, 5, 10, 20, 40, 70],
}
SINGLE_REPEATS = 50  # digits timed one at a time for the single-digit latency
BATCH = 1000  # digits per batch (and per container) for the batch throughput


@dataclass
class Result:
    method: str
    family: str  # "raw" | "latent" | "neural" | "classic"
    label: str
    setting: str | None
    bytes_per_digit: float
    psnr: float
    ssim: float
    accuracy: float
    digits_per_s_batch: float | None
    ms_single: float | None
    extra: dict | None = None  # e.g. the entropy estimate beside the real bytes

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["extra"] is None:
            del d["extra"]
        return d


class Quality:
    """Distortion and recognisability of reconstructions against the originals."""

    def __init__(self, data: Digits, classifier: torch.nn.Module | None):
        self.data, self.classifier = data, classifier

    def __call__(self, recon: torch.Tensor) -> dict:
        x = self.data.images
        acc = float("nan")
        if self.classifier is not None:
            acc = (classify(self.classifier, recon) == self.data.labels).float().mean().item()
        return {"psnr": psnr(recon, x).mean().item(), "ssim": ssim(recon, x).mean().item(), "accuracy": acc}


def _timed(fn: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _ms_single(fn: Callable[[torch.Tensor], object], images: torch.Tensor) -> float:
    """Median milliseconds to process one digit end to end (after one warm-up)."""
    fn(images[:1])
    times = []
    for i in range(min(SINGLE_REPEATS, len(images))):
        _, dt = _timed(lambda: fn(images[i:i + 1]))
        times.append(dt * 1000)
    return statistics.median(times)


# ----------------------------------------------------------------------------------------------
# Raw pixels and plain latents
# ----------------------------------------------------------------------------------------------

def raw_result(quality: Quality) -> Result:
    q = quality((quality.data.images * 255).round() / 255)
    return Result("raw", "raw", "raw 8-bit pixels", None, float(RAW_DIGIT_BYTES), q["psnr"], q["ssim"], q["accuracy"], None, None)


def float_latent_result(name: str, model: torch.nn.Module, quality: Quality) -> Result:
    images = quality.data.images
    recon, dt = _timed(lambda: reconstruct(model, images, BATCH))
    q = quality(recon)
    return Result(f"{name}-float32", "latent", f"{name} latents, {model.latent_dim} float32",
                  None, float(float32_latent_bytes(model.latent_dim)), q["psnr"], q["ssim"], q["accuracy"],
                  len(images) / dt, _ms_single(lambda x: reconstruct(model, x), images))


def uint8_latent_result(name: str, model: torch.nn.Module, quality: Quality) -> Result:
    """Each digit's float latent as the 8-bit payload the Draw page shows (`ae.sizes`), decoded
    back and through the model: quantisation alone, no entropy coding."""
    payloads = [uint8_latent_encode(v) for v in encode(model, quality.data.images, BATCH).numpy()]
    recon = decode(model, np.stack([uint8_latent_decode(p) for p in payloads]), BATCH)
    q = quality(recon)
    return Result(f"{name}-uint8", "latent", f"{name} latents, {uint8_latent_note(model.latent_dim)}",
                  "8 bits/neuron + range", float(np.mean([len(p) for p in payloads])),
                  q["psnr"], q["ssim"], q["accuracy"], None, None)


def fixed_width_symbols_result(coder, quality: Quality) -> Result:
    """An operating point's integer symbols written with a fixed number of bits per latent
    dimension (just enough for the range seen in its table), no entropy coding."""
    used = coder.frequencies > 1  # symbols the table gives more than the minimum
    bits = 0
    for row in used:
        idx = np.flatnonzero(row)
        span = int(idx.max() - idx.min() + 1) if len(idx) else 1
        bits += math.ceil(math.log2(span)) if span > 1 else 0
    images = quality.data.images
    symbols = np.concatenate([coder.symbols(images[i:i + BATCH]) for i in range(0, len(images), BATCH)])
    recon = coder.images(symbols)
    q = quality(recon)
    return Result(f"{coder.name}-fixed", "latent", f"{coder.name} symbols, fixed width",
                  f"{bits} bits/digit", float(math.ceil(bits / 8)), q["psnr"], q["ssim"], q["accuracy"],
                  None, None, extra={"arch": coder.model.config.arch})


# ----------------------------------------------------------------------------------------------
# The entropy-coded codec
# ----------------------------------------------------------------------------------------------

def codec_results(coder, quality: Quality) -> list[Result]:
    from ae.codec import SINGLE_HEADER_BYTES, compress, compress_symbols, decompress

    images = quality.data.images
    n = len(images)
    # Single-digit payloads: the size of sending each digit on its own.
    symbols = np.concatenate([coder.symbols(images[i:i + BATCH]) for i in range(0, n, BATCH)])
    sizes = np.array([len(compress_symbols(symbols[i:i + 1], coder)) for i in range(n)])
    estimate = coder.estimated_bits(symbols) / 8
    recon = coder.images(symbols)
    # Batch throughput: containers of BATCH digits, image -> bytes -> image, entropy coding included.
    def batch_round_trip():
        out = []
        for i in range(0, n, BATCH):
            out.append(decompress(compress(images[i:i + BATCH], coder, container=True), [coder]).images)
        return torch.cat(out)
    batch_recon, dt = _timed(batch_round_trip)
    assert torch.equal(batch_recon, recon), "container and single-digit decoding disagree"
    container_bytes = len(compress_symbols(symbols, coder, container=True)) if n > 1 else int(sizes[0])
    ms = _ms_single(lambda x: decompress(compress(x, coder, container=False), [coder]), images)
    q = quality(recon)
    common = dict(psnr=q["psnr"], ssim=q["ssim"], accuracy=q["accuracy"])
    # The chart draws one line per kind of model; a refined point (ae.refined_coder) is a kind of its own.
    arch = coder.model.config.arch + ("+residual" if hasattr(coder, "residual") else "")
    single = Result(coder.name, "neural", f"{coder.name} (entropy-coded, one payload per digit)", "single digit",
                    float(sizes.mean()), digits_per_s_batch=n / dt, ms_single=ms,
                    extra={"arch": arch, "estimated_bytes": float(estimate.mean()), "header_bytes": SINGLE_HEADER_BYTES,
                           "min_bytes": int(sizes.min()), "max_bytes": int(sizes.max())}, **common)
    many = Result(f"{coder.name}-container", "neural", f"{coder.name} (all digits in one container)",
                  f"{n} digits in one payload", container_bytes / n, digits_per_s_batch=n / dt, ms_single=None,
                  extra={"arch": arch, "estimated_bytes": float(estimate.mean()), "payload_bytes": container_bytes},
                  **common)
    return [single, many]


# ----------------------------------------------------------------------------------------------
# Classic image codecs through Pillow
# ----------------------------------------------------------------------------------------------

def _pillow_codecs() -> dict[str, tuple[str, Callable[[int | None], dict]]]:
    import pillow_avif  # noqa: F401  (registers AVIF with Pillow)
    import pillow_jxl  # noqa: F401  (registers JPEG XL with Pillow)

    return {
        "PNG": ("PNG", lambda q: {}),  # ae.sizes.png_encode, the app's PNG
        "WebP lossless": ("WEBP", lambda q: {"lossless": True, "quality": 100, "method": 6}),
        "JPEG": ("JPEG", lambda q: {"quality": q, "optimize": True}),
        "WebP": ("WEBP", lambda q: {"quality": q, "method": 6}),
        "JPEG XL": ("JXL", lambda q: {"quality": q}),
        "AVIF": ("AVIF", lambda q: {"quality": q}),
    }


def classic_round_trip(pixels: np.ndarray, fmt: str, options: dict) -> tuple[int, np.ndarray]:
    """(28,28) uint8 -> (file size, decoded (28,28) uint8)."""
    from PIL import Image

    if fmt == "PNG":  # the same bytes as the Draw page's PNG size
        data = png_encode(from_uint8(pixels))
    else:
        buf = io.BytesIO()
        Image.fromarray(pixels, mode="L").save(buf, format=fmt, **options)
        data = buf.getvalue()
    with Image.open(io.BytesIO(data)) as img:
        return len(data), np.asarray(img.convert("L"))


def classic_results(quality: Quality) -> Iterator[Result]:
    pixels = batch_to_uint8(quality.data.images)
    settings = [("PNG", None), ("WebP lossless", None)]
    settings += [(name, q) for name, qs in CLASSIC_QUALITIES.items() for q in qs]
    codecs = _pillow_codecs()
    for name, q in settings:
        fmt, options = codecs[name]
        opts = options(q)
        start = time.perf_counter()
        sizes, decoded = zip(*(classic_round_trip(p, fmt, opts) for p in pixels))
        dt = time.perf_counter() - start
        recon = torch.from_numpy(from_uint8(np.stack(decoded)))[:, None]
        m = quality(recon)
        setting = None if q is None else f"quality {q}"
        label = name if q is None else f"{name} q{q}"
        # Pillow codes one image per call, so batch and single-digit speeds are the same loop.
        yield Result(name.lower().replace(" ", "-") + ("" if q is None else f"-q{q}"), "classic", label, setting,
                     float(np.mean(sizes)), m["psnr"], m["ssim"], m["accuracy"],
                     len(pixels) / dt, 1000 * dt / len(pixels))


# ----------------------------------------------------------------------------------------------
# The whole run
# ----------------------------------------------------------------------------------------------

def machine_description() -> str:
    gpu = "GPU " + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    import os
    return (f"{os.cpu_count()}-core CPU ({platform.machine()}), {gpu}, torch {torch.get_num_threads()} "
            f"thread(s), Python {platform.python_version()}")


def run_benchmark(data: Digits, classifier, latent_models: dict, coders: list, classic: bool = True,
                  progress: Callable[[str], None] = lambda s: None) -> list[Result]:
    quality = Quality(data, classifier)
    results = [raw_result(quality)]
    for name, model in latent_models.items():
        progress(f"{name} latents")
        results += [float_latent_result(name, model, quality), uint8_latent_result(name, model, quality)]
    for coder in coders:
        progress(f"codec {coder.name}")
        if not hasattr(coder, "residual"):  # a refined point's residuals have no fixed-width form worth a row
            results.append(fixed_width_symbols_result(coder, quality))
        results += codec_results(coder, quality)
    if classic:
        for r in classic_results(quality):
            progress(r.label)
            results.append(r)
    return results


def benchmark_json(results: list[Result], data: Digits, command: str) -> dict:
    return {
        "meta": {"data": data.source, "digits": len(data), "machine": machine_description(),
                 "command": command, "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")},
        "results": [r.to_dict() for r in results],
    }


def point_card_figures(results: list[Result], point: str) -> tuple[dict, str]:
    """(metrics, app label) of a codec operating point, for its card (`benchmark --update-cards`):
    its single-digit payloads and its containers of BATCH digits."""
    by_method = {r.method: r for r in results}
    single, many = by_method[point], by_method[f"{point}-container"]
    metrics = {"mean_bytes": single.bytes_per_digit, "estimated_bytes": single.extra["estimated_bytes"],
               "container_bytes_per_digit": many.bytes_per_digit, "psnr": single.psnr,
               "ssim": single.ssim, "accuracy": single.accuracy,
               "digits_per_s_batch": single.digits_per_s_batch, "ms_single": single.ms_single}
    label = (f"{point}: {single.bytes_per_digit:.1f} B/digit, {single.psnr:.1f} dB, "
             f"{100 * single.accuracy:.1f}% recognised")
    return metrics, label


def format_table(results: list[Result]) -> str:
    width = max([34] + [len(r.label) + 1 for r in results])
    head = f"{'method':<{width}}{'bytes':>9}{'PSNR dB':>9}{'SSIM':>7}{'acc %':>8}{'digits/s':>10}{'ms/digit':>10}"
    lines = [head, "-" * len(head)]
    for r in results:
        rate = "-" if r.digits_per_s_batch is None else f"{r.digits_per_s_batch:,.0f}"
        ms = "-" if r.ms_single is None else f"{r.ms_single:.2f}"
        acc = "-" if math.isnan(r.accuracy) else f"{100 * r.accuracy:.2f}"
        lines.append(f"{r.label:<{width}}{r.bytes_per_digit:>9.2f}{r.psnr:>9.2f}{r.ssim:>7.3f}{acc:>8}{rate:>10}{ms:>10}")
    return "\n".join(lines)


def markdown_table(doc: dict) -> str:
    """The README's table, from a benchmark JSON."""
    lines = ["| method | bytes/digit | PSNR dB | SSIM | accuracy | digits/s (batch) | ms (one digit) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in doc["results"]:
        rate = "–" if r["digits_per_s_batch"] is None else f"{r['digits_per_s_batch']:,.0f}"
        ms = "–" if r["ms_single"] is None else f"{r['ms_single']:.2f}"
        psnr_text = "lossless" if r["psnr"] >= MAX_PSNR else f"{r['psnr']:.2f}"
        name = f"**{r['label']}**" if r["family"] == "neural" else r["label"]
        lines.append(f"| {name} | {r['bytes_per_digit']:.2f} | {psnr_text} | {r['ssim']:.3f} | "
                     f"{100 * r['accuracy']:.2f}% | {rate} | {ms} |")
    return "\n".join(lines)


def write_html(doc: dict, path: Path) -> None:
    """A plotly rate-distortion chart: bytes per digit (log) against PSNR and against accuracy."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("PSNR (dB)", "classifier accuracy (%)"))
    families = {}
    for r in doc["results"]:
        families.setdefault((r["family"], r["method"].split("-q")[0] if r["family"] == "classic" else r["family"]), []).append(r)
    for (family, group), rows in families.items():
        rows = sorted(rows, key=lambda r: r["bytes_per_digit"])
        name = group if family == "classic" else family
        for col, key, scale in ((1, "psnr", 1), (2, "accuracy", 100)):
            fig.add_trace(go.Scatter(x=[r["bytes_per_digit"] for r in rows], y=[None if key == "psnr" and r[key] >= MAX_PSNR else r[key] * scale for r in rows],
                                     text=[r["label"] for r in rows], mode="lines+markers" if family == "classic" else "markers",
                                     name=name, legendgroup=name, showlegend=col == 1,
                                     hovertemplate="%{text}<br>%{x:.1f} B/digit, %{y:.2f}<extra></extra>"),
                          row=1, col=col)
    fig.update_xaxes(type="log", title_text="bytes per digit (header included)")
    fig.update_layout(title=f"Rate-distortion on {doc['meta']['data']} ({doc['meta']['digits']} digits)", height=500)
    fig.write_html(str(path), include_plotlyjs=True)


def load_results(path: Path) -> dict:
    return json.loads(Path(path).read_text())
