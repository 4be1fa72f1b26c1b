"""ae.browser_decoder: the blob the Latent explorer's browser decoder runs. Replays its op list
with numpy (as the browser's TF.js does) and checks it against `ae.latent.decode`; the blob's
hash is the same in every process; the slider directions move a latent as the page's functions do."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.numpy import load

from ae.browser_decoder import UnsupportedDecoder, export_decoder, neuron_directions, pca_directions
from ae.latent import decode, fit_pca, move_dims
from ae.architectures import build_model
from ae.models import DEFAULT_CONFIGS, ModelConfig


def replay(blob: bytes, z: np.ndarray) -> np.ndarray:
    """The op list run with numpy, channels-last like the browser."""
    header_len = int.from_bytes(blob[:8], "little")
    spec = json.loads(json.loads(blob[8:8 + header_len])["__metadata__"]["decoder"])
    w = load(blob)
    x = z[None].astype(np.float64)
    for op in spec["ops"]:
        if op["op"] == "dense":
            x = x @ w[op["w"]] + w[op["b"]]
        elif op["op"] == "relu":
            x = np.maximum(x, 0)
        elif op["op"] == "sigmoid":
            x = 1 / (1 + np.exp(-x))
        elif op["op"] == "to_image":
            x = x.reshape(1, *op["chw"]).transpose(0, 2, 3, 1)
        elif op["op"] == "deconv":  # scatter each input pixel's kernel, then crop the padding
            k, s, p = w[op["w"]].shape[0], op["stride"], op["pad"]
            _, h, wd, _ = x.shape
            full = np.zeros((1, (h - 1) * s + k, (wd - 1) * s + k, w[op["w"]].shape[2]))
            for i in range(h):
                for j in range(wd):
                    full[0, i * s:i * s + k, j * s:j * s + k] += np.einsum("c,abdc->abd", x[0, i, j], w[op["w"]])
            x = full[:, p:p + op["out"][0], p:p + op["out"][1]] + w[op["b"]]
    return x.reshape(-1)


@pytest.mark.parametrize("config", [DEFAULT_CONFIGS["ff"], DEFAULT_CONFIGS["cnn"],
                                    ModelConfig(arch="cnn", latent_dim=5, channels=(8, 4)),
                                    ModelConfig(arch="ff", latent_dim=3, hidden=16)])
def test_the_op_list_reproduces_the_decoder(config):
    torch.manual_seed(0)
    model = build_model(config)
    z = np.random.default_rng(1).normal(size=config.latent_dim).astype(np.float32)
    exported = export_decoder(model)
    assert np.abs(replay(exported.blob, z) - decode(model, z)[0].reshape(-1)).max() < 1e-5


@pytest.mark.slow  # starts two Python processes
def test_the_blob_hash_is_the_same_in_another_process():
    code = ("import torch; from ae.browser_decoder import export_decoder; from ae.architectures import build_model; from ae.models import DEFAULT_CONFIGS; "
            "torch.manual_seed(0); print(export_decoder(build_model(DEFAULT_CONFIGS['cnn'])).sha256)")
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
            for _ in range(2)}
    torch.manual_seed(0)
    assert runs == {export_decoder(build_model(DEFAULT_CONFIGS["cnn"])).sha256}


def test_other_models_are_refused():
    with pytest.raises(UnsupportedDecoder):
        export_decoder(build_model(DEFAULT_CONFIGS["classifier"]))


def test_slider_directions_move_like_the_page():
    rng = np.random.default_rng(2)
    latents = rng.normal(size=(200, 12)).astype(np.float32) * np.linspace(3, 0.5, 12, dtype=np.float32)
    pca, z, offsets = fit_pca(latents, k=4), latents[0], np.array([1.5, -2.0, 0.3, 0.0], dtype=np.float32)
    assert np.allclose(z + offsets @ pca_directions(pca, 4), pca.move(z, offsets), atol=1e-5)
    dims, stds = np.array([3, 0, 7]), np.array([0.5, 2.0, 1.0], dtype=np.float32)
    assert np.allclose(z + offsets[:3] @ neuron_directions(dims, stds, 12), move_dims(z, dims, offsets[:3], stds), atol=1e-6)
