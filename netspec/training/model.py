"""The network as training runs it: each layer's training step, forward over the graph
keeping what backward needs, backward in reverse; and `gradients`, the public API.

Every layer kind states its own step (`Layer.training_step`, netspec.numerics.backward
.steps); this module only walks the layer graph. A forward pass runs the layers in
order (the order is topological), each reading its inputs' values, and keeps each
layer's cache; a value is dropped as soon as its last reader has run, so that
what stays alive is what the caches hold (as with torch's autograd) and the
outputs. Backward walks the layers in reverse: a value read by several layers
(a residual's shortcut, a concat's branches) gets the sum of their gradients, and a
layer none of whose inputs needs a gradient (before the first trainable layer) gives
none. Arrays are NHWC (volumes) or N×F (vectors), float32.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from ..kinds.base import Layer
    from ..network import Network
    from ..numerics.backward.steps import TrainStep


class Tape(NamedTuple):
    """What one forward pass keeps for its backward: each layer's cache, by name."""

    caches: dict[str, Any]


class TrainingModel:
    """The layer graph with each layer's training step, over weight arrays shared with
    the caller (an optimizer updates them in place; the steps see every update).

    `training` selects the training forward (batch statistics, dropout masks drawn
    from `rng`); `heads` also computes the `aux` heads. `ends` names the values
    `forward` returns (default: the network's output and, with `heads`, each head's
    last value); only the layers they depend on run (a loss on the logits before a
    final softmax leaves the softmax out). `weights` maps state-dict keys to arrays.
    """

    def __init__(self, net: Network, weights: dict[str, np.ndarray], training: bool = False,
                 rng: np.random.Generator | None = None, heads: bool = False,
                 ends: list[str] | None = None) -> None:
        self.net = net
        self.training = training
        computed = [layer for layer in net.layers if heads or not layer.aux]
        read = {i.name for layer in computed for i in layer.inputs}
        #: the values `forward` returns
        self.ends = ends if ends is not None else [
            layer.name for layer in computed if layer.name not in read]
        needed = set(self.ends)
        for layer in reversed(computed):
            if layer.name in needed:
                needed.update(i.name for i in layer.inputs)
        self.layers: list[Layer] = [layer for layer in computed if layer.name in needed]
        self.input = net.layers[0].name
        self.steps: dict[str, TrainStep] = {}
        for layer in self.layers[1:]:
            w = {s: weights[layer.weight_key(s)] for s in layer.weight_shapes()}
            step = layer.training_step(w, training, rng)
            if step is None:
                raise NotImplementedError(f"`{layer.kind}` gives no training step")
            self.steps[layer.name] = step
        self.readers: dict[str, int] = {}
        for layer in self.layers:
            for i in layer.inputs:
                self.readers[i.name] = self.readers.get(i.name, 0) + 1
        self.output = net.layers[-1].name
        self.trainable = {layer.name: [s for s in layer.weight_shapes() if s not in layer.buffers]
                          for layer in self.layers}

    def forward(self, x: np.ndarray, keep: bool = True,
                update: bool = True) -> tuple[dict[str, np.ndarray], Tape]:
        """Run the NHWC batch x; return the values `ends` names (by layer name) and the
        tape for `backward` (empty without `keep`: an evaluation pass holds only the
        values in flight).

        In training, batch norms update their running statistics as they run (unless
        `update` is false).
        """
        values = {self.input: x}
        left = dict(self.readers)
        caches: dict[str, Any] = {}
        for layer in self.layers[1:]:
            step = self.steps[layer.name]
            y, cache = step.forward(*(values[i.name] for i in layer.inputs))
            if update and step.update is not None:
                step.update(cache)
            if keep:
                caches[layer.name] = cache
            values[layer.name] = y
            for i in layer.inputs:
                left[i.name] -= 1
                if not left[i.name] and i.name not in self.ends:
                    del values[i.name]   # the caches still hold what backward needs
        return {name: values[name] for name in self.ends}, Tape(caches)

    def backward(self, tape: Tape, seeds: dict[str, np.ndarray],
                 want_dx: bool = False) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
        """The gradients for output gradients `seeds` (by output name, NHWC): the input's
        (with `want_dx`, else None) and each trainable weight's that any seed reaches, by
        state-dict key. The tape is consumed: each cache is dropped once used."""
        requires = self._requires(want_dx)
        pending: dict[str, np.ndarray] = dict(seeds)
        owned: set[str] = set()   # sums made here, safe to add into
        grads: dict[str, np.ndarray] = {}
        for layer in reversed(self.layers[1:]):
            dy = pending.pop(layer.name, None)
            cache = tape.caches.pop(layer.name, None)
            need_dx = any(requires[i.name] for i in layer.inputs)
            if dy is None or not (need_dx or self.trainable[layer.name]):
                continue
            dxs, g = self.steps[layer.name].backward(dy, cache, need_dx)
            del dy, cache
            for suffix in self.trainable[layer.name]:
                grads[layer.weight_key(suffix)] = g[suffix]
            for i, dx in zip(layer.inputs, dxs or ()):
                if not requires[i.name]:
                    continue
                if i.name not in pending:
                    pending[i.name] = dx
                elif i.name in owned:
                    pending[i.name] += dx
                else:   # the first may be a read-only view of a later layer's dy
                    pending[i.name] = pending[i.name] + dx
                    owned.add(i.name)
        return (pending.get(self.input) if want_dx else None), grads

    def _requires(self, want_dx: bool) -> dict[str, bool]:
        """Which values need a gradient: those that depend on a trainable weight (or on
        the input, with `want_dx`)."""
        requires = {self.input: want_dx}
        for layer in self.layers[1:]:
            requires[layer.name] = bool(self.trainable[layer.name]) or \
                any(requires[i.name] for i in layer.inputs)
        return requires


