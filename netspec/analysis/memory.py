"""Memory: parameters and their bytes, the forward peak, and training memory.

- Parameters are trainable (`Layer.params`) or buffers (`Layer.buffers`: batch
  norm's running statistics); weights take (trainable + buffers)·bytes per value.
- Activations: a layer's output takes batch·values·bytes. The forward peak walks
  the layers in order, as a runtime runs them: a value is allocated when its layer
  runs and freed after its last reader; an in-place layer (`Layer.in_place`) that is
  the last reader of its input reuses it, and an alias (`Layer.aliases`) is its
  input. The peak is the most bytes alive at once, counted when each layer has
  allocated its output and before its inputs are freed; a `Runtime` can add the
  scratch space its kernels take (padding copies, im2col blocks).
- Training: weights + gradients (one per trainable value) + optimizer state (none
  for SGD, one value per trainable value for momentum, two for Adam) + what the
  forward pass keeps for backward: each layer kind names the values its backward
  keeps (`Layer.saves`: its input and/or its output) and any more bytes
  (`Layer.saved_extra_bytes`: max pooling's indices, dropout's mask; and once per pass,
  `Layer.saved_pass_bytes`: a weight-standardised conv's weights); a tensor kept
  by several layers (a relu's output that the next conv keeps too) counts once.
  Layers before the first trainable one keep nothing: no gradient flows there.
  A step also holds values and gradients in flight, beyond those kept: in the
  forward pass the values not kept but still to be read (and the outputs, which the
  loss reads), in the backward pass the gradients of the values not yet done (a
  layer's dy, the dx it makes, a residual's shortcut gradient waiting for its body).
  The most of those at once is `in_flight`. `conv 3x3 x1000` on a 1000×1000×3 image
  keeps only its input (11.44 MiB), but its 998×998×1000 output (3.71 GiB) is held
  until the loss has read it, and the output's gradient beside it: 7.42 GiB in
  flight, so that training never counts less than the forward pass holds. The
  kernels' own scratch space comes on top, as for the forward peak.
"""

from __future__ import annotations

from collections import namedtuple
from math import prod
from typing import TYPE_CHECKING

from ..kinds import Layer

if TYPE_CHECKING:
    from ..network import Network

#: Bytes per value of each dtype `--dtype` accepts.
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}
#: Optimizer state per trainable value, in values.
OPTIMIZER_STATES = {"sgd": 0, "momentum": 1, "adam": 2}


def weight_counts(net: Network) -> tuple[int, int]:
    """(trainable, non-trainable) values of the whole network."""
    return (sum(lay.params for lay in net.layers),
            sum(lay.non_trainable for lay in net.layers))


class Runtime:
    """How a runtime allocates: the defaults are the layers' own declarations, no scratch."""

    #: The caller holds the input batch until the pass ends (it is never freed early).
    keeps_input = False
    #: The pass ends by copying its output (while the caller still holds the input).
    copies_output = False

    def aliases(self, layer: Layer) -> bool:
        """Whether `layer`'s output is its input's memory (at inference)."""
        return layer.aliases(False)

    def in_place(self, layer: Layer) -> bool:
        """Whether `layer` overwrites its input when it is that input's last reader."""
        return layer.in_place

    def scratch(self, layer: Layer, batch: int) -> int:
        """Bytes `layer` allocates for itself while it runs, beyond its output."""
        return 0

    def learn(self, net: Network) -> None:
        """Called with the network before its pass is walked: a runtime that fuses
        layers finds out which here."""


class ForwardPeak(namedtuple("ForwardPeak", "bytes layer alive")):
    """The most bytes alive at once in one forward pass, and where it happens."""

    __slots__ = ()   # a namedtuple, not typing.NamedTuple: see source/pos.py
    bytes: int
    layer: str  # the layer running at the peak
    alive: tuple[str, ...]  # the values alive then (and the layer's own scratch)


def forward_peak(net: Network, batch: int = 1, dtype_bytes: int = 4,
                 runtime: Runtime | None = None) -> ForwardPeak:
    """The peak of one forward pass at `batch` samples, from the values' lifetimes.

    Inference does not compute `aux` heads, so they take no memory here (training
    does compute them: `saved_bytes` counts them).
    """
    runtime = runtime or Runtime()
    runtime.learn(net)
    readers: dict[str, int] = {}
    layers = [layer for layer in net.layers if not layer.aux]
    for layer in layers:
        for i in layer.inputs:
            readers[i.name] = readers.get(i.name, 0) + 1
    last = net.layers[-1].name
    storage: dict[str, str] = {}        # value → the value whose memory it is
    size: dict[str, int] = {}           # memory (by owning value) → bytes
    users: dict[str, int] = {}          # memory → pending reads of the values in it
    pinned: set[str] = set()            # memory never freed during the pass
    best = ForwardPeak(0, "", ())
    for layer in layers:
        out = batch * prod(layer.output_shape) * dtype_bytes
        src = storage[layer.inputs[0].name] if layer.inputs else None
        if src is not None and (runtime.aliases(layer) or
                                runtime.in_place(layer) and users[src] == 1 and
                                readers.get(layer.inputs[0].name) == 1):
            storage[layer.name] = src
            size[src] = max(size[src], out)
        else:
            storage[layer.name] = layer.name
            size[layer.name] = out
            users[layer.name] = 0
        mem = storage[layer.name]
        users[mem] += readers.get(layer.name, 0)
        if layer.name == last or not layer.inputs and runtime.keeps_input:
            pinned.add(mem)
        scratch = runtime.scratch(layer, batch)
        alive = sum(size[m] for m in size) + scratch
        if alive > best.bytes:
            best = ForwardPeak(alive, layer.name, tuple(size))
        for i in layer.inputs:
            m = storage[i.name]
            users[m] -= 1
            if users[m] == 0 and m in size and m not in pinned:
                del size[m]
    if runtime.copies_output:
        alive = sum(size.values()) + batch * prod(net.layers[-1].output_shape) * dtype_bytes
        if alive > best.bytes:
            best = ForwardPeak(alive, last, (*size, "output copy"))
    return best


