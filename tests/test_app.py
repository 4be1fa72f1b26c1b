"""Every page of the Streamlit app under AppTest: it renders without exceptions or error boxes,
and its widgets change what is shown. Models come from the shipped weights when present, plus
small untrained ones saved in the (temporary) user models folder, so the tests need neither a
dataset nor trained weights. The drawing canvas is an unknown element here: the browser test
draws on it."""
import ast
import io
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

APP = "../app.py"  # AppTest resolves paths relative to this file
TIMEOUT = 60


@pytest.fixture(autouse=True)
def _fresh_caches():
    # st.cache_resource lives as long as the process: each test starts from empty caches, so
    # one test's monkeypatched codec or folders never leak into the next.
    import streamlit as st

    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture
def user_models():
    """An untrained FF and CNN in the user folder (the conftest points it at a tmp dir)."""
    import torch

    from ae.architectures import build_model
    from ae.models import DEFAULT_CONFIGS
    from ae.registry import user_model_path
    from ae.weights import save_model

    torch.manual_seed(0)
    for arch in ("ff", "cnn"):
        save_model(build_model(DEFAULT_CONFIGS[arch]), user_model_path(f"test-{arch}"), {"note": "untrained"})


def open_page(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    if page:
        at.switch_page(f"app_pages/{page}.py").run()
    assert_clean(at)
    return at


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def image_urls(at: AppTest) -> list[str]:
    # Streamlit names media files by a hash of their bytes: a new picture gets a new URL.
    return [img.url for el in at.get("image") for img in el.proto.imgs]


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def test_home_shows_both_architectures(user_models):
    at = open_page()
    assert at.title[0].value == "Digits in a few bytes"
    assert [s.value for s in at.subheader][:2] == ["Feedforward (FF)", "Convolutional (CNN)"]
    assert len(at.get("graphviz_chart")) == 2
    assert {m.label for m in at.metric} >= {"Latent neurons", "PSNR", "Read correctly"}


def test_draw_page_hints_while_the_canvas_is_empty(user_models):
    at = open_page("draw")
    assert "Draw a digit" in texts(at.info)
    assert not at.metric  # no reconstruction until there is a digit


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")  # uint16 arrays become 16-bit PNGs
    return buf.getvalue()


def _digit_on_paper(dtype=np.uint8, white=255) -> np.ndarray:
    paper = np.full((200, 160), white, dtype=dtype)
    paper[40:160, 70:90] = 0  # a dark "1" on white paper
    return paper


def _animated_gif() -> bytes:
    frames = [Image.fromarray(_digit_on_paper()), Image.fromarray(np.full((200, 160), 255, np.uint8))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


def test_draw_page_compresses_an_uploaded_digit(user_models):
    at = open_page("draw")
    at.file_uploader[0].set_value(("one.png", _png(_digit_on_paper()), "image/png")).run()
    assert_clean(at)
    assert [s.value for s in at.subheader][:4] == ["How many bytes?", "Input digit", "Feedforward (FF)",
                                                    "Convolutional (CNN)"]
    assert len([m for m in at.metric if m.label == "PSNR"]) == 2
    sizes = {}
    for table in at.table:
        for _, row in table.value.iterrows():
            sizes.setdefault(row["form"], []).append(int(row["size"].removesuffix(" B")))
    assert sizes["raw pixels"] == [784] and 0 < sizes["PNG"][0] < 784
    assert sorted(sizes["float32 latent"]) == [4 * 32, 4 * 196]
    assert sorted(sizes["8-bit latent"]) == [32 + 8, 196 + 8]
    import json  # the byte chart above the tables: one bar per form, the same bytes

    charts = at.get("plotly_chart")
    assert len(charts) == 1  # the latents are pictures, not charts the browser redraws per stroke
    assert sum("latent neurons for this digit, 14×14" in c.value for c in at.caption) == 1  # FF
    assert sum("latent neurons for this digit, 4×8" in c.value for c in at.caption) == 1  # CNN's 32
    bars = json.loads(charts[0].proto.spec)["data"][0]
    named = dict(zip(bars["y"], bars["x"]))
    assert named["raw pixels"] == 784 and named["PNG"] == sizes["PNG"][0]
    assert sorted([named["FF 8-bit latent"], named["CNN 8-bit latent"]]) == sorted(sizes["8-bit latent"])
    from ae.registry import codec_status

    status = codec_status()
    if status.available:  # one coded payload per operating point, each a real payload size
        payloads = [m for m in at.metric if m.label.endswith(" payload")]
        assert len(payloads) == len(status.points)
        assert all(0 < int(m.value.removesuffix(" B")) < 784 for m in payloads)
    else:
        assert "Codec not available" in texts(at.info)


def test_draw_view_is_computed_once_per_digit(user_models, monkeypatch):
    """Reruns showing the same digit (a widget moved, another session's same digit) reuse the
    cached view; a new digit computes a new one."""
    import ae.analysis

    calls = []
    real = ae.analysis.draw_view_data

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(ae.analysis, "draw_view_data", counting)
    at = open_page("draw")
    at.file_uploader[0].set_value(("one.png", _png(_digit_on_paper()), "image/png")).run()
    assert_clean(at)
    shown = [m.value for m in at.metric]
    assert len(calls) == 1
    at.slider(key="draw_stroke").set_value(30).run()  # a rerun with the same digit
    at.run()
    assert_clean(at)
    assert len(calls) == 1 and [m.value for m in at.metric] == shown
    wider = _digit_on_paper()
    wider[40:160, 60:100] = 0  # a thicker "1"
    at.file_uploader[0].set_value(("two.png", _png(wider), "image/png")).run()
    assert_clean(at)
    assert len(calls) == 2 and [m.value for m in at.metric] != shown


def test_the_last_resort_message_names_the_kind_of_failure_only(monkeypatch):
    import ae.registry

    def broken(name):
        raise RuntimeError("cannot read /srv/secret/weights/classifier.safetensors")

    monkeypatch.setattr(ae.registry, "shipped_entry", broken)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    (message,) = [e.value for e in at.error]
    assert "internal error of kind RuntimeError" in message and "server's log" in message
    assert "/srv" not in message and "secret" not in message


@pytest.mark.parametrize("name,content", [
    ("notes.txt", b"just some text, not an image"),
    ("empty.png", b""),
    ("blank.png", _png(np.full((50, 50), 255, dtype=np.uint8))),
    ("huge.png", _png(np.zeros((7000, 6000), dtype=np.uint8))),
])
def test_draw_page_explains_unusable_uploads(user_models, name, content):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page("app_pages/draw.py").run()
    at.file_uploader[0].set_value((name, content, "application/octet-stream")).run()
    assert not at.exception
    assert at.error and name in at.error[0].value  # a readable message naming the file
    assert "Draw a digit" in texts(at.info)


@pytest.mark.parametrize("name,content", [
    ("deep.png", _png(_digit_on_paper(np.uint16, 65535))),
    ("moving.gif", _animated_gif()),
])
def test_draw_page_reads_odd_but_valid_images(user_models, name, content):
    at = open_page("draw")
    at.file_uploader[0].set_value((name, content, "image/png")).run()
    assert_clean(at)
    assert len([m for m in at.metric if m.label == "PSNR"]) == 2


def test_gallery_choosing_a_digit_changes_the_view(user_models):
    at = open_page("gallery")
    first = image_urls(at)
    psnr_before = [m.value for m in at.metric if m.label == "PSNR"]
    at.selectbox(key="gallery_class").set_value(3).run()
    assert_clean(at)
    captions = [img.caption for el in at.get("image") for img in el.proto.imgs]
    assert any("label 3" in c for c in captions)
    assert image_urls(at) != first
    assert [m.value for m in at.metric if m.label == "PSNR"] != psnr_before
    assert "mean PSNR" in texts(at.markdown)  # the grid of many digits


def test_latent_explorer_sliders_move_the_decoded_digit(user_models):
    at = open_page("latent_explorer")
    before = image_urls(at)
    slider = next(s for s in at.slider if s.label.startswith("direction 1"))
    slider.set_value(2.5).run()
    assert_clean(at)
    after = image_urls(at)
    assert after != before
    at.radio(key="latent_slider_mode").set_value("single neurons").run()
    assert_clean(at)
    assert any(s.label.startswith("neuron ") for s in at.slider)
    at.segmented_control(key="latent_arch").set_value("cnn").run()
    assert_clean(at)


@pytest.mark.parametrize("page,key", [("latent_explorer", "latent"), ("send_receive", "send")])
def test_digit_sources_draw_and_upload_start_with_a_hint(user_models, page, key):
    at = open_page(page)
    if not at.segmented_control:  # Send & receive without a codec has no sender
        pytest.skip("no codec: the sender is not shown")
    at.segmented_control(key=f"{key}_source").set_value("Draw").run()
    assert_clean(at)
    assert "Draw a digit on the black square." in texts(at.info)
    assert "digit" not in at.query_params  # the link does not name a test digit that is not shown
    at.segmented_control(key=f"{key}_source").set_value("Upload").run()
    assert_clean(at)
    at.file_uploader(key=f"{key}_upload").set_value(("x.png", b"\x89PNG broken", "image/png")).run()
    assert not at.exception and at.error


def test_latent_explorer_copes_with_a_two_neuron_latent(user_models):
    from ae.architectures import build_model
    from ae.models import ModelConfig
    from ae.registry import user_model_path
    from ae.weights import save_model

    save_model(build_model(ModelConfig(arch="cnn", latent_dim=2, channels=(32, 64))), user_model_path("tiny2"), {})
    at = open_page("latent_explorer")
    at.segmented_control(key="latent_arch").set_value("cnn").run()
    picker = at.selectbox(key="_pick_cnn")
    picker.set_value(next(o for o in picker.options if o.startswith("tiny2"))).run()
    assert_clean(at)
    assert len([s for s in at.slider if s.label.startswith("direction")]) == 2
    at.radio(key="latent_slider_mode").set_value("single neurons").run()
    assert_clean(at)


def test_send_and_receive(user_models):
    at = open_page("send_receive")
    from ae.codec import compress
    from ae.registry import codec_status

    status = codec_status()
    if not status.available:
        assert "Codec not available" in texts(at.warning)
        pytest.skip(f"no codec operating points in this build: {status.message}")
    hex_text = at.code[0].value
    payload_metric = next(m for m in at.metric if m.label == "Payload")
    assert payload_metric.value == f"{len(bytes.fromhex(hex_text))} bytes"
    at.button(key="send_hand_over").click().run()
    assert_clean(at)
    assert at.text_input(key="receive_hex").value == hex_text
    assert f"Decoded 1 digit from {len(bytes.fromhex(hex_text))} bytes" in texts(at.success)
    assert any(img.caption == "the received digit" for el in at.get("image") for img in el.proto.imgs)
    from ae.sample import load_sample

    several = compress(load_sample().images[:3], status.points[0].name)
    at.text_input(key="receive_hex").set_value(several.hex()).run()
    assert_clean(at)
    assert f"Decoded 3 digits from {len(several)} bytes" in texts(at.success)
    at.text_input(key="receive_hex").set_value(several[:-2].hex()).run()  # truncated
    assert not at.exception and "could not be decoded" in texts(at.error)
    at.text_input(key="receive_hex").set_value("ff" + hex_text[2:]).run()  # a foreign first byte
    assert not at.exception and "could not be decoded" in texts(at.error)
    at.text_input(key="receive_hex").set_value("not hex at all").run()
    assert not at.exception and "not hexadecimal" in texts(at.error)


# ---- shared views: the URL's query parameters open the same view (app_pages/shared_view.py) ----

def open_link(page: str, **params) -> AppTest:
    """The page as a fresh browser opens its link: these query parameters on the session's first run."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(f"app_pages/{page}.py")
    at.query_params.update(params)
    at.run()
    assert_clean(at)
    return at


def digit_captions(at: AppTest) -> list[str]:
    return [img.caption for el in at.get("image") for img in el.proto.imgs if img.caption.startswith("test digit")]


def test_a_gallery_link_opens_its_digit_and_models(user_models):
    at = open_link("gallery", digit="class:3:2", ff="test-ff", cnn="test-cnn")
    from ae.sample import load_sample

    labels = load_sample().labels.numpy()
    second_three = int(np.flatnonzero(labels == 3)[1])
    assert digit_captions(at) == [f"test digit #{second_three} · label 3"]
    assert at.selectbox(key="_pick_ff").value.startswith("test-ff")
    assert at.selectbox(key="_pick_cnn").value.startswith("test-cnn")
    assert not at.toast
    link = at.code[-1].value
    assert link.startswith("?") and "digit=class:3:2" in link and "ff=test-ff" in link and "cnn=test-cnn" in link
    at.selectbox(key="gallery_class").set_value(5).run()  # a new choice is in the link at once
    assert at.query_params["digit"] == "class:5:2" and "digit=class:5:2" in at.code[-1].value
    at = open_link("gallery", digit="index:17")
    assert digit_captions(at) == [f"test digit #17 · label {labels[17]}"]
    assert at.segmented_control(key="gallery_mode").value == "index"


# More malformed digits go through the same fallback: test_view_state refuses each kind in
# microseconds, so here they run with the slow tests only.
@pytest.mark.parametrize("params", [
    {"digit": "index:99999"},
    pytest.param({"digit": "class:7:100000"}, marks=pytest.mark.slow),
    pytest.param({"digit": "class:x"}, marks=pytest.mark.slow),
    pytest.param({"digit": "seven"}, marks=pytest.mark.slow),
    pytest.param({"digit": "index:1e3"}, marks=pytest.mark.slow),
    {"ff": "no-such-model"}, {"cnn": "x" * 5000},
])
def test_bad_link_values_fall_back_to_the_default_with_a_note(user_models, params):
    at = open_link("gallery", **params)
    default = open_link("gallery")
    assert digit_captions(at) == digit_captions(default)
    assert at.selectbox(key="_pick_ff").value == default.selectbox(key="_pick_ff").value
    param = next(iter(params))
    assert [t.value for t in at.toast] and f"link's {param} was not used" in at.toast[0].value
    assert "x" * 50 not in at.toast[0].value  # the note does not repeat what the URL holds
    assert at.query_params[param] != params[param]  # the link now names the view shown


def test_a_send_link_opens_its_operating_point_and_digit(user_models):
    from ae.registry import codec_status

    status = codec_status()
    if len(status.points) < 2:
        pytest.skip(f"needs two operating points: {status.message}")
    point = status.points[-1].name
    at = open_link("send_receive", point=point, digit="index:4")
    assert at.selectbox(key="send_point").value == point
    assert digit_captions(at) == [digit_captions(at)[0]] and digit_captions(at)[0].startswith("test digit #4 ")
    at = open_link("send_receive", point="no-such-point")
    assert at.selectbox(key="send_point").value == status.points[0].name
    assert "link's point was not used" in at.toast[0].value


def test_a_latent_explorer_link_opens_its_model_sliders_and_offsets(user_models):
    at = open_link("latent_explorer", model="cnn", sliders="neurons", offsets="1.5,-2", digit="class:2:1", to="index:3")
    assert at.segmented_control(key="latent_arch").value == "cnn"
    assert at.radio(key="latent_slider_mode").value == "single neurons"
    sliders = [s for s in at.slider if s.label.startswith("neuron ")]
    assert [s.value for s in sliders[:3]] == [1.5, -2.0, 0.0]
    assert digit_captions(at)[0].endswith("label 2")
    assert any("to test digit #3 " in img.caption for el in at.get("image") for img in el.proto.imgs)  # the interpolation
    assert not at.toast
    sliders[0].set_value(0.5).run()
    assert at.query_params["offsets"] == "0.5,-2" and "offsets=0.5,-2" in at.code[-1].value
    assert at.query_params["to"] == "index:3" and at.query_params["model"] == "cnn"
    at = open_link("latent_explorer", model="vae", offsets="9,9")
    assert at.segmented_control(key="latent_arch").value == "ff"
    assert all(s.value == 0.0 for s in at.slider if s.label.startswith("direction"))
    assert len(at.toast) == 2 and "offsets" not in at.query_params


def test_compare_page_with_and_without_a_benchmark(user_models, tmp_path, monkeypatch):
    import json

    import ae.benchmark_results as br

    monkeypatch.setattr(br, "DEFAULT_PATH", tmp_path / "benchmark.json")
    at = open_page("compare")
    assert "python -m ae benchmark" in texts(at.info)
    rows = [{"method": m, "family": f, "label": m.upper(), "setting": s, "bytes_per_digit": b, "psnr": p,
             "ssim": 0.9, "accuracy": 0.95, "digits_per_s_batch": 1000.0, "ms_single": 0.5}
            for m, f, s, b, p in [("png", "classic", None, 150.0, 100.0), ("rd", "neural", "q1", 8.0, 18.0),
                                  ("rd", "neural", "q2", 12.0, 21.0)]]
    (tmp_path / "benchmark.json").write_text(json.dumps({"meta": {"data": "test", "digits": 3}, "results": rows}))
    at = open_page("compare")
    assert at.get("plotly_chart") and len(at.dataframe[0].value) == 3


def _small_benchmark(path) -> None:
    import json

    rows = [{"method": m, "family": f, "label": m.upper(), "setting": s, "bytes_per_digit": b, "psnr": p,
             "ssim": q, "accuracy": 0.95, "digits_per_s_batch": 1000.0, "ms_single": 0.5}
            for m, f, s, b, p, q in [("png", "classic", None, 150.0, 100.0, 1.0), ("rd", "neural", "q1", 8.0, 18.0, 0.8),
                                     ("rd", "neural", "q2", 12.0, 21.0, 0.9)]]
    path.write_text(json.dumps({"meta": {"data": "test", "digits": 3}, "results": rows}))


def _chart_traces(at: AppTest) -> dict[str, dict]:
    import json

    return {t["name"]: t for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]}


def test_compare_chart_draws_the_published_reference_marks(user_models, tmp_path, monkeypatch):
    """Bit-Swap's lossless 126 B is a dotted line on every chart (lossless stays off the PSNR axis);
    NERD's two fixed-rate points are open grey marks on the PSNR chart, labelled 32×32, with the
    paper in their hover text; every measured series is still drawn as before."""
    import ae.benchmark_results as br

    monkeypatch.setattr(br, "DEFAULT_PATH", tmp_path / "benchmark.json")
    _small_benchmark(tmp_path / "benchmark.json")
    at = open_page("compare")
    traces = _chart_traces(at)
    assert {"codec, one payload per digit", "Bit-Swap, lossless (28×28)", "NERD fixed-rate DNN (32×32)"} == set(traces)
    measured = traces["codec, one payload per digit"]
    assert "legendgroup" not in measured or measured["legendgroup"] != "published"
    nerd = traces["NERD fixed-rate DNN (32×32)"]
    assert nerd["x"] == [4.5, 4.0] and nerd["y"] == [22.7, 22.1]
    assert nerd["mode"] == "markers" and nerd["marker"]["symbol"].endswith("-open")
    assert all("32×32" in h and "JSAIT 2022" in h and "not measured here" in h for h in nerd["hovertext"])
    bit_swap = traces["Bit-Swap, lossless (28×28)"]
    assert bit_swap["x"] == [126.42, 126.42] and bit_swap["y"] == [18.0, 21.0]  # across the lossy PSNRs only
    assert bit_swap["mode"] == "lines" and "ICML 2019" in bit_swap["hovertext"][0]
    for mark in (nerd, bit_swap):
        assert mark["legendgroup"] == "published"
        assert mark["legendgrouptitle"]["text"] == "published, not measured here"
    captions = texts(at.caption)
    assert "Lossless methods (PNG 150 B) are not on the PSNR chart" in captions
    assert "Bit-Swap's lossless 126 B" in captions
    assert "Kingma, Abbeel & Ho, ICML 2019" in captions and "Lei, Hassani & Saeedi Bidokhti, IEEE JSAIT 2022" in captions

    at.segmented_control(key="compare_metric").set_value("SSIM").run()
    assert_clean(at)
    traces = _chart_traces(at)  # no published SSIM for NERD; Bit-Swap is lossless, so it is drawn
    assert set(traces) == {"PNG", "codec, one payload per digit", "Bit-Swap, lossless (28×28)"}
    assert traces["Bit-Swap, lossless (28×28)"]["y"] == [0.8, 1.0]
    assert "Lei, Hassani" not in texts(at.caption)


@pytest.mark.parametrize("content", [None, "{not json", '{"results": {}}', '{"results": [{"label": "no method"}]}'])
def test_compare_page_explains_a_missing_or_broken_benchmark(user_models, tmp_path, monkeypatch, content):
    import ae.benchmark_results as br

    monkeypatch.setattr(br, "DEFAULT_PATH", tmp_path / "benchmark.json")
    if content is not None:
        (tmp_path / "benchmark.json").write_text(content)
    at = open_page("compare")
    assert "python -m ae benchmark" in texts(at.info) and "benchmark.json" in texts(at.info)
    assert not at.get("plotly_chart") and not at.dataframe


@pytest.mark.slow  # starts a training process
def test_train_page_trains_saves_and_offers_the_model(user_models):
    from ae.weights import user_models_dir

    at = open_page("train")
    assert "bundled sample" in texts(at.info)
    assert "at most 10 min on this server" in texts(at.caption)  # the budget, before Start
    at.segmented_control(key="train_arch").set_value("cnn").run()
    at.number_input(key="train_latent_cnn").set_value(8).run()
    at.slider(key="train_epochs").set_value(1)
    at.slider(key="train_size").set_value(100)
    at.select_slider(key="train_batch").set_value(32)
    at.text_input(key="train_name_cnn_8").set_value("apptest-cnn").run()
    at.button(key="train_start").click().run()
    assert_clean(at)
    deadline = time.monotonic() + 60
    while not at.success and time.monotonic() < deadline:
        time.sleep(0.3)
        at.run()
        assert_clean(at)
    assert "Finished and saved as **apptest-cnn**" in texts(at.success)
    assert at.get("plotly_chart"), "the loss curve is drawn"
    assert not at.button(key="train_start").disabled  # the slot is free again
    assert (user_models_dir() / "apptest-cnn.safetensors").exists()
    at.switch_page("app_pages/draw.py").run()
    assert_clean(at)
    picker = at.selectbox(key="_pick_cnn")
    assert any("apptest-cnn" in o for o in picker.options)
    assert "apptest-cnn" in picker.value  # the new model is selected on the other pages
    at.switch_page("app_pages/train.py").run()
    download = at.get("download_button")[0]
    assert download.label == "Download apptest-cnn.zip"
    from streamlit.runtime.memory_media_file_storage import _calculate_file_id

    from ae.model_transfer import load_upload, pack_model
    from ae.weights import load_model

    archive = pack_model(user_models_dir() / "apptest-cnn.safetensors")
    # AppTest's media store is gone after the run, but a media URL names a hash of its bytes:
    # the button serves exactly this zip.
    assert _calculate_file_id(archive, "application/zip", "apptest-cnn.zip") in download.proto.url
    uploaded = load_upload([("apptest-cnn.zip", archive)])  # the download uploads back as the same weights
    saved = load_model(user_models_dir() / "apptest-cnn.safetensors").state_dict()
    assert all(np.array_equal(uploaded.model.state_dict()[k], saved[k]) for k in saved)


def test_train_page_presets_fill_the_settings(monkeypatch):
    import ae.train

    real = ae.train.presets
    at = open_page("train")
    assert "fast demo" in texts(at.caption) and "as shipped" not in texts(at.caption)  # the sample: no shipped preset
    at.slider(key="train_epochs").set_value(2)
    at.select_slider(key="train_batch").set_value(256).run()
    at.button(key="train_preset_fast_demo").click().run()
    assert_clean(at)
    default = ae.train.default_settings("cnn", False, 800)
    assert (at.slider(key="train_epochs").value, at.select_slider(key="train_batch").value,
            at.select_slider(key="train_lr_cnn").value) == (default.epochs, default.batch_size, default.lr)
    # On full MNIST "as shipped" is offered too, with its time and the budget that may cut it.
    monkeypatch.setattr(ae.train, "presets", lambda arch, full, n=None: real(arch, True, n))
    at.run()
    shipped = real("cnn", True, 800)["as shipped"]
    assert "as shipped" in texts(at.caption) and "stops at the budget" in texts(at.caption)
    at.button(key="train_preset_as_shipped").click().run()
    assert_clean(at)
    assert (at.slider(key="train_epochs").value, at.select_slider(key="train_batch").value,
            at.select_slider(key="train_lr_cnn").value, at.slider(key="train_size").value) == \
        (shipped.settings.epochs, shipped.settings.batch_size, shipped.settings.lr, 800)


def test_train_page_shows_who_holds_the_slot_and_disables_start(monkeypatch):
    from ae.training_slot import SlotHolder, TrainingSlot

    monkeypatch.setenv("AE_TRAIN_BUDGET_S", "120")
    slot = TrainingSlot()  # another session (or replica) is training
    assert slot.acquire(SlotHolder(name="someone-else", arch="cnn", deadline=time.time() + 95))
    try:
        at = open_page("train")
        shown = texts(at.warning)
        assert "someone-else" in shown and re.search(r"1 min \d+ s left", shown)  # who, and the time left
        assert at.button(key="train_start").disabled
        assert "at most 2 min" in texts(at.caption)
    finally:
        slot.release()
    at.run()
    assert not at.button(key="train_start").disabled and "someone-else" not in texts(at.warning)


def navigation() -> dict[str, str | None]:
    """app.py's menu, read from its st.Page(...) calls: title -> the page's file stem in app_pages/
    (None for the page app.py defines as a function, Home). Hidden pages are st.Page calls too."""
    pages = {}
    for node in ast.walk(ast.parse(Path(__file__).resolve().parent.parent.joinpath("app.py").read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "Page":
            title = next(k.value.value for k in node.keywords if k.arg == "title")
            target = node.args[0]
            pages[title] = Path(target.value).stem if isinstance(target, ast.Constant) else None
    return pages


NAVIGATION = navigation()

# What each page says with no shipped weights, no user models and no codec: (element, words).
# Every error box a page shows is listed here; the other elements may show more.
MISSING_WEIGHTS_MESSAGES = {
    "home": [("warning", "`weights/ff.safetensors` are missing"), ("warning", "`weights/cnn.safetensors` are missing"),
             ("warning", "git checkout weights/"), ("caption", "Entropy codec: The codec has no trained operating points")],
    "draw": [("error", "No autoencoder weights found"), ("error", "git checkout weights/"), ("info", "Draw a digit")],
    "gallery": [("error", "No autoencoder weights found"), ("info", "No feedforward autoencoder is available"),
                ("info", "No convolutional autoencoder is available"), ("info", "Codec not available: The codec has no trained operating points")],
    "latent_explorer": [("error", "No autoencoder weights found"), ("info", "No feedforward autoencoder is available")],
    "send_receive": [("warning", "Codec not available"), ("warning", "no trained operating points")],
    "compare": [("info", "No shipped weights found in `weights/`")],
    "train": [("info", "trains on the bundled sample"), ("info", "Start training")],  # it works: training is the remedy
}


def test_the_page_tests_cover_the_whole_navigation():
    assert set(MISSING_WEIGHTS_MESSAGES) == set(NAVIGATION.values())
    # No page file is left out of the menu (the other modules in app_pages/ draw no page of their own).
    page_files = {p.stem for p in Path(__file__).resolve().parent.parent.joinpath("app_pages").glob("*.py")
                  if "st.title(" in p.read_text()}
    assert page_files <= set(NAVIGATION.values())


@pytest.mark.parametrize("page", list(NAVIGATION.values()), ids=list(NAVIGATION))
def test_every_page_explains_missing_weights(tmp_path, monkeypatch, page):
    """No shipped weights, no user models, no codec points: messages, never a traceback."""
    import ae.registry

    monkeypatch.setattr(ae.registry, "WEIGHTS_DIR", tmp_path)  # nothing shipped: no models and no codec points
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    if page:
        at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    shown = texts(at.error) + texts(at.warning) + texts(at.info)
    if page in ("home", "draw", "gallery"):
        assert "weights" in shown
    expected = MISSING_WEIGHTS_MESSAGES[page]
    for kind, words in expected:
        assert words in texts(getattr(at, kind)), (kind, words, [e.value for e in getattr(at, kind)])
    for error in at.error:  # no error box beyond the expected ones
        assert any(words in error.value for kind, words in expected if kind == "error"), error.value


def test_every_page_opens_clean_with_the_shipped_weights():
    """What a first visitor sees: each page of the menu in turn, no exception and no error box."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    for title, page in NAVIGATION.items():
        if page:
            at.switch_page(f"app_pages/{page}.py").run()
        assert not at.exception, (title, [e.value for e in at.exception])
        assert not at.error, (title, [e.value for e in at.error])
        assert len(at.title) == 1, title  # the page itself was drawn, not just the frame


def test_a_running_training_is_kept_alive_from_any_page():
    """The Train page's polling is not the only heartbeat: another page of the same session
    beats too, so a student who moves on to Draw keeps their training."""
    class FakeJob:
        beats = 0

        def heartbeat(self):
            FakeJob.beats += 1

        def snapshot(self, heartbeat=True):
            return type("Snap", (), {"finished": False})()

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["training_job"] = FakeJob()
    at.run()
    at.switch_page("app_pages/gallery.py").run()
    assert_clean(at)
    assert FakeJob.beats >= 2  # Home and Gallery each beat once
