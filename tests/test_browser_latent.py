"""The Latent explorer's in-browser decoder in a real browser (Playwright + Debian's Chromium
against `streamlit run`, shipped ff and cnn weights): dragging a slider redraws the digit before
the release, the browser's pixels equal the server's `ae.latent.decode` of the same latent to
within 1/255, the release updates the server's offsets, a decoder blob is sent once and then
read from the browser's cache, and a component that cannot load leaves the plain sliders.
Skipped when /usr/bin/chromium, the built frontend (scripts/frontend.sh) or the weights are absent."""
import os
import time

import numpy as np
import pytest

from app_pages.latent_decoder import frontend_built
from browser_support import CHROMIUM, ROOT, browser, streamlit_server, sync_api  # noqa: F401 (the fixture)

FRAME = "iframe[title*='latent_decoder']"
SLIDERS = 6  # as app_pages/latent_explorer.py

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is absent (apt-get install chromium)"),
    pytest.mark.skipif(not frontend_built(), reason="the in-browser decoder is not built (source scripts/venv.sh runs scripts/frontend.sh)"),
    pytest.mark.skipif(not all((ROOT / "weights" / f"{a}.safetensors").exists() for a in ("ff", "cnn")),
                       reason="the shipped ff/cnn weights are missing"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`streamlit run app.py` on a free port with no user models and no data folder (so the page
    uses the shipped weights and the bundled sample); always stopped."""
    env = dict(os.environ, AE_USER_MODELS_DIR=str(tmp_path_factory.mktemp("no_models")),
               AE_DATA_DIR=str(tmp_path_factory.mktemp("no_data")))
    with streamlit_server(env, tmp_path_factory.mktemp("logs") / "streamlit.log") as url:
        yield url


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1600})
    try:
        yield context
    finally:
        context.close()


class Expected:
    """What the server decodes for the page's default digit (test class 7, the first one) and
    slider offsets, computed here with the same `ae` functions the page calls."""

    def __init__(self, arch: str):
        from ae.analysis import reconstruct_digit
        from ae.browser_decoder import export_decoder
        from ae.latent import encode_all, fit_pca
        from ae.sample import load_sample
        from ae.weights import load_model

        self.model = load_model(arch)
        data = load_sample()
        index = int(np.flatnonzero(data.labels.numpy() == 7)[0])
        self.start = reconstruct_digit(self.model, data.images[index, 0].numpy()).latent
        self.pca = fit_pca(encode_all(self.model, data.images).numpy(), k=SLIDERS)
        self.sha256 = export_decoder(self.model).sha256

    def pixels(self, offsets) -> np.ndarray:
        from ae.latent import decode

        return decode(self.model, self.pca.move(self.start, offsets))[0]


def component_frame(page, nth: int = 0):
    """The sliders' iframe (nth=0) or the map's (nth=1): its locator and its frame."""
    page.locator(FRAME).nth(nth).wait_for(timeout=60_000)
    frame = page.frame_locator(FRAME).nth(nth)
    frame.locator("#root.on").wait_for(timeout=60_000)  # the component took over from the plain sliders
    handle = page.locator(FRAME).nth(nth).element_handle().content_frame()
    return frame, handle


def drawn(handle) -> dict:
    """The canvas pixels (0..255, 784) and the offsets they were drawn for, read together."""
    return handle.evaluate("""() => {
        const c = document.getElementById('digit');
        const d = c.getContext('2d').getImageData(0, 0, 28, 28).data;
        const px = []; for (let i = 0; i < d.length; i += 4) px.push(d[i]);
        const s = window.latentDecoderStats;
        return {pixels: px, offsets: s.offsets, draws: s.draws, fetched: s.fetched, cached: s.cached, sha: s.sha};
    }""")


def wait_drawn(handle, value: float, index: int = 0, timeout: float = 10.0) -> dict:
    """Wait until the canvas shows slider `index` at `value` (the next animation frame)."""
    deadline = time.monotonic() + timeout
    while True:
        got = drawn(handle)
        if got["offsets"] is not None and abs(got["offsets"][index] - value) < 1e-6:
            return got
        assert time.monotonic() < deadline, f"slider {index} never drawn at {value}: {got['offsets']}"
        time.sleep(0.02)


def assert_matches(got: dict, expected: Expected, on_map: bool = False) -> float:
    browser = np.asarray(got["pixels"], dtype=np.float64).reshape(28, 28) / 255
    if on_map:
        from ae.latent import decode

        server = decode(expected.model, expected.pca.latent_at(got["offsets"]))[0]
    else:
        server = expected.pixels(got["offsets"])
    diff = float(np.abs(browser - server).max())
    assert diff <= 1 / 255 + 1e-9, f"browser pixels differ from the server's decode by {diff * 255:.2f}/255 at {got['offsets']}"
    return diff


def server_offsets(page) -> str:
    caption = page.get_by_text("Offsets on the server:")
    caption.wait_for(timeout=30_000)
    return caption.inner_text()


def test_dragging_redraws_in_the_browser_and_release_updates_the_server(server, context):
    page = context.new_page()
    page.goto(f"{server}/latent_explorer")
    frame, handle = component_frame(page)
    ff = Expected("ff")
    first = wait_drawn(handle, 0.0)
    assert first["sha"] == ff.sha256
    assert first["fetched"] == 1 and first["cached"] == 0, "the ff decoder blob should have been sent once"
    assert_matches(first, ff)
    assert server_offsets(page).startswith("Offsets on the server: +0.0, +0.0")

    slider = frame.locator("input[type=range]").first
    box = slider.bounding_box()
    y = box["y"] + box["height"] / 2
    x0 = box["x"] + box["width"] / 2  # the thumb at 0
    page.mouse.move(x0, y)
    page.mouse.down()
    seen = []
    for fraction in (0.62, 0.75, 0.9, 0.3, 0.1):  # along the track, right then left
        page.mouse.move(box["x"] + fraction * box["width"], y, steps=4)
        value = float(slider.input_value())
        got = wait_drawn(handle, value)
        assert_matches(got, ff)
        seen.append((value, got["pixels"]))
    # Before the release: the picture moved, the server has not heard of it.
    assert len({tuple(p) for _, p in seen}) == len(seen) and tuple(first["pixels"]) not in {tuple(p) for _, p in seen}
    assert server_offsets(page).startswith("Offsets on the server: +0.0, +0.0")
    page.mouse.up()
    final = float(slider.input_value())
    assert final < -1.0
    sync_api.expect(page.get_by_text(f"Offsets on the server: {final:+.1f}, +0.0")).to_be_visible(timeout=30_000)
    after = drawn(handle)
    assert after["fetched"] == 1, "a rerun must not send the decoder again"

    # Another model: its own blob, pixels again equal to the server's decode.
    page.locator("[data-testid='stMain']").get_by_text("Convolutional (CNN)", exact=True).click()
    cnn = Expected("cnn")
    deadline = time.monotonic() + 60
    got = None
    while True:  # the reply that carries the blob may remount the iframe: find it afresh
        try:
            frame, handle = component_frame(page)
            got = drawn(handle)
            if got["sha"] == cnn.sha256:
                break
        except sync_api.Error:
            pass
        assert time.monotonic() < deadline, f"the cnn decoder never arrived: {got.get('sha') if got else None} != {cnn.sha256}"
        time.sleep(0.2)
    assert got["fetched"] == 2 and got["cached"] == 0, "this iframe should have been sent the ff blob, then the cnn one"
    # A key press is a release: the server hears each, and its reply may remount the iframe,
    # which takes the focus away. So press once at a time, finding the slider afresh, until 0.7.
    for _ in range(20):
        frame, handle = component_frame(page)
        try:
            offsets = drawn(handle)["offsets"]
            if offsets is not None and abs(offsets[1] - 0.7) < 1e-6:
                break
            frame.locator("input[type=range]").nth(1).focus()
            page.keyboard.press("ArrowRight")
            moved = time.monotonic() + 3  # wait for this press's frame, so no press overshoots
            while drawn(handle)["offsets"] == offsets and time.monotonic() < moved:
                time.sleep(0.05)
        except sync_api.Error:
            time.sleep(0.3)  # the iframe was remounted under us: find it again
    got = wait_drawn(handle, 0.7, index=1)
    assert_matches(got, cnn)
    sync_api.expect(page.get_by_text("Offsets on the server: +0.0, +0.7")).to_be_visible(timeout=30_000)

    # The map: hovering decodes each position in the browser; a click tells the server.
    map_frame, map_handle = component_frame(page, nth=1)
    deadline = time.monotonic() + 60
    while drawn(map_handle)["sha"] != cnn.sha256:
        assert time.monotonic() < deadline, "the map never got the cnn decoder"
        time.sleep(0.2)
    map_frame.locator("#map").scroll_into_view_if_needed()
    box = map_frame.locator("#map").bounding_box()
    shown = []
    for fx, fy in ((0.3, 0.4), (0.7, 0.6), (0.5, 0.2)):
        page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"], steps=3)
        deadline = time.monotonic() + 10
        while True:
            got = drawn(map_handle)
            if got["offsets"] is not None and got["offsets"] not in [o for o, _ in shown]:
                break
            assert time.monotonic() < deadline, "hovering the map did not redraw"
            time.sleep(0.05)
        time.sleep(0.2)  # let the last move's frame land
        got = drawn(map_handle)
        assert_matches(got, cnn, on_map=True)
        shown.append((got["offsets"], got["pixels"]))
    assert page.get_by_text("decoded on the server at").count() == 0
    page.mouse.down()
    page.mouse.up()
    x, y = drawn(map_handle)["offsets"]
    sync_api.expect(page.get_by_text(f"decoded on the server at ({x:.2f}, {y:.2f})")).to_be_visible(timeout=30_000)

    # A new tab (a new session): the decoder comes from the browser's cache, not the server.
    again = context.new_page()
    again.goto(f"{server}/latent_explorer")
    _, handle2 = component_frame(again)
    got = wait_drawn(handle2, 0.0)
    assert got["fetched"] == 0 and got["cached"] == 1
    assert_matches(got, ff)


def test_a_component_that_cannot_load_leaves_the_plain_sliders(server, context):
    page = context.new_page()
    page.route("**/component/**/vendor/**", lambda route: route.abort())  # its runtime fails to load
    page.goto(f"{server}/latent_explorer")
    sync_api.expect(page.get_by_text("decoded from the moved latent")).to_be_visible(timeout=60_000)
    sync_api.expect(page.locator("[data-testid='stSlider']").filter(has_text="direction 1")).to_have_count(1, timeout=30_000)
    assert page.get_by_text("Offsets on the server:").count() == 0
    # "Redraw while dragging" off: the plain sliders, on the server, for anyone.
    page.get_by_text("Redraw while dragging").click()
    sync_api.expect(page.locator(FRAME)).to_have_count(0, timeout=30_000)
    sync_api.expect(page.locator("[data-testid='stSlider']").filter(has_text="direction 1")).to_have_count(1)
