"""The codec: digit images -> a few bytes -> digit images, with a rate-distortion autoencoder,
integer probability tables and constriction's range coder.

Payload formats, version 2 (all integers big-endian):

  single digit   [1ppp cccc][cccc cccc][body]     header = 2 bytes: point id p (0-7), 12-bit check c
  container      [0100 pppp][count:LEB128][crc32:4][body]
  0010 / 0011    the first nibble of format version 1's single and container tags: refused with
                 a message that says so (version 1 payloads do not decode here)

The single digit's check is a CRC-12 (polynomial x^12+x^11+x^3+x^2+x+1, 0x80F) of the model's
fingerprint (8 bytes of a sha256 over its weights and tables), the body and the 4-bit code,
sent right after the code: code and check are then one stretch of the codeword, so any change
within 12 consecutive bits of it (any changed byte of the body, either header byte while the
point stays the same) is always detected. A first byte changed to name another shipped point is
checked against that point's fingerprint (passing at random once in 4,096) and then by the
canonical re-encode below, which has refused every such case tried. The container's CRC-32
covers the fingerprint, the header bytes before it and the body. A payload made by another
model, even one with the same id, fails the check. The body is constriction's range-coder output for the latent symbols
(per latent dimension, one integer frequency table stored with the weights, rescaled in integers
to the coder's 24-bit table, `coder_table`, which the coder's models hold exactly), cut to the
shortest byte prefix that still decodes to the same symbols when zero-padded to whole 32-bit
words. That cut is deterministic and the decoder re-encodes what it decoded and insists on the
same bytes, so every payload has exactly one valid form. A container codes all its digits in
one stream, paying the coder's termination once; its body is not cut (whole 32-bit words: at
most 3 bytes for the whole container, and no search of several decodes). The symbols go in
chunk-major order: digits in chunks of CHUNK_DIGITS (the last one shorter), dimension-major
within a chunk (all of dimension 0 for the chunk's digits, then dimension 1, ...), so a decoder
works through any count with memory for one chunk; a container of up to CHUNK_DIGITS digits is
one chunk.

Decoding costs are bounded before any work: the caller caps the digit count (`max_digits`), and
a container whose body is too short to hold its count (each digit takes at least
`PointCoder.min_bits_per_digit` under the tables) is refused from its length alone. The
canonical check runs over the whole body before the first image is reconstructed, so nothing
is ever returned from a payload that turns out invalid.

The pixels come from the point's integer decoder (`ae.integer_decoder`): integer arithmetic,
so the sender's preview and every receiver, on any CPU, thread count or GPU, get the same bytes.
Receiving imports no PyTorch: a point's coder is built from its files with numpy
(`PointCoder.from_files`); only the sender's encoder (`PointCoder.symbols`) loads the float model.

A refined point (`ae.refined_coder`, rd-q5) is coded the same way, with 784 residual symbols
after each digit's latents (each chunk: the latents, then the residuals context by context).

Every size the project reports is `len(payload)`, header included.
"""
from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

import constriction
import numpy as np

from ae.config import ALPHABET, MAX_SYMBOL, TABLE_BITS
from ae.errors import AEError, WeightsError
from ae.images import NotDigitImages, as_digit_array, as_image_batch as images_as_batch, from_uint8
from ae.integer_decoder import IntegerDecoder, IntegerDecoderError, tables_path
from ae.registry import MAX_POINT_ID, OperatingPoint, operating_points, point_id_problem
from ae.weights import MAX_WEIGHTS_BYTES, load_arrays, load_model

if TYPE_CHECKING:
    import torch

