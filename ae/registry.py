"""What this installation offers, read from the weights cards: the one reader of them.

- Models for the app: the shipped weights, then the ones users trained (newest first). A broken
  or foreign file in the user folder is skipped with a note (its file name and why), never
  fatal: `scan_models` returns both, `list_models` the models alone.
- The codec's operating points: the shipped cards with a "codec" block (`operating_points`,
  or `codec_status`, which also says why there are none).

Each card is read once: `_read_entry` is keyed by the sizes and times of the weights file and
its card, so a changed file is read again and an unchanged one costs two `stat` calls. Which
file a name means (`ae.weights.weights_path`) and the file format stay in `ae.weights`.
"""
from __future__ import annotations

import functools
import re
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from ae.errors import WeightsError
from ae.integer_decoder import SUFFIX as INTEGER_TABLES_SUFFIX
from ae.weights import SHIPPED, WEIGHTS_DIR, card_path, check_config, load_card, user_models_dir

MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_USER_MODELS = 200  # newest first; a folder of thousands would make every page slow


# ----------------------------------------------------------------------------------------------
# Models for the app: the shipped ones, then the user folder's
# ----------------------------------------------------------------------------------------------

@dataclass
class ModelEntry:
    name: str
    path: Path
    arch: str
    latent_dim: int
    shipped: bool
    card: dict

    @property
    def label(self) -> str:
        if self.arch == "classifier":
            return f"{self.name} (shipped)" if self.shipped else self.name
        return f"{self.name} · {self.latent_dim} latent" + (" · shipped" if self.shipped else "")

    @property
    def metrics(self) -> dict:
        return _measured(self.card)

    @property
    def cache_key(self) -> tuple[str, float]:
        # A retrained file under the same name gets a new key, so caches reload it.
        try:
            return str(self.path), self.path.stat().st_mtime
        except OSError:
            return str(self.path), 0.0


def _measured(card: dict) -> dict:
    """The card's measured figures (psnr, accuracy, mean_bytes...), numbers only: a card from the
    user folder may hold anything, and pages format these."""
    found = card.get("metrics")
    return {k: v for k, v in found.items() if isinstance(v, (int, float)) and not isinstance(v, bool)} \
        if isinstance(found, dict) else {}


@dataclass
class ModelScan:
    entries: list[ModelEntry] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file name, why it is not offered)


@functools.lru_cache(maxsize=256)
def _read_entry(path: Path, shipped: bool, stamp: tuple) -> ModelEntry | str:
    """The entry, or why it cannot be offered. `stamp` (sizes and times of both files) makes a
    changed file read again; an unchanged one costs nothing on the next page rerun."""
    try:
        card = load_card(path)
        config = check_config(card["config"], path.name, count_parameters=not shipped)
    except WeightsError as exc:
        return str(exc)
    return ModelEntry(path.stem, path, config.arch, config.latent_dim, shipped, card)


def _stamp(path: Path) -> tuple:
    """(mtime, size) of the weights file and its card; OSError if either cannot be used."""
    weights, card = path.stat(), card_path(path).stat()
    if not stat.S_ISREG(weights.st_mode) or not stat.S_ISREG(card.st_mode):
        raise IsADirectoryError("not a regular file")
    return weights.st_mtime_ns, weights.st_size, card.st_mtime_ns, card.st_size


def _unusable(path: Path, exc: OSError) -> str:
    if path.is_symlink() and not path.exists():
        return "a broken link"
    if not card_path(path).exists():
        return "no JSON card beside it"
    return f"cannot be read ({exc.strerror or exc})"


def scan_models(archs: tuple[str, ...] = ("ff", "cnn")) -> ModelScan:
    """The models of these architectures, and every file of the user folder that was skipped."""
    scan = ModelScan()
    found: list[tuple[int, Path, bool, tuple]] = []
    for name in SHIPPED:
        path = WEIGHTS_DIR / f"{name}.safetensors"
        try:
            found.append((0, path, True, _stamp(path)))
        except OSError:
            pass  # a missing shipped file is explained where that model is needed
    user_dir = user_models_dir()
    try:
        user_files = sorted(user_dir.glob("*.safetensors")) if user_dir.is_dir() else []
    except OSError as exc:
        user_files = []
        scan.skipped.append((user_dir.name, f"the models folder cannot be read ({exc.strerror or exc})"))
    user: list[tuple[int, Path, bool, tuple]] = []
    for path in user_files:
        if not is_valid_name(path.stem):
            why = "a shipped model's name" if path.stem in SHIPPED else "not a usable model name"
            scan.skipped.append((path.name, why))
            continue
        try:
            stamp = _stamp(path)
        except OSError as exc:
            scan.skipped.append((path.name, _unusable(path, exc)))
            continue
        user.append((stamp[0], path, False, stamp))
    user.sort(key=lambda item: item[0], reverse=True)  # newest first
    if len(user) > MAX_USER_MODELS:
        scan.skipped.append((f"{len(user) - MAX_USER_MODELS} older files",
                             f"at most {MAX_USER_MODELS} user models are offered"))
    for _, path, shipped, stamp in found + user[:MAX_USER_MODELS]:
        entry = _read_entry(path, shipped, stamp)
        if isinstance(entry, str):
            scan.skipped.append((path.name, entry))
        elif entry.arch in archs:
            scan.entries.append(entry)
    return scan


