"""ae.analysis.draw_view_data: everything the Draw view shows for one digit, as plain data whose
byte counts are the lengths of payloads that exist and decode."""
import pickle

import numpy as np
import pytest
import torch

from ae.analysis import draw_view_data
from ae.codec_link import codec_status
from ae.models import DEFAULT_CONFIGS, build_model


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {arch: build_model(DEFAULT_CONFIGS[arch]).eval() for arch in ("ff", "cnn")}


def test_every_size_is_a_payload_that_decodes(sample, models):
    digit = sample.images[3, 0].numpy()
    status = codec_status()
    view = draw_view_data(digit, models, None, status)
    assert [(f.name, f.size) for f in view.pixel_forms][0] == ("raw pixels", 784)
    assert 0 < dict((f.name, f.size) for f in view.pixel_forms)["PNG"] < 784
    for arch, model in models.items():
        result = view.autoencoders[arch]
        assert result.latent.shape == (model.latent_dim,) and result.image.shape == (28, 28)
        sizes = {f.name: f.size for f in result.forms}
        assert sizes == {"float32 latent": 4 * model.latent_dim, "8-bit latent": model.latent_dim + 8}
        assert result.reading is None  # no classifier given
    if not status.available:
        assert view.coded == []
        pytest.skip(f"no codec: {status.message}")
    assert [c.point for c in view.coded] == [p.name for p in status.coded_model_points()]
    for coded in view.coded:
        payload = status.module.compress(digit, coded.point)
        assert coded.error is None and coded.size == len(payload)
        np.testing.assert_array_equal(coded.decoded, status.module.decompress(payload).images[0, 0].numpy())


def test_the_view_is_plain_data_that_pickles(sample, models):
    # st.cache_data stores and copies it by pickling; no model or tensor may hide inside.
    view = draw_view_data(sample.images[0, 0].numpy(), {"ff": models["ff"], "cnn": None}, None, codec_status())
    assert set(view.autoencoders) == {"ff"}
    copy = pickle.loads(pickle.dumps(view))
    np.testing.assert_array_equal(copy.autoencoders["ff"].image, view.autoencoders["ff"].image)
    assert b"torch" not in pickle.dumps(view)


@pytest.mark.parametrize("arch,size", [("ff", 196), ("cnn", 32), ("ff", 30)])
def test_the_quick_latent_chart_is_the_validated_one(arch, size):
    import json

    import plotly.io as pio

    from app_pages.common import latent_chart, quick_latent_chart

    latent = np.random.default_rng(size).normal(size=size).astype(np.float32)
    assert json.loads(pio.to_json(quick_latent_chart(latent, arch), validate=False)) == \
        json.loads(pio.to_json(latent_chart(latent, arch), validate=False))
