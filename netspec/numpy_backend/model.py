"""The executable model: lowering every layer, the plan of steps, threads and inputs."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
from threadpoolctl import ThreadpoolController

from ..errors import Diagnostic, InputError
from ..layers import Layer, shape_str
from .channels import _chunk, _layernorm, _linear, _scale, _shuffle
from .conv import _conv
from .ops import ACTIVATIONS, IN_PLACE, _bn, _concat, _fc, _flatten, _lrn
from .pool import _adaptive_pool, _pool
from .resample import _deconv, _upsample
from .windows import Step

if TYPE_CHECKING:
    from ..network import Network


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
    "adaptive_pool": _adaptive_pool,
    "input": _constant(None), "dropout": _constant(None),
    **{name: _constant(fn) for name, fn in ACTIVATIONS.items()},
    "layernorm": _layernorm, "scale": _scale, "linear": _linear, "chunk": _chunk,
    "shuffle": _shuffle, "deconv": _deconv, "upsample": _upsample,
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
        by_layer = {layer.name: {s: weights[layer.weight_key(s)] for s in layer.weight_shapes()}
                    for layer in net.layers}
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
    if x.shape[0] == 0:
        raise InputError("the batch is empty (N = 0): nothing to run")
    return np.array(x, dtype=np.float32, copy=True)


def load_input(path: str | Path) -> np.ndarray:
    """Read a .npy input batch (no pickles), as an InputError if it cannot be read.

    The header is checked before any data is read (see netspec.arrays).
    """
    from ..arrays import ArrayFileError, read_npy
    try:
        return read_npy(path)
    except ArrayFileError as err:
        raise InputError(Diagnostic("error", f"cannot read input: {err}", str(path))) from None
