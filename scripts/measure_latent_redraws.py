"""Redraws per second of the Latent explorer's in-browser decoder while a slider is dragged.

Starts `streamlit run app.py` (shipped weights, bundled sample), opens the page in headless
Chromium (Playwright), drags the first direction slider back and forth for a few seconds for
each model and prints: canvas redraws per second, value changes per second (what the drag asked
for), the time of one decode, whether the server heard of the drag before the release, and the
redraw rate when the drag is driven from inside the page (one new value per animation frame;
Playwright's mouse moves are a round trip each and cap the first figure).

    source scripts/venv.sh && python scripts/measure_latent_redraws.py [--seconds 5]

Needs /usr/bin/chromium and the built frontend (scripts/frontend.sh). Figures from a loaded
or shared machine are preliminary.
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
FRAME = "iframe[title*='latent_decoder']"
STATS = "() => ({draws: window.latentDecoderStats.draws, ms: window.latentDecoderStats.decodeMs})"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(tmp: str) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, AE_USER_MODELS_DIR=os.path.join(tmp, "models"), AE_DATA_DIR=os.path.join(tmp, "data"))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.address",
         "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return proc, url
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("error: streamlit did not start")
        time.sleep(0.3)


def measure(page, seconds: float) -> dict:
    """Drag the first slider back and forth across its track for `seconds`."""
    frame_locator = page.frame_locator(FRAME).first  # the sliders (the map comes second)
    frame_locator.locator("#root.on").wait_for(timeout=60_000)
    frame = page.locator(FRAME).first.element_handle().content_frame()
    slider = frame_locator.locator("input[type=range]").first
    box = slider.bounding_box()
    y = box["y"] + box["height"] / 2
    caption = page.get_by_text("Offsets on the server:").inner_text()
    page.mouse.move(box["x"] + box["width"] / 2, y)
    page.mouse.down()
    before = frame.evaluate(STATS)
    moves, decode_ms = 0, []
    started = time.monotonic()
    x, dx = box["x"] + box["width"] / 2, box["width"] / 40  # about one slider step (0.1 of 6) per move
    while time.monotonic() - started < seconds:
        x += dx
        if not box["x"] + 4 < x < box["x"] + box["width"] - 4:
            dx = -dx
            x += 2 * dx
        page.mouse.move(x, y)
        moves += 1
        if moves % 10 == 0:
            decode_ms.append(frame.evaluate(STATS)["ms"])
    elapsed = time.monotonic() - started
    after = frame.evaluate(STATS)
    heard = page.get_by_text("Offsets on the server:").inner_text() != caption
    page.mouse.up()
    time.sleep(1.0)  # the release's rerun
    # The same drag from inside the page: a new value every animation frame (no CDP round trip per move).
    in_page = frame.evaluate("""async (ms) => {
        const input = document.querySelector('input[type=range]'), s = window.latentDecoderStats;
        const d0 = s.draws, t0 = performance.now();
        let v = Number(input.value), dv = 0.1;
        while (performance.now() - t0 < ms) {
            v += dv;
            if (v > 3 || v < -3) { dv = -dv; v += 2 * dv; }
            input.value = v.toFixed(1);
            input.dispatchEvent(new Event('input'));
            await new Promise((r) => requestAnimationFrame(r));
        }
        return (s.draws - d0) / (performance.now() - t0) * 1000;
    }""", seconds * 1000)
    return {"in_page_redraws_per_s": in_page, "redraws_per_s": (after["draws"] - before["draws"]) / elapsed, "moves_per_s": moves / elapsed,  # a move crosses about one step: one new value
            "decode_ms": sorted(decode_ms)[len(decode_ms) // 2] if decode_ms else float("nan"),
            "server_heard_before_release": heard}


def frontend_built() -> bool:
    # The app's pages are not part of the installed package: ask them in the checkout.
    check = "from app_pages.latent_decoder import frontend_built; raise SystemExit(not frontend_built())"
    return subprocess.run([sys.executable, "-c", check], cwd=ROOT).returncode == 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="drag time per model")
    args = parser.parse_args(argv)
    if not os.path.exists(CHROMIUM):
        raise SystemExit(f"error: {CHROMIUM} is absent (apt-get install chromium)")
    if not frontend_built():
        raise SystemExit("error: the in-browser decoder is not built (source scripts/venv.sh runs scripts/frontend.sh)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(tmp)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                try:
                    page = browser.new_page(viewport={"width": 1400, "height": 1600})
                    page.goto(f"{url}/latent_explorer")
                    shown = None
                    for arch, button in (("ff", None), ("cnn", "Convolutional (CNN)")):
                        if button:
                            page.locator("[data-testid='stMain']").get_by_text(button, exact=True).click()
                            frame = page.locator(FRAME).first.element_handle().content_frame()
                            frame.wait_for_function(f"window.latentDecoderStats.sha && window.latentDecoderStats.sha !== '{shown}'",
                                                    timeout=60_000)
                            page.wait_for_timeout(1000)
                        r = measure(page, args.seconds)
                        shown = page.locator(FRAME).first.element_handle().content_frame().evaluate("window.latentDecoderStats.sha")
                        print(f"{arch}: {r['redraws_per_s']:.0f} redraws/s while dragging "
                              f"for {r['moves_per_s']:.0f} mouse moves/s (Playwright's pace); one decode + draw {r['decode_ms']:.1f} ms, "
                              f"so up to ~{1000 / max(r['decode_ms'], 1e-3):.0f}/s; "
                              f"server heard of the drag before the release: {'yes' if r['server_heard_before_release'] else 'no'}; "
                              f"driven from inside the page (a value per animation frame): {r['in_page_redraws_per_s']:.0f} redraws/s")
                finally:
                    browser.close()
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    print("headless Chromium (--disable-gpu, TF.js CPU backend), shipped weights; goal >= 30 redraws/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
