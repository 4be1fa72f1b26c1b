"""Weights on disk: a safetensors file plus a JSON card beside it.

The card holds the architecture config, how the model was trained, its measured metrics and
the sha256 of the weights file, so `load_model("cnn")` rebuilds the model from the two files
alone. No pickle anywhere. Every failure is a `WeightsError` that says what to do.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
import torch.nn as nn
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ae.errors import WeightsError
from ae.files import atomic_write
from ae.models import ModelConfig, build_model

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
SHIPPED = ("ff", "cnn", "classifier")


def user_models_dir() -> Path:
    """Where models trained by users (the Train page) are saved: never the shipped folder."""
    if os.environ.get("AE_USER_MODELS_DIR"):
        return Path(os.environ["AE_USER_MODELS_DIR"]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "ae-digits" / "models"


def weights_path(name_or_path: str | os.PathLike) -> Path:
    """'cnn' -> weights/cnn.safetensors, a user model's name -> its file; a path stays a path."""
    p = Path(name_or_path)
    if p.suffix == ".safetensors" or len(p.parts) > 1:
        return p
    shipped = WEIGHTS_DIR / f"{p.name}.safetensors"
    user = user_models_dir() / f"{p.name}.safetensors"
    return user if not shipped.exists() and user.exists() else shipped


def card_path(weights: Path) -> Path:
    return weights.with_suffix(".json")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_card(weights: Path, card: dict) -> None:
    text = json.dumps(card, indent=2, sort_keys=False) + "\n"
    atomic_write(card_path(weights), lambda p: p.write_text(text))


def _reserve_name(path: Path, tries: int = 1000) -> Path:
    """The first free name among `path`, `name-2`, `name-3`...: its card is created with O_EXCL,
    so two savers never get the same name (an empty card is invisible: readers list weights)."""
    for i in range(1, tries + 1):
        suffix = "" if i == 1 else f"-{i}"
        candidate = path.with_name(f"{path.stem[:64 - len(suffix)]}{suffix}{path.suffix}")
        if candidate.exists():
            continue
        try:
            os.close(os.open(card_path(candidate), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            continue
        if candidate.exists():  # weights without a card appeared meanwhile: not ours to reuse
            card_path(candidate).unlink(missing_ok=True)
            continue
        return candidate
    raise WeightsError(f"No free name like {path.name} in {path.parent}: choose another name.")


def save_model(model: nn.Module, path: str | os.PathLike, card: dict | None = None,
               half: bool = False, exclusive: bool = False) -> Path:
    """Save weights (safetensors) and the card; the card gets the config and the file's sha256.
    `half` stores floating-point tensors as float16 (half the size; loading casts them back).

    The weights go to a temporary file first, the card is written next, and the weights are
    renamed into place last: a reader listing `*.safetensors` never finds weights without their
    card, nor new weights with an old card. `exclusive` (the app) never replaces anything: when
    the name is taken it saves as `name-2`, `name-3`... and returns the path it used. Without it
    (the CLI's `--out`, the user's explicit choice) an existing pair is replaced; for an instant
    a reader may then see the new card beside the old weights, which `load_model` refuses by
    sha256 rather than mixing them."""
    path = weights_path(path)
    config: ModelConfig = model.config
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    metadata = {"config": json.dumps(config.to_dict())}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{os.urandom(4).hex()}.tmp")
    reserved = None
    try:
        save_file(state, str(tmp), metadata=metadata)
        os.chmod(tmp, 0o644)
        digest = sha256_of(tmp)
        if exclusive:
            path = reserved = _reserve_name(path)
        card = dict(card or {})
        card.update(name=path.stem, config=config.to_dict(), weights_file=path.name,
                    storage_dtype="float16" if half else "float32", sha256=digest)
        write_card(path, card)
        os.replace(tmp, path)  # published last, complete, beside its card
        reserved = None
    except BaseException:
        tmp.unlink(missing_ok=True)
        if reserved is not None:
            card_path(reserved).unlink(missing_ok=True)
        raise
    return path


def load_card(name_or_path: str | os.PathLike) -> dict:
    path = weights_path(name_or_path)
    cpath = card_path(path)
    if not cpath.exists():
        raise WeightsError(f"No weights card at {cpath}: every weights file needs its JSON card beside it.")
    try:
        card = json.loads(cpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise WeightsError(f"The weights card {cpath} is not valid JSON ({exc}).") from None
    if not isinstance(card, dict) or "config" not in card:
        raise WeightsError(f"The weights card {cpath} has no 'config': it cannot rebuild the model.")
    return card


def load_model(name_or_path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a model from its card and load its weights, in eval mode."""
    path = weights_path(name_or_path)
    if not path.exists():
        raise WeightsError(f"No weights file at {path}.")
    card = load_card(path)
    if card.get("sha256") and card["sha256"] != sha256_of(path):
        raise WeightsError(f"{path} does not match the sha256 in its card: the file is corrupt "
                           f"or was replaced. Restore it (git checkout) or retrain it.")
    try:
        model = build_model(card["config"])
    except (ValueError, TypeError) as exc:
        raise WeightsError(f"The card {card_path(path)} describes no model this version knows: {exc}") from None
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path} is not a readable safetensors file ({exc}).") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise WeightsError(f"{path} does not fit the architecture in its card: "
                           f"{first[1].strip() if len(first) > 1 else first[0]}") from None
    return model.to(device).eval()