class TrainingMemory(namedtuple("TrainingMemory",
                                "weights gradients optimizer saved optimizer_name batch in_flight")):
    """Bytes one training step holds at its peak, by part (float32 throughout)."""

    __slots__ = ()   # a namedtuple, not typing.NamedTuple: see source/pos.py
    weights: int
    gradients: int
    optimizer: int
    saved: int  # activations kept for backward, for the whole batch
    optimizer_name: str
    batch: int
    in_flight: int  # the most values and gradients alive at once beyond `saved`

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.saved + self.in_flight


class _Kept(namedtuple("_Kept", "tensors owner kept extra graded readers")):
    """What backward keeps: each tensor's bytes (by the value that owns the memory), which
    memory each value is, the tensors kept, bytes kept beyond them, the values that
    depend on a trainable weight (whose gradients backward computes), and how many
    layers read each value."""

    __slots__ = ()


def _kept(net: Network, batch: int) -> _Kept:
    """Walk the layers as autograd records them (see the module's docstring)."""
    readers: dict[str, int] = {}
    for layer in net.layers:
        for i in layer.inputs:
            readers[i.name] = readers.get(i.name, 0) + 1
    owner: dict[str, str] = {}          # value → the tensor (by name) whose memory it is
    tensors: dict[str, int] = {}        # tensor → bytes
    kept: set[str] = set()
    extra = 0
    by_name = {layer.name: layer for layer in net.layers}
    graded: set[str] = set()            # values that depend on a trainable parameter
    for layer in net.layers:
        if layer.saves is None:
            raise NotImplementedError(f"`{layer.kind}` does not declare what its backward "
                                      f"keeps (Layer.saves)")
        if layer.params or any(i.name in graded for i in layer.inputs):
            graded.add(layer.name)
        out = batch * prod(layer.output_shape) * 4
        first = layer.inputs[0] if layer.inputs else None
        in_place = (first is not None and layer.in_place and readers.get(first.name) == 1
                    and first.inputs and "output" not in (by_name[first.name].saves or ()))
        if first is not None and (layer.aliases(True) or in_place):
            owner[layer.name] = owner[first.name]
        else:
            owner[layer.name] = layer.name
            tensors[layer.name] = out
        if layer.name not in graded:
            continue   # before the first trainable layer autograd records nothing
        if "input" in layer.saves:
            for i in layer.inputs:
                if in_place:   # autograd keeps a copy of what the layer overwrites
                    extra += batch * prod(i.output_shape) * 4
                else:
                    kept.add(owner[i.name])
        if "output" in layer.saves:
            kept.add(owner[layer.name])
        extra += batch * layer.saved_extra_bytes() + layer.saved_pass_bytes()
    return _Kept(tensors, owner, kept, extra, graded, readers)


def saved_bytes(net: Network, batch: int = 1) -> int:
    """What autograd keeps for backward over one forward pass of `batch` samples.

    Raises NotImplementedError for a layer kind that does not declare `saves`.
    """
    k = _kept(net, batch)
    return sum(k.tensors[t] for t in k.kept) + k.extra


def in_flight_bytes(net: Network, batch: int = 1) -> int:
    """The most bytes of values and gradients alive at once in a training step beyond
    what backward keeps (see the module's docstring); aux heads run, as in training."""
    k = _kept(net, batch)
    # forward: the tensors not kept, each alive until its last reader (an output until
    # the loss has read it, at the end)
    left: dict[str, int] = {}
    alive = forward = 0
    for layer in net.layers:
        mem = k.owner[layer.name]
        if mem not in left and mem not in k.kept:
            alive += k.tensors[mem]
        left[mem] = left.get(mem, 0) + k.readers.get(layer.name, 1)
        forward = max(forward, alive)
        for i in layer.inputs:
            m = k.owner[i.name]
            left[m] -= 1
            if not left[m] and m not in k.kept:
                alive -= k.tensors[m]
    # backward: the gradients of the values not yet done, each its value's size; the
    # loss makes the outputs' while the outputs (those left alive) are held
    size = {layer.name: batch * prod(layer.output_shape) * 4 for layer in net.layers}
    pending = {layer.name: size[layer.name] for layer in net.layers
               if layer.name not in k.readers and layer.name in k.graded}
    waiting = sum(pending.values())
    backward = waiting + alive
    for layer in reversed(net.layers):
        if layer.name not in pending:
            continue
        graded = {i.name for i in layer.inputs if i.name in k.graded}
        backward = max(backward, waiting + sum(size[i] for i in graded))   # dy beside dx
        waiting -= pending.pop(layer.name)
        for i in graded - pending.keys():
            pending[i] = size[i]
            waiting += size[i]
    return max(forward, backward)


def training_memory(net: Network, batch: int = 1, optimizer: str = "adam") -> TrainingMemory:
    """Weights, gradients, optimizer state, saved activations and what is in flight (values
    and gradients beyond those kept) at the peak of one training step."""
    trainable, buffers = weight_counts(net)
    return TrainingMemory(4 * (trainable + buffers), 4 * trainable,
                          4 * trainable * OPTIMIZER_STATES[optimizer],
                          saved_bytes(net, batch), optimizer, batch, in_flight_bytes(net, batch))


def human_bytes(n: float) -> str:
    """`1.50 MiB`, `512 B`: binary units, as the table prints them."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.2f} {unit}"
        n /= 1024
    raise AssertionError
