"""Weights on disk: a safetensors file plus a JSON card beside it.

The card holds the architecture config, how the model was trained, its measured metrics and
the sha256 of the weights file, so `load_model("cnn")` rebuilds the model from the two files
alone. No pickle anywhere. Every failure is a `WeightsError` that says what to do.

PyTorch is imported only by the functions that build models: reading cards and `load_arrays`
(the weights as numpy arrays, for the codec's receiver) work without it.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import SafetensorError

from ae.config import ARCHITECTURE_NAMES, NUM_PIXELS, ModelConfig
from ae.errors import WeightsError
from ae.files import atomic_write

if TYPE_CHECKING:
    import numpy as np
    import torch
    import torch.nn as nn

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
SHIPPED = ("ff", "cnn", "classifier")

# What a card may ask for, checked before anything is allocated (cards in the user folder come
# from anyone). The largest shipped models: ff 2.0 M parameters, a codec point 1.8 M (the retired
# feedforward ones 2.7 M); the largest the Train page makes (cnn, 784 latents) about 5 M.
MAX_CARD_BYTES = 1 << 20
MAX_PARAMETERS = 8_000_000
MAX_HIDDEN = 8192
MAX_CHANNELS = 1024
MAX_CONV_STAGES = 4  # 28 -> 14 -> 7 -> 3 -> 1 pixels
MAX_WEIGHTS_BYTES = 8 * MAX_PARAMETERS + (1 << 20)  # float64 at most, plus the header


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


def is_shipped(path: Path) -> bool:
    """A file of the repository's weights folder, card included (a user folder's link to a
    shipped file still has a card from that folder)."""
    return path.parent.resolve() == WEIGHTS_DIR


def card_path(weights: Path) -> Path:
    return weights.with_suffix(".json")


def sha256_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


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
    from safetensors.torch import save_file

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
    """The JSON card beside a weights file, read at most MAX_CARD_BYTES and parsed; its config is
    not checked here (see `check_config`). Messages name files, never the server's folders."""
    path = weights_path(name_or_path)
    cpath = card_path(path)
    try:
        if not stat.S_ISREG(cpath.stat().st_mode):  # a folder or a FIFO (opening one would block)
            raise WeightsError(f"The weights card {cpath.name} is not a regular file.")
        with open(cpath, "rb") as f:
            raw = f.read(MAX_CARD_BYTES + 1)
    except FileNotFoundError:
        raise WeightsError(f"No weights card {cpath.name}: every weights file needs its JSON card beside it.") from None
    except OSError as exc:
        raise WeightsError(f"The weights card {cpath.name} cannot be read ({exc.strerror or type(exc).__name__}).") from None
    return parse_card(raw, cpath.name)


def parse_card(raw: bytes, name: str) -> dict:
    """A card's bytes (at most MAX_CARD_BYTES) -> its dict with a 'config', or a WeightsError
    naming the card file `name`. Shared by the models folder and uploads."""
    if len(raw) > MAX_CARD_BYTES:
        raise WeightsError(f"The weights card {name} is larger than {MAX_CARD_BYTES // 2**20} MB: not a card.")
    try:
        card = json.loads(raw.decode("utf-8"))
    except ValueError as exc:  # bad JSON or UTF-8, or an integer of thousands of digits
        raise WeightsError(f"The weights card {name} is not valid JSON ({str(exc)[:120]}).") from None
    except RecursionError:
        raise WeightsError(f"The weights card {name} is not valid JSON (nested too deeply).") from None
    if not isinstance(card, dict) or "config" not in card:
        raise WeightsError(f"The weights card {name} has no 'config': it cannot rebuild the model.")
    return card


