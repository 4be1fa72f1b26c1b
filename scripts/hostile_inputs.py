"""Hostile inputs: what each costs (wall time, peak memory over idle) and how it ends.

    python scripts/hostile_inputs.py [--data-dir /work/shared/data] [--only SUBSTRING]

Every case runs in a fresh subprocess that first warms up (imports, loads every operating
point, decodes a small payload at each, preprocesses a small image), then resets the kernel's
peak-RSS counter (/proc/self/clear_refs), and measures the one call: its outcome (the error's
type and message, or what it returned), wall seconds and VmHWM - VmRSS before the call. Each
child runs under an address-space limit (RLIMIT_AS: its warmed-up size + 3 GiB) and a timeout,
so a case that tries to allocate tens of GB fails in the child instead of taking the machine.

Inputs are built once in the parent, in a temporary folder: crafted containers with valid
CRCs (the model fingerprint is public), genuine containers of MNIST test digits (the bundled
sample repeated when the dataset is absent), odd uploads and a user models folder with broken
entries. Targets are printed beside the figures; they are issue 9's, not asserted anywhere.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _page_constant(name: str) -> int:
    """A limit of the Send & receive page, read from its source (importing it would run the page)."""
    import ast
    tree = ast.parse((ROOT / "app_pages" / "send_receive.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise SystemExit(f"app_pages/send_receive.py has no {name}")


APP_MAX_BYTES = _page_constant("MAX_PAYLOAD_BYTES")
APP_MAX_DIGITS = _page_constant("MAX_RECEIVE_DIGITS")
HEADROOM = 3 << 30  # address space a case may add to its warmed-up process
CASE_TIMEOUT_S = 300
TARGETS = {"app": "< 0.5 s, < 100 MB", "upload": "< 0.5 s, < 150 MB",
           "cli": "bounded per digit by the payload's length", "models": "a message, no traceback; bounded"}


# ------------------------------------------------------------------------------------------------
# Building the inputs (parent)
# ------------------------------------------------------------------------------------------------

def crafted_container(coder, count: int, body: bytes) -> bytes:
    from ae.codec import frame
    return frame(coder, body, count, container=True)


def crafted_single(coder, body: bytes) -> bytes:
    from ae.codec import frame
    return frame(coder, body, 1, container=False)


def shortest_body(coder, count: int) -> int:
    """The fewest body bytes the codec's length bound accepts for `count` digits."""
    n = max(0, int(count * coder.min_bits_per_digit - 200) // 8)
    while coder.max_digits_in(n) < count:
        n += 1
    return n


def mnist_test_images(data_dir: str | None):
    from ae.data import dataset_available, load_digits
    from ae.sample import load_sample
    if data_dir and dataset_available(data_dir):
        return load_digits("test", data_dir).images, f"MNIST test set ({data_dir})"
    return load_sample().images, "the bundled 1,000-digit sample (no MNIST here)"


def genuine_container(coder, symbols, count: int) -> bytes:
    import numpy as np
    from ae.codec import compress_symbols
    reps = -(-count // len(symbols))
    return compress_symbols(np.concatenate([symbols] * reps)[:count], coder, container=True)


def build_inputs(work: Path, data_dir: str | None) -> tuple[list[dict], str]:
    """-> the cases (JSON-able dicts: name, group, kind, file, args) and where the digits came from."""
    import numpy as np
    from PIL import Image

    from ae.codec import MAX_CONTAINER_DIGITS, get_coder, parse_header
    from ae.registry import operating_points

    rng = np.random.default_rng(0)

    def noise(n: int) -> bytes:
        return rng.integers(0, 256, n, dtype=np.uint8).tobytes()
    images, source = mnist_test_images(data_dir)
    cases = []

    def add(name, group, kind, data=None, point=None, **args):
        path = None
        if data is not None:
            path = work / f"{name}.bin"
            path.write_bytes(data)
        cases.append({"name": name, "group": group, "kind": kind, "file": str(path) if path else None,
                      "bytes": len(data) if data is not None else None, "point": point, "args": args})

    for point in operating_points():
        first = len(cases)
        coder = get_coder(point)
        symbols = coder.symbols(images[:10_000])
        tiny = crafted_container(coder, 1 << 20, bytes(4))
        add(f"{point.name}: 12-byte container claiming 2^20 digits (app)", "app", "app", tiny)
        add(f"{point.name}: 12-byte container claiming 2^20 digits (decompress, max_digits=2^20)", "app", "lib",
            tiny, max_digits=MAX_CONTAINER_DIGITS)
        body = noise(APP_MAX_BYTES - 12)
        add(f"{point.name}: {APP_MAX_DIGITS} digits + random 1 MB body, valid CRC (app)", "app", "app",
            crafted_container(coder, APP_MAX_DIGITS, body))
        fewest = shortest_body(coder, APP_MAX_DIGITS)
        add(f"{point.name}: {APP_MAX_DIGITS} digits + random {fewest:,}-byte body (shortest accepted), valid CRC "
            f"(app)", "app", "app", crafted_container(coder, APP_MAX_DIGITS, noise(fewest)))
        add(f"{point.name}: {APP_MAX_DIGITS} digits + 1 MB of zero bytes, valid CRC (app)", "app", "app",
            crafted_container(coder, APP_MAX_DIGITS, bytes(APP_MAX_BYTES - 12)))
        genuine = genuine_container(coder, symbols, APP_MAX_DIGITS)
        tail = bytes(APP_MAX_BYTES - len(genuine))
        add(f"{point.name}: a genuine {APP_MAX_DIGITS}-digit body + zeros up to 1 MB, valid CRC (app)", "app",
            "app", crafted_container(coder, APP_MAX_DIGITS, genuine[parse_header(genuine)[3]:] + tail))
        add(f"{point.name}: single-digit header + random 1 MB body, valid CRC-12 (app)", "app", "app",
            crafted_single(coder, body))
        add(f"{point.name}: genuine container of {APP_MAX_DIGITS} digits (the most the app accepts) (app)", "app",
            "app", genuine)
        add(f"{point.name}: genuine container of {APP_MAX_DIGITS + 1} digits (app)", "app", "app",
            genuine_container(coder, symbols, APP_MAX_DIGITS + 1))
        if point.name in ("rd-q1", "rd-q4"):
            add(f"{point.name}: genuine 20,000 digits, CLI decompress to a folder of PNGs", "cli", "cli-decompress",
                genuine_container(coder, symbols, 20_000))
            shortest = shortest_body(coder, 100_000)
            add(f"{point.name}: 100,000 digits + random {shortest:,}-byte body (shortest accepted), CLI decompress",
                "cli", "cli-decompress", crafted_container(coder, 100_000, noise(shortest)))
            add(f"{point.name}: 100,000 digits + {shortest:,} zero bytes (shortest accepted), CLI decompress",
                "cli", "cli-decompress", crafted_container(coder, 100_000, bytes(shortest)))
        if point.name == "rd-q1":
            huge = genuine_container(coder, symbols, 209_000)
            add(f"rd-q1: genuine 209,000 digits ({len(huge):,} B), CLI decompress, default --max-digits", "cli",
                "cli-decompress", huge)
            add("rd-q1: genuine 209,000 digits, streamed (open_payload(max_digits=250,000).chunks(), no PNGs)",
                "cli", "stream", huge, max_digits=250_000)
            add("rd-q1: genuine 209,000 digits, decompress(max_digits=250,000) (whole result in memory)",
                "cli", "lib", huge, max_digits=250_000)
        for case in cases[first:]:
            case["point"] = point.name  # the child warms this point up
    add("compress --test-indices 0-2000000000", "cli", "cli-compress-indices", indices="0-2000000000")

    # Uploads through ae.preprocess.image_file_to_digit.
    add("upload: 'BLP1' + 60 junk bytes", "upload", "upload", b"BLP1" + bytes(range(60)))
    blp = io.BytesIO()
    Image.fromarray((images[3, 0].numpy() * 255).astype("uint8")).convert("P").save(blp, format="BLP")
    add("upload: a real BLP2 file written by Pillow (a digit)", "upload", "upload", blp.getvalue())
    digit = Image.fromarray((images[0, 0].numpy() * 255).astype("uint8")).resize((400, 400))
    for side, why in [((6400, 6250), "mostly-black PNG"),
                      ((4096, 3072), "mostly-black PNG (the most pixels ae.preprocess accepts for PNG today)")]:
        big = Image.new("L", side, 0)
        big.paste(digit, (side[0] // 2 - 200, side[1] // 2 - 200))
        png = io.BytesIO()
        big.save(png, format="PNG", optimize=True)
        add(f"upload: {side[0]}x{side[1]} {why} ({len(png.getvalue()) // 1024} KB)", "upload", "upload",
            png.getvalue())

    # A user models folder with broken entries.
    models = work / "user_models"
    models.mkdir()
    (models / "x.safetensors").symlink_to(models / "nowhere.safetensors")
    from safetensors.numpy import save_file
    cards = {"deep": '{"config": ' + "[" * 100_000 + "]" * 100_000 + "}",
             "latent-minus-5": json.dumps({"config": {"arch": "ff", "latent_dim": -5, "hidden": 64}}),
             "config-ff": json.dumps({"config": "ff"}),
             "hidden-3000000": json.dumps({"config": {"arch": "ff", "latent_dim": 8, "hidden": 3_000_000}})}
    for name, text in cards.items():
        save_file({"w": np.zeros(4, dtype=np.float32)}, str(models / f"{name}.safetensors"))
        (models / f"{name}.json").write_text(text)
    add("models: list_models() over the broken folder", "models", "list-models", models_dir=str(models))
    for name in ["x", *cards]:
        add(f"models: load_model({name}.safetensors)", "models", "load-model", models_dir=str(models),
            path=str(models / f"{name}.safetensors"))
    return cases, source


# ------------------------------------------------------------------------------------------------
# Measuring one case (child)
# ------------------------------------------------------------------------------------------------

def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def warm_up(point: str | None) -> None:
    """What a running server has done before: imports, and the case's operating point loaded and
    used on 64 digits (not more, so that memory the allocator keeps from the warm-up does not
    hide what the case itself needs)."""
    import torch

    from ae.codec import compress, decompress, get_coder
    from ae.preprocess import image_file_to_digit
    from ae.sample import load_sample
    from PIL import Image

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    x = load_sample().images[:64]
    if point:
        decompress(compress(x, get_coder(point)))
    png = io.BytesIO()
    Image.fromarray((x[0, 0].numpy() * 255).astype("uint8")).save(png, format="PNG")
    try:
        image_file_to_digit(io.BytesIO(png.getvalue()))
    except Exception:
        pass


CLOCK: dict = {}


def _go() -> None:
    CLOCK.clear()
    CLOCK["start"] = time.perf_counter()


def _stop(outcome):
    CLOCK.setdefault("end", time.perf_counter())
    return outcome


def run_case(case: dict) -> str:
    """The call being measured, timed by _go/_stop; returns what it did (exceptions escape)."""
    kind, args = case["kind"], case["args"]
    data = Path(case["file"]).read_bytes() if case["file"] else None
    if kind == "app":  # what Send & receive does with pasted hex
        from ae.codec import receive
        text = data.hex(" ")
        _go()
        received = receive(bytes.fromhex(text.replace(":", " ")), max_digits=APP_MAX_DIGITS)
        return _stop(f"decoded {len(received.decoded):,} digits")
    if kind == "lib":
        from ae.codec import decompress
        _go()
        return _stop(f"decoded {len(decompress(data, max_digits=args['max_digits']).pixels):,} digits")
    if kind == "stream":
        from ae.codec import open_payload
        _go()
        n = sum(len(part.pixels) for part in open_payload(data, max_digits=args["max_digits"]).chunks())
        return _stop(f"decoded {n:,} digits")
    if kind in ("cli-decompress", "cli-compress-indices"):
        import contextlib

        from ae.cli import main
        with tempfile.TemporaryDirectory(dir=Path(case["file"]).parent if case["file"] else None) as out:
            err = io.StringIO()
            _go()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                if kind == "cli-decompress":
                    rc = main(["decompress", case["file"], "-o", str(Path(out) / "digits")])
                else:
                    rc = main(["compress", "--test-indices", args["indices"], "-o", str(Path(out) / "x.aez")])
            _stop(None)
            left = sorted(p.name for p in Path(out).iterdir())
            files = len(list((Path(out) / "digits").iterdir())) if (Path(out) / "digits").is_dir() else 0
        message = err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else ""
        outcome = f"exit {rc}: {message}" if rc else f"exit 0: decoded {files:,} digits into PNGs"
        return outcome + ("" if rc == 0 or not left else f" (LEFT BEHIND: {left})")
    if kind == "upload":
        from ae.preprocess import image_file_to_digit
        _go()
        digit = image_file_to_digit(io.BytesIO(data))
        return _stop(f"accepted: a {tuple(digit.shape)} digit")
    if kind in ("list-models", "load-model"):
        os.environ["AE_USER_MODELS_DIR"] = args["models_dir"]
        if kind == "list-models":
            from ae.registry import list_models
            _go()
            entries = list_models()
            return _stop(f"listed {len(entries)} models: {[e.name for e in entries]}")
        from ae.weights import load_model
        _go()
        model = load_model(args["path"])
        return _stop(f"loaded a {type(model).__name__}")
    raise ValueError(kind)


def child(case_json: str) -> None:
    case = json.loads(case_json)
    warm_up(case["point"])
    limit = _status_kb("VmSize") * 1024 + HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import gc
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    idle_kb = _status_kb("VmRSS")
    try:
        outcome = run_case(case)
    except BaseException as exc:  # measuring, not judging: report whatever escapes
        _stop(None)
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        outcome = f"{type(exc).__module__}.{type(exc).__name__}: {first}"
    seconds = CLOCK["end"] - CLOCK.get("start", CLOCK["end"])
    peak_kb = _status_kb("VmHWM")
    print(json.dumps({"outcome": outcome, "seconds": seconds, "peak_mb": (peak_kb - idle_kb) / 1024,
                      "idle_mb": idle_kb / 1024}))


def measure(case: dict) -> dict:
    run = subprocess.run([sys.executable, __file__, "--child", json.dumps(case)], capture_output=True, text=True,
                         timeout=CASE_TIMEOUT_S, env=os.environ | {"OMP_WAIT_POLICY": "PASSIVE"})
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    if run.returncode or not lines:
        tail = (run.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"outcome": f"child died (exit {run.returncode}): {tail}", "seconds": float("nan"),
                "peak_mb": float("nan"), "idle_mb": float("nan")}
    return json.loads(lines[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("AE_DATA_DIR", "/work/shared/data"),
                        help="MNIST root for genuine digits in bulk (the bundled sample when absent)")
    parser.add_argument("--only", help="run only the cases whose name contains this")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return 0
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        cases, source = build_inputs(Path(tmp), args.data_dir)
        if args.only:
            cases = [c for c in cases if args.only in c["name"]]
        print(f"Genuine digits from {source}. Each case in a fresh warmed-up process; peak = VmHWM - idle RSS.")
        group = None
        for case in cases:
            if case["group"] != group:
                group = case["group"]
                print(f"\n## {group} (target: {TARGETS[group]})")
            r = measure(case)
            size = f"{case['bytes']:,} B" if case["bytes"] is not None else "-"
            print(f"- {case['name']} [{size}]\n    {r['seconds']:.3f} s, {r['peak_mb']:+.1f} MB over idle "
                  f"({r['idle_mb']:.0f} MB): {r['outcome']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
