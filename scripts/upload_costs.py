"""What the costliest upload ae.preprocess accepts costs, per format, and what refused ones cost.

    python scripts/upload_costs.py [--only SUBSTRING]

For each accepted format it builds the worst file the limits in `ae.preprocess.UPLOAD_LIMITS`
still accept: the most pixels allowed (a square), its top rows filled with random noise (which
no codec compresses, so decoding costs the most per byte) up to just under the format's byte
limit, the rest paper with a dark digit stroke. Then refused cases: the two issue 9 names (a
file Pillow would open as BLP, a 6400x6250 mostly-black PNG) and files whose structure Pillow
walks in Python (hundreds of thousands of empty PNG chunks, GIF extensions, JPEG comments).
Each case runs in a fresh subprocess that warms up on a small file of the same format, resets
the kernel's peak-RSS counter (/proc/self/clear_refs) and measures one `image_file_to_digit`
call: wall and CPU seconds, and VmHWM minus VmRSS before the call. Target (issue 9): < 0.5 s
and < 150 MB.
"""
from __future__ import annotations

import argparse
import io
import json
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

ROOT = Path(__file__).resolve().parent.parent

ENCODERS = {  # name: (format, mode, save options); the costliest settings to decode
    "PNG RGBA": ("PNG", "RGBA", {"compress_level": 1}),
    "JPEG progressive 4:4:4": ("JPEG", "RGB", {"quality": 95, "progressive": True, "subsampling": 0}),
    "JPEG baseline": ("JPEG", "RGB", {"quality": 95}),
    "WebP lossy": ("WEBP", "RGB", {"quality": 95}),
    "WebP lossless RGBA": ("WEBP", "RGBA", {"lossless": True}),
    "GIF": ("GIF", "P", {}),
    "BMP RGBA": ("BMP", "RGBA", {}),
    "TIFF LZW RGBA": ("TIFF", "RGBA", {"compression": "tiff_lzw"}),
    "TIFF deflate RGBA": ("TIFF", "RGBA", {"compression": "tiff_adobe_deflate"}),
    "AVIF": ("AVIF", "RGB", {"quality": 90, "speed": 10}),
}


def picture(side: int, noise_rows: int, seed: int = 0) -> Image.Image:
    a = np.full((side, side, 4), 240, np.uint8)
    a[..., 3] = 255
    a[:noise_rows] = np.random.default_rng(seed).integers(0, 256, (noise_rows, side, 4), dtype=np.uint8)
    a[side // 3:2 * side // 3, side // 2:side // 2 + max(2, side // 20), :3] = 10  # the digit
    return Image.fromarray(a, "RGBA")


def encode(img: Image.Image, mode: str, fmt: str, options: dict) -> bytes:
    buf = io.BytesIO()
    img.convert(mode).save(buf, fmt, **options)
    return buf.getvalue()


def worst_accepted(name: str) -> bytes:
    """The largest picture the format's limits allow, as much noise as its byte limit allows."""
    from ae.preprocess import UPLOAD_LIMITS  # here, so the refused cases also run on older versions

    fmt, mode, options = ENCODERS[name]
    max_bytes, max_pixels = UPLOAD_LIMITS[fmt]
    side = int(max_pixels ** 0.5)
    if fmt == "BMP":  # uncompressed: the byte limit decides the size
        side = min(side, int((max_bytes / 4) ** 0.5) - 1)
    lo, hi, best = 0, side, encode(picture(side, 0), mode, fmt, options)
    for _ in range(5):  # binary search on the noise rows: the biggest file under the limit
        mid = (lo + hi + 1) // 2
        data = encode(picture(side, mid), mode, fmt, options)
        lo, hi, best = (mid, hi, data) if len(data) <= max_bytes else (lo, mid - 1, best)
    return best


def refused_cases() -> dict[str, bytes]:
    blp = b"BLP1" + struct.pack("<iIIIii", 5, 0, 64, 64, 4, 0) + bytes(256)  # Pillow: BLPFormatError
    big = np.zeros((6250, 6400), np.uint8)
    big[2000:4000, 3000:3400] = 255
    png = io.BytesIO()
    Image.fromarray(big).save(png, "PNG", optimize=True)
    small = {fmt: encode(picture(64, 0), "RGB", fmt, {}) for fmt in ("PNG", "GIF", "JPEG")}
    empty_chunk = struct.pack(">I", 0) + b"abCd" + struct.pack(">I", zlib.crc32(b"abCd"))
    gif_end = 13 + (3 << ((small["GIF"][10] & 7) + 1) if small["GIF"][10] & 0x80 else 0)  # after the palette
    return {"BLP claiming an unsupported compression": blp,
            f"6400x6250 mostly-black PNG ({len(png.getvalue()) // 1024} KB)": png.getvalue(),
            "PNG of 800,000 empty chunks": small["PNG"][:33] + empty_chunk * 800_000 + small["PNG"][33:],
            "GIF of 2,000,000 empty extensions": small["GIF"][:gif_end] + b"\x21\xfe\x00" * 2_000_000
            + small["GIF"][gif_end:],
            "JPEG of 1,400,000 empty comments": small["JPEG"][:2] + b"\xff\xfe\x00\x02" * 1_400_000 + small["JPEG"][2:]}


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def child(path: str) -> None:
    from ae.errors import AEError
    from ae.preprocess import image_file_to_digit

    data = Path(path).read_bytes()
    try:  # warm up: plugins imported, first-call costs paid, as in a running app
        fmt = Image.open(io.BytesIO(data)).format
        image_file_to_digit(encode(picture(64, 8), "RGB" if fmt == "JPEG" else "RGBA", fmt or "PNG", {}))
    except Exception:  # noqa: BLE001  (an exotic or broken file: warm up on PNG)
        image_file_to_digit(encode(picture(64, 8), "RGBA", "PNG", {}))
    before = _status_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        digit = image_file_to_digit(data)
        outcome = f"accepted: a {digit.shape} digit"
    except AEError as exc:
        outcome = f"{type(exc).__name__}: {exc}"
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(json.dumps({"wall": wall, "cpu": cpu, "mb": (_status_kb("VmHWM") - before) / 1024, "outcome": outcome}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run the cases whose name holds this text")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return 0
    ImageFile.MAXBLOCK = 1 << 26  # progressive JPEGs of noise need a large encoder buffer
    print(f"{'case':44s} {'file':>9s} {'wall s':>7s} {'cpu s':>6s} {'peak MB':>8s}  outcome")
    with tempfile.TemporaryDirectory() as tmp:
        names = [n for n in [*ENCODERS, *refused_cases()] if args.only.lower() in n.lower()]
        refused = refused_cases()
        for name in names:
            data = refused[name] if name in refused else worst_accepted(name)
            path = Path(tmp) / "upload"
            path.write_bytes(data)
            out = subprocess.run([sys.executable, __file__, "--child", str(path)], capture_output=True,
                                 text=True, timeout=300)
            if out.returncode:
                print(f"{name:44s} child failed: {out.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{name:44s} {len(data) / 2**20:7.2f}MB {r['wall']:7.3f} {r['cpu']:6.3f} {r['mb']:8.0f}  "
                  f"{r['outcome'][:90]}")
    print("target: < 0.5 s and < 150 MB for the worst accepted upload (issue 9)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
