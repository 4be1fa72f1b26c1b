"""Measure autoencoders on a set of digits: distortion, recognisability, size and speed (the models
run through `ae.inference`, the sizes come from `ae.sizes`)."""
from __future__ import annotations

import time

import torch
import torch.nn as nn

from ae.data import Digits
from ae.inference import classify, reconstruct
from ae.metrics import mse, psnr, ssim
from ae.models import parameter_count
from ae.sizes import float32_latent_bytes


def throughput(model: nn.Module, images: torch.Tensor, batch_size: int = 1000, repeats: int = 2) -> float:
    """Encode + decode digits per second, in batches, after one warm-up batch."""
    reconstruct(model, images[:batch_size], batch_size)
    start = time.perf_counter()
    for _ in range(repeats):
        reconstruct(model, images, batch_size)
    return repeats * len(images) / (time.perf_counter() - start)


def evaluate_autoencoder(model: nn.Module, data: Digits, classifier: nn.Module | None = None) -> dict:
    x_hat = reconstruct(model, data.images)
    result = {
        "digits": len(data),
        "latent_dim": model.latent_dim,
        "latent_bytes_float32": float32_latent_bytes(model.latent_dim),
        "parameters": parameter_count(model),
        "mse": mse(x_hat, data.images).mean().item(),
        "psnr": psnr(x_hat, data.images).mean().item(),
        "ssim": ssim(x_hat, data.images).mean().item(),
    }
    if classifier is not None:
        result["accuracy"] = (classify(classifier, x_hat) == data.labels).float().mean().item()
    result["digits_per_s"] = throughput(model, data.images)
    return result


def evaluate_classifier(classifier: nn.Module, data: Digits) -> dict:
    return {
        "digits": len(data),
        "parameters": parameter_count(classifier),
        "accuracy": (classify(classifier, data.images) == data.labels).float().mean().item(),
    }


def results_table(results: dict[str, dict]) -> str:
    """`python -m ae evaluate`'s table: one row per model, from evaluate_autoencoder's or
    evaluate_classifier's results (a classifier has no reconstruction figures)."""
    lines = [f"{'model':<12}{'latent':>7}{'PSNR dB':>9}{'SSIM':>7}{'MSE':>9}{'accuracy':>10}{'params':>10}{'digits/s':>10}"]
    for name, m in results.items():
        acc = f"{100 * m['accuracy']:.2f}%" if "accuracy" in m else "-"
        if "psnr" in m:
            lines.append(f"{name:<12}{m['latent_dim']:>7}{m['psnr']:>9.2f}{m['ssim']:>7.3f}{m['mse']:>9.5f}"
                         f"{acc:>10}{m['parameters']:>10,}{m['digits_per_s']:>10,.0f}")
        else:
            lines.append(f"{name:<12}{'-':>7}{'-':>9}{'-':>7}{'-':>9}{acc:>10}{m['parameters']:>10,}{'-':>10}")
    return "\n".join(lines)
