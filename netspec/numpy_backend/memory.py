"""What the NumPy model allocates beyond the layers' values, for netspec.analysis.memory.

`forward_peak(net, batch, runtime=NumpyRuntime())` is the peak of one forward pass
of this backend (one thread): the values alive at once plus the scratch of the
step running then. Each figure below follows the step's code in this package:

- the input is copied twice (to float32 NCHW, then to NHWC), and the NHWC copy
  is held until the pass ends;
- conv and pool copy a padded input when they pad; a conv builds one im2col block
  at a time, in one buffer per call (none for a 1×1 stride-1 conv, whose window
  view is already a matrix), and a grouped conv also the product per block (then,
  the block freed, its transposed copy); a stride-1 conv with few filters
  copies a block of samples' input rows instead, and holds the block's sum and
  one product besides; a depthwise conv copies its padded input as column
  phases (one copy, made even without padding when its stride is over 1) and,
  with more than one phase, holds each later phase's sum of a block of rows;
- batch norm, the residual add, a gate's multiply and the elementwise
  activations work in place where their input has no other reader (a batch norm
  after a conv is even folded into it); an activation works on pieces of at
  most ops.CHUNK values, through ops.TEMPORARIES piece-sized temporaries (silu,
  hswish one, gelu three), made while the step it is fused into runs; softmax
  makes one output-sized temporary; leaky allocates its output and no more; LRN
  two, a gather buffer and its cumulative squares (one channel more than its
  input);
- a ufunc over a strided view (pooling) buffers 8192 values per operand;
- adaptive pooling keeps the product over H while it multiplies over W;
- fc flattens a volume by copying it to NCHW order; so does `flatten`, which is a
  copy here, not a view;
- the output is copied once more at the end (`NumpyModel._finish`: back to NCHW,
  or a plain copy), while the NHWC input and the last value are still held.
"""

from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING

from ..analysis.memory import Runtime
from ..kinds import Layer
from .conv import (
    DEPTHWISE_BLOCK_BYTES,
    _depthwise,
    _depthwise_phases,
    _row_shared,
    im2col_blocks,
    row_shared_samples,
)
from .ops import CHUNK, IN_PLACE, TEMPORARIES
from .windows import row_blocks

if TYPE_CHECKING:
    from ..network import Network

#: Layer kinds whose step makes one temporary the size of its output.
ONE_TEMPORARY = {"softmax"}
#: A ufunc over a non-contiguous operand copies it through a buffer of this size.
UFUNC_BUFFER = 8192 * 4


class NumpyRuntime(Runtime):
    """The NumPy model's allocations: its in-place steps, copies and scratch."""

    keeps_input = True
    copies_output = True

    def __init__(self) -> None:
        #: a step's layer → the activation fused into it
        self.fused_act: dict[str, Layer] = {}
        #: the activations and shuffles computed in the step before them
        self.fused_into: set[str] = set()

    def learn(self, net: Network) -> None:
        """A fused activation's temporaries are made while the step before it runs."""
        from .model import fusions
        found = fusions(net)
        self.fused_act = {name: f.act for name, f in found.items() if f.act is not None}
        self.fused_into = {x.name for f in found.values() for x in (f.act, f.shuffle)
                           if x is not None}

    def _temporaries(self, act: Layer, batch: int) -> int:
        return TEMPORARIES.get(act.kind, 0) * min(4 * CHUNK, 4 * batch * prod(act.output_shape))

    def aliases(self, layer: Layer) -> bool:
        if layer.kind == "shuffle" and layer.name in self.fused_into:
            return True   # the concat before it wrote its output
        if layer.kind == "flatten":
            return len(layer.input_shape) == 1   # a volume is copied to NCHW order
        return layer.aliases(False)

    def in_place(self, layer: Layer) -> bool:
        return layer.kind in IN_PLACE or layer.in_place

    def scratch(self, layer: Layer, batch: int) -> int:
        if layer.name in self.fused_into:   # computed in the step before, see there
            return 0
        own = self._scratch(layer, batch)
        if layer.name in self.fused_act:
            own += self._temporaries(self.fused_act[layer.name], batch)
        return own

    def _scratch(self, layer: Layer, batch: int) -> int:
        out = 4 * batch * prod(layer.output_shape)
        if layer.kind == "input":
            return out
        if layer.kind in ONE_TEMPORARY:
            return out
        if layer.kind in TEMPORARIES:   # per piece of the value it overwrites
            return self._temporaries(layer, batch)
        if layer.kind == "lrn":
            return out + out // layer.output_shape[-1] + 2 * out + min(UFUNC_BUFFER, out)
        if layer.kind == "adaptive_pool":   # the product over H, before the one over W
            return 4 * batch * layer.size[0] * prod(layer.input_shape[1:])
        if layer.kind == "fc":
            return 4 * batch * prod(layer.input_shape) if len(layer.input_shape) == 3 else 0
        if layer.kind not in ("conv", "pool") or getattr(layer, "global_pool", False):
            return 0
        pads = layer.floor_pads() if layer.kind == "pool" else layer.pads
        (t, b), (left, r) = pads
        h, w, c = layer.input_shape
        padded = 4 * batch * (h + t + b) * (w + left + r) * c if t or b or left or r else 0
        if layer.kind == "pool":
            return padded + min(UFUNC_BUFFER, out)
        if _depthwise(layer):   # its column phases, and a later phase's sum of a block
            stride = layer.strides[1]
            phases = padded or (4 * batch * h * w * c if stride > 1 else 0)
            if len(_depthwise_phases(layer)) == 1:
                return phases
            oh, ow, k = layer.output_shape
            samples, rows = row_blocks(batch, oh, ow * k * 4, DEPTHWISE_BLOCK_BYTES)[0]
            return phases + len(range(batch)[samples]) * len(range(oh)[rows]) * ow * k * 4
        if _row_shared(layer):   # a block's rows, its sum and the product being added
            per = min(batch, row_shared_samples(layer, h + t + b))
            c, fw, oh, ow = layer.in_channels, layer.kernel[1], *layer.output_shape[:2]
            return padded + 4 * per * (c * fw * (h + t + b) * ow + 2 * layer.filters * oh * ow)
        samples, rows = im2col_blocks(layer, batch)[0]
        m = len(range(batch)[samples]) * len(range(layer.output_shape[0])[rows]) * \
            layer.output_shape[1]
        direct = layer.kernel == (1, 1) and layer.strides == (1, 1) and layer.groups == 1
        block = 0 if direct else 4 * m * prod(layer.kernel) * layer.in_channels   # all groups
        if layer.groups > 1:   # the product, then (the block freed) its transposed copy
            block = max(block + 4 * m * layer.filters, 2 * 4 * m * layer.filters)
        return padded + block
