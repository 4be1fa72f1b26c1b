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


def live_sliders(key: str, decoder: BrowserDecoder, view: str, start: np.ndarray, directions: np.ndarray,
                 labels: list[str], offsets: list[float], active: bool, lo: float = -3.0, hi: float = 3.0,
                 step: float = 0.1, size: int = 224) -> dict | None:
    """Render the component; returns its last message (None until it has sent one):
    {"ready": sha} once it decodes, {"view", "offsets", "seq"} on a release, {"need", "req"} for a blob."""
    asked = st.session_state.get(key)
    send_blob = isinstance(asked, dict) and asked.get("need") == decoder.sha256 \
        and asked.get("req") != st.session_state.get(f"{key}_served")
    if send_blob:
        st.session_state[f"{key}_served"] = asked.get("req")  # once per request, not on every rerun
    return _component()(sha=decoder.sha256, blob=decoder.blob if send_blob else None, view=view,
                        start=np.asarray(start, dtype=np.float32).tolist(),
                        directions=np.asarray(directions, dtype=np.float32).tolist(),
                        labels=labels, offsets=[float(o) for o in offsets], min=lo, max=hi, step=step,
                        size=size, active=active, key=key, default=None)
