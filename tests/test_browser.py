"""The app in a real browser: Debian's Chromium driven by Playwright against `streamlit run`.
Draws a stroke on the canvas and checks both reconstructions and their byte sizes; uploads a
payload on Send & receive and checks the decoded digit; screenshots every page into
test-artifacts/. Skipped when /usr/bin/chromium is absent (scripts/test.sh installs it)."""
import os
import time

import pytest

from browser_support import CANVAS, CHROMIUM, ROOT, browser, free_port, streamlit_server, sync_api  # noqa: F401 (the fixture; names the other browser tests import from here)

ARTIFACTS = ROOT / "test-artifacts"
PAGES = ["", "draw", "gallery", "latent_explorer", "send_receive", "compare", "train"]

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is absent (apt-get install chromium)")]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`streamlit run app.py` on a free port, with its own user models folder; always stopped."""
    import torch

    from ae.architectures import build_model
    from ae.models import DEFAULT_CONFIGS
    from ae.weights import save_model

    models = tmp_path_factory.mktemp("user_models")
    torch.manual_seed(0)
    for arch in ("ff", "cnn"):  # so the pages have models even where the shipped weights are missing
        save_model(build_model(DEFAULT_CONFIGS[arch]), models / f"browser-{arch}.safetensors", {})
    env = dict(os.environ, AE_USER_MODELS_DIR=str(models), AE_DATA_DIR=str(tmp_path_factory.mktemp("no_data")))
    with streamlit_server(env, tmp_path_factory.mktemp("logs") / "streamlit.log") as url:
        yield url


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 2600})
    try:
        yield context.new_page()
    finally:
        context.close()


def shot(page, name: str) -> None:
    # Charts and tables show a skeleton while their JavaScript loads: wait for them (a while).
    try:
        page.wait_for_function("document.querySelectorAll(\"[data-testid='stSkeleton']\").length === 0",
                               timeout=20_000)
    except sync_api.TimeoutError:
        pass  # a screenshot with a placeholder is still a useful artifact
    time.sleep(0.5)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"browser-{name}.png"), full_page=True)


def assert_no_exception(page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0, page.locator("[data-testid='stException']").first.inner_text()


def test_drawing_a_stroke_shows_both_reconstructions_and_sizes(server, page):
    expect = sync_api.expect
    page.goto(f"{server}/draw")
    canvas = page.locator(CANVAS)
    canvas.wait_for(timeout=30_000)
    expect(page.get_by_text("Draw a digit on the black square")).to_be_visible(timeout=30_000)
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    time.sleep(0.4)  # hovering moves the canvas toolbar out of the way
    stroke(page, box, (0.40, 0.20), (0.50, 0.82))  # a slanted "1"
    started = time.monotonic()
    expect(page.get_by_text("reconstruction", exact=True)).to_have_count(2, timeout=30_000)
    first = time.monotonic() - started
    for text in ("Feedforward (FF)", "Convolutional (CNN)", "Input digit"):
        expect(page.get_by_role("heading", name=text)).to_be_visible()
    body = page.locator("[data-testid='stMain']")
    expect(body.get_by_text("float32 latent").first).to_be_visible()
    # Byte sizes sit in the dataframes (a canvas grid): their accessible cells carry the text.
    expect(page.get_by_text("784 B").first).to_be_attached(timeout=10_000)
    expect(page.get_by_text(f"{4 * 196} B").first).to_be_attached()
    expect(page.get_by_text(f"{4 * 32} B").first).to_be_attached()
    # A second stroke (a flag on the "1"): both reconstructions change.
    pictures = page.locator("[data-testid='stImage'] img")
    before = [pictures.nth(i).get_attribute("src") for i in range(pictures.count())]
    stroke(page, box, (0.40, 0.20), (0.30, 0.32))
    started = time.monotonic()
    changed = False
    while time.monotonic() - started < 30 and not changed:
        after = [pictures.nth(i).get_attribute("src") for i in range(pictures.count())]
        changed = len(set(after) - set(before)) >= 3  # input digit and both reconstructions
        time.sleep(0.05)
    second = time.monotonic() - started
    assert changed, "the second stroke did not update the digit and both reconstructions"
    time.sleep(1.0)  # let plotly finish drawing before the screenshot
    assert_no_exception(page)
    shot(page, "draw")
    print(f"\nreconstructions on screen {first:.2f} s after the first stroke's mouse-up, "
          f"{second:.2f} s after the second's (browser test, this machine)")


def stroke(page, box, start, end, steps: int = 24) -> None:
    """A straight mouse stroke between two points given as fractions of the canvas box."""
    def at(t):
        return (box["x"] + (start[0] + t * (end[0] - start[0])) * box["width"],
                box["y"] + (start[1] + t * (end[1] - start[1])) * box["height"])
    page.mouse.move(*at(0))
    page.mouse.down()
    for i in range(1, steps + 1):
        page.mouse.move(*at(i / steps))
    page.mouse.up()


def test_receiving_an_uploaded_payload_shows_the_digit(server, page, tmp_path):
    from ae.codec import compress
    from ae.registry import codec_status

    status = codec_status()
    if not status.available:
        pytest.skip(f"codec absent, nothing to receive: {status.message}")
    from ae.sample import load_sample

    payload = compress(load_sample().images[0, 0].numpy(), status.points[0].name)
    file = tmp_path / "digit.aez"
    file.write_bytes(payload)
    page.goto(f"{server}/send_receive")
    uploader = page.locator("[data-testid='stFileUploader']").filter(has_text="Payload file")
    uploader.wait_for(timeout=30_000)
    uploader.locator("input[type=file]").set_input_files(str(file))
    sync_api.expect(page.get_by_text(f"Decoded 1 digit from {len(payload)} bytes")).to_be_visible(timeout=30_000)
    sync_api.expect(page.get_by_text("the received digit")).to_be_visible()
    assert_no_exception(page)
    shot(page, "send_receive")


@pytest.mark.parametrize("path", [p for p in PAGES if p not in ("draw", "send_receive")])
def test_every_page_renders(server, page, path):
    page.goto(f"{server}/{path}")
    page.locator("h1").first.wait_for(timeout=30_000)
    time.sleep(2.0)  # charts and images arrive after the title
    assert_no_exception(page)
    shot(page, path or "home")
