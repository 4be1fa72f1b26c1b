"""What one stroke on the Draw page costs the server, measured in a real browser.

Starts `streamlit run app.py` on a free port (its own empty user models folder, AE_RUN_LOG set),
drives one headless Chromium session (Playwright, /usr/bin/chromium) that draws N digits stroke
by stroke on the Draw page, and prints per-stroke figures:

- server run: the script/fragment runs the stroke caused, from the run log (ae/run_log.py):
  wall time and the CPU time of the thread that ran them;
- server process CPU: all CPU the server process used from mouse-down until the stroke's runs
  ended and the page settled (receiving the drawing, torch's worker threads, serving the pictures
  the page asks for), from /proc;
- browser main thread: the page's task time over the same span (Chromium's Performance.getMetrics
  TaskDuration, and ScriptDuration for its JavaScript), what redrawing the page costs the browser.

    python scripts/profile_draw.py --digits 6
    python scripts/profile_draw.py --cprofile      # in-process profile of one digit's Draw data
    python scripts/profile_draw.py --app-dir ../before   # the app of another checkout, same browser steps
    python scripts/profile_draw.py --cold          # a fresh server's Home: first text, then the title
    python scripts/profile_draw.py --js-profile 25 # where the browser's JavaScript time goes, per stroke

The browser shares the machine's cores with the server, so judge the server by its CPU figures.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
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
CANVAS = "[data-testid='stBidiComponentIsolated'] canvas.upper-canvas"
SETTLE_S = 0.6  # a stroke's runs are over when the log has been quiet this long after one

# Digits as strokes, each a polyline in fractions of the canvas (x right, y down).
DIGIT_STROKES = [
    [[(0.50, 0.18), (0.52, 0.82)]],  # 1
    [[(0.30, 0.22), (0.70, 0.22)], [(0.70, 0.22), (0.42, 0.82)]],  # 7
    [[(0.38, 0.18), (0.30, 0.56), (0.72, 0.56)], [(0.62, 0.20), (0.60, 0.84)]],  # 4
    [[(0.30, 0.32), (0.45, 0.18), (0.65, 0.22), (0.66, 0.40), (0.30, 0.80), (0.72, 0.80)]],  # 2
    [[(0.50, 0.18), (0.32, 0.35), (0.30, 0.62), (0.50, 0.82), (0.68, 0.62), (0.68, 0.35), (0.50, 0.18)]],  # 0
    [[(0.32, 0.22), (0.66, 0.26), (0.48, 0.48)], [(0.48, 0.48), (0.70, 0.64), (0.52, 0.82), (0.30, 0.76)]],  # 3
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads (from /proc, 10 ms ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def read_log(path: Path) -> list[dict]:
    from ae.run_log import read_log as read

    return read(str(path)) if path.exists() else []


def wait_for_runs(log: Path, seen: int, timeout: float = 60.0) -> list[dict]:
    """The new log lines once at least one arrived and the log has been quiet for SETTLE_S."""
    deadline = time.monotonic() + timeout
    last_change, count = None, seen
    while time.monotonic() < deadline:
        n = len(read_log(log))
        if n != count:
            count, last_change = n, time.monotonic()
        elif last_change is not None and time.monotonic() - last_change >= SETTLE_S:
            break
        time.sleep(0.05)
    return read_log(log)[seen:]


def draw_polyline(page, box, points, steps: int = 12) -> None:
    def at(x, y):
        return box["x"] + x * box["width"], box["y"] + y * box["height"]

    page.mouse.move(*at(*points[0]))
    page.mouse.down()
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        for i in range(1, steps + 1):
            page.mouse.move(*at(x0 + (x1 - x0) * i / steps, y0 + (y1 - y0) * i / steps))
    page.mouse.up()


def start_server(port: int, env: dict, log_file, app_dir: Path = ROOT) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false"],
        cwd=app_dir, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok":
                return proc
        except OSError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.3)
    proc.kill()
    log_file.seek(0)
    raise SystemExit(f"streamlit did not start:\n{log_file.read()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def summary(name: str, values: list[float], unit: str = "s") -> str:
    if not values:
        return f"{name:<34} (none)"
    scale, fmt = (1000, "{:7.0f} ms") if unit == "ms" else (1, "{:7.3f} s")
    return (f"{name:<34} p50 {fmt.format(pct(values, 0.5) * scale)}  p95 {fmt.format(pct(values, 0.95) * scale)}"
            f"  mean {fmt.format(statistics.fmean(values) * scale)}  (n={len(values)})")


def browser_profile(n_digits: int, keep_log: Path | None, app_dir: Path = ROOT, js_top: int = 0) -> None:
    with tempfile.TemporaryDirectory(prefix="profile_draw_") as work:
        strokes, clears, errors, js = _drive(n_digits, Path(work), keep_log, app_dir, js_top > 0)
    report(strokes, clears, errors)
    if js:
        report_js(js, len(strokes) - 1, js_top)
    if keep_log:
        print(f"run log: {keep_log}")


def _drive(n_digits: int, work: Path, keep_log: Path | None, app_dir: Path, js_profile: bool = False):
    """Serve the app, draw the digits; the strokes' and clears' runs, the server's tracebacks and,
    with js_profile, V8's CPU profile of every stroke after the first (and the clears between)."""
    from playwright.sync_api import expect, sync_playwright

    run_log = keep_log or work / "runs.jsonl"
    run_log.unlink(missing_ok=True)
    (work / "user_models").mkdir()
    (work / "no_data").mkdir()
    env = dict(os.environ, AE_RUN_LOG=str(run_log), AE_USER_MODELS_DIR=str(work / "user_models"),
               AE_DATA_DIR=str(work / "no_data"))
    port = free_port()
    with open(work / "streamlit.log", "w+") as server_log:
        proc = start_server(port, env, server_log, app_dir)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                try:
                    page = browser.new_context(viewport={"width": 1400, "height": 2000}).new_page()
                    cdp = page.context.new_cdp_session(page)
                    cdp.send("Performance.enable")

                    def main_thread_s() -> tuple[float, float]:
                        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
                        return metrics["TaskDuration"], metrics["ScriptDuration"]

                    loaded = time.monotonic()
                    page.goto(f"http://127.0.0.1:{port}/draw")
                    canvas = page.locator(CANVAS)
                    canvas.wait_for(timeout=60_000)
                    expect(page.get_by_text("Draw a digit on the black square")).to_be_visible(timeout=60_000)
                    load_runs = wait_for_runs(run_log, 0)
                    print(f"page load: {time.monotonic() - loaded:.1f} s to the hint; "
                          f"{len(load_runs)} run(s), server CPU {sum(r['cpu_s'] for r in load_runs):.2f} s; "
                          f"server RSS {rss_mb(proc.pid):.0f} MB")
                    box = canvas.bounding_box()
                    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
                    time.sleep(0.4)  # hovering moves the canvas toolbar out of the way
                    strokes, clears, js = [], [], None
                    for d in range(n_digits):
                        # Past the six shapes, shift them a little: the same drawing again would be
                        # a cache hit, not a new digit.
                        shift = 0.03 * (d // len(DIGIT_STROKES))
                        for points in DIGIT_STROKES[d % len(DIGIT_STROKES)]:
                            if js_profile and len(strokes) == 1:  # the first stroke loads code: left out
                                cdp.send("Profiler.enable")
                                cdp.send("Profiler.start")
                            seen, cpu0, tasks0 = len(read_log(run_log)), process_cpu_s(proc.pid), main_thread_s()
                            draw_polyline(page, box, [(x + shift, y + shift / 2) for x, y in points])
                            runs = wait_for_runs(run_log, seen)
                            tasks = [b - a for a, b in zip(tasks0, main_thread_s())]
                            strokes.append({"runs": runs, "process_cpu_s": process_cpu_s(proc.pid) - cpu0,
                                            "browser_task_s": tasks[0], "browser_script_s": tasks[1]})
                        expect(page.get_by_text("reconstruction", exact=True)).to_have_count(2, timeout=30_000)
                        seen, cpu0 = len(read_log(run_log)), process_cpu_s(proc.pid)
                        page.get_by_role("button", name="Clear the canvas").click()
                        runs = wait_for_runs(run_log, seen)
                        clears.append({"runs": runs, "process_cpu_s": process_cpu_s(proc.pid) - cpu0})
                        # A cleared canvas is a new component: wait for it, then hover it again.
                        expect(page.get_by_text("Draw a digit on the black square")).to_be_visible(timeout=30_000)
                        canvas.wait_for(timeout=30_000)
                        time.sleep(0.5)
                        box = canvas.bounding_box()
                        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
                        time.sleep(0.4)
                    if js_profile and len(strokes) > 1:
                        js = cdp.send("Profiler.stop")["profile"]
                    print(f"server RSS after the strokes: {rss_mb(proc.pid):.0f} MB")
                    if page.locator("[data-testid='stException']").count():
                        print("the page shows an exception:", page.locator("[data-testid='stException']").first.inner_text())
                finally:
                    browser.close()
        finally:
            stop(proc)
        errors = [line for line in (work / "streamlit.log").read_text().splitlines() if "Traceback" in line]
    return strokes, clears, errors, js


def report_js(profile: dict, n_strokes: int, top: int) -> None:
    """V8's samples as self time per function and per script file, in ms per stroke."""
    from collections import Counter

    nodes = {n["id"]: n["callFrame"] for n in profile["nodes"]}
    # Each sample is charged the time until the next one (timeDeltas[i + 1]).
    deltas = profile["timeDeltas"][1:] + [0]
    by_function, by_file = Counter(), Counter()
    for node_id, us in zip(profile["samples"], deltas):
        frame = nodes[node_id]
        where = frame["url"].rsplit("/", 1)[-1] or "(no script)"
        by_function[f"{frame['functionName'] or '(anonymous)'} {where}:{frame['lineNumber'] + 1}"] += us
        by_file[where] += us
    per = 1000 * max(n_strokes, 1)
    print(f"\nJavaScript self time over {n_strokes} strokes (and the clears between), ms per stroke:")
    for name, us in by_file.most_common(8):
        print(f"  {us / per:7.1f}  {name}")
    print("by function:")
    for name, us in by_function.most_common(top):
        print(f"  {us / per:7.1f}  {name[:110]}")


def cold_home(app_dir: Path) -> None:
    """A fresh server's first page: when the first text shows, and when the Home title does."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="profile_draw_") as work:
        (Path(work) / "user_models").mkdir()
        env = dict(os.environ, AE_USER_MODELS_DIR=str(Path(work) / "user_models"))
        port = free_port()
        with open(Path(work) / "streamlit.log", "w+") as server_log:
            proc = start_server(port, env, server_log, app_dir)
            try:
                with sync_playwright() as p:
                    browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                    try:
                        page = browser.new_page()
                        started = time.monotonic()
                        page.goto(f"http://127.0.0.1:{port}/")
                        first = title = None
                        while title is None and time.monotonic() - started < 120:
                            text = page.evaluate("document.querySelector(\"[data-testid='stMain']\")?.innerText ?? ''")
                            if first is None and text.strip():
                                first = time.monotonic() - started, text.strip().splitlines()[-1][:60]
                            if "Digits in a few bytes" in text:
                                title = time.monotonic() - started
                            time.sleep(0.05)
                    finally:
                        browser.close()
            finally:
                stop(proc)
    print(f"cold Home: first text after {first[0]:.2f} s ({first[1]!r}); the title after {title:.2f} s")


def report(strokes: list[dict], clears: list[dict], errors: list[str]) -> None:
    def per(items, key):
        return [sum(r[key] for r in it["runs"]) for it in items]

    kinds = sorted({r["what"] for it in strokes for r in it["runs"]})
    print(f"\n{len(strokes)} strokes ({', '.join(kinds)} runs; "
          f"{statistics.fmean(len(it['runs']) for it in strokes):.1f} run(s) per stroke)")
    print(summary("stroke: server run wall", per(strokes, "wall_s"), "ms"))
    print(summary("stroke: server run thread CPU", per(strokes, "cpu_s"), "ms"))
    print(summary("stroke: server process CPU", [it["process_cpu_s"] for it in strokes], "ms"))
    rest = strokes[1:]
    print(summary("  the same after the first stroke", [it["process_cpu_s"] for it in rest], "ms"))
    print(summary("stroke: browser main-thread tasks", [it["browser_task_s"] for it in rest], "ms")
          + " (after the first stroke)")
    print(summary("  of which JavaScript", [it["browser_script_s"] for it in rest], "ms"))
    print(summary("clear: server run thread CPU", per(clears, "cpu_s"), "ms"))
    if errors:
        print(f"{len(errors)} traceback(s) in the server log")


def cprofile_one_digit(top: int) -> None:
    """Profile the Draw page's computing for one digit in this process (no Streamlit)."""
    import cProfile
    import pstats

    import torch

    from ae.analysis import draw_view_data
    from ae.registry import codec_status, list_models, shipped_entry
    from ae.sample import load_sample
    from ae.weights import load_model

    torch.set_num_threads(1)  # as the app serves (app.py)
    models = {e.arch: load_model(e.path) for e in list_models() if e.shipped}
    entry = shipped_entry("classifier")
    classifier = load_model(entry.path) if entry else None
    status = codec_status()
    digits = load_sample().images[:, 0].numpy()
    draw_view_data(digits[0], models, classifier, status)  # warm: coders, first-call costs
    started = time.perf_counter()
    profiler = cProfile.Profile()
    profiler.enable()
    for digit in digits[1:11]:
        draw_view_data(digit, models, classifier, status)
    profiler.disable()
    print(f"draw_view_data: {(time.perf_counter() - started) / 10 * 1000:.1f} ms per digit "
          f"(10 test digits, under the profiler)\n")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(top)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--digits", type=int, default=6, help="digits to draw (each 1-2 strokes)")
    parser.add_argument("--log", type=Path, help="keep the run log here")
    parser.add_argument("--app-dir", type=Path, default=ROOT,
                        help="serve the app of another checkout (e.g. a git worktree of an older commit)")
    parser.add_argument("--cprofile", action="store_true", help="profile one digit's computing in-process instead")
    parser.add_argument("--cold", action="store_true", help="time a fresh server's Home page instead")
    parser.add_argument("--top", type=int, default=30, help="functions to list with --cprofile")
    parser.add_argument("--js-profile", type=int, default=0, metavar="N",
                        help="also record V8's CPU profile of the strokes and list the top N functions")
    args = parser.parse_args(argv)
    if args.cprofile:
        cprofile_one_digit(args.top)
    elif args.cold:
        cold_home(args.app_dir.resolve())
    else:
        browser_profile(args.digits, args.log, args.app_dir.resolve(), args.js_profile)


if __name__ == "__main__":
    main()
