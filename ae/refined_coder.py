"""The coder of a refined point: a base point's latent symbols, then a coded residual per pixel
(`ae.residual`). It is a `PointCoder` to everything that codes, frames, checks and decodes
payloads, whose symbols per digit are the base's D latent symbols followed by 784 residual
symbols; its stream codes, chunk by chunk, the latents as the base does and then the residuals
context by context (contexts from the chunk's base pixels, which the decoder has by then).
Numpy and constriction only, as every receiver."""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

import numpy as np

from ae.codec import (CHUNK_DIGITS, CODER_PRECISION, FINGERPRINT_BYTES, CodecError, PointCoder, _bounded_memory, categorical,
                      coder_table)
from ae.config import MAX_SYMBOL
from ae.images import batch_to_uint8
from ae.residual import CONTEXTS, PIXELS, ResidualError, ResidualTables, contexts, quantise, refine

if TYPE_CHECKING:
    import torch


class _Base:
    """One chunk's base pixels (read-only) and, once asked for, their contexts and coding order."""

    def __init__(self, pixels: np.ndarray):
        pixels.flags.writeable = False
        self.pixels = pixels
        self._contexts = self._groups = None

    def contexts(self) -> np.ndarray:
        if self._contexts is None:
            self._contexts = contexts(self.pixels)
        return self._contexts

    def groups(self) -> tuple[np.ndarray, np.ndarray]:
        """The chunk's pixels (flat, digit-major) in coding order, context by context, and how
        many each context has."""
        if self._groups is None:
            ctx = self.contexts().ravel().astype(np.uint8)  # 8-bit keys: numpy radix-sorts them
            self._groups = np.argsort(ctx, kind="stable"), np.bincount(ctx, minlength=CONTEXTS)
        return self._groups


class RefinedPointCoder(PointCoder):
    """`base`'s latents plus `tables`' residual; id, name and files are the point's own (its
    weights file holds the base model)."""

    def __init__(self, base: PointCoder, tables: ResidualTables, point_id: int | None = None, name: str | None = None):
        self.__dict__.update(base.__dict__)  # the base's tables and decoder (PointCoder.__init__ wants a float model)
        if point_id is not None:  # a base shared with another point (ae.codec._base_coder_of) has that point's id
            self.id, self.name = point_id, name or base.name
        self.base, self.residual = base, tables
        self.latent_dims = base.dims
        self.dims = base.dims + PIXELS
        # Both the weights and the residual tables: a payload made with other tables is refused.
        self.fingerprint = hashlib.sha256(base.fingerprint + tables.to_bytes()).digest()[:FINGERPRINT_BYTES]
        self.residual_table = coder_table(tables.frequencies)  # (CONTEXTS, 2R+1), rows sum to 2**24
        self.residual_categoricals = [categorical(row) for row in self.residual_table]
        # Fewest bits a digit can take: the base's, plus each pixel at the likeliest symbol of
        # the context that makes it cheapest.
        cheapest = CODER_PRECISION - np.log2(self.residual_table.max(1).max())
        self.min_bits_per_digit = base.min_bits_per_digit + PIXELS * float(cheapest)
        # Coding a chunk needs its base pixels several times (encode, the canonical check's
        # decode and re-encode, the reconstruction): the last few chunks' are kept, keyed by the latents.
        self._recent_bases: OrderedDict[bytes, _Base] = OrderedDict()
        self._recent_lock = threading.Lock()

    RECENT_BASES = 4

    def _base(self, latents: np.ndarray) -> _Base:
        """The base point's picture of (n,D) unshifted latents, kept for the next few calls."""
        latents = np.ascontiguousarray(latents, dtype=np.int32)
        key = latents.tobytes()  # D values a digit: the length gives the count
        with self._recent_lock:
            found = self._recent_bases.get(key)
            if found is not None:
                self._recent_bases.move_to_end(key)
                return found
        found = _Base(self.base.pixels(latents))
        if len(latents) > CHUNK_DIGITS:  # coding works a chunk at a time: a bigger batch is not asked for again
            return found
        with self._recent_lock:
            self._recent_bases[key] = found
            while len(self._recent_bases) > self.RECENT_BASES:
                self._recent_bases.popitem(last=False)
        return found

    @property
    def model(self) -> torch.nn.Module:
        return self.base.model

    # -- symbols <-> pixels ----------------------------------------------------------------
    def symbols(self, images: torch.Tensor, refinement=None) -> np.ndarray:
        latents = self.base.symbols(images, refinement)
        with _bounded_memory(f"code the residuals of {len(images):,} digits"):
            base = self._base(latents).pixels
            residual = quantise(batch_to_uint8(images), base, self.residual.step, self.residual.deadzone)
        return np.concatenate([latents, residual], axis=1)

    def pixels(self, symbols: np.ndarray) -> np.ndarray:
        symbols = np.asarray(symbols)
        base = self._base(symbols[:, :self.latent_dims]).pixels
        return refine(base, symbols[:, self.latent_dims:], self.residual.step)

    # -- entropy coding: the base's latents, then the residuals context by context ------------
    def _encode_chunk(self, encoder, shifted: np.ndarray) -> None:
        self.base._encode_chunk(encoder, shifted[:, :self.latent_dims])
        order, counts = self._base(shifted[:, :self.latent_dims] - MAX_SYMBOL).groups()
        values = (shifted[:, self.latent_dims:] - MAX_SYMBOL + self.residual.radius).ravel()[order]
        start = 0
        for c, n in enumerate(counts):
            if n:
                encoder.encode(np.ascontiguousarray(values[start:start + n], dtype=np.int32),
                               self.residual_categoricals[c])
                start += n

    def _decode_chunk(self, decoder, n: int) -> np.ndarray:
        latents = self.base._decode_chunk(decoder, n)
        order, counts = self._base(latents - MAX_SYMBOL).groups()
        values = np.empty(n * PIXELS, dtype=np.int32)
        start = 0
        for c, k in enumerate(counts):
            if k:
                values[start:start + k] = decoder.decode(self.residual_categoricals[c], int(k))
                start += k
        residual = np.empty(n * PIXELS, dtype=np.int32)
        residual[order] = values
        shifted = residual.reshape(n, PIXELS) - self.residual.radius + MAX_SYMBOL
        return np.concatenate([latents, shifted], axis=1)

    def estimated_bits(self, symbols: np.ndarray) -> np.ndarray:
        symbols = np.asarray(symbols)
        latents, residual = symbols[:, :self.latent_dims], symbols[:, self.latent_dims:]
        ctx = self._base(latents).contexts()
        prob = self.residual_table[ctx, residual.astype(np.int64) + self.residual.radius]
        return self.base.estimated_bits(latents) + (CODER_PRECISION - np.log2(prob)).sum(1)


