"""An autoencoder's decoder as a list of plain operations plus raw float32 weights, so a browser
can rebuild it (the Latent explorer's in-browser decoder) and redraw a digit while a slider moves.

The format is one safetensors blob: tensors named "0.w", "0.b", ... already laid out for the
browser's runtime (dense weights as (in, out); transposed-convolution kernels as
(kh, kw, out, in), images channels-last), and one JSON metadata entry "decoder" holding
"latent_dim", "pixels" and the op list "ops":

    {"op": "dense", "w": "0.w", "b": "0.b"}  (1,in) -> (1,out)
    {"op": "relu"} / {"op": "sigmoid"}
    {"op": "to_image", "chw": [C, H, W]}    a (1, C*H*W) row in PyTorch's order -> (1,H,W,C)
    {"op": "deconv", "w": ..., "b": ..., "stride": s, "pad": p, "out": [H, W, C]}

The output is 784 numbers in [0, 1], row-major 28x28: the same as `ae.latent.decode`. The blob's
sha256 names it, so a browser keeps one copy per decoder however often the page reruns.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import json
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
from safetensors.numpy import save

from ae.errors import AEError
from ae.models import IMAGE_SIDE, ConvAE, FeedforwardAE, NUM_PIXELS


class UnsupportedDecoder(AEError):
    """This model's decoder has a layer the browser decoder does not know."""


@dataclass(frozen=True)
class BrowserDecoder:
    blob: bytes  # safetensors: weights + "ops" metadata
    sha256: str  # hex digest of blob

    @property
    def size(self) -> int:
        return len(self.blob)

    @functools.cached_property
    def base64(self) -> str:
        return base64.b64encode(self.blob).decode("ascii")


def _dense(linear: nn.Linear, name: str, tensors: dict) -> dict:
    tensors[f"{name}.w"] = linear.weight.detach().cpu().float().numpy().T.copy()  # (out,in) -> (in,out)
    tensors[f"{name}.b"] = linear.bias.detach().cpu().float().numpy().copy()
    return {"op": "dense", "w": f"{name}.w", "b": f"{name}.b"}


def _deconv(conv: nn.ConvTranspose2d, name: str, side: int, tensors: dict) -> tuple[dict, int]:
    (k, _), (s, _), (p, _) = conv.kernel_size, conv.stride, conv.padding
    if conv.kernel_size[0] != conv.kernel_size[1] or conv.stride[0] != conv.stride[1] or conv.padding[0] != conv.padding[1] \
            or conv.output_padding != (0, 0) or conv.dilation != (1, 1) or conv.groups != 1 or conv.bias is None:
        raise UnsupportedDecoder(f"transposed convolution {conv} is not square/plain")
    out_side = (side - 1) * s - 2 * p + k
    tensors[f"{name}.w"] = conv.weight.detach().cpu().float().permute(2, 3, 1, 0).contiguous().numpy()  # (in,out,kh,kw) -> (kh,kw,out,in)
    tensors[f"{name}.b"] = conv.bias.detach().cpu().float().numpy().copy()
    op = {"op": "deconv", "w": f"{name}.w", "b": f"{name}.b", "stride": s, "pad": p,
          "out": [out_side, out_side, conv.out_channels]}
    return op, out_side


def _layers(layers, ops: list, tensors: dict, side: int | None) -> int | None:
    for layer in layers:
        name = str(len(ops))
        if isinstance(layer, nn.Linear):
            ops.append(_dense(layer, name, tensors))
        elif isinstance(layer, nn.ConvTranspose2d):
            op, side = _deconv(layer, name, side, tensors)
            ops.append(op)
        elif isinstance(layer, nn.ReLU):
            ops.append({"op": "relu"})
        else:
            raise UnsupportedDecoder(f"the browser decoder has no {type(layer).__name__} layer")
    return side


@torch.no_grad()
def export_decoder(model: nn.Module) -> BrowserDecoder:
    """The decoder of a FeedforwardAE or ConvAE as a browser decoder blob (read-only use of model)."""
    ops: list[dict] = []
    tensors: dict[str, np.ndarray] = {}
    if isinstance(model, FeedforwardAE):
        _layers(model.decoder, ops, tensors, None)
    elif isinstance(model, ConvAE):
        ops.append(_dense(model.fc_decode, "0", tensors))
        ops.append({"op": "relu"})
        c, h, w = model.feature_shape
        ops.append({"op": "to_image", "chw": [c, h, w]})
        side = _layers(model.decoder, ops, tensors, h)
        if side != IMAGE_SIDE:
            raise UnsupportedDecoder(f"the decoder draws {side}x{side} pixels, not {IMAGE_SIDE}x{IMAGE_SIDE}")
    else:
        raise UnsupportedDecoder(f"the browser decoder supports the feedforward and CNN autoencoders, not {type(model).__name__}")
    ops.append({"op": "sigmoid"})
    # One metadata entry: safetensors writes several in a random order, and the blob's hash must
    # not change from one process (or replica) to the next.
    spec = {"ops": ops, "latent_dim": model.latent_dim, "pixels": NUM_PIXELS}
    blob = save(tensors, metadata={"decoder": json.dumps(spec, sort_keys=True)})
    return BrowserDecoder(blob=blob, sha256=hashlib.sha256(blob).hexdigest())


def pca_directions(pca, k: int) -> np.ndarray:
    """(k, D) rows such that latent + sum_i offset_i * row_i == pca.move(latent, offsets)."""
    return (pca.scales[:k, None] * pca.components[:k]).astype(np.float32)


def neuron_directions(dims, stds, latent_dim: int) -> np.ndarray:
    """(k, D) rows such that latent + sum_i offset_i * row_i == move_dims(latent, dims, offsets, stds)."""
    rows = np.zeros((len(dims), latent_dim), dtype=np.float32)
    rows[np.arange(len(dims)), np.asarray(dims)] = np.asarray(stds, dtype=np.float32)
    return rows
