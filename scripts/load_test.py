"""The app under a class: N real Chromium sessions draw digits on Draw while one more trains.

    python scripts/load_test.py [--replicas R | --url URL] [--sessions 8] [--digits 3] [--no-train]
                                [--warm] [--data-dir DIR] [--server-cpus 0] [--timeout 900] [--json out.json]

Without --url it starts the app itself: `bash scripts/serve.sh --replicas R` (R Streamlit replicas
behind HAProxy, R=1 by default) on a free port, with AE_RUN_LOG set and an empty user models
folder, and stops it at the end. With --url it measures a server you run; pass --run-log (that
server's AE_RUN_LOG file) and --server-pid (its Streamlit processes) for the server-side figures.

One Chromium process holds every session (a browser context each). The trainer opens Train and
presses Start with the page's defaults (again whenever a job ends, so one training runs
throughout); once its progress bar shows, every drawing session opens
Draw at once and draws its digits, a few strokes each, waiting after each stroke until the page has
settled: the pictures for this drawing are on screen and the script is no longer running. The
canvas is cleared between digits. With --warm, Draw is first opened once on each replica, so the
sessions meet servers that have imported PyTorch (else the first ones wait for that). Reported beside the issue's targets:
  failures         exceptions shown on a page, websocket disconnects, waits that timed out;
  page load        navigation start -> canvas visible (trainer: -> Start button), max and p95;
  settled          mouse-up -> settled, p50/p95, each session's first draw apart from the rest;
  server run       from the app's run log (AE_RUN_LOG): the wall and CPU seconds of the session's
                   runs that started between a stroke's mouse-up and its settling;
  RSS peak         the replicas' process trees (training workers included), summed, from /proc;
                   and their summed PSS, which counts each shared library page once;
  draws/s          strokes settled / time from the first stroke to the last settling.
A stroke that draws nothing on the canvas (the mouse went beside it: a canvas that has just
mounted can still move) is counted apart and drawn again once; the app was never sent it.
Server data: full MNIST when the server has AE_DATA_DIR (e.g. --data-dir /work/shared/data),
else the bundled sample. A global --timeout bounds the run; the server is always stopped.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CANVAS = "[data-testid='stBidiComponentIsolated'] canvas.upper-canvas"
RESULT_CAPTION = "reconstruction"  # the caption under each autoencoder's picture on Draw

# Digits as strokes, each a polyline in fractions of the canvas (x right, y down).
DIGITS = {
    "1": [[(0.47, 0.15), (0.53, 0.85)], [(0.47, 0.15), (0.35, 0.30)]],
    "7": [[(0.25, 0.20), (0.75, 0.20)], [(0.75, 0.20), (0.45, 0.85)], [(0.42, 0.52), (0.66, 0.52)]],
    "4": [[(0.60, 0.15), (0.25, 0.60), (0.78, 0.60)], [(0.60, 0.15), (0.60, 0.88)]],
    "0": [[(0.50, 0.15), (0.32, 0.30), (0.28, 0.55), (0.36, 0.80), (0.50, 0.86)],
          [(0.50, 0.15), (0.66, 0.28), (0.72, 0.55), (0.64, 0.80), (0.50, 0.86)]],
    "3": [[(0.30, 0.20), (0.55, 0.14), (0.68, 0.30), (0.45, 0.48)],
          [(0.45, 0.48), (0.70, 0.62), (0.62, 0.84), (0.30, 0.82)]],
}

# In the page: settled when the script is not running, the websocket is connected, every picture
# has loaded, at least one is a result picture, and the pictures differ from those before the stroke.
SETTLED_JS = """([caption, before]) => {
  const app = document.querySelector("[data-testid='stApp']");
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning'
      || app.getAttribute('data-test-connection-state') !== 'CONNECTED') return false;
  const pictures = [...document.querySelectorAll("[data-testid='stImage']")]
    .map(e => [e.innerText.trim(), e.querySelector('img')]).filter(([, img]) => img);
  if (pictures.some(([, img]) => !(img.complete && img.naturalWidth > 0))) return false;
  const srcs = pictures.map(([, img]) => img.getAttribute('src')).sort();
  if (!pictures.some(([text]) => text === caption) || JSON.stringify(srcs) === JSON.stringify(before)) return false;
  return srcs;
}"""
SRCS_JS = """() => [...document.querySelectorAll("[data-testid='stImage'] img")].map(img => img.getAttribute('src')).sort()"""
CLEARED_JS = """([caption]) => {
  const app = document.querySelector("[data-testid='stApp']");
  return app && app.getAttribute('data-test-script-state') === 'notRunning'
    && ![...document.querySelectorAll("[data-testid='stImage']")].some(e => e.innerText.trim() === caption);
}"""
IDLE_JS = """() => { const app = document.querySelector("[data-testid='stApp']");
  return app && app.getAttribute('data-test-script-state') === 'notRunning'; }"""
PROBLEMS_JS = """() => [...document.querySelectorAll("[data-testid='stException']")].map(e => e.innerText.slice(0, 300))
  .concat([...document.querySelectorAll("[data-testid='stAlert']")].map(e => e.innerText)
          .filter(t => t.includes('Something went wrong')).map(t => t.slice(0, 300)))"""


@dataclass
class Event:  # one thing a session did and waited for
    kind: str  # "stroke" or "clear"
    t_start: float  # unix time of mouse-up (stroke) or click (clear)
    t_end: float  # unix time it settled (t_start + the wait when it timed out)
    seconds: float | None  # None: timed out
    first: bool = False  # the session's first stroke


@dataclass
class Session:
    name: str
    load_s: float | None = None
    events: list[Event] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    browser_errors: list[str] = field(default_factory=list)
    note: str = ""
    missed_strokes: int = 0  # strokes the mouse drew beside the canvas (drawn again)
    jobs: int = 0  # trainer: training jobs started (the default job can end before the drawing does)


# ---- the browser side ----

class Watch:
    """Failures a page reports by itself: websocket closes and uncaught script errors."""

    def __init__(self, page, session: Session):
        self.closing = False
        page.on("websocket", lambda ws: ws.on("close", lambda _ws: self._closed(session, ws.url)))
        page.on("pageerror", lambda exc: session.browser_errors.append(str(exc)[:200]))

    def _closed(self, session: Session, url: str) -> None:
        if not self.closing:
            session.failures.append(f"websocket closed ({url.split('/')[-1]})")


async def check_page(page, session: Session, where: str, seen: set | None = None) -> None:
    """Count the exceptions shown on the page now (with `seen`: only those not counted before)."""
    for problem in await page.evaluate(PROBLEMS_JS):
        if seen is None or problem not in seen:
            session.failures.append(f"{where}: exception on the page: {problem}")
            if seen is not None:
                seen.add(problem)


SCREENSHOTS: Path | None = None  # --screenshots: where a page is saved when a wait fails


async def screenshot(page, name: str) -> None:
    if SCREENSHOTS is not None:
        try:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True, timeout=10_000)
        except Exception:
            pass  # a missing picture must not end the run


# The canvas's drawn pixels (fabric.js paints a finished stroke onto its lower canvas).
INK_JS = "el => el.parentElement.querySelector('canvas.lower-canvas')?.toDataURL() ?? ''"


async def steady_box(canvas, timeout: float) -> dict:
    """The canvas's box once it has stopped moving: a canvas that has just mounted may still be
    shifted by the page settling around it, and a stroke drawn at the old box misses it."""
    deadline, last = time.monotonic() + timeout, None
    while True:
        box = await canvas.bounding_box()
        if box is not None and box == last:
            return box
        if time.monotonic() > deadline:
            raise TimeoutError("the canvas kept moving")
        last = box
        await asyncio.sleep(0.15)


async def inked(canvas, before: str, wait: float = 2.0) -> bool:
    """Whether the canvas's pixels changed from `before` within `wait` seconds."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if await canvas.evaluate(INK_JS) != before:
            return True
        await asyncio.sleep(0.05)
    return False