FORMAT_VERSION = 2
SINGLE_HEADER_BYTES = 2
SINGLE_CODE = 0x8  # first nibble 1ppp: a single digit of point ppp
CONTAINER_CODE = 0x4  # first nibble 0100: a container, point id in the second nibble
VERSION_1_CODES = (0x2, 0x3)  # version 1's tags began 001x
CRC12_POLY = 0x80F  # CRC-12: x^12 + x^11 + x^3 + x^2 + x + 1
MAX_CONTAINER_DIGITS = 1 << 20  # what the header allows; callers choose a lower max_digits
DEFAULT_MAX_DIGITS = 100_000  # decompress's default cap (the CLI's --max-digits default)
CHUNK_DIGITS = 1024  # digits per chunk of a container's symbol order (and per decoding step)
FINGERPRINT_BYTES = 8
TRIM_SEARCH_BYTES = 8  # at most this many trailing bytes are trimmed
# A range coder's output can fall short of the symbols' information content by at most its
# 64-bit state; 96 bits leave a margin.
TERMINATION_SLACK_BITS = 96
CODER_PRECISION = 24  # bits of the fixed-point tables of constriction's default range coder
# Point ids that shipped once and were replaced: their payloads get a message in words. An id is
# never reused for another model (the check would refuse its payloads, but say less).
RETIRED_POINTS = {
    1: "the feedforward rd-q1 (~10 B per digit), replaced in codec v2 by a convolutional rd-q1 (id 7)",
    2: "the feedforward rd-q2 (~22 B per digit), replaced in codec v2 by a convolutional rd-q2 (id 6)",
    3: "the feedforward rd-q3 (~39 B per digit), replaced in codec v2 by a convolutional rd-q3 (id 5)",
}


class CodecError(AEError):
    """A payload is corrupt, truncated, foreign or made by another model; or an input can't be coded."""


def _no_longer_decoded(made_by: str) -> CodecError:
    """The error for a payload this version refuses by design (an old format, a retired point)."""
    return CodecError(f"This payload was made by {made_by}, which this version no longer decodes: ask the "
                      f"sender to send the digit again with the current app or `python -m ae compress`.")


@dataclass
class Decoded:
    pixels: np.ndarray  # (N,28,28) uint8, the integer decoder's output
    point: str
    symbols: np.ndarray  # (N,D) int32, the decoded latents
    start: int = 0  # index of the first digit (a chunk of `PayloadReader.chunks`)

    @property
    def images(self) -> torch.Tensor:
        """(N,1,28,28) float32 tensor, pixels / 255: for the sender's side (imports PyTorch)."""
        return _as_tensor(self.pixels)


# ----------------------------------------------------------------------------------------------
# Operating points (the registry reads their cards) by name or quality
# ----------------------------------------------------------------------------------------------

def find_point(name_or_quality: str | int, family: str = "rd") -> OperatingPoint:
    """'rd-q2', or a quality number (2 -> 'rd-q2' of the family), among `registry.operating_points()`."""
    points = operating_points()
    wanted = f"{family}-q{name_or_quality}" if isinstance(name_or_quality, int) else name_or_quality
    for p in points:
        if p.name == wanted:
            return p
    known = ", ".join(p.name for p in points) or "none (weights/ holds no codec cards)"
    raise CodecError(f"Unknown operating point {wanted!r}; known: {known}.")


# ----------------------------------------------------------------------------------------------
# The coder's tables: integers all the way into constriction
# ----------------------------------------------------------------------------------------------

def coder_table(frequencies: np.ndarray) -> np.ndarray:
    """(D, A) frequencies, each >= 1, rows summing to 2**TABLE_BITS -> (D, A) int64 probabilities
    of the range coder, rows summing to 2**CODER_PRECISION: each symbol gets 1 plus its share of
    the other 2**24 - A, rounded down cumulatively (left edge of symbol k:
    floor(C_k * (2**24 - A) / 2**TABLE_BITS) + k, C_k the frequencies before k). That is the
    rescaling constriction 0.5 applies to these integers given as floats, which it computes
    exactly (every product is an integer below 2**53), so payloads keep their bytes; here it is
    integer arithmetic, whatever a constriction version does with floats."""
    f = np.asarray(frequencies, dtype=np.int64)
    cumulative = np.concatenate([np.zeros((len(f), 1), np.int64), np.cumsum(f, axis=1)], axis=1)
    left = ((cumulative * ((1 << CODER_PRECISION) - f.shape[1])) >> TABLE_BITS) + np.arange(f.shape[1] + 1)
    return np.diff(left, axis=1)


def categorical(probabilities: np.ndarray):
    """A constriction model whose fixed-point table is exactly `probabilities` (a `coder_table`
    row). Its fast quantisation gives symbol k the left edge floor(c_k * scale) + k, with c_k the
    sum of the floats before k and scale = (2**24 - A) / (sum of the floats). Given the integers
    probabilities - 1 as floats, that sum is 2**24 - A, the scale exactly 1, every partial sum an
    exact float64 integer, and so each left edge the integers' own: constriction takes the table
    over unchanged (tests/test_receiver.py reads it back symbol by symbol through the decoder)."""
    return constriction.stream.model.Categorical((np.asarray(probabilities) - 1).astype(np.float64), perfect=False)


