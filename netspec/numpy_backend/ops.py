"""The layers without windows: fc, batch norm, activations, add, flatten, LRN, concat.

Steps that take `act` apply an elementwise activation (an ELEMENTWISE function)
to their output before returning it; steps of IN_PLACE kinds overwrite their
first input (the model hands them a copy when another layer still reads it).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..kinds import FC, LRN, BatchNorm, Layer
from .threads import chunks, each, width
from .windows import Step

#: An elementwise activation: overwrites the array it is given and returns it.
Activation = Callable[[np.ndarray], np.ndarray]
_INF = np.float32(np.inf)


def _fc(layer: FC, w: dict[str, np.ndarray]) -> Step:
    weight, bias = w["weight"], w["bias"]   # used as given: no copy of the largest arrays
    volume = len(layer.input_shape) == 3

    def fc(x: np.ndarray, act: Activation | None = None) -> np.ndarray:
        if volume:   # the weight's columns are in NCHW order, so flatten NCHW
            x = x.transpose(0, 3, 1, 2)
        x = x.reshape(x.shape[0], -1)
        out = np.empty((x.shape[0], weight.shape[0]), np.float32)

        def features(f: slice) -> None:   # at batch 1 the threads share the outputs
            np.matmul(x, weight[f].T, out=out[:, f])
            out[:, f] += bias[f]
            if act is not None:
                act(out[:, f])
        each(features, chunks(weight.shape[0], width()) if weight.shape[0] >= 256 else [slice(None)])
        return out
    return fc


def bn_scale_shift(layer: BatchNorm, w: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Batch norm at inference as y = x·scale + shift, per channel."""
    scale = (w["weight"] / np.sqrt(w["running_var"] + np.float32(layer.eps))).astype(np.float32)
    shift = (w["bias"] - w["running_mean"] * scale).astype(np.float32)
    return scale, shift


def fold(w: dict[str, np.ndarray], scale: np.ndarray, shift: np.ndarray) -> dict[str, np.ndarray]:
    """The weights of a layer whose outputs (weight's first axis) feed a per-channel
    `x·scale + shift` alone (a batch norm, a layer scale), with it folded in:
    weight·scale and bias·scale + shift."""
    weight = w["weight"]
    folded = (weight * scale.reshape(-1, *[1] * (weight.ndim - 1))).astype(np.float32)
    bias = shift if w.get("bias") is None else (w["bias"] * scale + shift).astype(np.float32)
    return {**w, "weight": folded, "bias": bias}


def _bn(layer: BatchNorm, w: dict[str, np.ndarray]) -> Step:
    scale, shift = bn_scale_shift(layer, w)

    def bn(x: np.ndarray, act: Activation | None = None) -> np.ndarray:
        x *= scale   # in place: the model copies a value another layer still reads
        x += shift
        return x if act is None else act(x)
    return bn


def _add(*xs: np.ndarray, act: Activation | None = None) -> np.ndarray:
    """The sum, written over the first input (in place, like bn)."""
    out = xs[0]
    for x in xs[1:]:
        np.add(out, x, out=out)
    return out if act is None else act(out)


