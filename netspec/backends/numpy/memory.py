"""What the NumPy model allocates beyond the layers' values, for netspec.analysis.memory.

`forward_peak(net, batch, runtime=NumpyRuntime())` is the peak of one forward pass
of this backend (one thread): the values alive at once plus the scratch of the
step running then. Each kind states its step's scratch (`Layer.numpy_scratch`,
beside its step's code); this runtime adds what the model itself does:

- the input is copied twice (to float32 NCHW, then to NHWC), and the NHWC copy
  is held until the pass ends;
- the steps of `numpy_in_place` kinds (batch norm, the residual add, a gate's
  multiply, the elementwise activations) overwrite their input where it has no
  other reader, and a batch norm after a conv is even folded into it;
- an activation fused into the step before it makes its temporaries while that
  step runs; a shuffle its concat writes allocates nothing of its own;
- the output is copied once more at the end (back to NCHW, or a plain copy),
  while the NHWC input and the last value are still held.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...analysis.memory import Runtime
from ...kinds.base import Layer
from .plan import fusions

if TYPE_CHECKING:
    from ...network import Network


class NumpyRuntime(Runtime):
    """The NumPy model's allocations: its in-place steps, copies and scratch."""

    keeps_input = True
    copies_output = True

    def __init__(self) -> None:
        #: a step's layer → the activation fused into it
        self.fused_act: dict[str, Layer] = {}
        #: the activations and absorbed layers computed in the step before them
        self.fused_into: set[str] = set()

    def learn(self, net: Network) -> None:
        """A fused activation's temporaries are made while the step before it runs."""
        found = fusions(net)
        self.fused_act = {name: f.act for name, f in found.items() if f.act is not None}
        self.fused_into = {x.name for f in found.values() for x in (f.act, f.shuffle)
                           if x is not None}

    def aliases(self, layer: Layer) -> bool:
        if layer.name in self.fused_into and layer.elementwise() is None:
            return True   # the step before it wrote its output
        return layer.numpy_alias()

    def in_place(self, layer: Layer) -> bool:
        return layer.numpy_in_place or layer.in_place

    def scratch(self, layer: Layer, batch: int) -> int:
        if layer.name in self.fused_into:   # computed in the step before, see there
            return 0
        own = layer.numpy_scratch(batch)
        if layer.name in self.fused_act:
            own += self.fused_act[layer.name].numpy_scratch(batch)
        return own
