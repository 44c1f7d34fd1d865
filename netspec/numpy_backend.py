"""The NumPy executable model: a checked Network and its weights, run on batches.

The model takes and returns NCHW float32 like PyTorch, but runs NHWC inside:
with channels last, the im2col matrix of a convolution is a plain reshape of a
strided window view, one BLAS matrix multiply yields the output already in NHWC,
and no transpose is needed between layers. Each layer kind lowers to one
function below that closes over its prepared weights; the arithmetic (output
sizes, padding) comes from the layer, never recomputed here.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache, partial
from math import prod
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
from numpy.lib.stride_tricks import as_strided
from threadpoolctl import ThreadpoolController

from .errors import Diagnostic, InputError
from .layers import LRN, BatchNorm, Conv, FC, Layer, Pool, shape_str

if TYPE_CHECKING:
    from .network import Network

Step = Callable[[np.ndarray], np.ndarray]

#: Each im2col block is sized to stay under this, so that it is still in cache
#: when the matrix multiply reads it (measured on a 2-core Xeon, VGG's 128→128
#: conv at 32×32, batch 32: 54 ms with 4–8 MiB blocks, 75 ms with 64 MiB ones).
IM2COL_BYTES = 4 * 2**20
#: ... but at least this many rows, below which a matrix multiply runs inefficiently.
MIN_BLOCK_ROWS = 1024


def _pad(x: np.ndarray, pads: tuple[tuple[int, int], tuple[int, int]], value: float) -> np.ndarray:
    """x with `value` added around H and W (x itself when there is no padding)."""
    (top, bottom), (left, right) = pads
    if not (top or bottom or left or right):
        return x
    n, h, w, c = x.shape
    out = np.empty((n, h + top + bottom, w + left + right, c), np.float32)
    out[:, :top] = value
    out[:, top + h:] = value
    out[:, top:top + h, :left] = value
    out[:, top:top + h, left + w:] = value
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


def _row_bytes(layer: Conv) -> int:
    """Bytes of im2col for one row of output (OW windows)."""
    return layer.output_shape[1] * prod(layer.kernel) * layer.in_channels * 4


def im2col_blocks(layer: Conv, batch: int) -> list[tuple[slice, slice]]:
    """(samples, output rows) blocks whose im2col matrices stay near IM2COL_BYTES."""
    oh, ow = layer.output_shape[:2]
    rows = max(IM2COL_BYTES // _row_bytes(layer), -(-MIN_BLOCK_ROWS // ow), 1)
    if rows >= oh:
        samples = rows // oh
        return [(slice(n, n + samples), slice(0, oh)) for n in range(0, batch, samples)]
    rows = -(-oh // -(-oh // rows))   # equal blocks rather than a small one at the end
    return [(slice(n, n + 1), slice(r, r + rows)) for n in range(batch) for r in range(0, oh, rows)]


def im2col_bytes(net: Network, batch: int) -> int:
    """The largest im2col block a forward pass of `batch` samples allocates."""
    sizes = []
    for layer in net.layers:
        if isinstance(layer, Conv) and not _depthwise(layer):
            n, r = im2col_blocks(layer, batch)[0]
            sizes.append(len(range(batch)[n]) * len(range(layer.output_shape[0])[r])
                         * _row_bytes(layer))
    return max(sizes, default=0)


def _depthwise(layer: Conv) -> bool:
    """One filter per input channel: computed tap by tap, without im2col."""
    return layer.groups == layer.in_channels == layer.filters


def _conv(layer: Conv, w: dict[str, np.ndarray]) -> Step:
    """Conv + bias (+ relu, when called with relu=True), one matrix multiply per im2col block."""
    k, g = layer.filters, layer.groups
    fh, fw = layer.kernel
    cg, kg = layer.in_channels // g, k // g
    out_hw = layer.output_shape[:2]
    bias = w["bias"] if layer.bias else np.zeros(k, np.float32)
    depthwise = _depthwise(layer)
    if depthwise:   # (K, 1, FH, FW) → one row of K weights per tap
        taps = w["weight"].reshape(k, fh * fw).T.copy()
    else:           # (K, Cg, FH, FW) → per group (FH·FW·Cg, Kg), the window view's order
        wmat = np.ascontiguousarray(w["weight"].reshape(g, kg, cg, fh, fw)
                                    .transpose(0, 3, 4, 2, 1).reshape(g, fh * fw * cg, kg))

    def conv(x: np.ndarray, relu: bool = False) -> np.ndarray:
        n = x.shape[0]
        xp = _pad(x, layer.pads, 0.0)
        if depthwise:  # one multiply-add per tap over the whole batch: no im2col at all
            out = np.empty((n, *out_hw, k), np.float32)
            out[...] = bias
            for t, view in _taps(xp, out_hw, layer.kernel, layer.strides, layer.dilation):
                out += view * taps[t]
            return np.maximum(out, 0, out=out) if relu else out
        win = _windows(xp, out_hw, layer.kernel, layer.strides, layer.dilation)
        out = np.empty((n, *out_hw, k), np.float32)
        for samples, rows in im2col_blocks(layer, n):
            part = win[samples, rows]
            block = out[samples, rows]
            m = prod(part.shape[:3])
            if g == 1:
                np.matmul(part.reshape(m, fh * fw * cg), wmat[0], out=block.reshape(m, k))
            else:
                cols = part.reshape(*part.shape[:5], g, cg).transpose(5, 0, 1, 2, 3, 4, 6)
                block[...] = np.matmul(cols.reshape(g, m, fh * fw * cg), wmat).transpose(
                    1, 0, 2).reshape(block.shape)
            if layer.bias:
                block += bias   # while the block is still in cache
            if relu:
                np.maximum(block, 0, out=block)
        return out

    return conv


def _pool(layer: Pool, w: dict[str, np.ndarray]) -> Step:
    if layer.global_pool:
        if layer.mode == "max":
            return lambda x: x.max(axis=(1, 2), keepdims=True)
        return lambda x: x.mean(axis=(1, 2), keepdims=True, dtype=np.float32)
    out_hw = layer.output_shape[:2]
    pads = layer.floor_pads()
    h, wd = layer.input_shape[:2]

    if layer.mode == "max":
        def maxpool(x: np.ndarray) -> np.ndarray:
            xp = _pad(x, pads, -np.inf)
            out = np.empty((x.shape[0], *out_hw, x.shape[3]), np.float32)
            for t, view in _taps(xp, out_hw, layer.kernel, layer.strides):
                np.copyto(out, view) if t == 0 else np.maximum(out, view, out=out)
            return out
        return maxpool

    # average over the input cells each window covers; padding is not counted
    mask = np.pad(np.ones((1, h, wd, 1), np.float32), ((0, 0), *pads, (0, 0)))
    count = sum(view for _, view in _taps(mask, out_hw, layer.kernel, layer.strides))
    inv = (1.0 / count).astype(np.float32)

    def avgpool(x: np.ndarray) -> np.ndarray:
        xp = _pad(x, pads, 0.0)
        out = np.empty((x.shape[0], *out_hw, x.shape[3]), np.float32)
        for t, view in _taps(xp, out_hw, layer.kernel, layer.strides):
            np.copyto(out, view) if t == 0 else np.add(out, view, out=out)
        out *= inv
        return out
    return avgpool


def _fc(layer: FC, w: dict[str, np.ndarray]) -> Step:
    weight, bias = w["weight"], w["bias"]   # used as given: no copy of the largest arrays
    volume = len(layer.input_shape) == 3

    def fc(x: np.ndarray) -> np.ndarray:
        if volume:   # the weight's columns are in NCHW order, so flatten NCHW
            x = x.transpose(0, 3, 1, 2)
        out = x.reshape(x.shape[0], -1) @ weight.T
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
    "relu6": lambda x: np.clip(x, 0, 6, out=x),
    "tanh": lambda x: np.tanh(x, out=x),
    "sigmoid": _sigmoid,
    "softmax": _softmax,   # over the last axis: the channels of an NHWC volume
}
#: Steps that overwrite their input (the model copies an input still needed elsewhere).
IN_PLACE = {"relu", "relu6", "tanh"}


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


#: Kinds whose step applies a following relu itself when called with relu=True,
#: while its output is still in cache.
FUSES_RELU = {"conv"}


def _constant(step: Step | None) -> Callable[[Layer, dict], Step | None]:
    return lambda layer, w: step


#: How each layer kind lowers to NumPy: (layer, its weights by suffix) → a step
#: taking one array per input, or None for a layer that is the identity here.
LOWERINGS: dict[str, Callable[[Layer, dict[str, np.ndarray]], Step | None]] = {
    "conv": _conv, "pool": _pool, "fc": _fc, "bn": _bn, "flatten": _flatten, "lrn": _lrn,
    "add": _constant(np.add), "concat": _constant(_concat),
    "input": _constant(None), "dropout": _constant(None),
    **{name: _constant(fn) for name, fn in ACTIVATIONS.items()},
}


class _Plan:
    """Steps in order, each with the values it reads; identity layers are aliases."""

    def __init__(self, net: Network, lowered: dict[str, Step | None], fuse: bool) -> None:
        self.steps: list[tuple[str, Step, list[str], bool]] = []
        self.alias: dict[str, str] = {}
        consumers: dict[str, list[Layer]] = {}
        for layer in net.layers:
            for i in layer.inputs:
                consumers.setdefault(i.name, []).append(layer)
        skip: set[str] = set()
        for layer in net.layers:
            ins = [self.alias.get(i.name, i.name) for i in layer.inputs]
            step = lowered[layer.name]
            if layer.name in skip or step is None:
                self.alias[layer.name] = ins[0] if ins else layer.name
                continue
            after = consumers.get(layer.name, [])
            if fuse and layer.kind in FUSES_RELU and len(after) == 1 and after[0].kind == "relu":
                step = partial(step, relu=True)
                skip.add(after[0].name)
            self.steps.append((layer.name, step, ins, layer.kind in IN_PLACE))
        self.input = net.layers[0].name
        self.output = self.alias.get(net.layers[-1].name, net.layers[-1].name)
        self.uses: dict[str, int] = {}
        for _, _, ins, _ in self.steps:
            for name in ins:
                self.uses[name] = self.uses.get(name, 0) + 1

    def run(self, x: np.ndarray, record: dict[str, np.ndarray] | None = None,
            timing: dict[str, float] | None = None) -> np.ndarray:
        """Run the steps on the prepared input.

        `record` receives a copy of every value, `timing` each step's seconds (the
        least over the calls that passed it).
        """
        values = {self.input: x}
        left = dict(self.uses)
        for name, step, ins, in_place in self.steps:
            args = [values[i] for i in ins]
            if in_place and left[ins[0]] > 1:
                args[0] = args[0].copy()   # another layer still reads this value
            start = time.perf_counter()
            out = step(*args)
            if timing is not None:
                timing[name] = min(timing.get(name, np.inf), time.perf_counter() - start)
            for i in ins:
                left[i] -= 1
                if not left[i] and i != self.output:
                    del values[i]   # its memory can go as soon as no layer reads it
            values[name] = out
            if record is not None:
                record[name] = NumpyModel._finish(out)
        return values[self.output]


def usable_cpus() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@lru_cache(maxsize=None)
def _workers(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(threads, thread_name_prefix="netspec")


@lru_cache(maxsize=1)
def _blas() -> ThreadpoolController:
    return ThreadpoolController()


class NumpyModel:
    """A network compiled to NumPy: `model(x)` maps N×C×H×W float32 to its output.

    The output is (N, K) after fc layers, or N×C×H×W for a fully convolutional
    network. Weights are checked and prepared once, when the model is built.

    A batch of several samples is split across `threads` threads (default: every
    usable CPU), each running single-threaded BLAS: then the im2col copies,
    padding, pooling and activations run in parallel too, not only the matrix
    multiplies (measured: VGG-mini at batch 32 on 2 cores, 175 ms against 235 ms
    with BLAS's own threads). While a batch runs, BLAS is limited to one thread
    process-wide; `threads=1` leaves BLAS alone.
    """

    def __init__(self, net: Network, weights: dict[str, np.ndarray],
                 threads: int | None = None) -> None:
        self.net = net
        self.threads = threads or usable_cpus()
        by_layer: dict[str, dict[str, np.ndarray]] = {}
        for key, value in weights.items():
            owner, suffix = key.rsplit(".", 1)
            by_layer.setdefault(owner, {})[suffix] = value
        lowered: dict[str, Step | None] = {}
        for layer in net.layers:
            if layer.kind not in LOWERINGS:
                raise NotImplementedError(f"the NumPy backend has no `{layer.kind}` layer")
            lowered[layer.name] = LOWERINGS[layer.kind](layer, by_layer.get(layer.name, {}))
        self.fast = _Plan(net, lowered, fuse=True)       # conv + relu fused, for speed
        self.traced = _Plan(net, lowered, fuse=False)    # every layer, for `activations`

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Expected input per sample, C×H×W (or F for a vector input)."""
        return sample_shape(self.net)

    def _prepare(self, x: np.ndarray) -> np.ndarray:
        x = prepare_input(self.net, x)
        return x.transpose(0, 2, 3, 1).copy() if x.ndim == 4 else x

    @staticmethod
    def _finish(y: np.ndarray) -> np.ndarray:
        """A new array, NHWC back to NCHW: never a buffer the model will reuse."""
        return y.transpose(0, 3, 1, 2).copy() if y.ndim == 4 else y.copy()

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self._finish(self.fast.run(x))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Run a batch: x is N×C×H×W (any N, any real dtype); returns float32."""
        prepared = self._prepare(x)
        parts = min(self.threads, prepared.shape[0])
        if parts <= 1:
            return self._run(prepared)
        with _blas().limit(limits=1, user_api="blas"):
            outs = list(_workers(self.threads).map(self._run, np.array_split(prepared, parts)))
        return np.concatenate(outs)

    def activations(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every layer's output for the batch x, by layer name, in NCHW / (N, F)."""
        prepared = self._prepare(x)
        record = {self.net.layers[0].name: self._finish(prepared)}
        self.traced.run(prepared, record)
        plan = self.traced
        for layer in self.net.layers:   # identity layers show the value they pass on
            if layer.name not in record:
                record[layer.name] = record[plan.alias[layer.name]]
        return {layer.name: record[layer.name] for layer in self.net.layers}

    def __repr__(self) -> str:
        return (f"<NumpyModel {self.net.name}: N×{shape_str(self.input_shape)} → "
                f"{shape_str(self.net.output_shape)}>")


def sample_shape(net: Network) -> tuple[int, ...]:
    """One sample of the network's input as the backends take it: C×H×W, or F."""
    s = net.input_shape
    return (s[2], s[0], s[1]) if len(s) == 3 else s


def prepare_input(net: Network, x: np.ndarray) -> np.ndarray:
    """A float32 copy of the N×C×H×W (or N×F) batch x, or an InputError saying what fits."""
    x = np.asarray(x)
    want = sample_shape(net)
    if x.ndim != len(want) + 1 or tuple(x.shape[1:]) != want:
        dims = "N×" + "×".join(map(str, want))
        hint = "add a batch dimension: x[None]" if tuple(x.shape) == want else None
        raise InputError(Diagnostic(
            "error", f"input has shape {'×'.join(map(str, x.shape)) or 'scalar'}, but "
            f"{net.name} expects {dims} ({'N×C×H×W' if len(want) == 3 else 'N×F'})", hint=hint))
    if x.dtype.kind not in "fiu":
        raise InputError(f"input holds {x.dtype} values, not numbers")
    return np.array(x, dtype=np.float32, copy=True)


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