def list_models(archs: tuple[str, ...] = ("ff", "cnn")) -> list[ModelEntry]:
    return scan_models(archs).entries


def skipped_models() -> list[tuple[str, str]]:
    """(file name, why) for every model file that cannot be offered: for a note on the page."""
    return scan_models(()).skipped


def shipped_entry(name: str) -> ModelEntry | None:
    path = WEIGHTS_DIR / f"{name}.safetensors"
    try:
        entry = _read_entry(path, True, _stamp(path))
    except OSError:
        return None
    return None if isinstance(entry, str) else entry


def is_valid_name(name: str) -> bool:
    return isinstance(name, str) and bool(MODEL_NAME.fullmatch(name)) and name not in SHIPPED


def suggest_name(arch: str, latent_dim: int) -> str:
    return f"{arch}-latent{latent_dim}-{time.strftime('%H%M%S')}"


def user_model_path(name: str) -> Path:
    if not is_valid_name(name):
        raise WeightsError(f"{name!r} is not a usable model name: use letters, digits, '-', '_' or '.', "
                           f"at most 64 characters, and not a shipped name ({', '.join(SHIPPED)}).")
    return user_models_dir() / f"{name}.safetensors"


# ----------------------------------------------------------------------------------------------
# The codec's operating points: shipped cards with a "codec" block (its id and label)
# ----------------------------------------------------------------------------------------------

MAX_POINT_ID = 7  # a single digit's payload header (format version 2) has three bits for it


def point_id_problem(point_id: int) -> str | None:
    """Why `point_id` cannot name an operating point, or None when it can."""
    if not 0 <= point_id <= MAX_POINT_ID:
        return f"operating-point id {point_id} does not fit a payload header (ids 0-{MAX_POINT_ID})"
    return None


@dataclass(frozen=True)
class OperatingPoint:
    name: str  # e.g. "rd-q1": also the weights file name
    id: int  # written in every payload header
    arch: str
    label: str  # short human text for the app
    card: dict = field(compare=False, repr=False)  # the weights card, incl. measured metrics
    path: Path | None = None
    stamp: tuple = field(default=(), repr=False)  # sizes and times of its files: a new version is another point

    @property
    def metrics(self) -> dict:
        """What `python -m ae benchmark --update-cards` measured: mean_bytes, psnr, ssim, accuracy..."""
        return _measured(self.card)


@dataclass
class CodecStatus:
    """The codec's operating points in this installation, or why it has none (`message`)."""
    points: list[OperatingPoint] = field(default_factory=list)  # in name order (rd-q1 first)
    message: str = ""  # empty when there are points

    @property
    def available(self) -> bool:
        return bool(self.points)

    def point(self, name: str) -> OperatingPoint:
        for p in self.points:
            if p.name == name:
                return p
        raise KeyError(name)


def _point_or_why(entry: ModelEntry, stamp: tuple, taken: dict[int, str]) -> OperatingPoint | str:
    block = entry.card["codec"]
    point_id = block.get("id") if isinstance(block, dict) else None
    if not isinstance(point_id, int) or isinstance(point_id, bool):
        return "its 'codec' block has no whole-number 'id'"
    if why := point_id_problem(point_id):
        return why
    if point_id in taken:
        return f"operating-point id {point_id} is already {taken[point_id]}'s"
    label = block.get("label")
    return OperatingPoint(entry.name, point_id, entry.arch, label if isinstance(label, str) and label else entry.name,
                          entry.card, entry.path, stamp)


def _scan_points() -> tuple[list[OperatingPoint], list[tuple[str, str]]]:
    """(points in file-name order, rd-q1 first, (file name, why) for each shipped file that cannot be read or
    whose codec block is unusable). Lists the shipped folder and stats its files; only a new or
    changed card is read."""
    try:  # a point's integer decoder tables (rd-q1.int.safetensors) sit beside its weights
        files = sorted(p for p in WEIGHTS_DIR.glob("*.safetensors") if not p.name.endswith(INTEGER_TABLES_SUFFIX))
    except OSError:
        files = []
    points: list[OperatingPoint] = []
    skipped: list[tuple[str, str]] = []
    taken: dict[int, str] = {}
    for path in files:
        try:
            stamp = _stamp(path)
        except OSError as exc:
            skipped.append((path.name, _unusable(path, exc)))
            continue
        entry = _read_entry(path, True, stamp)
        if isinstance(entry, str):
            skipped.append((path.name, entry))
            continue
        if "codec" not in entry.card:
            continue  # one of the app's own models
        point = _point_or_why(entry, stamp, taken)
        if isinstance(point, str):
            skipped.append((path.name, point))
            continue
        taken[point.id] = point.name
        points.append(point)
    return points, skipped  # by name, not id: rd-q3 (id 5) replaced a retired id 3


def operating_points() -> list[OperatingPoint]:
    """The codec's operating points in name order (rd-q1, rd-q2, ...: lowest rate first)."""
    return _scan_points()[0]


def codec_status() -> CodecStatus:
    """The operating points, or a message saying why the codec has none (for the pages)."""
    points, skipped = _scan_points()
    if points:
        return CodecStatus(points=points)
    message = "The codec has no trained operating points yet (no coded weights shipped)."
    if skipped:
        message += " Not usable: " + "; ".join(f"{name}: {why}" for name, why in skipped[:3]) + "."
    return CodecStatus(message=message)
