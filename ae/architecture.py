"""Layer diagrams of the autoencoders with the tensor shape after every layer, traced by
running a blank digit through the real model (so the diagram can never drift from the code)."""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn as nn

from ae.inference import device_of

_ACTIVATIONS = (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.LeakyReLU)


@dataclass
class Layer:
    part: str  # "encoder" or "decoder"
    kind: str  # e.g. "Conv2d 3×3 + ReLU"
    shape: tuple[int, ...]  # output shape without the batch dimension
    parameters: int


def _describe(m: nn.Module) -> str:
    if isinstance(m, nn.Linear):
        return "Dense"
    if isinstance(m, nn.Conv2d):
        return f"Conv {m.kernel_size[0]}×{m.kernel_size[1]}"
    if isinstance(m, nn.ConvTranspose2d):
        return f"ConvTranspose {m.kernel_size[0]}×{m.kernel_size[1]}, stride {m.stride[0]}"
    if isinstance(m, nn.MaxPool2d):
        return "MaxPool 2×2"
    return type(m).__name__


@torch.no_grad()
def trace_layers(model: nn.Module) -> list[Layer]:
    """Encoder then decoder layers in execution order; activations fold into the layer before.
    Traces a copy: the app's cached models are shared by every session and must stay untouched."""
    model = copy.deepcopy(model)
    calls: list[tuple[nn.Module, tuple[int, ...]]] = []
    hooks = [m.register_forward_hook(lambda m, i, o: calls.append((m, tuple(o.shape[1:]))))
             for m in model.modules() if not list(m.children())]
    try:
        z = model.encode(torch.zeros(1, 1, 28, 28, device=device_of(model)))
        n_encoder = len(calls)
        model.decode(z)
    finally:
        for h in hooks:
            h.remove()
    layers: list[Layer] = []
    for i, (m, shape) in enumerate(calls):
        part = "encoder" if i < n_encoder else "decoder"
        params = sum(p.numel() for p in m.parameters())
        if isinstance(m, _ACTIVATIONS) and layers and layers[-1].part == part:
            layers[-1].kind += f" + {type(m).__name__}"
            continue
        if isinstance(m, (nn.Flatten, nn.Dropout)):
            continue
        if m is getattr(model, "fc_decode", None):
            # ConvAE.decode applies ReLU and reshapes to feature maps outside any module.
            layers.append(Layer(part, "Dense + ReLU, reshape", tuple(model.feature_shape), params))
            continue
        layers.append(Layer(part, _describe(m), shape, params))
    if layers and not layers[-1].kind.endswith("Sigmoid"):
        layers[-1].kind += " + Sigmoid"  # applied with torch.sigmoid in decode()
    return layers


def _shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(str(s) for s in shape)


def to_dot(model: nn.Module, horizontal: bool = True) -> str:
    """Graphviz DOT text: input -> layers -> latent (highlighted) -> layers -> output picture."""
    layers = trace_layers(model)
    lines = [
        "digraph {",
        f"  rankdir={'LR' if horizontal else 'TB'}; nodesep=0.15; ranksep=0.25;",
        '  node [shape=box, style="rounded,filled", fillcolor="#f0f2f6", color="#b0b4bc",'
        ' fontname="Helvetica", fontsize=10];',
        '  edge [color="#8a8f98", arrowsize=0.6];',
        '  input [label="input\\n1×28×28", fillcolor="#ffffff"];',
    ]
    n_encoder = sum(l.part == "encoder" for l in layers)
    prev = "input"
    for i, layer in enumerate(layers):
        name = f"l{i}"
        if i == len(layers) - 1:
            label = f"output\\n{layer.kind}\\n{_shape_text(layer.shape)}"
            lines.append(f'  {name} [label="{label}", fillcolor="#ffffff"];')
        elif i == n_encoder - 1:
            label = f"latent z\\n{layer.kind}\\n{_shape_text(layer.shape)}"
            lines.append(f'  {name} [label="{label}", fillcolor="#ff4b4b", fontcolor="white", color="#ff4b4b"];')
        else:
            label = f"{layer.kind}\\n{_shape_text(layer.shape)}"
            lines.append(f'  {name} [label="{label}"];')
        lines.append(f"  {prev} -> {name};")
        prev = name
    lines.append("}")
    return "\n".join(lines)
