"""Two replicas behind HAProxy (`bash scripts/serve.sh --replicas 2`), driven by real Chromium.

Shows that each browser sticks to one replica (the SRV cookie names it and HAProxy's log puts
every request of that browser, websocket included, on that replica), that two browsers are spread
over both replicas, and that uploads and media files work through the balancer. Skipped when
HAProxy or Chromium is absent (scripts/test.sh installs both)."""
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from browser_support import CANVAS, CHROMIUM, ROOT, browser, free_port, sync_api  # noqa: F401 (the fixture)

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
# A marker at the front of each browser's User-Agent: HAProxy's log captures that header.
AGENT = "ae-balancer-test/{} Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120 Safari/537.36"
# An httplog line: ... app replicas/r1 0/0/0/3/3 200 8116 - - --NI 1/1/0/0/0 0/0 {captured UA} "GET / HTTP/1.1"
LOG_LINE = re.compile(r' replicas/(?P<server>\S+) \S+ (?P<status>-?\d+) .* \{(?P<agent>[^}]*)\} "(?P<method>\S+) (?P<path>\S+)')

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(HAPROXY), reason=f"{HAPROXY} is absent (apt-get install haproxy)"),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is absent (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def balancer(tmp_path_factory):
    """serve.sh with 2 replicas and HAProxy on free ports; yields (url, run folder); always stopped."""
    run = tmp_path_factory.mktemp("serve")
    env = dict(os.environ, AE_USER_MODELS_DIR=str(tmp_path_factory.mktemp("user_models")),
               AE_DATA_DIR=str(tmp_path_factory.mktemp("no_data")))
    port = free_port()
    out = open(run / "serve.out", "w+")
    proc = subprocess.Popen(["bash", "scripts/serve.sh", "--replicas", "2", "--port", str(port),
                             "--address", "127.0.0.1", "--run-dir", str(run)],
                            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 150
        while not (run / "ready").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                out.seek(0)
                pytest.fail(f"serve.sh did not get ready:\n{out.read()[-3000:]}")
            time.sleep(0.3)
        yield f"http://127.0.0.1:{port}", run
    finally:
        proc.send_signal(signal.SIGTERM)  # serve.sh stops HAProxy and both replicas
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        out.close()


def log_lines(run: Path) -> list[dict]:
    text = (run / "haproxy.log").read_text(errors="replace")
    return [m.groupdict() for m in map(LOG_LINE.search, text.splitlines()) if m]


def loaded_image_sources(page, caption: str) -> list[str]:
    """The src of every picture captioned `caption` whose file has arrived and decoded."""
    return page.evaluate("""caption => [...document.querySelectorAll("[data-testid='stImage']")]
        .filter(e => e.innerText.trim() === caption)
        .map(e => e.querySelector('img'))
        .filter(img => img && img.complete && img.naturalWidth > 0)
        .map(img => img.getAttribute('src'))""", caption)


def wait_for_images(page, caption: str, count: int, timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sources = loaded_image_sources(page, caption)
        if len(sources) >= count:
            return sources
        time.sleep(0.1)
    raise AssertionError(f"{count} loaded picture(s) captioned {caption!r} did not appear within {timeout} s")


def draw_a_one(page) -> None:
    canvas = page.locator(CANVAS)
    canvas.wait_for(timeout=60_000)
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    time.sleep(0.4)  # hovering moves the canvas toolbar out of the way
    page.mouse.move(box["x"] + 0.40 * box["width"], box["y"] + 0.20 * box["height"])
    page.mouse.down()
    for i in range(1, 25):
        page.mouse.move(box["x"] + (0.40 + 0.10 * i / 24) * box["width"], box["y"] + (0.20 + 0.62 * i / 24) * box["height"])
    page.mouse.up()


def status_of(url: str, cookie: str) -> int:
    request = urllib.request.Request(url, headers={"Cookie": cookie})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_sessions_stick_to_one_replica_and_uploads_and_media_work(balancer, browser, tmp_path):
    from ae.codec import compress
    from ae.registry import codec_status
    from ae.sample import load_sample

    url, run = balancer
    status = codec_status()
    if not status.available:
        pytest.skip(f"codec absent, no payload to upload: {status.message}")
    payload = compress(load_sample().images[0, 0].numpy(), status.points[0].name)
    file = tmp_path / "digit.aez"
    file.write_bytes(payload)

    contexts = {name: browser.new_context(viewport={"width": 1400, "height": 2400}, user_agent=AGENT.format(name))
                for name in ("A", "B")}
    try:
        # A receives an uploaded payload; B opens Draw while A's websocket is still open.
        a = contexts["A"].new_page()
        a.goto(f"{url}/send_receive")
        uploader = a.locator("[data-testid='stFileUploader']").filter(has_text="Payload file")
        uploader.wait_for(timeout=60_000)
        b = contexts["B"].new_page()
        b.goto(f"{url}/draw")
        uploader.locator("input[type=file]").set_input_files(str(file))
        sync_api.expect(a.get_by_text(f"Decoded 1 digit from {len(payload)} bytes")).to_be_visible(timeout=60_000)
        received = wait_for_images(a, "the received digit", 1)[0]
        draw_a_one(b)
        reconstructions = wait_for_images(b, "reconstruction", 2)
        for page in (a, b):
            assert page.locator("[data-testid='stException']").count() == 0

        # Pictures travel inside the page's messages (data URLs); the payload download is a
        # media file, served only by the replica that made it: with the other one's cookie it is gone.
        with a.expect_download(timeout=60_000) as download:
            a.get_by_role("button", name="Download payload").click()
        assert download.value.suggested_filename.endswith(".aez")
        cookies = {name: {c["name"]: c["value"] for c in ctx.cookies()}.get("SRV") for name, ctx in contexts.items()}
        assert set(cookies.values()) == {"r1", "r2"}, f"the two browsers were not spread over both replicas: {cookies}"
        media = download.value.url
        assert "/media/" in media, media
        assert status_of(media, f"SRV={cookies['A']}") == 200
        other = "r2" if cookies["A"] == "r1" else "r1"
        assert status_of(media, f"SRV={other}") != 200, "the other replica served a media file it never made"
        assert received.startswith("data:image/png") and all(src.startswith("data:image/png") for src in reconstructions)
    finally:
        for ctx in contexts.values():
            ctx.close()

    # HAProxy logs a websocket when it closes: wait for both, then check every logged request.
    deadline = time.monotonic() + 15
    while True:
        lines = [l for l in log_lines(run) if l["agent"].startswith("ae-balancer-test/")]
        sockets = {l["agent"].split()[0] for l in lines if l["path"].startswith("/_stcore/stream")}
        if len(sockets) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert len(sockets) == 2, f"HAProxy logged no websocket for some browser: {sockets}"
    for name, cookie in cookies.items():
        mine = [l for l in lines if l["agent"].startswith(f"ae-balancer-test/{name} ")]
        served_by = {l["server"] for l in mine}
        assert served_by == {cookie}, f"browser {name} (cookie SRV={cookie}) was served by {served_by}"
        if name == "A":
            assert any("upload_file" in l["path"] and l["status"].startswith("2") for l in mine), \
                "the upload did not go through HAProxy"
        assert len(mine) >= 5  # the page, its scripts, the websocket, media...
