"""Which models the app can offer: the shipped weights, then the ones users trained
(newest first). A broken or foreign file in the user folder is skipped, never fatal."""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from ae.errors import WeightsError
from ae.weights import SHIPPED, WEIGHTS_DIR, card_path, load_card, user_models_dir

MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


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
        return self.card.get("metrics") or {}

    @property
    def cache_key(self) -> tuple[str, float]:
        # A retrained file under the same name gets a new key, so caches reload it.
        try:
            return str(self.path), self.path.stat().st_mtime
        except OSError:
            return str(self.path), 0.0


def _entry(path: Path, shipped: bool) -> ModelEntry | None:
    try:
        card = load_card(path)
        config = card["config"]
        return ModelEntry(path.stem, path, config["arch"], int(config.get("latent_dim") or 0), shipped, card)
    except (WeightsError, KeyError, TypeError, ValueError, OSError):
        return None


def list_models(archs: tuple[str, ...] = ("ff", "cnn")) -> list[ModelEntry]:
    entries = [_entry(WEIGHTS_DIR / f"{name}.safetensors", True) for name in SHIPPED
               if (WEIGHTS_DIR / f"{name}.safetensors").exists()]
    user_dir = user_models_dir()
    user_files = sorted(user_dir.glob("*.safetensors"), key=lambda p: p.stat().st_mtime, reverse=True) \
        if user_dir.is_dir() else []
    entries += [_entry(p, False) for p in user_files if card_path(p).exists()]
    return [e for e in entries if e is not None and e.arch in archs]


def shipped_entry(name: str) -> ModelEntry | None:
    path = WEIGHTS_DIR / f"{name}.safetensors"
    return _entry(path, True) if path.exists() else None


def is_valid_name(name: str) -> bool:
    return bool(MODEL_NAME.match(name)) and name not in SHIPPED


def suggest_name(arch: str, latent_dim: int) -> str:
    return f"{arch}-latent{latent_dim}-{time.strftime('%H%M%S')}"


def user_model_path(name: str) -> Path:
    if not is_valid_name(name):
        raise WeightsError(f"{name!r} is not a usable model name: use letters, digits, '-', '_' or '.', "
                           f"at most 64 characters, and not a shipped name ({', '.join(SHIPPED)}).")
    return user_models_dir() / f"{name}.safetensors"
