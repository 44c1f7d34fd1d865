"""The NumPy executable model: a checked Network and its weights, run on batches.

The model takes and returns NCHW float32 like PyTorch, but runs NHWC inside:
with channels last, the im2col matrix of a convolution is a plain reshape of a
strided window view, one BLAS matrix multiply yields the output already in NHWC,
and no transpose is needed between layers. Each layer kind lowers to one
function below that closes over its prepared weights; the arithmetic (output
sizes, padding) comes from the layer, never recomputed here.
"""

from __future__ import annotations

from math import prod
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .errors import Diagnostic, InputError
from .layers import BatchNorm, Conv, FC, Layer, Pool, shape_str

if TYPE_CHECKING:
    from .network import Network

Step = Callable[[np.ndarray], np.ndarray]

#: Rows of im2col per matrix multiply are chosen so the buffer stays under this.
IM2COL_BYTES = 64 * 2**20


def _pad(x: np.ndarray, pads: tuple[tuple[int, int], tuple[int, int]], value: float) -> np.ndarray:
    (top, bottom), (left, right) = pads
    if not (top or bottom or left or right):
        return x
    n, h, w, c = x.shape
    out = np.full((n, h + top + bottom, w + left + right, c), value, dtype=x.dtype)
    out[:, top:top + h, left:left + w] = x
    return out


def _windows(xp: np.ndarray, out_hw: tuple[int, int], kernel: tuple[int, int],
             strides: tuple[int, int], dilation: int) -> np.ndarray:
    """A read-only (N, OH, OW, FH, FW, C) view of every window of a padded NHWC batch."""
    n, _, _, c = xp.shape
    s0, s1, s2, s3 = xp.strides
    return as_strided(xp, (n, *out_hw, *kernel, c),
                      (s0, s1 * strides[0], s2 * strides[1], s1 * dilation, s2 * dilation, s3),
                      writeable=False)


def _taps(xp: np.ndarray, out_hw: tuple[int, int], kernel: tuple[int, int],
          strides: tuple[int, int], dilation: int = 1):
    """The (N, OH, OW, C) slice of `xp` that kernel tap (i, j) reads, for every tap."""
    (oh, ow), (sh, sw) = out_hw, strides
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            yield i * kernel[1] + j, xp[:, i * dilation:i * dilation + (oh - 1) * sh + 1:sh,
                                        j * dilation:j * dilation + (ow - 1) * sw + 1:sw]