async def draw_stroke(page, box, points, moves_per_segment: int = 12) -> None:
    def at(p):
        return box["x"] + p[0] * box["width"], box["y"] + p[1] * box["height"]
    await page.mouse.move(*at(points[0]))
    await page.mouse.down()
    for a, b in zip(points, points[1:]):
        for i in range(1, moves_per_segment + 1):
            t = i / moves_per_segment
            await page.mouse.move(*at((a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]))))
    await page.mouse.up()


async def fresh_canvas(canvas, timeout: float) -> None:
    """Wait until the canvas locator finds a canvas that was not drawn on (strokes sent to the old
    one while the new one mounts would be lost)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if await canvas.evaluate("el => !el.aeDrawnOn", timeout=2_000):
                return
        except Exception:
            pass  # none yet, or the old and the new one both present for a moment
        if time.monotonic() > deadline:
            raise TimeoutError("no fresh canvas after clearing")
        await asyncio.sleep(0.1)


async def drawing_session(browser, url: str, session: Session, index: int, digits: list[str],
                          step_timeout: float) -> None:
    context = await browser.new_context(viewport={"width": 1400, "height": 1600})
    page = await context.new_page()
    watch = Watch(page, session)
    try:
        started = time.monotonic()
        await page.goto(f"{url}/draw", timeout=step_timeout * 1000)
        canvas = page.locator(CANVAS)
        await canvas.wait_for(timeout=step_timeout * 1000)
        session.load_s = time.monotonic() - started
        await page.wait_for_function(IDLE_JS, timeout=step_timeout * 1000)
        await check_page(page, session, "page load")
        for d, digit in enumerate(digits):
            box = await steady_box(canvas, step_timeout)
            await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            await asyncio.sleep(0.3)  # hovering moves the canvas toolbar out of the way
            # Each session draws its digits a little shifted, so no two sessions send the same
            # drawing (the app caches per digit: identical drawings would make the server look faster).
            shift = (0.015 * (index % 5 - 2), 0.012 * (index // 5 % 5 - 2))
            for stroke in DIGITS[digit]:
                before = await page.evaluate(SRCS_JS)
                # A stroke that lands beside the canvas draws nothing, so there is nothing for the
                # app to answer: it is counted apart and drawn again, once, at the canvas's new box.
                for attempt in range(2):
                    box = await steady_box(canvas, step_timeout)
                    ink = await canvas.evaluate(INK_JS)
                    await draw_stroke(page, box, [(x + shift[0], y + shift[1]) for x, y in stroke])
                    up, up_wall = time.monotonic(), time.time()
                    if landed := await inked(canvas, ink):
                        break
                    session.missed_strokes += 1
                    await screenshot(page, f"{session.name}-digit{d + 1}-missed-canvas")
                if not landed:
                    session.failures.append(f"digit {d + 1} ({digit}): two strokes in a row drew nothing on the canvas")
                    continue
                try:
                    await page.wait_for_function(SETTLED_JS, arg=[RESULT_CAPTION, before], polling=50,
                                                 timeout=step_timeout * 1000)
                    seconds = time.monotonic() - up
                except Exception as exc:  # Playwright's TimeoutError, or the page went away
                    session.failures.append(f"digit {d + 1} ({digit}): stroke did not settle: {type(exc).__name__}")
                    seconds = None
                    await screenshot(page, f"{session.name}-digit{d + 1}-stroke-timeout")
                session.events.append(Event("stroke", up_wall, up_wall + (seconds or step_timeout), seconds,
                                            first=not any(e.kind == "stroke" for e in session.events)))
                await check_page(page, session, f"digit {d + 1}")
            if d < len(digits) - 1:  # clear between digits
                await canvas.evaluate("el => { el.aeDrawnOn = true; }")  # to tell the new canvas from it
                click, click_wall = time.monotonic(), time.time()
                await page.get_by_role("button", name="Clear the canvas").click(timeout=step_timeout * 1000)
                try:
                    await page.wait_for_function(CLEARED_JS, arg=[RESULT_CAPTION], polling=50,
                                                 timeout=step_timeout * 1000)
                    seconds = time.monotonic() - click
                except Exception as exc:
                    session.failures.append(f"clear after digit {d + 1} did not settle: {type(exc).__name__}")
                    seconds = None
                    await screenshot(page, f"{session.name}-clear{d + 1}-timeout")
                session.events.append(Event("clear", click_wall, click_wall + (seconds or step_timeout), seconds))
                await fresh_canvas(canvas, step_timeout)  # the app clears it by changing its key
    except Exception as exc:
        session.failures.append(f"session aborted: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    finally:
        watch.closing = True
        await context.close()


async def training_session(browser, url: str, session: Session, started: asyncio.Event, done: asyncio.Event,
                           step_timeout: float) -> None:
    """Open Train, press Start with the page's defaults, keep the page open until `done`, then Stop."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1600})
    page = await context.new_page()
    watch = Watch(page, session)

    async def note_progress() -> None:  # the progress bar's text: the summary's "training" line
        bars = page.locator("[data-testid='stProgress']")
        if await bars.count():
            session.note = (await bars.first.inner_text()).strip().replace("\n", " ")[:160]

    try:
        t0 = time.monotonic()
        await page.goto(f"{url}/train", timeout=step_timeout * 1000)
        start = page.get_by_role("button", name="Start training")
        await start.wait_for(timeout=step_timeout * 1000)
        session.load_s = time.monotonic() - t0
        await page.wait_for_function(IDLE_JS, timeout=step_timeout * 1000)
        await start.click(timeout=step_timeout * 1000)
        try:
            await page.locator("[data-testid='stProgress']").first.wait_for(timeout=step_timeout * 1000)
        except Exception as exc:
            alerts = [t.strip()[:200] for t in await page.locator("[data-testid='stAlert']").all_inner_texts()]
            session.failures.append(f"training did not start ({type(exc).__name__}); the page says: {alerts}")
        await check_page(page, session, "train")
        session.jobs = 1
        started.set()
        seen: set[str] = set()  # its progress fragment reruns twice a second: look for exceptions as often
        while not done.is_set():
            await check_page(page, session, "train", seen)
            # The default job is short on full MNIST (~1 minute): start another with the same
            # settings when it ends, so that one training runs until the drawing is done.
            if await start.count() and await start.first.is_enabled():
                await note_progress()
                await start.first.click(timeout=step_timeout * 1000)
                session.jobs += 1
                await page.wait_for_function(IDLE_JS, timeout=step_timeout * 1000)  # Start disabled again
            try:
                await asyncio.wait_for(done.wait(), 0.5)
            except (asyncio.TimeoutError, TimeoutError):
                pass
        await note_progress()
        await check_page(page, session, "train", seen)
        stop = page.get_by_role("button", name="Stop")
        if await stop.count() and await stop.first.is_enabled():
            await stop.first.click(timeout=10_000)
    except Exception as exc:
        session.failures.append(f"trainer aborted: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    finally:
        started.set()
        watch.closing = True
        await context.close()


async def warm_up(browser, urls: list[str], step_timeout: float) -> None:
    """Open Draw once on each replica directly (its first page pays for importing PyTorch)."""
    for url in urls:
        context = await browser.new_context()
        try:
            page = await context.new_page()
            await page.goto(f"{url}/draw", timeout=step_timeout * 1000)
            await page.locator(CANVAS).wait_for(timeout=step_timeout * 1000)
            await page.wait_for_function(IDLE_JS, timeout=step_timeout * 1000)
        finally:
            await context.close()


async def drive(url: str, args, sessions: list[Session], trainer: Session | None, meter: CpuMeter,
                warm_urls: list[str]) -> tuple[float, float]:
    """Run every session; returns the unix times of the first stroke's start and the last settling."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            await warm_up(browser, warm_urls, args.step_timeout)
            started, done = asyncio.Event(), asyncio.Event()
            train_task = None
            if trainer is not None:
                train_task = asyncio.create_task(training_session(browser, url, trainer, started, done, args.step_timeout))
                await started.wait()
            names = list(DIGITS)
            t_begin = time.time()
            meter.start()
            await asyncio.gather(*(drawing_session(browser, url, s, i, [names[(i + k) % len(names)] for k in range(args.digits)],
                                                   args.step_timeout) for i, s in enumerate(sessions)))
            meter.stop()
            done.set()
            if train_task is not None:
                await train_task
            return t_begin, time.time()
        finally:
            await browser.close()


# ---- the server side ----

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`bash scripts/serve.sh --replicas R` on a free port; stopped by `stop()` whatever happens."""

    def __init__(self, replicas: int, work: Path, data_dir: str | None, cpus: set[int] | None = None):
        self.run_dir = work / "serve"
        self.run_log = work / "runs.jsonl"
        env = dict(os.environ, AE_RUN_LOG=str(self.run_log), AE_USER_MODELS_DIR=str(work / "user_models"))
        if data_dir:
            env["AE_DATA_DIR"] = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.out = open(work / "serve.out", "w+")
        pin = ["taskset", "-c", ",".join(map(str, sorted(cpus)))] if cpus else []  # inherited by the whole tree
        self.proc = subprocess.Popen(pin + ["bash", "scripts/serve.sh", "--replicas", str(replicas), "--port", str(self.port),
                                            "--address", "127.0.0.1", "--run-dir", str(self.run_dir)],
                                     cwd=ROOT, env=env, stdout=self.out, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not (self.run_dir / "ready").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.out.seek(0)
                raise RuntimeError(f"serve.sh did not get ready:\n{self.out.read()[-3000:]}")
            time.sleep(0.3)

    def pids(self) -> list[int]:
        try:
            return [int(line.split()[2]) for line in (self.run_dir / "replicas.txt").read_text().splitlines() if line.strip()]
        except (OSError, ValueError, IndexError):
            return []

    def urls(self) -> list[str]:
        try:
            return [f"http://{line.split()[1]}" for line in (self.run_dir / "replicas.txt").read_text().splitlines() if line.strip()]
        except (OSError, IndexError):
            return []

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # serve.sh stops HAProxy and the replicas
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # anything left in its process group
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.out.close()


def process_trees(roots: list[int], exclude: tuple[int, ...] = ()) -> set[int]:
    """The processes `roots` and all their descendants (from /proc), without the `exclude` subtrees."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    todo, seen = list(roots), set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid in exclude:
            continue
        seen.add(pid)
        todo.extend(children.get(pid, []))
    return seen


def cpu_seconds(pids: set[int]) -> float:
    """User + system CPU seconds the live processes `pids` have used so far."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, ValueError, IndexError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def memory_of_trees(roots: list[int]) -> dict[int, tuple[int, int]]:
    """Bytes of resident memory (RSS) and of proportional memory (PSS) of each of the processes
    `roots` and all their descendants, from /proc. Summed RSS counts a library page every process
    maps (PyTorch's ~0.23 GB in the server and in the training worker) once per process; PSS splits
    it between them, so summed PSS is what the processes take from the machine together."""
    return {pid: (_proc_bytes(f"/proc/{pid}/status", "VmRSS:"), _proc_bytes(f"/proc/{pid}/smaps_rollup", "Pss:"))
            for pid in process_trees(roots)}


def process_label(pid: int) -> str:
    """A short name for a server process: the Python module or script it runs, else its program."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return "gone"
    if "-m" in args[:-1]:
        return args[args.index("-m") + 1]
    scripts = [Path(a).name for a in args[1:] if a.endswith(".py") or Path(a).name == "streamlit"]
    return scripts[0] if scripts else (Path(args[0]).name if args else "?")


def _proc_bytes(path: str, key: str) -> int:
    """The "key: N kB" line of a /proc file, in bytes (0 when the process has gone)."""
    try:
        with open(path) as f:
            return 1024 * next((int(line.split()[1]) for line in f if line.startswith(key)), 0)
    except (OSError, ValueError):
        return 0


class CpuMeter:
    """CPU seconds of the server's processes and of everything else this script started (the
    browser), between `start()` and `stop()`. Processes that exit meanwhile are not counted."""

    def __init__(self, server_pids, server_root: int | None):
        self.server_pids, self.server_root = server_pids, server_root
        self.server = self.client = None

    def _read(self) -> tuple[float, float]:
        server = cpu_seconds(process_trees(self.server_pids()))
        exclude = (self.server_root,) if self.server_root else ()
        client = cpu_seconds(process_trees([os.getpid()], exclude))
        return server, client

    def start(self) -> None:
        self._begin = self._read()

    def stop(self) -> None:
        end = self._read()
        self.server, self.client = end[0] - self._begin[0], end[1] - self._begin[1]


class RssSampler(threading.Thread):
    def __init__(self, pids, every: float = 0.5):
        super().__init__(daemon=True)
        self.pids, self.every, self.peak, self.idle, self.pss_peak = pids, every, 0, None, 0
        self.at_peak: dict[str, int] = {}  # RSS of each process at the summed peak, by label
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            each = memory_of_trees(self.pids())
            rss, pss = sum(r for r, _ in each.values()), sum(p for _, p in each.values())
            self.idle = rss if self.idle is None else self.idle
            if rss > self.peak:
                self.at_peak = {}
                for pid, (r, _) in each.items():
                    label = process_label(pid)
                    self.at_peak[label] = self.at_peak.get(label, 0) + r
            self.peak, self.pss_peak = max(self.peak, rss), max(self.pss_peak, pss)
            self.halt.wait(self.every)


def read_run_log(path: Path | None, since: float) -> list[dict] | None:
    if path is None or not path.exists():
        return None
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line still being written
            if isinstance(record, dict) and record.get("t", 0) >= since:
                records.append(record)
    return records


def server_time_per_stroke(records: list[dict], sessions: list[Session]) -> list[dict]:
    """For each stroke: the wall and CPU seconds of the server runs that started while it was pending.

    The run log knows server session ids, the browser does not. A run caused by a stroke starts
    after its mouse-up and before it settles, so each server session is paired with the browser
    session whose pending strokes and clears hold most of its runs' start times (best pairs first,
    each session used once)."""
    by_server: dict[str, list[dict]] = {}
    for r in records:
        by_server.setdefault(str(r.get("session", "-")), []).append(r)

    def containing(session: Session, t: float) -> int | None:
        for i, e in enumerate(session.events):
            if e.t_start - 0.05 <= t <= e.t_end + 0.05:
                return i
        return None

    scores = sorted(((sum(containing(b, float(r.get("t", 0))) is not None for r in runs), sid, i)
                     for sid, runs in by_server.items() for i, b in enumerate(sessions)), reverse=True)
    paired_server, paired_browser, totals = set(), set(), {}
    for score, sid, b in scores:
        if score == 0 or sid in paired_server or b in paired_browser:
            continue
        paired_server.add(sid)
        paired_browser.add(b)
        for r in by_server[sid]:
            i = containing(sessions[b], float(r.get("t", 0)))
            if i is not None:
                wall_cpu = totals.setdefault((b, i), [0.0, 0.0])
                wall_cpu[0] += float(r.get("wall_s", 0))
                wall_cpu[1] += float(r.get("cpu_s", 0))
    return [{"session": sessions[b].name, "first": sessions[b].events[i].first, "wall_s": w, "cpu_s": c}
            for (b, i), (w, c) in sorted(totals.items()) if sessions[b].events[i].kind == "stroke"]


# ---- the report ----

def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between the closest ranks; None for no values."""
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q / 100
    lo = int(k)
    return v[lo] + (v[min(lo + 1, len(v) - 1)] - v[lo]) * (k - lo)


