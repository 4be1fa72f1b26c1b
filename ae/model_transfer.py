"""Models in and out of the app: a trained model leaves as one .zip holding its two files (the
safetensors weights and the JSON card, exactly as the CLI writes them), and comes back as that
.zip or as the two files. An upload is checked like the models folder (ae.weights) and becomes
an `UploadedModel` that lives in memory only: nothing is written to disk.

A zip comes from anyone, so it is read with suspicion: its size is capped before it is opened,
it must hold exactly one .safetensors and one .json with plain names (no folders, no '..'), and
the sizes its directory declares are capped before anything is decompressed (and the reads are
bounded too, in case the directory lies)."""
from __future__ import annotations

import hashlib
import io
import json
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch.nn as nn

from ae.errors import WeightsError
from ae.registry import MODEL_NAME, ModelEntry
from ae.weights import MAX_CARD_BYTES, MAX_WEIGHTS_BYTES, card_path, load_model_from_bytes

MAX_ZIP_BYTES = MAX_WEIGHTS_BYTES + MAX_CARD_BYTES + (64 << 10)  # both files stored, plus the zip's own records
MAX_UPLOAD_BYTES = MAX_ZIP_BYTES  # the largest single file an upload may be
UPLOAD_TYPES = ("zip", "safetensors", "json")
UPLOAD_ARCHS = ("ff", "cnn")  # what the pages' model pickers offer


@dataclass(eq=False)
class UploadedModel(ModelEntry):
    """A model a user uploaded: no file (`path` is None), the loaded model kept with the entry.
    It belongs to one session; its `cache_key` names its content, so caches keyed by it can
    never confuse it with another model."""
    model: nn.Module | None = field(default=None, repr=False)
    digest: str = ""  # sha256 of the weights and the config

    @property
    def label(self) -> str:
        return f"{self.name} · {self.latent_dim} latent · uploaded"

    @property
    def cache_key(self) -> tuple[str, float]:
        return f"uploaded:{self.digest}", 0.0


def _read_capped(path: Path, cap: int) -> bytes:
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise WeightsError(f"{path.name} is not a regular file.")
        with open(path, "rb") as f:
            data = f.read(cap + 1)
    except OSError as exc:
        raise WeightsError(f"{path.name} cannot be read ({exc.strerror or type(exc).__name__}).") from None
    if len(data) > cap:
        raise WeightsError(f"{path.name} is larger than a model's file can be.")
    return data


def pack_model(weights: Path) -> bytes:
    """The .zip of a saved model: `<name>.safetensors` and `<name>.json`, byte for byte."""
    weights = Path(weights)
    files = {weights.name: _read_capped(weights, MAX_WEIGHTS_BYTES),
             card_path(weights).name: _read_capped(card_path(weights), MAX_CARD_BYTES)}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return out.getvalue()


def _plain_name(name: str) -> bool:
    return bool(name) and "/" not in name and "\\" not in name and ".." not in name and ":" not in name \
        and not name.startswith(".")


def unpack_zip(data: bytes, zip_name: str = "the zip") -> dict[str, bytes]:
    """{file name: bytes} of a model zip: exactly one .safetensors and one .json, nothing else."""
    if len(data) > MAX_ZIP_BYTES:
        raise WeightsError(f"{zip_name} is {len(data) // 2**20} MB: larger than any model's zip can be.")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise WeightsError(f"{zip_name} is not a readable zip file ({str(exc)[:120]}).") from None
    names = [i.filename for i in infos]
    if len(infos) != 2 or sorted(Path(n).suffix for n in names) != [".json", ".safetensors"]:
        shown = ", ".join(repr(n[:60]) for n in names[:5]) + (" …" if len(names) > 5 else "")
        raise WeightsError(f"{zip_name} must hold exactly two files, one .safetensors and one .json "
                           f"(the download of the Train page); it holds {len(names)}: {shown or 'nothing'}.")
    for info in infos:
        if not _plain_name(info.filename) or info.is_dir():
            raise WeightsError(f"{zip_name} holds {info.filename[:60]!r}: only plain file names, no folders "
                               f"or '..', are accepted.")
        if info.flag_bits & 0x1:
            raise WeightsError(f"{zip_name} is encrypted: upload the zip the Train page made.")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise WeightsError(f"{zip_name} uses a compression this app does not read (stored or deflated only).")
        cap = MAX_CARD_BYTES if info.filename.endswith(".json") else MAX_WEIGHTS_BYTES
        if info.file_size > cap:
            raise WeightsError(f"{info.filename} in {zip_name} unpacks to {info.file_size // 2**20} MB: "
                               f"larger than a model's file can be.")
    found = {}
    for info in infos:
        cap = MAX_CARD_BYTES if info.filename.endswith(".json") else MAX_WEIGHTS_BYTES
        try:
            with zf.open(info) as f:
                content = f.read(cap + 1)  # bounded even if the directory lies about the size
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
            raise WeightsError(f"{info.filename} in {zip_name} cannot be unpacked ({str(exc)[:120]}).") from None
        if len(content) > cap:
            raise WeightsError(f"{info.filename} in {zip_name} is larger than a model's file can be.")
        found[info.filename] = content
    return found


def read_upload(files: list[tuple[str, bytes]]) -> tuple[str, bytes, bytes]:
    """(weights file name, weights bytes, card bytes) from what a user uploaded: one model .zip,
    or its .safetensors and .json side by side."""
    if not files:
        raise WeightsError("Nothing was uploaded.")
    for name, data in files:
        if len(data) > MAX_UPLOAD_BYTES:
            raise WeightsError(f"{name[:60]} is {len(data) // 2**20} MB: larger than any model's file can be.")
    if len(files) == 1 and files[0][0].lower().endswith(".zip"):
        files = list(unpack_zip(files[0][1], files[0][0][:60]).items())
    by_suffix: dict[str, list[tuple[str, bytes]]] = {}
    for name, data in files:
        by_suffix.setdefault(Path(name).suffix.lower(), []).append((name, data))
    if len(files) != 2 or len(by_suffix.get(".safetensors", [])) != 1 or len(by_suffix.get(".json", [])) != 1:
        raise WeightsError("Upload a model's .zip (the Train page's download) or its two files together: "
                           "one .safetensors with the weights and one .json with its card.")
    (weights_name, weights), (_, card) = by_suffix[".safetensors"][0], by_suffix[".json"][0]
    return weights_name, weights, card


def load_upload(files: list[tuple[str, bytes]]) -> UploadedModel:
    """An uploaded model pair, checked and loaded in memory, or a WeightsError saying why not."""
    weights_name, weights, card_bytes = read_upload(files)
    where = Path(weights_name).name[:80] or "the weights"
    model, card = load_model_from_bytes(weights, card_bytes, where)
    config = model.config
    if config.arch not in UPLOAD_ARCHS:
        raise WeightsError(f"{where} is a {config.arch} model: the pages use only the ff and cnn autoencoders.")
    name = card.get("name") if isinstance(card.get("name"), str) else Path(where).stem
    if not MODEL_NAME.fullmatch(name or ""):
        name = "uploaded-model"
    digest = hashlib.sha256(weights + json.dumps(config.to_dict(), sort_keys=True).encode()).hexdigest()
    return UploadedModel(name=name, path=None, arch=config.arch, latent_dim=config.latent_dim, shipped=False,
                         card=card, model=model, digest=digest)