def _mul(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The product, written over the first input (in place, like add); the second may
    be one value per channel (a gate's 1×1×C), broadcast over H×W."""
    return np.multiply(x, y, out=x)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    return e


def _sigmoid(x: np.ndarray) -> np.ndarray:
    x *= 0.5   # 0.5·tanh(0.5·x) + 0.5: no overflow for large |x|, unlike 1/(1+e^-x)
    np.tanh(x, out=x)
    x *= 0.5
    x += 0.5
    return x


# The activations below overwrite their argument, through at most three temporaries
# its size (TEMPORARIES); `chunked` hands them cache-sized pieces, so that those
# temporaries stay small and every pass over a piece reads it from cache.

def _silu(x: np.ndarray) -> np.ndarray:
    """x·sigmoid(x) as h·(1 + tanh(h)), h = x/2 (no overflow; four passes)."""
    x *= np.float32(0.5)
    s = np.tanh(x)
    s += np.float32(1)
    x *= s
    return x


#: Abramowitz and Stegun 7.1.26: erf(a) = 1 − t·P(t)·e^(−a²), t = 1/(1 + p·a), a ≥ 0,
#: with absolute error below 1.5e-7 (float32's resolution near 1 is 6e-8).
_ERF_P = 0.3275911
_ERF_A = (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU, x·Φ(x) = x/2·(1 + erf(x/√2)): torch's `gelu` without the tanh approximation.

    With a = |x|/√2 and q = t·P(t)·e^(−a²)/2, x·Φ(x) is x·(1 − q) for x ≥ 0 and
    x·q below: max(x, 0) − |x|·q. Three temporaries, twenty passes.
    """
    a = np.abs(x)
    e = a * a                              # |x|·e^(−x²/2)
    e *= np.float32(-0.5)
    np.exp(e, out=e)
    e *= a
    t = a * np.float32(_ERF_P / np.sqrt(2))   # t = 1/(1 + p·|x|/√2)
    t += np.float32(1)
    np.reciprocal(t, out=t)
    q = np.multiply(t, np.float32(_ERF_A[0] / 2), out=a)   # Horner, halved: ((a0·t + a1)·t + …)·t/2
    for c in _ERF_A[1:]:
        q += np.float32(c / 2)
        q *= t
    q *= e
    _relu(x)
    x -= q
    return x


def _relu(x: np.ndarray) -> np.ndarray:
    """max(x, 0) as a clip to [0, ∞): numpy's `maximum` against a scalar runs about 3×
    slower than `clip` (0.38 against 0.13 ns per float32 value here); NaN stays NaN."""
    return np.clip(x, 0, _INF, out=x)


def _hsigmoid(x: np.ndarray) -> np.ndarray:
    """relu6(x + 3)/6, as torch's Hardsigmoid."""
    x += np.float32(3)
    np.clip(x, 0, 6, out=x)
    x /= np.float32(6)
    return x


def _hswish(x: np.ndarray) -> np.ndarray:
    """x·relu6(x + 3)/6, as torch's Hardswish."""
    s = x + np.float32(3)
    np.clip(s, 0, 6, out=s)
    s /= np.float32(6)
    x *= s
    return x


def _leaky(slope: float) -> Step:
    """x where x > 0, else slope·x: the larger of x and slope·x for slopes up to 1, the smaller
    beyond."""
    s = np.float32(slope)
    pick = np.maximum if slope <= 1 else np.minimum

    def leaky(x: np.ndarray) -> np.ndarray:
        out = x * s
        return pick(x, out, out=out)
    return leaky


#: Elementwise activations, each overwriting the array it is given. A kind listed
#: here runs in place as its own step, or fused into the step before it (the kinds
#: in model.FUSES_ACTIVATION), on each block of that step's output while it is in
#: cache. A new elementwise activation needs only its entry here (and in
#: TEMPORARIES if it makes any).
ELEMENTWISE: dict[str, Activation] = {
    "relu": _relu,
    "relu6": lambda x: np.clip(x, 0, 6, out=x),
    "tanh": lambda x: np.tanh(x, out=x),
    "sigmoid": _sigmoid, "silu": _silu, "gelu": _gelu, "hswish": _hswish,
    "hsigmoid": _hsigmoid,
}
#: How many temporaries the size of its argument an ELEMENTWISE activation makes.
TEMPORARIES = {"silu": 1, "gelu": 3, "hswish": 1}
#: `chunked` cuts an array into pieces of at most this many values (128 KiB): an
#: activation's passes over a piece, and its temporaries, stay in the core's cache
#: (GELU at 56×56×384: 37 ms over whole arrays).
CHUNK = 32768


def pieces(x: np.ndarray) -> list[np.ndarray]:
    """Views of x, each at most CHUNK values, that together cover it once.

    A contiguous array is cut along its flat order, a matrix (a block of some
    output columns) by rows; anything else is one piece.
    """
    if x.flags.c_contiguous:
        flat = x.reshape(-1)
        return [flat[i:i + CHUNK] for i in range(0, flat.size, CHUNK)]
    if x.ndim == 2:
        rows = max(1, CHUNK // max(x.shape[1], 1))
        return [x[i:i + rows] for i in range(0, x.shape[0], rows)]
    return [x]


def chunked(act: Activation) -> Activation:
    """`act` applied piece by piece (`pieces`), the pieces shared by the threads when the
    running step may split its work."""
    def run(x: np.ndarray) -> np.ndarray:
        each(act, pieces(x))
        return x
    return run


ACTIVATIONS: dict[str, Step] = {**{k: chunked(f) for k, f in ELEMENTWISE.items()},
                                "softmax": _softmax}   # softmax: over channels
#: Steps that overwrite their first input (the model copies one still needed elsewhere).
IN_PLACE = {*ELEMENTWISE, "bn", "add", "mul"}


def _leaky_relu(layer: Layer, w: dict[str, np.ndarray]) -> Step:
    return _leaky(layer.slope)


def _flatten(layer: Layer, w: dict[str, np.ndarray]) -> Step | None:
    if len(layer.input_shape) == 1:
        return None
    return lambda x: x.transpose(0, 3, 1, 2).reshape(x.shape[0], -1)


def _lrn(layer: LRN, w: dict[str, np.ndarray]) -> Step:
    """ONNX's LRN: the window over channels c − ⌊(n−1)/2⌋ … c + ⌈(n−1)/2⌉."""
    n = layer.size
    before, after = (n - 1) // 2, n - 1 - (n - 1) // 2
    scale = np.float32(layer.alpha / n)

    def lrn(x: np.ndarray) -> np.ndarray:
        c = x.shape[-1]
        sq = np.zeros((*x.shape[:-1], c + 1), np.float32)
        np.cumsum(x * x, axis=-1, out=sq[..., 1:])
        idx = np.arange(c)
        hi, lo = np.minimum(idx + after + 1, c), np.maximum(idx - before, 0)
        window = sq[..., hi] - sq[..., lo]
        return x / (np.float32(layer.k) + scale * window) ** np.float32(layer.beta)
    return lrn


def _concat(*xs: np.ndarray) -> np.ndarray:
    return np.concatenate(xs, axis=-1)   # the channels of NHWC volumes, or vectors' values