def fmt(x: float | None, unit: str = "s", digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f} {unit}".strip()


def summarize(sessions: list[Session], trainer: Session | None, strokes_server: list[dict] | None,
              rss_peak: int | None, rss_idle: int | None, t_begin: float, t_end: float) -> dict:
    everyone = sessions + ([trainer] if trainer else [])
    failures = [f"{s.name}: {f}" for s in everyone for f in s.failures]
    loads = [s.load_s for s in everyone if s.load_s is not None]
    strokes = [e for s in sessions for e in s.events if e.kind == "stroke"]
    first = [e.seconds for e in strokes if e.first and e.seconds is not None]
    later = [e.seconds for e in strokes if not e.first and e.seconds is not None]
    settled = [e for e in strokes if e.seconds is not None]
    span = (max(e.t_end for e in settled) - min(e.t_start for e in strokes)) if settled else None
    server_wall = [r["wall_s"] for r in strokes_server or []]
    server_cpu = [r["cpu_s"] for r in strokes_server or []]
    return {
        "failures": failures,
        "browser_errors": [f"{s.name}: {e}" for s in everyone for e in s.browser_errors],
        "page_load_max_s": max(loads) if loads else None, "page_load_p95_s": percentile(loads, 95),
        "page_loads_missing": len(everyone) - len(loads),
        "settled_first_p50_s": percentile(first, 50), "settled_first_p95_s": percentile(first, 95),
        "settled_later_p50_s": percentile(later, 50), "settled_later_p95_s": percentile(later, 95),
        "settled_all_p95_s": percentile(first + later, 95),
        "server_run_p50_s": percentile(server_wall, 50) if strokes_server else None,
        "server_run_p95_s": percentile(server_wall, 95) if strokes_server else None,
        "server_cpu_per_stroke_p50_s": percentile(server_cpu, 50) if strokes_server else None,
        "server_cpu_per_stroke_mean_s": (sum(server_cpu) / len(server_cpu)) if server_cpu else None,
        "strokes_with_server_runs": len(strokes_server) if strokes_server is not None else None,
        "rss_peak_bytes": rss_peak, "rss_idle_bytes": rss_idle,
        "strokes": len(strokes), "strokes_settled": len(settled),
        "strokes_beside_the_canvas": sum(s.missed_strokes for s in sessions),
        "draws_per_s": (len(settled) / span) if span else None,
        "drawing_seconds": span, "wall_seconds": t_end - t_begin,
        "training": (f"{trainer.jobs} job(s) started; the last: {trainer.note}" if trainer.jobs > 1 else trainer.note)
                    if trainer else "skipped",
    }


