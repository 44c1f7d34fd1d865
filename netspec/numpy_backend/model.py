"""The executable model: lowering every layer, the plan of steps, threads and inputs."""

from __future__ import annotations

import os
import time
from functools import lru_cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Container, NamedTuple

import numpy as np
from threadpoolctl import ThreadpoolController

from ..source.diagnostics import Diagnostic, InputError
from ..kinds import Layer, shape_str
from .channels import (
    _chunk,
    _layernorm,
    _linear,
    _scale,
    _shuffle,
    layer_scale,
    shuffled_concat,
)
from .conv import _conv
from .heap import keep_freed_memory
from .ops import (
    ACTIVATIONS,
    ELEMENTWISE,
    IN_PLACE,
    _add,
    _bn,
    _concat,
    _fc,
    _flatten,
    _leaky_relu,
    _lrn,
    _mul,
    bn_scale_shift,
    chunked,
    fold,
)
from .pool import _adaptive_pool, _pool
from .resample import _deconv, _upsample
from .threads import Tuner, each, spread
from .windows import Step

if TYPE_CHECKING:
    from ..network import Network


#: Kinds whose step takes `act=`, an ELEMENTWISE activation applied to its output
#: while it is still in cache: a following activation (the output's only reader)
#: is fused into them.
FUSES_ACTIVATION = {"conv", "fc", "linear", "bn", "add"}
#: Kinds whose weights absorb a following per-channel affine layer (their output's
#: only reader) when the model is built: per output channel (the weight's first
#: axis), weight times the layer's scale and bias times it plus its shift (ops.fold).
FOLDS_AFFINE = {"conv", "fc", "linear"}
#: The per-channel affine layers that fold, each as (layer, weights) → (scale, shift).
AFFINE = {"bn": bn_scale_shift, "scale": layer_scale}
#: An fc layer with at least this many bytes of weights runs on the whole batch, its
#: outputs split across the threads, rather than on each thread's share of the
#: batch: every thread would stream all its weights from memory (AlexNet's first fc
#: layer, 151 MB, took 44% of the time at batch 8).
GATHER_BYTES = 8 * 2**20
#: With fewer samples than threads, only a step that took at least this long on one
#: thread (timed in the model's first call at that batch size) splits its work
#: across the threads: handing a part to another thread costs some 50 µs, a
#: wake-up and a hand-over of Python's lock, more than most of MobileNetV2's steps
#: would gain at batch 1.
SPLIT_SECONDS = 150e-6
#: A batch is cut into up to this many parts per thread, which the threads take one
#: after another as they get free: on a loaded machine, a thread that lost its CPU
#: for a while then holds up only its current part, not half the batch.
PARTS_PER_THREAD = 2


def _constant(step: Step | None) -> Callable[[Layer, dict], Step | None]:
    return lambda layer, w: step


#: How each layer kind lowers to NumPy: (layer, its weights by suffix) → a step
#: taking one array per input, or None for a layer that is the identity here.
LOWERINGS: dict[str, Callable[[Layer, dict[str, np.ndarray]], Step | None]] = {
    "conv": _conv, "pool": _pool, "fc": _fc, "bn": _bn, "flatten": _flatten, "lrn": _lrn,
    "add": _constant(_add), "concat": _constant(_concat), "mul": _constant(_mul),
    "leaky": _leaky_relu, "adaptive_pool": _adaptive_pool,
    "input": _constant(None), "dropout": _constant(None),
    **{name: _constant(fn) for name, fn in ACTIVATIONS.items()},
    "layernorm": _layernorm, "scale": _scale, "linear": _linear, "chunk": _chunk,
    "shuffle": _shuffle, "deconv": _deconv, "upsample": _upsample,
}


class Fused(NamedTuple):
    """What the fused model absorbs into one layer's step, each layer the only reader
    of the value before it."""

    affine: Layer | None = None    # a per-channel x·scale + shift folded into its weights
    act: Layer | None = None       # an elementwise activation applied to its output
    shuffle: Layer | None = None   # a channel shuffle its concat writes in shuffled order


def fusions(net: Network) -> dict[str, Fused]:
    """What the fused model folds into each layer, for the layers that absorb any."""
    consumers: dict[str, list[Layer]] = {}
    for layer in net.layers:
        for i in layer.inputs:
            consumers.setdefault(i.name, []).append(layer)

    def only_reader(layer: Layer, kinds: Container[str]) -> Layer | None:
        after = consumers.get(layer.name, [])
        ok = len(after) == 1 and len(after[0].inputs) == 1 and after[0].kind in kinds
        return after[0] if ok else None

    found: dict[str, Fused] = {}
    absorbed: set[str] = set()
    for layer in net.layers:
        if layer.aux or layer.name in absorbed:
            continue
        affine = act = shuffle = None
        if layer.kind in FOLDS_AFFINE and "weight" in layer.weight_shapes():
            affine = only_reader(layer, AFFINE)
        if layer.kind in FUSES_ACTIVATION:
            act = only_reader(affine or layer, ELEMENTWISE)
        if layer.kind == "concat":
            shuffle = only_reader(layer, ("shuffle",))
        fused = Fused(affine, act, shuffle)
        if any(fused):
            found[layer.name] = fused
            absorbed.update(x.name for x in fused if x is not None)
    return found


