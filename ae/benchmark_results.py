"""Read the committed benchmark (`weights/benchmark.json`, written by `python -m ae benchmark`)
for display: validated rows, or a `BenchmarkUnavailable` that says what to run."""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ae.errors import AEError
from ae.metrics import MAX_PSNR
from ae.weights import WEIGHTS_DIR

DEFAULT_PATH = WEIGHTS_DIR / "benchmark.json"  # AE_BENCHMARK_JSON shows another run instead
FAMILIES = {"raw": "raw pixels", "latent": "plain latent", "neural": "neural codec", "classic": "classic codec"}
NUMBERS = ("bytes_per_digit", "psnr", "ssim", "accuracy", "digits_per_s_batch", "ms_single")
CODEC_MODELS = {"rdae": "feedforward", "rdcnn": "convolutional", "rdhybrid": "conv encoder",
                "rdcnn+residual": "convolutional + coded residual"}


class BenchmarkUnavailable(AEError):
    """There is no benchmark file, or it cannot be read."""


@dataclass
class Benchmark:
    meta: dict
    results: list[dict]  # one per method and setting, numbers as float or None
    path: Path


def series_of(method: str, family: str, label: str, arch: str | None = None) -> str:
    """Which line of the rate-distortion chart a result belongs to: one per classic codec
    (its quality settings), one per kind of codec model (`arch`, when the benchmark recorded
    it) and way of sending its payloads, else the result alone."""
    if family == "classic":
        return re.sub(r"\s+q\d+$", "", label)
    codec = f"codec ({CODEC_MODELS.get(arch, arch)})" if arch else "codec"
    if family == "neural":
        return f"{codec}, all digits in one container" if method.endswith("-container") else f"{codec}, one payload per digit"
    if method.endswith("-fixed"):
        return f"{codec} symbols, fixed width (no entropy coding)"
    return label


def _number(value):
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def load_benchmark(path: str | Path | None = None) -> Benchmark:
    path = Path(path or os.environ.get("AE_BENCHMARK_JSON") or DEFAULT_PATH)
    if not path.exists():
        raise BenchmarkUnavailable(f"No benchmark yet: {path.name} is missing. Run `python -m ae benchmark` "
                                   f"to measure every method on the same digits.")
    try:
        data = json.loads(path.read_text())
        results = data["results"]
        if not isinstance(results, list):
            raise TypeError("'results' is not a list")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BenchmarkUnavailable(f"{path.name} cannot be read ({exc}). Rerun `python -m ae benchmark` "
                                   f"to rewrite it.") from None
    rows = []
    for r in results:
        if not isinstance(r, dict) or not r.get("method"):
            continue
        row = {k: _number(r.get(k)) for k in NUMBERS}
        method, label = str(r["method"]), str(r.get("label") or r["method"])
        arch = r["extra"].get("arch") if isinstance(r.get("extra"), dict) else None
        row.update(method=method, label=label, family=FAMILIES.get(r.get("family"), str(r.get("family") or "")),
                   setting="" if r.get("setting") is None else str(r["setting"]),
                   series=series_of(method, str(r.get("family")), label, arch),
                   lossless=row["psnr"] is not None and row["psnr"] >= MAX_PSNR)  # PSNR is infinite
        rows.append(row)
    if not rows:
        raise BenchmarkUnavailable(f"{path.name} holds no results. Rerun `python -m ae benchmark`.")
    meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
    return Benchmark(meta, rows, path)