def print_report(s: dict, setup: str) -> None:
    gb = lambda b: "n/a" if not b else f"{b / 1e9:.2f} GB"  # noqa: E731
    ok = lambda good: "" if good is None else ("ok" if good else "MISSED")  # noqa: E731
    le = lambda x, limit: None if x is None else x <= limit  # noqa: E731
    rows = [
        ("failures", str(len(s["failures"])), "0", ok(not s["failures"])),
        ("page load max / p95", f"{fmt(s['page_load_max_s'])} / {fmt(s['page_load_p95_s'])}"
         + (f" ({s['page_loads_missing']} never loaded)" if s["page_loads_missing"] else ""),
         "every load <= 8 s", ok(le(s["page_load_max_s"], 8) if not s["page_loads_missing"] else False)),
        ("mouse-up -> settled, first draw p50 / p95", f"{fmt(s['settled_first_p50_s'])} / {fmt(s['settled_first_p95_s'])}", "", ""),
        ("mouse-up -> settled, later draws p50 / p95", f"{fmt(s['settled_later_p50_s'])} / {fmt(s['settled_later_p95_s'])}",
         "p95 <= 2 s", ok(le(s["settled_later_p95_s"], 2))),
        ("mouse-up -> settled, all draws p95", fmt(s["settled_all_p95_s"]), "", ""),
        ("server run per draw p50 / p95", f"{fmt(s['server_run_p50_s'])} / {fmt(s['server_run_p95_s'])}",
         "p95 <= 1 s", ok(le(s["server_run_p95_s"], 1))),
        ("server CPU per stroke p50 / mean", f"{fmt(s['server_cpu_per_stroke_p50_s'], 's', 3)} / "
         f"{fmt(s['server_cpu_per_stroke_mean_s'], 's', 3)}", "<= 0.1 s (one session)", ""),
        ("server RSS peak (idle before)", f"{gb(s['rss_peak_bytes'])} ({gb(s['rss_idle_bytes'])})", "<= 1.5 GB",
         ok(None if not s["rss_peak_bytes"] else s["rss_peak_bytes"] <= 1.5e9)),
        ("server PSS peak (shared library pages once)", gb(s.get("pss_peak_bytes")), "", ""),
        ("server CPU, all processes, sessions' whole run", f"{fmt(s.get('server_cpu_s'))}"
         + (f" ({s['server_cpu_all_per_stroke_s']:.2f} s / stroke)" if s.get("server_cpu_all_per_stroke_s") else ""), "", ""),
        ("browser CPU, sessions' whole run", fmt(s.get("browser_cpu_s")), "", ""),
        ("draws per second", fmt(s["draws_per_s"], "/s"), "", ""),
        ("strokes settled / drawn", f"{s['strokes_settled']} / {s['strokes']}"
         + ("" if s["strokes_with_server_runs"] is None else f" ({s['strokes_with_server_runs']} matched in the run log)"), "", ""),
        ("strokes drawn beside the canvas (drawn again)", str(s.get("strokes_beside_the_canvas", 0)), "", ""),
        ("first stroke to last settled / sessions' whole run", f"{fmt(s['drawing_seconds'])} / {fmt(s['wall_seconds'])}", "", ""),
    ]
    print(f"\nLoad test: {setup}")
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    for name, value, target, verdict in rows:
        print(f"  {name:<{width}}  {value:<{vwidth}}  {target:<24} {verdict}")
    print(f"  training: {s['training'] or 'n/a'}")
    if s.get("rss_at_peak_bytes"):
        print("  RSS at the peak, by process: " + ", ".join(
            f"{label} {gb(b)}" for label, b in sorted(s["rss_at_peak_bytes"].items(), key=lambda kv: -kv[1])))
    if s.get("load_average_before") is not None:
        print(f"  machine load average (1 min): {s['load_average_before']:.1f} before, {s['load_average_after']:.1f} after "
              f"on {os.cpu_count()} cores (the browsers share them with the server)")
    for f in s["failures"][:20]:
        print(f"  failure: {f}")
    if len(s["failures"]) > 20:
        print(f"  ... and {len(s['failures']) - 20} more failures")
    if s["browser_errors"]:
        print(f"  ({len(s['browser_errors'])} uncaught browser script errors, not counted as failures; first: "
              f"{s['browser_errors'][0]})")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = p.add_mutually_exclusive_group()
    where.add_argument("--url", help="measure this running server instead of starting one")
    where.add_argument("--replicas", type=int, default=1, help="replicas behind HAProxy for the server it starts (default 1)")
    p.add_argument("--sessions", type=int, default=8, help="drawing sessions (default 8)")
    p.add_argument("--digits", type=int, default=3, help="digits each session draws (default 3)")
    p.add_argument("--no-train", action="store_true", help="no training session")
    p.add_argument("--warm", action="store_true", help="open Draw once on each replica before the sessions start "
                   "(else the first sessions wait for a fresh server to import PyTorch)")
    p.add_argument("--data-dir", help="AE_DATA_DIR for the server it starts (e.g. /work/shared/data: full MNIST)")
    p.add_argument("--run-log", help="with --url: that server's AE_RUN_LOG file")
    p.add_argument("--server-pid", type=int, action="append", default=[], help="with --url: a Streamlit process to sample RSS from (repeatable)")
    p.add_argument("--server-cpus", help="pin the server it starts (HAProxy, replicas, training workers) to these "
                   "CPUs, e.g. 0, and the browsers to the others: as in a classroom, where every browser runs on "
                   "its own machine, the browsers then do not take the server's cores")
    p.add_argument("--step-timeout", type=float, default=90, help="longest wait for one page load, stroke or clear (s)")
    p.add_argument("--timeout", type=float, default=900, help="the whole run, server start included (s)")
    p.add_argument("--json", help="also write the figures and every measurement to this file")
    p.add_argument("--screenshots", help="save the page here when one of its waits fails")
    p.add_argument("--logs", help="keep the server's logs, run log and user models folder here")
    args = p.parse_args(argv)
    global SCREENSHOTS
    SCREENSHOTS = Path(args.screenshots) if args.screenshots else None
    if args.sessions < 1 or args.digits < 1 or (args.url is None and not 1 <= args.replicas <= 16):
        p.error("--sessions and --digits must be at least 1, --replicas 1 to 16")
    if not os.path.exists(CHROMIUM):
        print(f"error: {CHROMIUM} is absent (apt-get install chromium)", file=sys.stderr)
        return 2
    server_cpus = browser_cpus = None
    if args.server_cpus:
        if args.url:
            p.error("--server-cpus pins a server this script starts, not one given by --url")
        try:
            server_cpus = {int(c) for c in args.server_cpus.split(",")}
        except ValueError:
            p.error("--server-cpus takes CPU numbers separated by commas, e.g. 0 or 0,1")
        usable = os.sched_getaffinity(0)
        browser_cpus = usable - server_cpus
        if not server_cpus <= usable or not browser_cpus:
            p.error(f"--server-cpus must name some but not all of this process's CPUs {sorted(usable)}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the finally below stops the server

    sessions = [Session(f"draw{i + 1}") for i in range(args.sessions)]
    trainer = None if args.no_train else Session("train")
    data = args.data_dir or os.environ.get("AE_DATA_DIR") or "the bundled sample"
    server, sampler = None, None
    work = tempfile.TemporaryDirectory(prefix="ae-load-")  # removed at the end, unless --logs
    work_dir = Path(args.logs) if args.logs else Path(work.name)
    work_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + args.timeout
    t_begin = t_end = time.time()
    try:
        if args.url:
            url, run_log, pids = args.url.rstrip("/"), Path(args.run_log) if args.run_log else None, lambda: args.server_pid
            setup = f"{url}"
        else:
            server = Server(args.replicas, work_dir, args.data_dir, server_cpus)
            if browser_cpus:  # this process, Playwright's driver and Chromium (all started below) inherit it
                os.sched_setaffinity(0, browser_cpus)
            server.wait_ready(max(10.0, deadline - time.monotonic()))
            url, run_log, pids = server.url, server.run_log, server.pids
            setup = f"{args.replicas} replica{'s' * (args.replicas > 1)} behind HAProxy (scripts/serve.sh)"
            if server_cpus:
                setup += f", server on CPU {args.server_cpus}, browsers on CPU {','.join(map(str, sorted(browser_cpus)))}"
        setup += (f", {args.sessions} drawing sessions x {args.digits} digits, "
                  f"{'no training' if args.no_train else '1 training session'}, server data: {data}")
        warm_urls = ([url] if args.url else server.urls()) if args.warm else []
        setup += ", replicas warmed up first" if args.warm else ", cold server"
        meter = CpuMeter(pids, server.proc.pid if server else None)
        load_before = os.getloadavg()[0]
        if pids():
            sampler = RssSampler(pids)
            sampler.start()
        t_launch = t_begin = time.time()
        try:
            t_begin, t_end = asyncio.run(asyncio.wait_for(drive(url, args, sessions, trainer, meter, warm_urls),
                                                          max(1.0, deadline - time.monotonic())))
        except (asyncio.TimeoutError, TimeoutError):
            t_end = time.time()
            sessions[0].failures.append(f"global timeout: the run passed --timeout {args.timeout:.0f} s")
        time.sleep(0.5)  # the last runs' lines
        records = read_run_log(run_log, t_launch - 1)
        strokes_server = server_time_per_stroke(records, sessions) if records is not None else None
        if sampler:
            sampler.halt.set()
            sampler.join()
        summary = summarize(sessions, trainer, strokes_server, sampler.peak if sampler else None,
                            sampler.idle if sampler else None, t_begin, t_end)
        summary.update(server_cpu_s=meter.server if pids() else None, browser_cpu_s=meter.client,
                       pss_peak_bytes=sampler.pss_peak if sampler else None,
                       rss_at_peak_bytes=sampler.at_peak if sampler else None,
                       load_average_before=load_before, load_average_after=os.getloadavg()[0])
        if summary["server_cpu_s"] is not None and summary["strokes_settled"]:
            summary["server_cpu_all_per_stroke_s"] = summary["server_cpu_s"] / summary["strokes_settled"]
        print_report(summary, setup)
        if args.json:
            Path(args.json).write_text(json.dumps({
                "setup": setup, "summary": summary, "sessions": [asdict(s) for s in sessions],
                "trainer": asdict(trainer) if trainer else None, "server_per_stroke": strokes_server,
                "run_log": records}, indent=1))
            print(f"  figures written to {args.json}")
        return 1 if summary["failures"] else 0
    finally:
        if sampler:
            sampler.halt.set()
        if server:
            server.stop()
        work.cleanup()


if __name__ == "__main__":
    sys.exit(main())
