"""The plan the NumPy model runs: one step per layer, with the fusions that save passes.

Each layer kind lowers itself (`Layer.numpy`: a function of NHWC arrays closing over
its prepared weights). The plan only chains the steps and decides, from what the
kinds declare, what each step also computes: a batch norm or layer scale folded
into the conv, fc or linear before it (`folds_affine`, `affine`), an elementwise
activation fused into the step before it (`fuses_activation`, `elementwise`), a
shuffle written by the concat before it (`absorbs`), wherever that step's output
has no other reader: ResNet's conv + bn + relu is one step.
"""

from __future__ import annotations

import time
from functools import partial
from typing import TYPE_CHECKING, Callable, NamedTuple

import numpy as np

from ...kinds.base import Layer
from ...numerics.elementwise import chunked, fold
from ...numerics.threads import spread
from ...numerics.windows import Step

if TYPE_CHECKING:
    from ...network import Network

#: An fc layer with at least this many bytes of weights runs on the whole batch, its
#: outputs split across the threads, rather than on each thread's share of the
#: batch: every thread would stream all its weights from memory (AlexNet's first fc
#: layer, 151 MB, took 44% of the time at batch 8).
GATHER_BYTES = 8 * 2**20


def finish(y: np.ndarray) -> np.ndarray:
    """A new array, NHWC back to NCHW: never a buffer the model will reuse."""
    return y.transpose(0, 3, 1, 2).copy() if y.ndim == 4 else y.copy()


class Fused(NamedTuple):
    """What the fused model absorbs into one layer's step, each layer the only reader
    of the value before it."""

    affine: Layer | None = None    # a per-channel x·scale + shift folded into its weights
    act: Layer | None = None       # an elementwise activation applied to its output
    shuffle: Layer | None = None   # a layer it computes too (a concat: the shuffle after it)


def fusions(net: Network) -> dict[str, Fused]:
    """What the fused model folds into each layer, for the layers that absorb any."""
    consumers: dict[str, list[Layer]] = {}
    for layer in net.layers:
        for i in layer.inputs:
            consumers.setdefault(i.name, []).append(layer)

    def only_reader(layer: Layer, accepts: Callable[[Layer], bool]) -> Layer | None:
        after = consumers.get(layer.name, [])
        ok = len(after) == 1 and len(after[0].inputs) == 1 and accepts(after[0])
        return after[0] if ok else None

    found: dict[str, Fused] = {}
    absorbed: set[str] = set()
    for layer in net.layers:
        if layer.aux or layer.name in absorbed:
            continue
        affine = act = shuffle = None
        if layer.folds_affine and "weight" in layer.weight_shapes():
            affine = only_reader(layer, lambda r: r.per_channel_affine)
        if layer.fuses_activation:
            act = only_reader(affine or layer, lambda r: r.elementwise() is not None)
        shuffle = only_reader(layer, layer.absorbs)
        fused = Fused(affine, act, shuffle)
        if any(fused):
            found[layer.name] = fused
            absorbed.update(x.name for x in fused if x is not None)
    return found


class Plan:
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
            affine, then, absorbed_next = fused.get(layer.name, Fused())
            if affine is not None:
                w = fold(w, *affine.affine(weights.get(affine.name, {})))
            if then is not None:
                act = chunked(then.elementwise())
            step = layer.numpy(w) if absorbed_next is None else \
                layer.numpy_absorbing(w, absorbed_next)
            if step is None:
                self.alias[layer.name] = ins[0] if ins else layer.name
                continue
            if act is not None:
                step = partial(step, act=act)
            self.steps.append((layer.name, step, ins, layer.numpy_in_place))
            big[len(self.steps) - 1] = layer.shares_features and layer.params * 4 >= GATHER_BYTES
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
                record[name] = finish(out)
        return values[result]
