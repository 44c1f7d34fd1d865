"""The executable NumPy model: a plan of steps, run on threads.

The model takes and returns NCHW float32 like PyTorch, but runs NHWC inside: with
channels last, the im2col matrix of a convolution is a plain reshape of a strided
window view, one BLAS matrix multiply yields the output already in NHWC, and no
transpose is needed between layers. Each layer kind lowers itself (`Layer.numpy`);
the arithmetic (output sizes, padding) comes from the layer, never recomputed here.
"""

from __future__ import annotations

import os
import time
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import ThreadpoolController

from ...kinds.base import shape_str
from ...numerics.heap import keep_freed_memory
from ...numerics.threads import Tuner, each, spread
from .inputs import prepare_input, sample_shape
from .plan import Plan, finish

if TYPE_CHECKING:
    from ...network import Network

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
        self.fast = Plan(net, self._weights, fuse=True)   # bn folded, activations fused
        keep_freed_memory()
        self._traced: Plan | None = None
        #: batch size (below `threads`) → the steps too short to split (SPLIT_SECONDS)
        self._alone: dict[int, frozenset[str]] = {}
        self._tuners: dict[int, Tuner] = {}   # batch size (below `threads`) → its Tuner

    @property
    def traced(self) -> Plan:
        """Every layer as its own step, for `activations` (built on first use)."""
        if self._traced is None:
            self._traced = Plan(self.net, self._weights, fuse=False)
        return self._traced

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Expected input per sample, C×H×W (or F for a vector input)."""
        return sample_shape(self.net)

    def _prepare(self, x: np.ndarray) -> np.ndarray:
        x = prepare_input(self.net, x)
        return x.transpose(0, 2, 3, 1).copy() if x.ndim == 4 else x

    def _run(self, x: np.ndarray) -> np.ndarray:
        return finish(self.fast.run(x))

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
                return finish(self.fast.run(np.concatenate(outs), part="tail"))

    def _few(self, prepared: np.ndarray) -> np.ndarray:
        """Fewer samples than threads. The first call at this batch size runs on one
        thread and times each step. Later ones run in one of three ways, whichever a
        Tuner finds fastest on this machine under its current load: "one", all on one
        thread (when other processes hold the CPUs, a thread handed part of a step can
        wait a whole time slice for one, and the step with it); "shared", the long
        steps (SPLIT_SECONDS) sharing their work across the model's threads, BLAS on
        one; or "blas", every step whole and BLAS on the model's threads, tried last
        because its threads spin on after it."""
        n = prepared.shape[0]
        if n not in self._alone:
            timing: dict[str, float] = {}
            out = finish(self.fast.run(prepared, timing=timing))
            self._alone[n] = frozenset(k for k, t in timing.items() if t < SPLIT_SECONDS)
            self._tuners[n] = Tuner(("one", "shared", "blas"))
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
                out = finish(self.fast.run(prepared, alone=self._alone[n]))
        tuner.record(way, time.perf_counter() - start)
        return out

    def activations(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every layer's output for the batch x, by layer name, in NCHW / (N, F).

        `aux` heads are not computed, so they are not in it.
        """
        prepared = self._prepare(x)
        record = {self.net.layers[0].name: finish(prepared)}
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