class _Plan:
    """Steps in order, each with the values it reads; identity layers are aliases.

    With `fuse`, a batch norm or layer scale is folded into the conv, fc or linear
    before it, an elementwise activation into the step before it, and a channel
    shuffle into the concat before it, wherever that step's output has no other
    reader (`fusions`): ResNet's conv + bn + relu is one step.
    """

    def __init__(self, net: Network, weights: dict[str, dict[str, np.ndarray]],
                 fuse: bool) -> None:
        self.steps: list[tuple[str, Step, list[str], bool]] = []
        self.alias: dict[str, str] = {}
        big: dict[int, bool] = {}
        fused = fusions(net) if fuse else {}
        absorbed = {x.name for f in fused.values() for x in f if x is not None}
        for layer in net.layers:
            if layer.aux:
                continue   # an aux head is not computed at inference
            ins = [self.alias.get(i.name, i.name) for i in layer.inputs]
            if layer.name in absorbed:
                self.alias[layer.name] = ins[0]
                continue
            w, act = weights.get(layer.name, {}), None
            affine, then, shuffle = fused.get(layer.name, Fused())
            if affine is not None:
                w = fold(w, *AFFINE[affine.kind](affine, weights.get(affine.name, {})))
            if then is not None:
                act = chunked(ELEMENTWISE[then.kind])
            if layer.kind not in LOWERINGS:
                raise NotImplementedError(f"the NumPy backend has no `{layer.kind}` layer")
            step = LOWERINGS[layer.kind](layer, w) if shuffle is None else \
                shuffled_concat(layer, shuffle)
            if step is None:
                self.alias[layer.name] = ins[0] if ins else layer.name
                continue
            if act is not None:
                step = partial(step, act=act)
            self.steps.append((layer.name, step, ins, layer.kind in IN_PLACE))
            big[len(self.steps) - 1] = layer.kind == "fc" and layer.params * 4 >= GATHER_BYTES
        self.input = net.layers[0].name
        self.output = self.alias.get(net.layers[-1].name, net.layers[-1].name)
        #: (i, value): where a batch split across threads is gathered again — before
        #: the first large fc layer that only one value flows into — or None
        self.gather: tuple[int, str] | None = None
        made: dict[str, int] = {self.input: -1}
        last_read: dict[str, int] = {}
        for i, (name, _, ins, _) in enumerate(self.steps):
            made[name] = i
            for value in ins:
                last_read[value] = i
        change = [0] * (len(self.steps) + 1)   # values live at step i: read at i or later
        for value, read in last_read.items():
            change[made[value] + 1] += 1
            change[read + 1] -= 1
        live = 0
        for i, (_, _, ins, _) in enumerate(self.steps):
            live += change[i]
            if big[i] and live == 1 and len(set(ins)) == 1:
                self.gather = (i, ins[0])
                break

    def run(self, x: np.ndarray, record: dict[str, np.ndarray] | None = None,
            timing: dict[str, float] | None = None, part: str = "all",
            alone: frozenset[str] = frozenset()) -> np.ndarray:
        """Run the steps on the prepared input (which they may overwrite).

        `record` receives a copy of every value, `timing` each step's seconds (the
        least over the calls that passed it). `part` "head" runs the steps before
        `gather` and returns the value gathered there; "tail" runs the rest from it.
        The steps named in `alone` never split their work across threads.
        """
        start, stop, first, result = 0, len(self.steps), self.input, self.output
        if part != "all" and self.gather is not None:
            cut, boundary = self.gather
            start, first = (cut, boundary) if part == "tail" else (0, first)
            stop, result = (cut, boundary) if part == "head" else (stop, result)
        values = {first: x}
        left: dict[str, int] = {}
        for _, _, ins, _ in self.steps[start:stop]:
            for name in ins:
                left[name] = left.get(name, 0) + 1
        for name, step, ins, in_place in self.steps[start:stop]:
            args = [values[i] for i in ins]
            if in_place and left[ins[0]] > 1:
                free = [j for j in range(1, len(ins)) if left[ins[j]] == 1 and ins[j] != ins[0]
                        and args[j].shape == args[0].shape]
                if free:   # a sum or product: overwrite an input nobody else reads
                    args[0], args[free[0]] = args[free[0]], args[0]
                else:
                    args[0] = args[0].copy()   # another layer still reads this value
            start = time.perf_counter()
            if name in alone:
                with spread(1):
                    out = step(*args)
            else:
                out = step(*args)
            if timing is not None:
                timing[name] = min(timing.get(name, np.inf), time.perf_counter() - start)
            for i in ins:
                left[i] -= 1
                if not left[i] and i != result:
                    del values[i]   # its memory can go as soon as no layer reads it
            values[name] = out
            if record is not None:
                record[name] = NumpyModel._finish(out)
        return values[result]