def _conv(layer: Conv, w: dict[str, np.ndarray]) -> Step:
    k, g = layer.filters, layer.groups
    fh, fw = layer.kernel
    cg, kg = layer.in_channels // g, k // g
    out_hw = layer.output_shape[:2]
    bias = w["bias"]
    # (K, Cg, FH, FW) → per group (FH·FW·Cg, Kg), matching the window view's order
    wmat = np.ascontiguousarray(
        w["weight"].reshape(g, kg, cg, fh, fw).transpose(0, 3, 4, 2, 1).reshape(g, fh * fw * cg, kg))
    depthwise = cg == 1 and kg == 1
    taps = w["weight"].reshape(k, fh * fw).T.copy() if depthwise else None

    def conv(x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        xp = _pad(x, layer.pads, 0.0)
        if depthwise:  # one multiply-add per tap over the whole batch: no im2col at all
            out = np.zeros((n, *out_hw, k), np.float32)
            for t, view in _taps(xp, out_hw, layer.kernel, layer.strides, layer.dilation):
                out += view * taps[t]
            out += bias
            return out
        win = _windows(xp, out_hw, layer.kernel, layer.strides, layer.dilation)
        rows = prod(out_hw)
        chunk = max(1, IM2COL_BYTES // max(1, rows * fh * fw * cg * 4))
        out = np.empty((n, *out_hw, k), np.float32)
        for n0 in range(0, n, chunk):
            part = win[n0:n0 + chunk]
            m = part.shape[0] * rows
            if g == 1:
                cols = part.reshape(m, fh * fw * cg)
                np.matmul(cols, wmat[0], out=out[n0:n0 + chunk].reshape(m, k))
            else:
                cols = part.reshape(*part.shape[:5], g, cg).transpose(5, 0, 1, 2, 3, 4, 6)
                cols = cols.reshape(g, m, fh * fw * cg)
                out[n0:n0 + chunk] = np.matmul(cols, wmat).transpose(1, 0, 2).reshape(
                    part.shape[0], *out_hw, k)
        out += bias
        return out

    return conv


def _pool(layer: Pool, w: dict[str, np.ndarray]) -> Step:
    out_hw = layer.output_shape[:2]
    (top, bottom), (left, right) = layer.pads
    # `ceil` rounding lets the last window run past the padded input: pad that too
    extra = [max(0, (o - 1) * s + f - (n + b + a)) for o, s, f, n, (b, a) in
             zip(out_hw, layer.strides, layer.kernel, layer.input_shape, layer.pads)]
    pads = ((top, bottom + extra[0]), (left, right + extra[1]))
    h, wd = layer.input_shape[:2]

    if layer.mode == "max":
        def maxpool(x: np.ndarray) -> np.ndarray:
            xp = _pad(x, pads, -np.inf)
            out = None
            for _, view in _taps(xp, out_hw, layer.kernel, layer.strides):
                out = view.copy() if out is None else np.maximum(out, view, out=out)
            return out
        return maxpool

    # average over the input cells each window covers; padding is not counted
    mask = _pad(np.ones((1, h, wd, 1), np.float32), pads, 0.0)
    count = sum(view for _, view in _taps(mask, out_hw, layer.kernel, layer.strides))
    inv = (1.0 / count).astype(np.float32)

    def avgpool(x: np.ndarray) -> np.ndarray:
        xp = _pad(x, pads, 0.0)
        out = None
        for _, view in _taps(xp, out_hw, layer.kernel, layer.strides):
            out = view.copy() if out is None else np.add(out, view, out=out)
        out *= inv
        return out
    return avgpool


def _fc(layer: FC, w: dict[str, np.ndarray]) -> Step:
    weight = w["weight"]
    if len(layer.input_shape) == 3:  # columns are in NCHW order; inputs arrive NHWC
        h, wd, c = layer.input_shape
        weight = weight.reshape(-1, c, h, wd).transpose(0, 2, 3, 1).reshape(weight.shape)
    wt = np.ascontiguousarray(weight.T)
    bias = w["bias"]

    def fc(x: np.ndarray) -> np.ndarray:
        out = x.reshape(x.shape[0], -1) @ wt
        out += bias
        return out
    return fc


def _bn(layer: BatchNorm, w: dict[str, np.ndarray]) -> Step:
    scale = (w["weight"] / np.sqrt(w["running_var"] + np.float32(layer.EPSILON))).astype(np.float32)
    shift = (w["bias"] - w["running_mean"] * scale).astype(np.float32)

    def bn(x: np.ndarray) -> np.ndarray:
        return x * scale + shift
    return bn


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    return e


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * np.tanh(0.5 * x) + 0.5   # no overflow for large |x|, unlike 1/(1+e^-x)


ACTIVATIONS: dict[str, Step] = {
    "relu": lambda x: np.maximum(x, 0, out=x),
    "tanh": lambda x: np.tanh(x, out=x),
    "sigmoid": _sigmoid,
    "softmax": _softmax,   # over the last axis: the channels of an NHWC volume
}


def _flatten(layer: Layer, w: dict[str, np.ndarray]) -> Step:
    if len(layer.input_shape) == 1:
        return lambda x: x
    return lambda x: x.transpose(0, 3, 1, 2).reshape(x.shape[0], -1)


def _constant(step: Step | None) -> Callable[[Layer, dict], Step | None]:
    return lambda layer, w: step


#: How each layer kind lowers to NumPy: (layer, its weights by suffix) → step,
#: None for layers that are the identity at inference.
LOWERINGS: dict[str, Callable[[Layer, dict[str, np.ndarray]], Step | None]] = {
    "conv": _conv, "pool": _pool, "fc": _fc, "bn": _bn, "flatten": _flatten,
    "input": _constant(None), "dropout": _constant(None),
    **{name: _constant(fn) for name, fn in ACTIVATIONS.items()},
}


class NumpyModel:
    """A network compiled to NumPy: `model(x)` maps N×C×H×W float32 to its output.

    The output is (N, K) after fc layers, or N×C×H×W for a fully convolutional
    network. Weights are checked and prepared once, when the model is built.
    """

    def __init__(self, net: Network, weights: dict[str, np.ndarray]) -> None:
        self.net = net
        by_layer: dict[str, dict[str, np.ndarray]] = {}
        for key, value in weights.items():
            owner, suffix = key.rsplit(".", 1)
            by_layer.setdefault(owner, {})[suffix] = value
        self.steps: list[tuple[str, Step]] = []
        for layer in net.layers:
            if layer.kind not in LOWERINGS:
                raise NotImplementedError(f"the NumPy backend has no `{layer.kind}` layer")
            step = LOWERINGS[layer.kind](layer, by_layer.get(layer.name, {}))
            if step is not None:
                self.steps.append((layer.name, step))

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Expected input per sample, C×H×W (or F for a vector input)."""
        s = self.net.input_shape
        return (s[2], s[0], s[1]) if len(s) == 3 else s

    def _prepare(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        want = self.input_shape
        if x.ndim != len(want) + 1 or tuple(x.shape[1:]) != want:
            dims = "N×" + "×".join(map(str, want))
            hint = "add a batch dimension: x[None]" if tuple(x.shape) == want else None
            raise InputError(Diagnostic(
                "error", f"input has shape {'×'.join(map(str, x.shape)) or 'scalar'}, but "
                f"{self.net.name} expects {dims} ({'N×C×H×W' if len(want) == 3 else 'N×F'})",
                hint=hint))
        if x.dtype.kind not in "fiu":
            raise InputError(f"input holds {x.dtype} values, not numbers")
        x = np.array(x, dtype=np.float32, copy=True)
        return x.transpose(0, 2, 3, 1).copy() if x.ndim == 4 else x

    @staticmethod
    def _finish(y: np.ndarray, copy: bool = False) -> np.ndarray:
        """NHWC back to NCHW (always a new array); vectors as they are, or a copy."""
        if y.ndim == 4:
            return np.ascontiguousarray(y.transpose(0, 3, 1, 2))
        return y.copy() if copy else y

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Run a batch: x is N×C×H×W (any N, any real dtype); returns float32."""
        y = self._prepare(x)
        for _, step in self.steps:
            y = step(y)
        return self._finish(y)

    def activations(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every layer's output for the batch x, by layer name, in NCHW / (N, F)."""
        y = self._prepare(x)
        out = {"input": self._finish(y, copy=True)}
        for name, step in self.steps:
            y = step(y)
            out[name] = self._finish(y, copy=True)   # later steps may work in place
        return out

    def __repr__(self) -> str:
        return (f"<NumpyModel {self.net.name}: N×{shape_str(self.input_shape)} → "
                f"{shape_str(self.net.output_shape)}>")


def load_input(path: str | Path) -> np.ndarray:
    """Read a .npy input batch (no pickles), as an InputError if it cannot be read."""
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise InputError(Diagnostic("error", f"cannot read input: {err}", str(path))) from None
    if not isinstance(x, np.ndarray):
        raise InputError(Diagnostic("error", "expected a .npy array, found an .npz archive",
                                    str(path)))
    return x
