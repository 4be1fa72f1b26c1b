"""Running a model for its outputs: encode, decode, reconstruct and classify digits.

Every caller that wants a model's outputs rather than its gradients comes here (the app's views,
evaluation, the benchmark, the latent pages, live training's preview), so each loop is written
once: inputs go to the model's device a fixed-size chunk at a time, under `torch.no_grad()` and
in eval mode, and come back as CPU tensors. A model that is training goes back to training after,
and one in eval mode (the app's cached models, shared by every session) is not touched.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn as nn

# Digits per forward pass. The CNN's activations for 1,000 digits are ~0.3 GB; at 128 they stay in
# the caches, which is faster too (`python scripts/chunk_costs.py`: cnn 1,793 -> 2,347 digits/s,
# peak +294 -> +22 MB; ff 16,041 -> 13,773 digits/s, fast either way).
CHUNK = 128


def device_of(model: nn.Module) -> torch.device:
    """Where the model's weights are, so its inputs can be sent there."""
    return next(model.parameters()).device


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode (dropout off) for the block, then back in the mode it was in."""
    if not model.training:  # the app's shared models: read-only, so not even rewritten
        yield model
        return
    model.eval()
    try:
        yield model
    finally:
        model.train()


@torch.no_grad()
def _chunked(model: nn.Module, run: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor,
             chunk: int) -> torch.Tensor:
    device = device_of(model)
    with evaluating(model):
        return torch.cat([run(part.to(device)).cpu() for part in inputs.split(chunk)])


def _as_latents(latents) -> torch.Tensor:
    if isinstance(latents, torch.Tensor):
        latents = latents.float()
    else:
        latents = torch.from_numpy(np.asarray(latents, dtype=np.float32))
    return latents[None] if latents.ndim == 1 else latents  # (D,) -> (1,D)


def encode(model: nn.Module, images: torch.Tensor, chunk: int = CHUNK) -> torch.Tensor:
    """(N,1,28,28) digits -> (N,D) latents."""
    return _chunked(model, model.encode, images, chunk)


def decode(model: nn.Module, latents, chunk: int = CHUNK) -> torch.Tensor:
    """(N,D) or (D,) latents, tensor or array -> (N,1,28,28) pictures."""
    return _chunked(model, model.decode, _as_latents(latents), chunk)


def reconstruct(model: nn.Module, images: torch.Tensor, chunk: int = CHUNK) -> torch.Tensor:
    """(N,1,28,28) digits -> (N,1,28,28) decode(encode(digits))."""
    return _chunked(model, lambda x: model.decode(model.encode(x)), images, chunk)


def class_probabilities(classifier: nn.Module, images: torch.Tensor, chunk: int = CHUNK) -> torch.Tensor:
    """(N,1,28,28) digits -> (N,10) softmax probabilities of each class."""
    return _chunked(classifier, lambda x: torch.softmax(classifier(x), dim=1), images, chunk)


def classify(classifier: nn.Module, images: torch.Tensor, chunk: int = CHUNK) -> torch.Tensor:
    """(N,1,28,28) digits -> (N,) the label the classifier reads in each."""
    return _chunked(classifier, lambda x: classifier(x).argmax(1), images, chunk)