def usable_cpus() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@lru_cache(maxsize=1)
def _blas() -> ThreadpoolController:
    return ThreadpoolController()


class NumpyModel:
    """A network compiled to NumPy: `model(x)` maps N×C×H×W float32 to its output.

    The output is (N, K) after fc layers, or N×C×H×W for a fully convolutional
    network. Weights are checked and prepared once, when the model is built;
    batch norms are folded into the convs before them and activations fused
    into the steps before them.

    The model runs on `threads` threads (default: every usable CPU), each running
    single-threaded BLAS: a batch of at least that many samples is cut into parts
    the threads take in turn, so that the im2col copies, padding, pooling and
    activations run in parallel too, not only the matrix multiplies (measured:
    VGG-mini at batch 32 on 2 cores, 175 ms against 235 ms with BLAS's own
    threads); the parts are gathered again before a large fc layer, whose
    features the threads then share (`GATHER_BYTES`). A smaller batch runs once,
    its long steps splitting their rows or channels across the threads, or every
    step whole with BLAS on the threads, whichever is faster here (`_few`).
    While a batch runs, BLAS is limited to one thread process-wide (but in the
    "blas" way of a small batch); `threads=1` leaves BLAS alone.
    """

    def __init__(self, net: Network, weights: dict[str, np.ndarray],
                 threads: int | None = None) -> None:
        self.net = net
        self.threads = threads or usable_cpus()
        self._weights: dict[str, dict[str, np.ndarray]] = {
            layer.name: {s: weights[layer.weight_key(s)] for s in layer.weight_shapes()}
            for layer in net.layers}
        self.fast = _Plan(net, self._weights, fuse=True)   # bn folded, activations fused
        keep_freed_memory()
        self._traced: _Plan | None = None
        #: batch size (below `threads`) → the steps too short to split (SPLIT_SECONDS)
        self._alone: dict[int, frozenset[str]] = {}
        self._tuners: dict[int, Tuner] = {}   # batch size (below `threads`) → its Tuner

    @property
    def traced(self) -> _Plan:
        """Every layer as its own step, for `activations` (built on first use)."""
        if self._traced is None:
            self._traced = _Plan(self.net, self._weights, fuse=False)
        return self._traced

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
        if self.threads <= 1:
            return self._run(prepared)
        with _blas().limit(limits=1, user_api="blas"):
            if prepared.shape[0] < self.threads:
                return self._few(prepared)
            n = prepared.shape[0]
            parts = np.array_split(prepared, min(n, self.threads * PARTS_PER_THREAD))
            outs: list[np.ndarray | None] = [None] * len(parts)
            gather = self.fast.gather is not None

            def run(i: int) -> None:
                outs[i] = self.fast.run(parts[i], part="head") if gather else self._run(parts[i])
            with spread(self.threads):
                each(run, range(len(parts)))
            if not gather:
                return np.concatenate(outs)
            with spread(self.threads):
                return self._finish(self.fast.run(np.concatenate(outs), part="tail"))

    def _few(self, prepared: np.ndarray) -> np.ndarray:
        """Fewer samples than threads. The first call at this batch size runs on one
        thread and times each step. Later ones run in one of three ways, whichever a
        Tuner finds fastest on this machine under its current load: "one", all on one
        thread (when other processes hold the CPUs, a thread handed part of a step can
        wait a whole time slice for one, and the step with it); "split", the long
        steps (SPLIT_SECONDS) sharing their work across the model's threads, BLAS on
        one; or "blas", every step whole and BLAS on the model's threads, tried last
        because its threads spin on after it."""
        n = prepared.shape[0]
        if n not in self._alone:
            timing: dict[str, float] = {}
            out = self._finish(self.fast.run(prepared, timing=timing))
            self._alone[n] = frozenset(k for k, t in timing.items() if t < SPLIT_SECONDS)
            self._tuners[n] = Tuner(("one", "split", "blas"))
            return out
        tuner = self._tuners[n]
        way = tuner.next()
        start = time.perf_counter()
        if way == "blas":
            with _blas().limit(limits=self.threads, user_api="blas"):
                out = self._run(prepared)
        elif way == "one":
            out = self._run(prepared)
        else:
            with spread(self.threads):
                out = self._finish(self.fast.run(prepared, alone=self._alone[n]))
        tuner.record(way, time.perf_counter() - start)
        return out

    def activations(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every layer's output for the batch x, by layer name, in NCHW / (N, F).

        `aux` heads are not computed, so they are not in it.
        """
        prepared = self._prepare(x)
        record = {self.net.layers[0].name: self._finish(prepared)}
        plan = self.traced
        plan.run(prepared, record)
        layers = [layer for layer in self.net.layers if not layer.aux]
        for layer in layers:   # identity layers show the value they pass on
            if layer.name not in record:
                record[layer.name] = record[plan.alias[layer.name]]
        return {layer.name: record[layer.name] for layer in layers}

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
