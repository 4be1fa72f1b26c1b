"""The Latent explorer's sliders decoded in the browser: a Streamlit custom component (components
v1: an iframe served from app_pages/components/latent_decoder/, see its README.md).

Runtime: TensorFlow.js (tfjs-core + tfjs-backend-cpu from npm, their prebuilt bundles). The
decoders are four kinds of operation (dense, ReLU, transposed convolution, sigmoid), which
TF.js runs directly from the raw float32 weights: no model conversion step, no ONNX export, no
.wasm files to serve, and its float32 CPU kernels match PyTorch to ~4e-7 (under 1/255 by far).

Python sends the decoder blob (`ae.browser_decoder`) only when the iframe asks for it (it keeps
blobs in IndexedDB by sha256), so a model crosses the wire once per browser. Dragging costs the
server nothing; each release is one rerun with the new offsets.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import streamlit as st
import streamlit.components.v1 as components

from ae.browser_decoder import BrowserDecoder, UnsupportedDecoder, export_decoder

COMPONENT_DIR = Path(__file__).resolve().parent / "components" / "latent_decoder"
RUNTIME_FILES = ("vendor/tf-core.min.js", "vendor/tf-backend-cpu.min.js")  # copied there by scripts/frontend.sh


def frontend_built() -> bool:
    return all((COMPONENT_DIR / f).is_file() for f in RUNTIME_FILES)


@functools.cache
def _component():
    return components.declare_component("latent_decoder", path=str(COMPONENT_DIR))


@st.cache_resource(show_spinner=False, max_entries=8)
def browser_decoder(_model, path: str, mtime: float) -> BrowserDecoder | None:
    """The model's decoder blob (keyed by its weights file and time), or None if the browser cannot run it."""
    try:
        return export_decoder(_model)
    except UnsupportedDecoder:
        return None


def _render(key: str, decoder: BrowserDecoder, **args) -> dict | None:
    # The blob goes out while the iframe's last message asks for it; having built the decoder, the
    # iframe answers {"ready": sha}, which stops it (a rerun that was cut short just sends it again).
    asked = st.session_state.get(key)
    send_blob = isinstance(asked, dict) and asked.get("need") == decoder.sha256
    # base64 inside the JSON arguments: a bytes argument arrived only in a remounted iframe, or not at all
    return _component()(sha=decoder.sha256, blob=decoder.base64 if send_blob else "", key=key, default=None, **args)


def live_sliders(key: str, decoder: BrowserDecoder, view: str, start: np.ndarray, directions: np.ndarray,
                 labels: list[str], offsets: list[float], active: bool, lo: float = -3.0, hi: float = 3.0,
                 step: float = 0.1, size: int = 224) -> dict | None:
    """Sliders moving `start` along the rows of `directions`. Returns the component's last message
    (None until it has sent one): {"ready": sha} once it decodes (while not `active`, or after a blob),
    {"view", "offsets", "seq"} on a release, {"need", "req"} when it lacks the blob."""
    return _render(key, decoder, kind="sliders", view=view, start=np.asarray(start, dtype=np.float32).tolist(),
                   directions=np.asarray(directions, dtype=np.float32).tolist(), labels=labels,
                   offsets=[float(o) for o in offsets], min=lo, max=hi, step=step, size=size, active=active)


def live_map(key: str, decoder: BrowserDecoder, view: str, mean: np.ndarray, directions: np.ndarray,
             points: np.ndarray, labels: np.ndarray, size: int = 160, map_size: int = 320) -> dict | None:
    """A 2-D map of `points` (N,2) along two unit `directions` (2,D) from `mean`; hovering decodes
    mean + x*d0 + y*d1. Returns {"view", "point", "seq"} after a click (else None)."""
    pts = [[round(float(x), 3), round(float(y), 3), int(c)] for (x, y), c in zip(points, labels)]
    return _render(key, decoder, kind="map", view=view, start=np.asarray(mean, dtype=np.float32).tolist(),
                   directions=np.asarray(directions, dtype=np.float32).tolist(), points=pts,
                   offsets=[0.0, 0.0], size=size, map_size=map_size, active=True)
