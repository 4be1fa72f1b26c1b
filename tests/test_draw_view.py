"""ae.analysis.draw_view_data: everything the Draw view shows for one digit, as plain data whose
byte counts are the lengths of payloads that exist and decode."""
import pickle

import numpy as np
import pytest
import torch

from ae.analysis import SizeBar, draw_view_data, size_bars
from ae.architectures import build_model
from ae.codec import compress, decompress
from ae.models import DEFAULT_CONFIGS
from ae.registry import codec_status
from ae.sizes import picture_psnr, uint8_latent_decode, uint8_latent_encode


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
        # The 8-bit size is the length of a payload that decodes to what the view decoded.
        payload = uint8_latent_encode(result.latent)
        assert len(payload) == sizes["8-bit latent"]
        with torch.no_grad():
            decoded = model.decode(torch.from_numpy(uint8_latent_decode(payload))[None])[0, 0].numpy()
        assert [f.decoded_psnr for f in result.forms if f.name == "8-bit latent"] == [picture_psnr(digit, decoded)]
        assert result.reading is None  # no classifier given
    if not status.available:
        assert view.coded == []
        pytest.skip(f"no codec: {status.message}")
    assert [c.point for c in view.coded] == [p.name for p in status.points]
    for coded in view.coded:
        payload = compress(digit, coded.point)
        assert coded.error is None and coded.size == len(payload)
        np.testing.assert_array_equal(coded.decoded, decompress(payload).images[0, 0].numpy())


def test_the_view_is_plain_data_that_pickles(sample, models):
    # st.cache_data stores and copies it by pickling; no model or tensor may hide inside.
    view = draw_view_data(sample.images[0, 0].numpy(), {"ff": models["ff"], "cnn": None}, None, codec_status())
    assert set(view.autoencoders) == {"ff"}
    copy = pickle.loads(pickle.dumps(view))
    np.testing.assert_array_equal(copy.autoencoders["ff"].image, view.autoencoders["ff"].image)
    assert b"torch" not in pickle.dumps(view)


@pytest.mark.parametrize("size,grid", [(196, (14, 14)), (32, (4, 8)), (64, (8, 8)), (7, (1, 7))])
def test_the_latent_picture_has_one_cell_per_neuron_coloured_by_sign(size, grid):
    from ae.display import NEGATIVE, POSITIVE, latent_grid_shape, latent_image

    assert latent_grid_shape(size) == grid
    latent = np.zeros(size, dtype=np.float32)
    latent[0], latent[-1] = 2.0, -2.0  # the strongest of each sign; the rest zero
    cell = 10
    picture = np.asarray(latent_image(latent, cell=cell))
    assert picture.shape == (grid[0] * cell, grid[1] * cell, 3)
    centre = cell // 2
    assert (picture[centre, centre] == POSITIVE).all()  # first neuron, top left
    assert (picture[-centre, -centre] == NEGATIVE).all()  # last neuron, bottom right
    if size > 2:
        assert (picture[centre, cell + centre] == 255).all()  # the second neuron is zero: white


def test_the_latent_picture_of_a_zero_latent_is_white_and_an_empty_one_is_refused():
    from ae.display import latent_image

    picture = np.asarray(latent_image(np.zeros(4), cell=6))
    assert (picture[3, 3] == 255).all()
    with pytest.raises(ValueError):
        latent_image(np.zeros(0))


def test_the_size_chart_has_one_bar_per_stored_form(sample, models):
    digit = sample.images[7, 0].numpy()
    status = codec_status()
    view = draw_view_data(digit, models, None, status)
    assert view.bars == size_bars(view)  # computed once, with the view the page caches
    forms = {f"{arch.upper()} {f.name}": f for arch, v in view.autoencoders.items() for f in v.forms}
    coded = [c for c in view.coded if c.error is None]
    expected = ([("raw pixels", 784, None), ("PNG", view.pixel_forms[1].size, None)]
                + [(n, forms[n].size, forms[n].decoded_psnr) for n in
                   ("FF float32 latent", "CNN float32 latent", "FF 8-bit latent", "CNN 8-bit latent")]
                + [(f"{c.point} payload", c.size, c.psnr) for c in coded])
    assert [(b.name, b.size, b.psnr) for b in view.bars] == expected
    assert [b.kind for b in view.bars] == ["pixels"] * 2 + ["float32"] * 2 + ["8-bit"] * 2 + ["coded"] * len(coded)
    for bar in view.bars:
        figure = "lossless" if bar.psnr is None else f"{bar.psnr:.1f} dB"
        assert bar.label == f"{bar.size:,} B · {figure}"


def test_the_size_chart_leaves_out_what_is_missing(sample, models):
    view = draw_view_data(sample.images[2, 0].numpy(), {"cnn": models["cnn"]}, None, None)  # no codec
    assert [b.name for b in view.bars] == ["raw pixels", "PNG", "CNN float32 latent", "CNN 8-bit latent"]
    assert SizeBar("x", 1234, 21.04, "coded").label == "1,234 B · 21.0 dB"


def test_the_quick_size_chart_is_the_validated_one(sample, models):
    import json

    import plotly.io as pio

    from app_pages.common import quick_size_chart, size_chart

    view = draw_view_data(sample.images[1, 0].numpy(), models, None, codec_status())
    fig = quick_size_chart(view.bars)
    assert json.loads(pio.to_json(fig, validate=False)) == json.loads(pio.to_json(size_chart(view.bars), validate=False))
    trace = fig.data[0]
    assert list(trace.x) == [b.size for b in view.bars] and list(trace.text) == [b.label for b in view.bars]
    assert fig.layout.xaxis.type == "log" and trace.orientation == "h"