def record_metrics(name_or_path: str | os.PathLike, metrics: dict, data: str, command: str,
                   label: str | None = None) -> None:
    """Write measured figures into a model's card: the `metrics`, the digits they were measured
    on (`data`) and the `command` that measured them. A codec point's app `label`, which quotes
    its figures, is replaced too when given (`python -m ae evaluate/benchmark --update-cards`)."""
    path = weights_path(name_or_path)
    card = load_card(path)
    card["metrics"] = dict(metrics)
    card["metrics_data"] = data
    card["metrics_command"] = command
    if label is not None:
        card["codec"]["label"] = label
    write_card(path, card)


def store_half(name_or_path: str | os.PathLike, command: str) -> int | None:
    """Store a model's weights as float16 in place and return the file's former size (None when
    it is float16 already). The card keeps its training record, notes the conversion (`command`)
    and drops the measured figures, which describe the old file: remeasure them."""
    path = weights_path(name_or_path)
    card, model = load_card(path), load_model(path)
    if card.get("storage_dtype") == "float16":
        return None
    card["converted"] = {"to": "float16", "command": command, "from_sha256": card.get("sha256")}
    for key in ("metrics", "metrics_data", "metrics_command"):
        card.pop(key, None)
    size = path.stat().st_size
    save_model(model, path, card, half=True)
    return size


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_config(config, where: str, count_parameters: bool = True) -> ModelConfig:
    """A card's config -> ModelConfig, or a WeightsError naming `where` (a file name): types and
    ranges first, then the parameter count of the model built on the "meta" device (shapes only,
    no memory), so a hostile card never allocates anything. The shipped cards are part of the
    repository and skip the count: building a codec model on "meta" imports sympy (~1 s and
    35 MB, once per process) through the prior's torch.linspace."""
    def bad(why: str) -> WeightsError:
        return WeightsError(f"The card of {where} {why}: it cannot rebuild a model.")

    if not isinstance(config, dict):
        raise bad(f"has a 'config' that is a {type(config).__name__}, not an object")
    arch = config.get("arch")
    if not isinstance(arch, str) or arch not in ARCHITECTURE_NAMES:
        raise bad(f"names no known architecture ({str(arch)[:40]!r}; known: {', '.join(sorted(ARCHITECTURE_NAMES))})")
    latent, hidden, channels = config.get("latent_dim", 0), config.get("hidden", 0), config.get("channels", [])
    if not _is_int(latent) or not _is_int(hidden):
        raise bad("has a 'latent_dim' or 'hidden' that is not a whole number")
    if not isinstance(channels, (list, tuple)) or not all(_is_int(c) for c in channels):
        raise bad("has 'channels' that are not a list of whole numbers")
    if not (0 if arch == "classifier" else 1) <= latent <= NUM_PIXELS:
        raise bad(f"asks for {latent} latent neurons (1 to {NUM_PIXELS})")
    if not 0 <= hidden <= MAX_HIDDEN:
        raise bad(f"asks for {hidden} hidden neurons (at most {MAX_HIDDEN})")
    if len(channels) > MAX_CONV_STAGES or not all(1 <= c <= MAX_CHANNELS for c in channels):
        raise bad(f"asks for channels {list(channels)[:8]} (at most {MAX_CONV_STAGES} stages of 1 to {MAX_CHANNELS})")
    try:
        parsed = ModelConfig.from_dict(config)
        if not count_parameters:
            return parsed
        import torch

        from ae.architectures import build_model

        with torch.device("meta"):
            model = build_model(parsed)
    except Exception as exc:  # noqa: BLE001  (any construction failure means the card is unusable)
        raise bad(f"describes no model this version knows ({type(exc).__name__}: {str(exc)[:120]})") from None
    count = sum(t.numel() for t in (*model.parameters(), *model.buffers()))
    if count > MAX_PARAMETERS:
        raise bad(f"describes a model of {count:,} parameters (at most {MAX_PARAMETERS:,})")
    return parsed