def _numpy_state(model: torch.nn.Module) -> dict[str, np.ndarray]:
    return {key: tensor.detach().cpu().contiguous().numpy() for key, tensor in model.state_dict().items()}


def _as_tensor(pixels: np.ndarray) -> torch.Tensor:
    """(N,28,28) uint8 -> (N,1,28,28) float32 tensor, pixels / 255: for the sender's side."""
    import torch

    return from_uint8(torch.from_numpy(pixels[:, None]))


def fingerprint_of(state: dict[str, np.ndarray]) -> bytes:
    """8 bytes of the sha256 over a model's tensors (name, then bytes), in name order: float32
    weights as a loaded model holds them, whatever the file stores."""
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(state[key]).tobytes())
    return digest.digest()[:FINGERPRINT_BYTES]


# ----------------------------------------------------------------------------------------------
# A loaded operating point: integer tables + constriction models + integer decoder (+ the model)
# ----------------------------------------------------------------------------------------------

class PointCoder:
    """Everything needed to code with one model: its integer probability tables, the range
    coder's models, its fingerprint and its integer decoder. Built from a loaded model, so tests
    can code with a model that exists only in memory; or, without PyTorch, from a point's files
    (`from_files`), which loads the float model only when the sender's encoder needs it."""

    def __init__(self, model: torch.nn.Module, point_id: int, name: str):
        if not hasattr(model, "prior") or not model.prior.ready:
            raise CodecError(f"{name} has no integer probability tables: run its update() step first.")
        state = _numpy_state(model)
        try:
            decoder = IntegerDecoder.from_layers(model.decoder_layers())
        except (IntegerDecoderError, ValueError) as exc:
            raise CodecError(f"{name}'s decoder has no integer form: {exc}") from None
        self._set_tables(point_id, name, state, decoder)
        self._model, self._model_path = model.eval(), None

    @classmethod
    def from_files(cls, point: OperatingPoint) -> PointCoder:
        """The coder of a shipped point from its weights file (read with numpy: tables and
        fingerprint) and its integer decoder file, without PyTorch."""
        try:
            state, card = load_arrays(point.path)
        except WeightsError as exc:
            raise CodecError(f"Cannot load operating point {point.name}: {exc}") from None
        if not np.any(state.get("prior.frequencies", 0)):
            raise CodecError(f"{point.name} has no integer probability tables: run its update() step first.")
        coder = cls.__new__(cls)
        coder._set_tables(point.id, point.name, state, _integer_decoder_of(point, card))
        coder._model, coder._model_path = None, point.path
        return coder

    def _set_tables(self, point_id: int, name: str, state: dict[str, np.ndarray], decoder: IntegerDecoder) -> None:
        if why := point_id_problem(point_id):
            raise CodecError(f"{name}: {why}.")
        self.id, self.name = point_id, name
        self.frequencies = np.asarray(state["prior.frequencies"]).astype(np.int64)  # (D, A)
        self.dims = len(self.frequencies)
        if (self.dims < 1 or self.frequencies.shape != (self.dims, ALPHABET) or self.frequencies.min() < 1
                or np.any(self.frequencies.sum(1) != 1 << TABLE_BITS) or decoder.latent_dim != self.dims):
            raise CodecError(f"{name}'s integer tables are malformed (each row: {ALPHABET} frequencies >= 1 "
                             f"summing to 2**{TABLE_BITS}, one per latent of its decoder).")
        self.table = coder_table(self.frequencies)  # (D, A), rows summing to 2**CODER_PRECISION
        self.categoricals = [categorical(row) for row in self.table]
        self.fingerprint = self.weights_fingerprint = fingerprint_of(state)
        self.decoder = decoder
        # The fewest bits any digit can take: every dimension at its most probable symbol.
        top = self.table.max(1) / float(1 << CODER_PRECISION)
        self.min_bits_per_digit = max(float(-np.log2(top).sum()), 1e-3)

    @property
    def model(self) -> torch.nn.Module:
        """The float model (PyTorch): the sender's encoder. Loaded on first use by a coder made
        with `from_files`, and refused unless it is the model of these tables."""
        if self._model is None:
            try:
                model = load_model(self._model_path)
            except WeightsError as exc:
                raise CodecError(f"Cannot load operating point {self.name}: {exc}") from None
            if fingerprint_of(_numpy_state(model)) != self.weights_fingerprint:
                raise CodecError(f"The weights of {self.name} changed since it was loaded: load it again.")
            self._model = model
        return self._model

    # -- latents <-> symbols ----------------------------------------------------------------
    def symbols(self, images: torch.Tensor, refinement=None) -> np.ndarray:
        """(N,1,28,28) -> (N,D) int32 symbols (the rounded, clamped latents), a chunk at a time.
        An active `ae.latent_refinement.Refinement` optimises them per digit first (slower)."""
        import torch

        model = self.model
        if refinement is not None and refinement.active:
            from ae.latent_refinement import refine_symbols

            with _bounded_memory(f"refine {len(images):,} digits"):
                return refine_symbols(self, images, refinement)
        with _bounded_memory(f"encode {len(images):,} digits"), torch.no_grad():
            return np.concatenate([model.encode(part).to(torch.int32).numpy()
                                   for part in images.split(CHUNK_DIGITS)])

    def pixels(self, symbols: np.ndarray) -> np.ndarray:
        """(N,D) symbols -> (N,28,28) uint8 pixels from the integer decoder: the same everywhere."""
        return self.decoder.pixels(np.asarray(symbols))

    def images(self, symbols: np.ndarray) -> torch.Tensor:
        """The pixels as a (N,1,28,28) float32 tensor (k/255), for the sender's side."""
        return _as_tensor(self.pixels(symbols))

    # -- entropy coding ----------------------------------------------------------------------
    def encode_stream(self, symbols: np.ndarray, trim: bool = True) -> bytes:
        """(N,D) symbols -> the range-coder bytes (chunk-major, see the module docstring), cut
        to the shortest decodable prefix when `trim` (single digits: it saves ~2 of their
        ~20-40 bytes; a container keeps whole words, as the search costs several full decodes)."""
        shifted = symbols.astype(np.int32) + MAX_SYMBOL
        encoder = constriction.stream.queue.RangeEncoder()
        for start in range(0, len(shifted), CHUNK_DIGITS):
            self._encode_chunk(encoder, shifted[start:start + CHUNK_DIGITS])
        full = encoder.get_compressed().astype(">u4").tobytes()
        return _shortest_prefix(full, lambda body: self._decodes_to(body, shifted)) if trim else full

    def _encode_chunk(self, encoder, shifted: np.ndarray) -> None:
        for d, model in enumerate(self.categoricals):
            encoder.encode(np.ascontiguousarray(shifted[:, d]), model)

    def decode_chunks(self, body: bytes, count: int) -> Iterator[np.ndarray]:
        """The (n,D) shifted symbols of each chunk of `count` digits, as the range decoder reads
        them from `body` (zero-padded to whole words). No validity check: see verify_stream."""
        words = np.frombuffer(body + bytes(-len(body) % 4), dtype=">u4").astype(np.uint32)
        decoder = constriction.stream.queue.RangeDecoder(words)
        for start in range(0, count, CHUNK_DIGITS):
            yield self._decode_chunk(decoder, min(CHUNK_DIGITS, count - start))

    def _decode_chunk(self, decoder, n: int) -> np.ndarray:
        out = np.empty((n, self.dims), dtype=np.int32)
        for d, model in enumerate(self.categoricals):
            out[:, d] = decoder.decode(model, n)
        return out

    def verify_stream(self, body: bytes, count: int, trim: bool = True) -> np.ndarray | None:
        """Raise CodecError unless `body` is exactly what encode_stream writes for the `count`
        digits it decodes to. Decodes and re-encodes a chunk at a time: memory O(chunk + body).
        Returns the (count, D) shifted symbols when they are one chunk (so the reader need not
        decode them again), else None."""
        encoder = constriction.stream.queue.RangeEncoder()
        decoded = []
        try:
            for shifted in self.decode_chunks(body, count):
                self._encode_chunk(encoder, shifted)
                if trim or count <= CHUNK_DIGITS:  # the trimmed form needs its symbols again
                    decoded.append(shifted)
        except MemoryError:
            raise
        except Exception as exc:  # constriction rejects some impossible streams outright
            raise CodecError(f"The payload body does not decode ({exc}).") from None
        if trim:
            again = self.encode_stream(np.concatenate(decoded) - MAX_SYMBOL, trim=True)
        else:
            again = encoder.get_compressed().astype(">u4").tobytes()
        if again != body:
            raise CodecError("The payload body is not a valid encoding (corrupt or truncated).")
        return decoded[0] if count <= CHUNK_DIGITS else None

    def _decodes_to(self, body: bytes, shifted: np.ndarray) -> bool:
        try:
            return bool(np.array_equal(np.concatenate(list(self.decode_chunks(body, len(shifted)))), shifted))
        except Exception:
            return False

    def max_digits_in(self, body_bytes: int) -> int:
        """The most digits a container body of this many bytes can possibly hold."""
        return int((8 * body_bytes + TERMINATION_SLACK_BITS) // self.min_bits_per_digit)

    def estimated_bits(self, symbols: np.ndarray) -> np.ndarray:
        """Information content of each digit's symbols under the coder's tables (no overhead)."""
        prob = np.take_along_axis(self.table, (np.asarray(symbols).astype(np.int64) + MAX_SYMBOL).T, axis=1).T
        return (CODER_PRECISION - np.log2(prob)).sum(1)


def _shortest_prefix(full: bytes, decodes) -> bytes:
    """Drop bytes from the end of the coder's output while what is left still decodes correctly
    once zero-padded to whole words: for each shorter length, try the plain prefix, then the
    prefix plus one in its last byte (still a point inside the coder's final interval).
    Deterministic in the symbols, which is what lets the decoder insist on this exact form."""
    best = full
    for length in range(len(full) - 1, max(-1, len(full) - 1 - TRIM_SEARCH_BYTES), -1):
        prefix = best[:length]
        if decodes(prefix):
            best = prefix
            continue
        bumped = int.from_bytes(prefix, "big") + 1
        if length and bumped < 1 << (8 * length):
            candidate = bumped.to_bytes(length, "big")
            if decodes(candidate):
                best = candidate
                continue
        break
    return best


def _integer_decoder_of(point: OperatingPoint, card: dict) -> IntegerDecoder:
    """The point's integer decoder tables, checked against the sha256 its card records and tied
    to the weights the card describes."""
    path = tables_path(point.path)
    redo = f"run `python -m ae export-integer {point.name}`"
    try:
        if path.stat().st_size > MAX_WEIGHTS_BYTES:
            raise CodecError(f"{path.name} is far larger than integer tables: {redo}.")
        data = path.read_bytes()
    except FileNotFoundError:
        raise CodecError(f"{point.name} has no integer decoder ({path.name}): {redo}.") from None
    except OSError as exc:
        raise CodecError(f"{path.name} cannot be read ({exc.strerror or type(exc).__name__}).") from None
    recorded = card.get("integer_decoder")
    if not isinstance(recorded, dict) or recorded.get("sha256") != hashlib.sha256(data).hexdigest():
        raise CodecError(f"{path.name} does not match the sha256 in {point.name}'s card: {redo}.")
    try:
        decoder, made_from = IntegerDecoder.from_bytes(data)
    except IntegerDecoderError as exc:
        raise CodecError(f"{path.name} is not usable ({exc}): {redo}.") from None
    if made_from != card.get("sha256"):
        raise CodecError(f"{path.name} was made from other weights than {point.name}'s: {redo}.")
    return decoder


def _residual_block(point: OperatingPoint):
    block = point.card.get("codec")
    return block.get("residual") if isinstance(block, dict) else None


@lru_cache(maxsize=16)
def _coder_for(point: OperatingPoint) -> PointCoder:
    # Keyed by the point, whose stamp changes with its files: a retrained point is loaded again.
    residual = _residual_block(point)
    if residual is None:
        return PointCoder.from_files(point)
    from ae.refined_coder import refined_from_card  # a refined point (ae.refined_coder)

    return refined_from_card(_base_coder_of(point), residual, point)


def _base_coder_of(refined: OperatingPoint) -> PointCoder:
    """A refined point's base coder. Its files are a copy of its base point's: when that point is
    shipped with the same weights and tables (the same sha256s in the cards), its coder is shared,
    so a server holds one copy of the decoder and model, not two."""
    def same(p: OperatingPoint) -> tuple:
        tables = p.card.get("integer_decoder")
        return p.card.get("sha256"), tables.get("sha256") if isinstance(tables, dict) else None

    files = same(refined)
    for other in operating_points():
        if files[0] and other != refined and _residual_block(other) is None and same(other) == files:
            return _coder_for(other)
    return PointCoder.from_files(refined)


def get_coder(point: str | int | OperatingPoint | PointCoder) -> PointCoder:
    """The coder of a point given by name, quality number or OperatingPoint (loaded once)."""
    if isinstance(point, PointCoder):
        return point
    if not isinstance(point, OperatingPoint):
        point = find_point(point)
    return _coder_for(point)


# ----------------------------------------------------------------------------------------------
# Public API: images <-> bytes
# ----------------------------------------------------------------------------------------------

def as_image_batch(images) -> torch.Tensor:
    """`ae.images.as_image_batch`, refusing what it refuses with the codec's own CodecError."""
    try:
        return images_as_batch(images)
    except NotDigitImages as exc:
        raise CodecError(str(exc)) from None


def _crc12_step(reg: int, bit: int) -> int:
    """One bit into the CRC-12 register (MSB first)."""
    feedback = ((reg >> 11) ^ bit) & 1
    reg = (reg << 1) & 0xFFF
    return reg ^ CRC12_POLY if feedback else reg


def _crc12_table() -> list[int]:
    """The register after eight zero bits from each value of its top byte."""
    table = []
    for byte in range(256):
        reg = byte << 4
        for _ in range(8):
            reg = _crc12_step(reg, 0)
        table.append(reg)
    return table


_CRC12 = _crc12_table()


def crc12(data: bytes, tail_bits: int = 0, tail_len: int = 0) -> int:
    """CRC-12 of `data` followed by the `tail_len` low bits of `tail_bits` (MSB first): the
    remainder of the message times x^12, so message and check together form a CRC codeword."""
    reg = 0
    for byte in data:
        reg = ((reg << 8) & 0xFFF) ^ _CRC12[((reg >> 4) ^ byte) & 0xFF]
    for i in range(tail_len - 1, -1, -1):
        reg = _crc12_step(reg, tail_bits >> i)
    return reg


def _single_check(coder: PointCoder, body: bytes) -> int:
    return crc12(coder.fingerprint + body, SINGLE_CODE | coder.id, 4)


def _leb128(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def compress_symbols(symbols: np.ndarray, coder: PointCoder, container: bool | None = None) -> bytes:
    """(N,D) symbols -> payload. One digit -> the single-digit format unless container=True."""
    symbols = np.asarray(symbols, dtype=np.int32)
    if container is None:
        container = len(symbols) > 1
    if not container and len(symbols) != 1:
        raise CodecError("The single-digit format holds exactly one digit.")
    if len(symbols) > MAX_CONTAINER_DIGITS:
        raise CodecError(f"At most {MAX_CONTAINER_DIGITS:,} digits fit in one container.")
    with _bounded_memory(f"encode {len(symbols):,} digits"):
        body = coder.encode_stream(symbols, trim=not container)
    return frame(coder, body, len(symbols), container)


def frame(coder: PointCoder, body: bytes, count: int, container: bool) -> bytes:
    """Header and check around a coded body: the one place the framing is written. (Tests and
    scripts/hostile_inputs.py frame crafted bodies with it: the check protects against damage,
    not forgery, since the fingerprint comes from public weights.)"""
    if container:
        head = bytes([(CONTAINER_CODE << 4) | coder.id]) + _leb128(count)
        return head + zlib.crc32(coder.fingerprint + head + body).to_bytes(4, "big") + body
    header = ((SINGLE_CODE | coder.id) << 12) | _single_check(coder, body)
    return header.to_bytes(2, "big") + body


def compress(images, point: str | int | OperatingPoint | PointCoder = "rd-q2",
             container: bool | None = None, refinement=None) -> bytes:
    """Digit image(s) -> payload bytes. One image -> the compact single-digit payload; several
    -> one container (or pass container=True/False explicitly). `refinement`
    (`ae.latent_refinement.Refinement`) optimises the symbols at encode time; any receiver
    decodes the result as usual."""
    coder = get_coder(point)
    return compress_symbols(coder.symbols(as_image_batch(images), refinement), coder, container)


def parse_header(payload: bytes) -> tuple[int, bool, int, int]:
    """-> (point id, is container, digit count, header length). Checks only the layout."""
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise CodecError(f"A payload is bytes, got {type(payload).__name__}.")
    payload = bytes(payload)
    if len(payload) < SINGLE_HEADER_BYTES:
        raise CodecError(f"The payload is {len(payload)} bytes: too short to be a digit payload.")
    code = payload[0] >> 4
    if code & SINGLE_CODE:
        return code & MAX_POINT_ID, False, 1, SINGLE_HEADER_BYTES
    if code in VERSION_1_CODES:
        raise _no_longer_decoded("format version 1 (the codec before version 2)")
    if code != CONTAINER_CODE:
        raise CodecError(f"Not a digit payload of format version {FORMAT_VERSION} "
                         f"(first byte 0x{payload[0]:02x}).")
    point_id = payload[0] & 0x0F
    count, shift, pos = 0, 0, 1
    while True:
        if pos >= len(payload) or shift > 20:
            raise CodecError("The container header is truncated or its digit count is malformed.")
        byte = payload[pos]
        count |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            break
    if not 2 <= count <= MAX_CONTAINER_DIGITS or _leb128(count) != payload[1:pos]:
        raise CodecError("The container's digit count is invalid.")
    if len(payload) < pos + 4:
        raise CodecError("The container header is truncated.")
    return point_id, True, count, pos + 4


@contextmanager
def _bounded_memory(what: str):
    """Turn a failed allocation (Python's MemoryError, torch's allocator RuntimeError) into the
    codec's error, so a payload too big for this machine ends with a message, not a traceback."""
    try:
        yield
    except MemoryError:
        raise CodecError(f"Not enough memory to {what}.") from None
    except RuntimeError as exc:
        if "alloc" not in str(exc).lower() and "memory" not in str(exc).lower():
            raise
        raise CodecError(f"Not enough memory to {what}.") from None


@dataclass
class PayloadReader:
    """A payload whose header, length, integrity and canonical form are checked: `chunks()`
    reconstructs its digits CHUNK_DIGITS at a time. Made by `open_payload`."""
    coder: PointCoder
    count: int
    container: bool
    body: bytes = field(repr=False)
    checked: np.ndarray | None = field(default=None, repr=False)  # shifted symbols the check decoded (one chunk)

    @property
    def point(self) -> str:
        return self.coder.name

    def chunks(self) -> Iterator[Decoded]:
        """Decoded digits in order, one chunk at a time (`Decoded.start` is the first's index)."""
        start = 0
        chunks = [self.checked] if self.checked is not None else self.coder.decode_chunks(self.body, self.count)
        for shifted in chunks:
            symbols = shifted - MAX_SYMBOL
            with _bounded_memory(f"reconstruct {len(symbols):,} digits"):
                pixels = self.coder.pixels(symbols)
            yield Decoded(pixels=pixels, point=self.coder.name, symbols=symbols, start=start)
            start += len(symbols)


def _coder_for_id(point_id: int, coders: list[PointCoder] | None) -> PointCoder:
    if coders is None:
        by_id = {p.id: p for p in operating_points()}
        if point_id not in by_id:
            if point_id in RETIRED_POINTS:
                raise _no_longer_decoded(RETIRED_POINTS[point_id])
            raise CodecError(f"The payload names operating point {point_id}, which this decoder does not have "
                             f"(known: {sorted(by_id) or 'none'}).")
        return get_coder(by_id[point_id])
    matches = [c for c in coders if c.id == point_id]
    if not matches:
        raise CodecError(f"The payload names operating point {point_id}, which this decoder does not have.")
    return matches[0]


def open_payload(payload: bytes, coders: list[PointCoder] | None = None,
                 max_digits: int = DEFAULT_MAX_DIGITS) -> PayloadReader:
    """Check a payload (cheapest checks first: header, digit count against `max_digits` and
    against the body's length, CRC, then the canonical form, which decodes the symbols once
    without reconstructing) and return a reader for its digits. Raises CodecError on anything
    corrupt, truncated, foreign, too large, or made by a model this decoder does not have.
    `coders` replaces the shipped operating points."""
    point_id, container, count, header_len = parse_header(payload)
    if count > max_digits:
        raise CodecError(f"The payload holds {count:,} digits, more than the {max_digits:,} this receiver "
                         f"accepts.")
    payload = bytes(payload)
    coder = _coder_for_id(point_id, coders)
    head, body = payload[:header_len], payload[header_len:]
    if container and count > coder.max_digits_in(len(body)):
        raise CodecError(f"The container claims {count:,} digits, but its {len(body):,}-byte body can hold at "
                         f"most {coder.max_digits_in(len(body)):,} at {coder.name}: it is corrupt or truncated.")
    if container:
        intact = head[-4:] == zlib.crc32(coder.fingerprint + head[:-4] + body).to_bytes(4, "big")
    else:
        intact = int.from_bytes(head, "big") & 0xFFF == _single_check(coder, body)
    if not intact:
        raise CodecError(f"Integrity check failed: the payload is corrupt or truncated, or was made by "
                         f"another model than {coder.name}.")
    with _bounded_memory(f"check {count:,} digits"):
        checked = coder.verify_stream(body, count, trim=not container)
    return PayloadReader(coder=coder, count=count, container=container, body=body, checked=checked)


def decompress(payload: bytes, coders: list[PointCoder] | None = None,
               max_digits: int = DEFAULT_MAX_DIGITS) -> Decoded:
    """Payload -> all its decoded digits at once (`open_payload(...).chunks()` streams them
    instead). Raises CodecError as open_payload does, or when the result does not fit in memory."""
    reader = open_payload(payload, coders, max_digits)
    with _bounded_memory(f"hold {reader.count:,} decoded digits"):
        pixels = np.empty((reader.count, 28, 28), dtype=np.uint8)
        symbols = np.empty((reader.count, reader.coder.dims), dtype=np.int32)
    for part in reader.chunks():
        pixels[part.start:part.start + len(part.pixels)] = part.pixels
        symbols[part.start:part.start + len(part.pixels)] = part.symbols
    return Decoded(pixels=pixels, point=reader.point, symbols=symbols)


def payload_info(payload: bytes) -> dict:
    """What a payload's header says (for display), without decoding it."""
    point_id, container, count, header_len = parse_header(payload)
    return {"bytes": len(payload), "header_bytes": header_len, "point_id": point_id,
            "container": container, "digits": count}


# ----------------------------------------------------------------------------------------------
# What the app sends and receives: bytes beside what they decode to
# ----------------------------------------------------------------------------------------------

@dataclass
class Payload:
    point: str
    data: bytes
    decoded: np.ndarray  # (N,28,28) float32, what the receiver gets

    @property
    def size(self) -> int:
        return len(self.data)


def compress_digit(digit, point: str | int | OperatingPoint | PointCoder) -> Payload:
    """One digit -> its payload, decoded again with the point's own coder, so the size shown
    belongs to a payload that works (and no other point's card is consulted to decode it)."""
    coder = get_coder(point)
    data = compress(as_digit_array(digit), coder)
    return _payload(data, decompress(data, coders=[coder]))


def receive(data: bytes, max_digits: int = DEFAULT_MAX_DIGITS) -> Payload:
    """What a receiver does with payload bytes: check and decode them (CodecError on anything
    not a payload of a shipped point, or holding more than `max_digits` digits)."""
    return _payload(bytes(data), decompress(bytes(data), max_digits=max_digits))


def _payload(data: bytes, decoded: Decoded) -> Payload:
    return Payload(point=decoded.point, data=bytes(data), decoded=from_uint8(decoded.pixels))


__all__ = ["CodecError", "Decoded", "PointCoder", "PayloadReader", "Payload", "find_point", "get_coder", "coder_table",
           "compress", "compress_symbols", "decompress", "open_payload", "parse_header", "payload_info",
           "compress_digit", "receive", "as_image_batch", "FORMAT_VERSION", "SINGLE_HEADER_BYTES",
           "CHUNK_DIGITS", "DEFAULT_MAX_DIGITS"]