def refined_from_card(base: PointCoder, block, point=None) -> RefinedPointCoder:
    """The refined coder of a point (an `OperatingPoint`, else the base's own id and name) whose
    card's codec block has a 'residual' entry."""
    name = point.name if point is not None else base.name
    try:
        tables = ResidualTables.from_card(block)
    except ResidualError as exc:
        raise CodecError(f"{name}'s residual tables are unusable: {exc}.") from None
    return RefinedPointCoder(base, tables, point.id if point is not None else None, name)


def make_refined_point(base_name: str, out_name: str, point_id: int, step: int, deadzone: int, label: str,
                       data_dir=None, limit: int | None = None, command: str = "") -> int:
    """Write weights/OUT: a copy of base point BASE's weights and integer decoder, and a card whose
    codec block adds residual tables fitted on the MNIST train split (the first `limit` digits,
    or all). Returns how many digits the tables were fitted on. The card keeps the base's
    training record and drops its measured figures (remeasure with `benchmark --update-cards`)."""
    from ae.codec import CHUNK_DIGITS, RETIRED_POINTS, find_point, get_coder
    from ae.data import load_digits
    from ae.files import atomic_write_bytes
    from ae.integer_decoder import export_tables
    from ae.registry import is_valid_name, operating_points, point_id_problem
    from ae.residual import fit_frequencies, levels
    from ae.weights import WEIGHTS_DIR, load_card, write_card

    if not is_valid_name(out_name):
        raise CodecError(f"{out_name!r} is not a usable point name (letters, digits, '-' and '_').")
    base_point = find_point(base_name)
    base = get_coder(base_point)
    if isinstance(base, RefinedPointCoder):
        raise CodecError(f"{base_name} is a refined point already: refine its base instead.")
    taken = {p.id: p.name for p in operating_points()}
    if why := point_id_problem(point_id):
        raise CodecError(f"{why.capitalize()}.")
    if point_id in taken or point_id in RETIRED_POINTS:
        whose = f"{taken[point_id]}'s" if point_id in taken else "a retired point's (its payloads get a message)"
        raise CodecError(f"Point id {point_id} is {whose}: ids are never reused for another model.")
    out = WEIGHTS_DIR / f"{out_name}.safetensors"
    if out.exists():
        raise CodecError(f"{out.name} exists: remove it first, or choose another name.")
    data = load_digits("train", data_dir)
    images = data.images if limit is None else data.images[:limit]
    bases, residuals = [], []
    for start in range(0, len(images), CHUNK_DIGITS):
        part = images[start:start + CHUNK_DIGITS]
        latents = base.symbols(part)
        pixels = base.pixels(latents)
        bases.append(pixels)
        residuals.append(quantise(batch_to_uint8(part), pixels, step, deadzone))
    tables = ResidualTables(step, deadzone, fit_frequencies(np.concatenate(bases), np.concatenate(residuals), step))
    assert tables.frequencies.shape == (CONTEXTS, 2 * levels(step) + 1)
    card = load_card(base_point.path)  # a fresh dict, read from the file
    for key in ("metrics", "metrics_data", "metrics_command", "integer_decoder"):
        card.pop(key, None)
    card["codec"] = {"id": point_id, "label": label, "refines": base_point.name, "residual": tables.card_block()}
    card["residual_fit"] = {"data": data.source, "digits": len(images), "command": command}
    atomic_write_bytes(out, base_point.path.read_bytes())
    write_card(out, card)
    export_tables(out)  # the base's integer decoder, recorded in the new card
    return len(images)
