"""The README's pictures, taken from the running app so they can be made again after a change:

- docs/img/draw.png: a "2" drawn with the mouse on the Draw page's real canvas, and what both
  autoencoders make of it;
- docs/img/rd-chart.png: the Compare page's rate–distortion chart (from weights/benchmark.json).

    python -m scripts.screenshots [--out docs/img]     # from the checkout's root

It starts `streamlit run app.py` with the browser tests' helper (tests/browser_support.py: a free
port, always stopped) on the shipped weights and the bundled sample (an empty user models folder
and no dataset, so the pictures do not depend on this machine), and drives Debian's Chromium
through Playwright (`apt-get install chromium`; never `playwright install`). The PNGs are reduced
to 256 colours so that each stays well under 300 KB in the repository.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

# Run as a module from the root, so the browser tests' helper imports as tests.browser_support.
from tests.browser_support import CANVAS, CHROMIUM, FLAGS, ROOT, streamlit_server, sync_api

# Streamlit scrolls inside its main block, not the document, so a "full page" screenshot is the
# viewport: make it tall enough for the whole Draw page and cut it where the page ends.
VIEWPORT = {"width": 1280, "height": 3000}
# A "2" as points on the canvas (fractions of its width and height), drawn as one stroke:
# the arc over the top, the diagonal down to the left, the base line.
TWO = [(0.30, 0.32), (0.36, 0.22), (0.47, 0.17), (0.59, 0.19), (0.67, 0.28), (0.67, 0.40),
       (0.58, 0.53), (0.45, 0.65), (0.31, 0.79), (0.48, 0.78), (0.72, 0.78)]
WAIT_MS = 60_000  # a cold server imports PyTorch and loads every model before the first result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img", help="folder for the PNGs")
    args = parser.parse_args(argv)
    if not os.path.exists(CHROMIUM):
        print(f"error: {CHROMIUM} is absent (apt-get install chromium)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ae-screenshots-") as tmp:
        scratch = Path(tmp)
        (scratch / "models").mkdir()
        env = dict(os.environ, AE_USER_MODELS_DIR=str(scratch / "models"), AE_DATA_DIR=str(scratch / "no_data"))
        with streamlit_server(env, scratch / "streamlit.log") as url, sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            try:
                page = browser.new_page(viewport=VIEWPORT)
                save(draw_page(page, url), args.out / "draw.png")
                save(rd_chart(page, url), args.out / "rd-chart.png")
            finally:
                browser.close()
    return 0


def draw_page(page, url: str) -> bytes:
    """The whole Draw page after a "2" is drawn on its canvas: the canvas, the chart of every form's
    bytes, the 28×28 digit, both reconstructions with their latents, and the codec's payloads."""
    expect = sync_api.expect
    page.goto(f"{url}/draw")
    canvas = page.locator(CANVAS)
    canvas.wait_for(timeout=WAIT_MS)
    expect(page.get_by_text("Draw a digit on the black square")).to_be_visible(timeout=WAIT_MS)
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.9, box["y"] + box["height"] * 0.9)
    time.sleep(0.4)  # hovering moves the canvas toolbar out of the way
    polyline(page, box, TWO)
    expect(page.get_by_text("reconstruction", exact=True)).to_have_count(2, timeout=WAIT_MS)
    expect(page.get_by_text("decoded payload", exact=True).first).to_be_visible(timeout=WAIT_MS)  # the codec's row
    page.mouse.move(box["x"] + box["width"] + 300, box["y"])  # no hover toolbar in the picture
    settle(page)
    content = page.locator("[data-testid='stMainBlockContainer']").bounding_box()
    height = min(VIEWPORT["height"], round(content["y"] + content["height"]))
    return page.screenshot(clip={"x": 0, "y": 0, "width": VIEWPORT["width"], "height": height})


def rd_chart(page, url: str) -> bytes:
    """The Compare page's rate–distortion chart (bytes per digit against PSNR), the chart alone."""
    page.goto(f"{url}/compare")
    chart = page.locator("[data-testid='stPlotlyChart']").first
    chart.wait_for(timeout=WAIT_MS)
    chart.locator(".main-svg").first.wait_for(timeout=WAIT_MS)  # plotly has drawn it
    settle(page)
    return chart.screenshot()


def polyline(page, box, points, steps: int = 8) -> None:
    """One mouse stroke through `points` (fractions of the canvas box), `steps` moves per segment."""
    at = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    for (x0, y0), (x1, y1) in zip(at, at[1:]):
        for i in range(1, steps + 1):
            page.mouse.move(x0 + (x1 - x0) * i / steps, y0 + (y1 - y0) * i / steps)
    page.mouse.up()


def settle(page) -> None:
    """Wait until no chart or table shows its loading skeleton, then let plotly finish drawing."""
    page.wait_for_function("document.querySelectorAll(\"[data-testid='stSkeleton']\").length === 0",
                           timeout=WAIT_MS)
    time.sleep(1.5)


def save(png: bytes, path: Path) -> None:
    # 256 colours keep the text and the digits sharp (the pages use few colours) at a fraction of the size.
    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
    image.save(path, optimize=True)
    print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: "
          f"{image.width}×{image.height}, {path.stat().st_size / 1000:.0f} KB")


if __name__ == "__main__":
    sys.exit(main())