def load_model(name_or_path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a model from its card and load its weights, in eval mode. The card and the file's
    size are checked before anything is allocated or hashed."""
    from safetensors.torch import load_file

    path, card, config = _checked_file(name_or_path)
    return _build_and_fill(config, lambda: load_file(str(path)), path.name).to(device).eval()


def load_arrays(name_or_path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """(the weights file's tensors as numpy arrays, its card), after load_model's checks, without
    PyTorch. Floating-point tensors come as float32, what load_model's parameters hold whatever
    the file stores (a float16 file is cast exactly); the others as stored."""
    from safetensors.numpy import load_file

    path, card, _ = _checked_file(name_or_path)
    try:
        arrays = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)[:160]
        raise WeightsError(f"{path.name} is not a readable safetensors file ({reason}).") from None
    return {k: v.astype("float32") if v.dtype.kind == "f" else v for k, v in arrays.items()}, card


def _checked_file(name_or_path: str | os.PathLike) -> tuple[Path, dict, ModelConfig]:
    """(path, card, config) of a weights file whose card, size and sha256 are checked, in that
    order: nothing is allocated or hashed for a file that its card already refuses."""
    path = weights_path(name_or_path)
    try:
        info = path.stat()
    except OSError:
        raise WeightsError(f"No weights file {path.name} (missing, unreadable or a broken link).") from None
    if not stat.S_ISREG(info.st_mode):
        raise WeightsError(f"{path.name} is not a regular file.")
    card = load_card(path)
    config = check_config(card["config"], path.name, count_parameters=not is_shipped(path))
    if info.st_size > MAX_WEIGHTS_BYTES:
        raise WeightsError(f"{path.name} is {info.st_size // 2**20} MB: far more than its model needs, so not its weights.")
    try:
        digest = sha256_of(path) if card.get("sha256") else None
    except OSError as exc:
        raise WeightsError(f"{path.name} cannot be read ({exc.strerror or type(exc).__name__}).") from None
    if digest and card["sha256"] != digest:
        raise WeightsError(f"{path.name} does not match the sha256 in its card: the file is corrupt "
                           f"or was replaced. Restore it (git checkout) or retrain it.")
    return path, card, config


def _build_and_fill(config: ModelConfig, read_state, where: str) -> nn.Module:
    """The model of a checked config with the tensors `read_state()` parses (safetensors only)."""
    from ae.architectures import build_model

    model = build_model(config)
    try:
        state = read_state()
    except (SafetensorError, OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)[:160]
        raise WeightsError(f"{where} is not a readable safetensors file ({reason}).") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise WeightsError(f"{where} does not fit the architecture in its card: "
                           f"{first[1].strip() if len(first) > 1 else first[0]}") from None
    return model


def load_model_from_bytes(weights: bytes, card: dict | bytes, where: str,
                          device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """(model in eval mode, card) from a weights file's bytes and its card (bytes or parsed), with
    the models folder's checks: the card's config and parameter count first, then the size, then
    the sha256, then safetensors parsing (never pickle). Nothing touches the disk. Unlike a file
    in the folder, the card must carry the sha256 (the app and the CLI always write it): it is
    what proves that the two uploaded files belong together. `where` names the weights file."""
    from safetensors.torch import load as safetensors_load

    if not isinstance(card, dict):
        card = parse_card(bytes(card), card_path(Path(where)).name)
    elif "config" not in card:
        raise WeightsError(f"The card of {where} has no 'config': it cannot rebuild the model.")
    config = check_config(card["config"], where, count_parameters=True)
    if len(weights) > MAX_WEIGHTS_BYTES:
        raise WeightsError(f"{where} is {len(weights) // 2**20} MB: far more than its model needs, so not its weights.")
    expected = card.get("sha256")
    if not isinstance(expected, str) or not expected:
        raise WeightsError(f"The card of {where} has no sha256 of its weights: use the card saved with them.")
    if hashlib.sha256(weights).hexdigest() != expected:
        raise WeightsError(f"{where} does not match the sha256 in its card: the two files do not belong "
                           f"together, or one was changed.")
    return _build_and_fill(config, lambda: safetensors_load(bytes(weights)), where).to(device).eval(), card
