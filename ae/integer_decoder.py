"""The codec's decoder in integer arithmetic: the same pixels on every CPU, thread count and GPU.

After Ballé, Johnston & Minnen, "Integer networks for data compression with latent-variable
models" (ICLR 2019): a decoder whose every operation is exact cannot disagree with itself, where
float arithmetic rounded to 8 bits is only "identical in practice". `IntegerDecoder.from_layers`
converts a trained decoder (`RateDistortionAE.decoder_layers()`) once, at export time:

- weights: round(w * 2**s) with one power-of-two exponent s per layer, the largest that keeps
  every |weight| <= 2**15 - 1 (int16 on disk);
- activations: integers x standing for x * 2**-e, one exponent e per layer. After each ReLU they
  are requantised with a right shift that rounds (its half is folded into the bias): the
  multiplier is 1, as every scale is a power of two;
- convolutions and transposed convolutions: one matrix product each, over K x K patches of the
  (zero-padded, channels-last) input, every patch giving an s x s block of output pixels (s the
  stride; a stride-1 convolution is K = k, s = 1), so no output is a sum of several products;
- biases: int64 at the accumulator's scale;
- output: the last layer's integer logit L (scale 2**-e). Pixel k is the k with
  T_k <= L < T_{k+1}, T_k = ceil(2**e * logit((k - 1/2) / 255)) for k = 1..255: that is
  round(255 * sigmoid(logit)), chosen by comparing integers. The thresholds come from `decimal`
  (correctly rounded logarithms), so the export itself evaluates no platform-dependent function.

The matrix products run in float64 BLAS on integer-valued arrays. A sum of integers is exact in
float64, in any order and grouping (threads, SIMD, FMA, GPU), as long as every partial sum stays
below 2**53 in magnitude. `exactness_bounds` proves that from the integer tables alone, for any
latent symbols in [-MAX_SYMBOL, MAX_SYMBOL]: each partial sum is bounded by the sum of the
absolute values of its terms, which interval arithmetic bounds layer by layer. It runs when the
tables are made and again when a receiver loads them; tables that fail it are refused.

Speed (the same exact integers, computed with less work): activations stay in float64 from layer
to layer, each layer's float64 weights carry its 2**-shift, so requantising is a floor; digits go
in chunks (up to CHUNK_DIGITS, dense layers prefer large products), convolutions in steps of a
few digits whose patch matrices stay in the caches; chunks run on `ae.worker_threads`, and the
pixel levels come from `ae.pixel_levels`' lookup table rather than a binary search.

The receiver reads the tables from `<point>.int.safetensors` beside the weights (`save`/`load`):
integers only, plus a JSON description of the layers. This module imports numpy and safetensors,
never PyTorch.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal, localcontext
from pathlib import Path

import numpy as np

from ae.config import IMAGE_SIDE, MAX_SYMBOL, NUM_PIXELS
from ae.pixel_levels import PixelLevels
from ae.worker_threads import run_all

FORMAT = 1
WEIGHT_LIMIT = (1 << 15) - 1  # |integer weight| <= this: int16 on disk
EXACT_LIMIT = float(1 << 52)  # bound every partial sum by this (< 2**53, with room for the check's own rounding)
PIXEL_LEVELS = 255
CHUNK_DIGITS = 256  # the most digits decoded together (dense layers: the larger the product, the faster)
STEP_BYTES = 4 << 20  # what one chunk's activations, or one convolution step's arrays, may take
METADATA_KEY = "integer_decoder"
SUFFIX = ".int.safetensors"


class IntegerDecoderError(ValueError):
    """Integer tables that are malformed, or that cannot be proven exact."""


class NotProvablyExact(IntegerDecoderError):
    """Tables whose sums could reach 2**53, where float64 stops being exact."""


@dataclass(frozen=True)
class IntegerLayer:
    """One weighted layer: the input times `weight`, plus `bias`; then, in all but the last layer,
    ReLU and a right shift by `shift`. "linear" reads (n, features). "patches" (a convolution or
    a transposed one) reads a channels-last (n, H, W, C) input, zero-padded by `pad`, as K x K
    patches (K = `patch`), each giving an s x s block of output pixels (s = `block`), and drops
    `crop` rows and columns at the top and left to leave `out_shape`."""
    kind: str  # "linear" or "patches"
    weight: np.ndarray  # integers (in, out); patches: rows (u, v, c_in), columns (t, t', c_out)
    bias: np.ndarray  # (out channels,) int64 at the accumulator's scale, plus the shift's rounding half
    shift: int | None  # None for the last layer, whose outputs are the logits
    in_shape: tuple[int, ...] = ()  # patches: (H, W, C_in)
    patch: int = 1
    pad: int = 0
    block: int = 1
    crop: int = 0
    out_shape: tuple[int, ...] = ()  # patches: (H_out, W_out, C_out); linear: (features,)

    def anchors(self) -> tuple[int, int]:
        h, w, _ = self.in_shape
        return h + 2 * self.pad - self.patch + 1, w + 2 * self.pad - self.patch + 1

    def column_bias(self) -> np.ndarray:
        return np.tile(self.bias, self.block ** 2) if self.kind == "patches" else self.bias

    def describe(self) -> dict:
        return {"kind": self.kind, "shift": self.shift, "in_shape": list(self.in_shape), "patch": self.patch,
                "pad": self.pad, "block": self.block, "crop": self.crop, "out_shape": list(self.out_shape)}


@dataclass
class IntegerDecoder:
    layers: list[IntegerLayer]
    logit_exponent: int  # the last layer's output L stands for the logit L * 2**-logit_exponent
    thresholds: np.ndarray = field(repr=False)  # (255,) int64, ascending: pixel k iff T_k <= L < T_{k+1}

    def __post_init__(self):
        self._check_shapes()
        self.bounds = exactness_bounds(self.layers)  # raises unless every sum is provably exact
        # float64 copies of the integer tables for BLAS (exact: every value is below 2**53), each
        # layer's scaled by its shift's 2**-shift: its sums come out as sum * 2**-shift, whose floor
        # is the shifted integer. Exact too: every term and partial sum is an integer multiple of
        # 2**-shift below 2**53 * 2**-shift in magnitude, which float64 holds exactly.
        scales = [2.0 ** -(layer.shift or 0) for layer in self.layers]
        self._weights = [_prepared(layer).astype(np.float64) * k for layer, k in zip(self.layers, scales)]
        self._biases = [layer.column_bias().astype(np.float64) * k for layer, k in zip(self.layers, scales)]
        self._levels = PixelLevels(self.thresholds)
        # Digits per chunk, and per step of each layer within a chunk (`_fitting`).
        self._chunk = _fitting(8 * max(_activation_values(layer) for layer in self.layers))
        self._steps = [CHUNK_DIGITS if layer.kind == "linear" else _fitting(8 * _working_values(layer))
                       for layer in self.layers]

    @property
    def latent_dim(self) -> int:
        return self.layers[0].weight.shape[0]

    # -- decoding ------------------------------------------------------------------------------
    def logits(self, symbols: np.ndarray) -> np.ndarray:
        """(n, D) integer symbols in [-MAX_SYMBOL, MAX_SYMBOL] -> (n, 784) int64 logits, row-major
        pixels, each standing for L * 2**-logit_exponent."""
        return self._decode(symbols, lambda logits: logits.astype(np.int64), np.int64)

    def pixels(self, symbols: np.ndarray) -> np.ndarray:
        """(n, D) symbols -> (n, 28, 28) uint8 pixels, round(255 * sigmoid(logit)) found by
        comparing the integer logits with the integer thresholds (`ae.pixel_levels`)."""
        pixels = self._decode(symbols, self._levels.levels, np.uint8)
        return pixels.reshape(-1, IMAGE_SIDE, IMAGE_SIDE)

    def _decode(self, symbols: np.ndarray, finish, dtype) -> np.ndarray:
        """finish(float64 logits) of every chunk of digits, the chunks spread over the worker threads."""
        symbols = np.asarray(symbols)
        if symbols.ndim != 2 or symbols.shape[1] != self.latent_dim or symbols.dtype.kind not in "iu":
            raise IntegerDecoderError(f"expected (n, {self.latent_dim}) integer symbols, got {symbols.dtype} {symbols.shape}")
        if symbols.size and np.abs(symbols.astype(np.int64)).max() > MAX_SYMBOL:
            raise IntegerDecoderError(f"symbols must lie in [-{MAX_SYMBOL}, {MAX_SYMBOL}]")
        out = np.empty((len(symbols), NUM_PIXELS), dtype=dtype)
        step = min(self._chunk, CHUNK_DIGITS)

        def chunk(start: int) -> None:
            out[start:start + step] = finish(self._logits(symbols[start:start + step]))

        run_all(chunk, range(0, len(symbols), step))
        return out

    def _logits(self, symbols: np.ndarray) -> np.ndarray:
        """(n, D) symbols -> (n, 784) logits, integers held in float64 throughout: exact, as every
        sum stays below 2**53 (`exactness_bounds`). A layer's sums come scaled by 2**-shift (see
        __post_init__), so ReLU and the shift are a maximum and a floor (the rounding half is in
        the bias)."""
        x = symbols.astype(np.float64)
        for layer, weight, bias, step in zip(self.layers, self._weights, self._biases, self._steps):
            x = _layer_output(layer, x, weight, bias, step)
        if x.ndim == 4:  # channels-last (n, H, W, C) -> PyTorch's (C, H, W) flattening
            x = x.transpose(0, 3, 1, 2)
        return x.reshape(len(x), -1)

    # -- conversion ------------------------------------------------------------------------------
    @classmethod
    def from_layers(cls, float_layers: list[dict]) -> IntegerDecoder:
        """Integer tables from a float decoder (`RateDistortionAE.decoder_layers()`): each
        layer's weight exponent from its largest weight, each activation exponent the largest
        whose next layer still provably sums below 2**53. Deterministic in the float32 weights:
        scaling by powers of two and rounding to integers are exact in float64."""
        plan = _plan(float_layers)
        for margin in range(1, 12):  # room for the rounding halves, not known while choosing
            layers, exponent = _quantise(plan, EXACT_LIMIT / 2 ** margin)
            try:
                return cls(layers, exponent, pixel_thresholds(exponent))
            except NotProvablyExact:
                continue
        raise IntegerDecoderError("no choice of scales keeps this decoder's sums below 2**53")

    # -- storage --------------------------------------------------------------------------------
    def tensors(self) -> dict[str, np.ndarray]:
        out = {"thresholds": np.ascontiguousarray(self.thresholds, dtype=np.int64)}
        for i, layer in enumerate(self.layers):
            out[f"{i}.weight"] = np.ascontiguousarray(layer.weight)
            out[f"{i}.bias"] = np.ascontiguousarray(layer.bias, dtype=np.int64)
        return out

    def description(self) -> dict:
        return {"format": FORMAT, "logit_exponent": self.logit_exponent,
                "layers": [layer.describe() for layer in self.layers]}

    def to_bytes(self, weights_sha256: str) -> bytes:
        """The tables as a safetensors file, naming the sha256 of the float weights they came from."""
        from safetensors.numpy import save

        meta = self.description() | {"weights_sha256": weights_sha256}
        # One metadata entry: safetensors orders several at random, and these bytes must not change.
        return save(self.tensors(), metadata={METADATA_KEY: json.dumps(meta, sort_keys=True)})

    @classmethod
    def from_bytes(cls, data: bytes) -> tuple[IntegerDecoder, str]:
        """(decoder, sha256 of the float weights it was made from) from `to_bytes`' output.
        IntegerDecoderError on anything malformed or not provably exact."""
        from safetensors import SafetensorError
        from safetensors.numpy import load

        try:
            tensors = load(bytes(data))
            header = json.loads(data[8:8 + int.from_bytes(data[:8], "little")])
            meta = json.loads(header["__metadata__"][METADATA_KEY])
            if meta.get("format") != FORMAT:
                raise IntegerDecoderError(f"integer tables of format {meta.get('format')!r}, not {FORMAT}")
            layers = []
            for i, d in enumerate(meta["layers"]):
                weight, bias = tensors[f"{i}.weight"], tensors[f"{i}.bias"]
                if weight.dtype.kind != "i" or bias.dtype != np.int64:
                    raise IntegerDecoderError(f"layer {i} holds {weight.dtype} and {bias.dtype}, not integers")
                shift = None if d["shift"] is None else int(d["shift"])
                layers.append(IntegerLayer(str(d["kind"]), weight, bias, shift, _ints(d["in_shape"]), int(d["patch"]),
                                           int(d["pad"]), int(d["block"]), int(d["crop"]), _ints(d["out_shape"])))
            return cls(layers, int(meta["logit_exponent"]), tensors["thresholds"]), str(meta["weights_sha256"])
        except IntegerDecoderError:
            raise
        except (SafetensorError, KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise IntegerDecoderError(f"not integer decoder tables ({type(exc).__name__}: {str(exc)[:120]})") from None

    def _check_shapes(self) -> None:
        if not self.layers or self.layers[0].kind != "linear":
            raise IntegerDecoderError("the first layer must be linear (it reads the latent symbols)")
        features = self.layers[0].weight.shape[0]
        previous: IntegerLayer | None = None
        for i, layer in enumerate(self.layers):
            last = i == len(self.layers) - 1
            if (layer.shift is None) != last or (layer.shift is not None and not 0 <= layer.shift < 63):
                raise IntegerDecoderError(f"layer {i}: every layer but the last needs a shift in [0, 63)")
            if layer.bias.ndim != 1 or layer.weight.ndim != 2:
                raise IntegerDecoderError(f"layer {i} has weights or biases of the wrong rank")
            c_out = len(layer.bias)
            if layer.kind == "linear":
                ok = (previous is None or previous.kind == "linear") and layer.weight.shape == (features, c_out) \
                    and layer.out_shape == (c_out,)
            elif layer.kind == "patches":
                (h, w, c), k, s = (layer.in_shape + (0, 0, 0))[:3], layer.patch, layer.block
                a, b = layer.anchors() if len(layer.in_shape) == 3 else (0, 0)
                ho, wo, co = (layer.out_shape + (0, 0, 0))[:3]
                ok = (len(layer.in_shape) == 3 and len(layer.out_shape) == 3 and h * w * c == features and c >= 1
                      and (previous.kind == "linear" or previous.out_shape == layer.in_shape)
                      and k >= 1 and s >= 1 and layer.pad >= 0 and layer.crop >= 0 and a >= 1 and b >= 1
                      and co == c_out and layer.crop + ho <= a * s and layer.crop + wo <= b * s and ho >= 1 and wo >= 1
                      and layer.weight.shape == (k * k * c, s * s * c_out))
            else:
                raise IntegerDecoderError(f"layer {i} is of unknown kind {layer.kind!r}")
            if not ok:
                raise IntegerDecoderError(f"layer {i} ({layer.kind}) has inconsistent shapes")
            features, previous = int(np.prod(layer.out_shape)), layer
        if features != NUM_PIXELS:
            raise IntegerDecoderError(f"the decoder draws {features} pixels, not {NUM_PIXELS}")
        t = self.thresholds
        if t.shape != (PIXEL_LEVELS,) or t.dtype != np.int64 or np.any(np.diff(t) <= 0):
            raise IntegerDecoderError("the pixel thresholds are not 255 ascending int64 values")


def _ints(values) -> tuple[int, ...]:
    return tuple(int(n) for n in values)


# ----------------------------------------------------------------------------------------------
# The arithmetic (integer values in float64 arrays: exact, by exactness_bounds)
# ----------------------------------------------------------------------------------------------

def _by_taps(layer: IntegerLayer) -> bool:
    """A stride-1 convolution with fewer output than input channels (the decoder's last layer)
    is cheaper as one product per input pixel and k*k shifted sums than as patches."""
    return layer.kind == "patches" and layer.block == 1 and len(layer.bias) < layer.in_shape[2]


def _prepared(layer: IntegerLayer) -> np.ndarray:
    """The weights as `_apply` multiplies them: (K*K*C_in, C_out) patch rows regrouped as
    (K*K*C_out, C_in) tap rows for `_by_taps` layers, unchanged otherwise."""
    if not _by_taps(layer):
        return layer.weight
    k, c_in, c_out = layer.patch, layer.in_shape[2], len(layer.bias)
    return layer.weight.reshape(k, k, c_in, c_out).transpose(0, 1, 3, 2).reshape(k * k * c_out, c_in)


def _fitting(digit_bytes: int) -> int:
    """The most digits, a power of two up to CHUNK_DIGITS, whose arrays fit STEP_BYTES. Products
    over few digits run slower, and so do arrays that leave the caches: per 1,000 digits, rd-q4's
    dense layers took 56 ms of CPU in steps of 32 digits and 41 ms in steps of 256; its second
    transposed convolution 58 ms in steps of 8-16 digits and 114 ms in steps of 256."""
    return max(1, min(CHUNK_DIGITS, 1 << max(0, int(STEP_BYTES // digit_bytes).bit_length() - 1)))


def _layer_output(layer: IntegerLayer, x: np.ndarray, weight: np.ndarray, bias: np.ndarray, step: int) -> np.ndarray:
    """A layer's outputs, after ReLU and the shift but for the last layer, computed `step` digits
    at a time."""
    if step >= len(x):
        out = _apply(layer, x, weight, bias)
        if layer.shift is not None:
            np.maximum(out, 0.0, out=out)
    else:
        out = np.empty((len(x), *layer.out_shape), dtype=x.dtype)
        for start in range(0, len(x), step):
            sums = _apply(layer, x[start:start + step], weight, bias)
            if layer.shift is not None:
                np.maximum(sums, 0.0, out=out[start:start + step])
            else:
                out[start:start + step] = sums
    if layer.shift is not None:
        np.floor(out, out=out)
    return out


def _activation_values(layer: IntegerLayer) -> int:
    """Values per digit of a layer's input or output, whichever is larger."""
    inputs = np.prod(layer.in_shape) if layer.kind == "patches" else layer.weight.shape[0]
    return int(max(inputs, np.prod(layer.out_shape)))


def _working_values(layer: IntegerLayer) -> int:
    """Values per digit that one layer's step holds at once: its input, its patches or taps, its
    sums (twice: the products, then the output in place)."""
    if layer.kind == "linear":
        return layer.weight.shape[0] + 2 * layer.weight.shape[1]
    (h, w, c), (a, b) = layer.in_shape, layer.anchors()
    if _by_taps(layer):
        return h * w * (c + layer.patch ** 2 * len(layer.bias)) + a * b * len(layer.bias)
    return h * w * c + a * b * (layer.weight.shape[0] + 2 * layer.weight.shape[1])


def _apply(layer: IntegerLayer, x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """One layer's sums (before ReLU and shift) for float64 integer-valued inputs. Every output is
    the sum of the terms `_column_sums` bounds, in some order: exact, whatever the order. (Given
    int64 arrays instead, numpy sums in integers: the tests' slow reference.)"""
    n = len(x)
    if layer.kind == "linear":
        out = x.reshape(n, -1) @ weight
        out += bias
        return out
    (h, w, c), k, q, s, c_out = layer.in_shape, layer.patch, layer.pad, layer.block, len(layer.bias)
    x = x.reshape(n, h, w, c)  # a linear layer's outputs are already in (H, W, C) order
    a, b = layer.anchors()
    ho, wo, _ = layer.out_shape
    if _by_taps(layer):  # output (y, x) = sum of tap (u, v) of input (y+u-pad, x+v-pad)
        # One product gives every tap's contribution, tap-major: each shifted sum then reads
        # and writes whole rows of pixels. The output is channel-major, seen channels-last.
        taps = (weight @ x.reshape(n * h * w, c).T).reshape(k, k, c_out, n, h, w)
        out = np.empty((c_out, n, a, b), dtype=taps.dtype)
        out[...] = bias[:, None, None, None]
        for u, v in np.ndindex(k, k):
            y0, y1 = max(0, q - u), min(a, h + q - u)
            x0, x1 = max(0, q - v), min(b, w + q - v)
            out[:, :, y0:y1, x0:x1] += taps[u, v, :, :, y0 + u - q:y1 + u - q, x0 + v - q:x1 + v - q]
        return out.transpose(1, 2, 3, 0)[:, layer.crop:layer.crop + ho, layer.crop:layer.crop + wo]
    # Patch (i, j) holds the input pixels (i+u-pad, j+v-pad), zero outside the input.
    patches = np.zeros((n, a, b, k, k, c), dtype=x.dtype)
    for u in range(k):
        for v in range(k):
            i0, i1 = max(0, q - u), min(a, h + q - u)
            j0, j1 = max(0, q - v), min(b, w + q - v)
            patches[:, i0:i1, j0:j1, u, v] = x[:, i0 + u - q:i1 + u - q, j0 + v - q:j1 + v - q]
    sums = (patches.reshape(n * a * b, k * k * c) @ weight).reshape(n, a, b, s, s, c_out)
    # Each patch's s x s block in place, adding the bias on the way (one pass over the output).
    out = np.empty((n, a, s, b, s, c_out), dtype=sums.dtype)
    np.add(sums.transpose(0, 1, 3, 2, 4, 5), bias[:c_out], out=out)
    out = out.reshape(n, a * s, b * s, c_out)
    return out[:, layer.crop:layer.crop + ho, layer.crop:layer.crop + wo]


def _column_sums(layer: IntegerLayer, bound_in: np.ndarray) -> np.ndarray:
    """For each output column: the sum of |weight| * (bound on |input|) over its rows, plus
    |bias|, bounding every partial sum of that column. `bound_in` is per input feature (linear)
    or per input channel (patches)."""
    magnitude = np.abs(layer.weight.astype(np.float64))
    if layer.kind == "patches":
        bound_in = np.tile(bound_in, layer.patch ** 2)  # rows (u, v, c_in)
    return bound_in @ magnitude + np.abs(layer.column_bias().astype(np.float64))


def _next_inputs(sums: np.ndarray, shift: int, next_layer: IntegerLayer) -> np.ndarray:
    """Bounds on the next layer's inputs, ReLU(sum) >> shift: raised by 2**-30 (more than the
    float64 error of `sums` for any fan-in below 2**23) and rounded up; per channel when the next
    layer reads patches (columns and features are ordered with the channel last)."""
    bound = np.ceil(sums * (1 + 2.0 ** -30) * 2.0 ** -shift) + 1
    return bound.reshape(-1, next_layer.in_shape[2]).max(0) if next_layer.kind == "patches" else bound


def exactness_bounds(layers: list[IntegerLayer], max_symbol: int = MAX_SYMBOL) -> list[float]:
    """For each layer, a bound on |every partial sum| of its products, for any symbols in
    [-max_symbol, max_symbol]; IntegerDecoderError when one reaches EXACT_LIMIT (2**52). The
    bounds are sums of non-negative float64 terms, each within a relative (n + 2) * 2**-53 of the
    exact value: below 2**52 computed means below 2**53 exactly."""
    bound_in = np.full(layers[0].weight.shape[0], float(max_symbol))
    found = []
    for i, layer in enumerate(layers):
        sums = _column_sums(layer, bound_in)
        worst = float(sums.max()) if sums.size else 0.0
        if not np.isfinite(worst) or worst >= EXACT_LIMIT:
            raise NotProvablyExact(f"layer {i}: a partial sum may reach {worst:.3g}, beyond 2**52: not provably exact")
        found.append(worst)
        if layer.shift is not None:
            bound_in = _next_inputs(sums, layer.shift, layers[i + 1])
    return found


# ----------------------------------------------------------------------------------------------
# Conversion from float weights
# ----------------------------------------------------------------------------------------------

@dataclass
class _FloatLayer:
    geometry: IntegerLayer  # kind and shapes, with float64 weight and bias in the integer layout
    relu: bool = False


def _plan(float_layers: list[dict]) -> list[_FloatLayer]:
    """The decoder as weighted layers in the integer decoder's layouts: an Unflatten becomes a
    permutation of the preceding linear layer's outputs into channels-last order, a ReLU a flag
    on the layer before it, a convolution a patch matrix."""
    plan: list[_FloatLayer] = []
    shape: tuple[int, ...] | None = None  # channels-last (H, W, C) after an unflatten
    for d in float_layers:
        kind = d["kind"]
        if kind == "relu":
            if not plan or plan[-1].relu:
                raise IntegerDecoderError("a ReLU must follow a weighted layer")
            plan[-1].relu = True
            continue
        if kind == "flatten":
            continue  # IntegerDecoder._logits flattens the output in PyTorch's order
        if kind == "unflatten":
            c, h, w = (int(n) for n in d["shape"])
            last = plan[-1].geometry if plan else None
            if last is None or last.kind != "linear" or last.weight.shape[1] != c * h * w:
                raise IntegerDecoderError("an unflatten must follow a linear layer of C*H*W outputs")
            order = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)  # (H,W,C) <- (C,H,W)
            plan[-1].geometry = IntegerLayer("linear", last.weight[:, order], last.bias[order], None,
                                             out_shape=last.out_shape)
            shape = (h, w, c)
            continue
        weight, bias = np.asarray(d["weight"], np.float64), np.asarray(d["bias"], np.float64)
        if kind == "linear":
            if shape is not None:
                raise IntegerDecoderError("a linear layer after a convolution is not supported")
            geometry = IntegerLayer("linear", weight.T, bias, None, out_shape=(len(bias),))
        elif kind in ("conv", "conv_transpose"):
            if shape is None:
                raise IntegerDecoderError("a convolution needs an unflatten before it")
            geometry = _conv_patches(kind, weight, bias, int(d.get("stride", 1)), int(d["padding"]), shape)
            shape = geometry.out_shape
        else:
            raise IntegerDecoderError(f"unknown decoder layer {kind!r}")
        plan.append(_FloatLayer(geometry))
    if not plan or plan[-1].relu or not all(layer.relu for layer in plan[:-1]):
        raise IntegerDecoderError("every layer but the last must end in a ReLU, and the last (the logits) must not")
    return plan


def _conv_patches(kind: str, weight: np.ndarray, bias: np.ndarray, stride: int, padding: int,
                  shape: tuple[int, ...]) -> IntegerLayer:
    """A PyTorch convolution (weight (out, in, k, k), stride 1) or transposed convolution
    (weight (in, out, k, k)) as one product over patches of its channels-last input."""
    h, w, c = shape
    if kind == "conv":
        c_out, c_in, k, _ = weight.shape
        if stride != 1 or c_in != c:
            raise IntegerDecoderError(f"a convolution of stride {stride} and {c_in} input channels after {c}")
        # output (y, x) = sum over (u, v) of input (y+u-pad, x+v-pad): patch rows (u, v, c_in)
        matrix = weight.transpose(2, 3, 1, 0).reshape(k * k * c_in, c_out)
        return IntegerLayer("patches", matrix, bias, None, shape, k, padding, 1, 0,
                            (h + 2 * padding - k + 1, w + 2 * padding - k + 1, c_out))
    c_in, c_out, k, _ = weight.shape
    if c_in != c:
        raise IntegerDecoderError(f"a transposed convolution of {c_in} input channels after {c}")
    # Input i adds tap u to "full" output row s*i + u (PyTorch's output is that, less `padding`
    # rows at each end). With patches of K = ceil(k/s) inputs ending at input a (zero-padded by
    # K-1), full rows s*a + t (t < s) are complete sums: input a-(K-1)+d contributes tap
    # u = s*(K-1-d) + t, when u < k.
    s, patch = stride, -(-k // stride)
    matrix = np.zeros((patch, patch, c_in, s, s, c_out))
    for d in range(patch):
        for t in range(s):
            u = s * (patch - 1 - d) + t
            for e in range(patch):
                for t2 in range(s):
                    v = s * (patch - 1 - e) + t2
                    if u < k and v < k:
                        matrix[d, e, :, t, t2, :] = weight[:, :, u, v]
    side = lambda n: (n - 1) * s + k - 2 * padding  # noqa: E731  (PyTorch's output size)
    return IntegerLayer("patches", matrix.reshape(patch * patch * c_in, s * s * c_out), bias, None, shape,
                        patch, patch - 1, s, padding, (side(h), side(w), c_out))


def weight_exponent(weight: np.ndarray) -> int:
    """The largest s with every |round(w * 2**s)| <= WEIGHT_LIMIT."""
    top = float(np.abs(weight).max()) if weight.size else 0.0
    if top == 0.0:
        return 0
    s = int(np.floor(np.log2(WEIGHT_LIMIT / top)))
    while np.abs(np.rint(weight * 2.0 ** s)).max() > WEIGHT_LIMIT:
        s -= 1
    while np.abs(np.rint(weight * 2.0 ** (s + 1))).max() <= WEIGHT_LIMIT:
        s += 1
    return s


def _with(geometry: IntegerLayer, weight: np.ndarray, bias: np.ndarray, shift: int | None) -> IntegerLayer:
    g = geometry
    return IntegerLayer(g.kind, weight, bias, shift, g.in_shape, g.patch, g.pad, g.block, g.crop, g.out_shape)


def _quantise(plan: list[_FloatLayer], limit: float) -> tuple[list[IntegerLayer], int]:
    """(integer layers, logit exponent), the activation exponents chosen so that every layer's
    sums stay below `limit` before the rounding halves, which the caller's proof includes."""
    exponents = [weight_exponent(layer.geometry.weight) for layer in plan]
    weights = [np.rint(layer.geometry.weight * 2.0 ** s).astype(np.int16) for layer, s in zip(plan, exponents)]

    def integer_bias(i: int, e_acc: int) -> np.ndarray:
        return np.rint(plan[i].geometry.bias * 2.0 ** e_acc).astype(np.int64)

    layers: list[IntegerLayer] = []
    e_in = 0  # the symbols are integers
    bound_in = np.full(weights[0].shape[0], float(MAX_SYMBOL))
    for i, layer in enumerate(plan):
        e_acc = e_in + exponents[i]
        here = _with(layer.geometry, weights[i], integer_bias(i, e_acc), None)
        if i == len(plan) - 1:
            return layers + [here], e_acc
        # The finest output scale (at most the sum's own) whose next layer sums below the limit.
        sums = _column_sums(here, bound_in)
        for e_out in range(e_acc, e_acc - 256, -1):
            shift = e_acc - e_out
            nxt = _with(plan[i + 1].geometry, weights[i + 1], integer_bias(i + 1, e_out + exponents[i + 1]), None)
            out_bound = _next_inputs(sums, shift, nxt)
            if _column_sums(nxt, out_bound).max() < limit:
                break
        else:
            raise IntegerDecoderError(f"layer {i + 1}: no activation scale keeps its sums below 2**52")
        half = (1 << (shift - 1)) if shift > 0 else 0
        layers.append(_with(layer.geometry, weights[i], here.bias + half, shift))
        bound_in, e_in = out_bound, e_out
    raise AssertionError("unreachable: the last layer returns")


def pixel_thresholds(exponent: int) -> np.ndarray:
    """T_k = ceil(2**exponent * ln((k - 1/2) / (255 - (k - 1/2)))) for k = 1..255, as int64: the
    least logit at which round(255 * sigmoid) reaches k. Computed with 60-digit decimals, whose
    logarithm is correctly rounded: the same integers on every machine."""
    out = []
    with localcontext() as ctx:
        ctx.prec = 60
        scale = Decimal(2) ** exponent
        for k in range(1, PIXEL_LEVELS + 1):
            value = (Decimal(2 * k - 1) / Decimal(2 * PIXEL_LEVELS - 2 * k + 1)).ln() * scale
            ceiling = value.to_integral_value(rounding=ROUND_CEILING)
            # The ceiling is exact unless the value lies within the decimals' error of an
            # integer, which happens only at k = 128, where the logit is exactly 0.
            if value != ceiling and ceiling - value < Decimal(10) ** -20 * max(abs(value), 1):
                raise IntegerDecoderError(f"pixel threshold {k} at exponent {exponent} is too close to an integer")
            out.append(int(ceiling))
    return np.array(out, dtype=np.int64)


def tables_path(weights: Path) -> Path:
    """rd-q1.safetensors -> rd-q1.int.safetensors, beside it."""
    weights = Path(weights)
    return weights.with_name(weights.stem + SUFFIX)


def export_tables(name_or_path) -> Path:
    """Write a codec point's integer decoder tables beside its weights (`tables_path`) and record
    the file's sha256 in its card, which receivers check (`python -m ae export-integer`). The
    bytes are a deterministic function of the float weights: exporting again changes nothing."""
    import hashlib

    from ae.files import atomic_write_bytes
    from ae.weights import load_card, load_model, sha256_of, weights_path, write_card

    path = weights_path(name_or_path)
    model = load_model(path)
    if not hasattr(model, "decoder_layers"):
        raise IntegerDecoderError(f"{path.name} is not a codec model (it has no decoder_layers)")
    card = load_card(path)
    data = IntegerDecoder.from_layers(model.decoder_layers()).to_bytes(card.get("sha256") or sha256_of(path))
    out = tables_path(path)
    atomic_write_bytes(out, data)
    card["integer_decoder"] = {"file": out.name, "sha256": hashlib.sha256(data).hexdigest()}
    write_card(path, card)
    return out