def to_nhwc(x: np.ndarray) -> np.ndarray:
    """An N×C×H×W batch as a contiguous NHWC array (a vector batch as it is)."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if x.ndim == 4 else x


def to_nchw(x: np.ndarray) -> np.ndarray:
    """An NHWC batch back as a contiguous N×C×H×W array (a vector batch as it is)."""
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if x.ndim == 4 else x


def gradients(net: Network, weights: dict[str, Any], x: np.ndarray, dy: np.ndarray,
              training: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The vector–Jacobian product of the network's output with `dy`: (dx, {name: dW}).

    x is N×C×H×W (or N×F), as `netspec run` takes it; dy has the output's shape,
    N×K×H×W for a volume (as the NumPy model returns it) or N×K; dx comes back in x's
    layout, float32. Every trainable weight has a gradient, by state-dict key; the
    weights the output does not depend on (`aux` heads) get zeros.

    `training=False` is inference: batch norm on its running statistics, dropout the
    identity. `training=True` uses each batch norm's batch statistics (and updates
    no running statistics) and drops values with masks drawn from NumPy's generator
    seeded 0 (`netspec train` draws its own, from `--seed`).
    """
    from ..backends.numpy.inputs import prepare_input
    from ..source.diagnostics import InputError
    checked = net.check_weights(weights)
    batch = prepare_input(net, x)
    dy = np.asarray(dy)
    want = (batch.shape[0], *(net.output_shape[2:] + net.output_shape[:2]
                              if len(net.output_shape) == 3 else net.output_shape))
    if dy.shape != want:
        raise InputError(f"dy has shape {'×'.join(map(str, dy.shape))}, but the output is "
                         f"{'×'.join(map(str, want))}")
    model = TrainingModel(net, checked, training, np.random.default_rng(0) if training else None)
    with np.errstate(all="ignore"):
        _, tape = model.forward(to_nhwc(batch), update=False)
        dx, grads = model.backward(tape, {model.output: to_nhwc(dy.astype(np.float32))},
                                   want_dx=True)
    every = {layer.weight_key(s): grads.get(layer.weight_key(s),
                                            np.zeros(shape, np.float32))
             for layer in net.layers for s, shape in layer.weight_shapes().items()
             if s not in layer.buffers}
    return to_nchw(dx), every
