"""Analyses of a checked network that show their work.

Each analysis walks the layers once and asks each layer for the facts of its
kind (its window, whether it runs in place, what its backward keeps, its FLOPs,
its arithmetic); none switches on a layer's kind. None of them imports NumPy.

    rf       receptive field, effective stride (jump) and first window's centre
    memory   trainable and non-trainable parameters, weight bytes per dtype,
             activation memory, the forward peak from lifetimes, training memory
    cost     MACs and FLOPs, by kind
    explain  each layer's derivation with its numbers filled in
    sizes    which input sizes a spec accepts, and which lose no input
    diff     two networks side by side

A new layer kind declares, in its class (netspec/layers/), what these ask:

- `pointwise = True`, or `window()` (span, stride, padding before, per axis), or
  `input_windows()` where its inputs are read differently (stride 0: broadcast), or
  `input_reads()` where it reads an input twice (group norm: the pixel and, for its
  statistics, the whole H×W);
  None where no one window describes it. Undeclared, the receptive field refuses.
- `saves` ("input" and/or "output": what PyTorch's backward keeps) and
  `saved_extra_bytes()` for anything more per sample (indices, masks, statistics), and
  `saved_pass_bytes()` for what is kept once per pass (a standardised conv weight).
- `in_place` (runs over its input) or `alias` (its output is its input), if so.
- `buffers`: its non-trainable arrays, by suffix.
- `flops()`, and `explain()` when its output differs from its input.
- The NumPy backend's temporaries, if its step makes any, in
  `Layer.numpy_scratch` (netspec.backends.numpy.memory).
"""

from .cost import flops_by_kind, total_flops
from .memory import (
    DTYPE_BYTES,
    OPTIMIZER_STATES,
    ForwardPeak,
    Runtime,
    TrainingMemory,
    forward_peak,
    training_memory,
    weight_counts,
)
from .rf import Field, receptive_fields

__all__ = ["DTYPE_BYTES", "OPTIMIZER_STATES", "Field", "ForwardPeak", "Runtime",
           "TrainingMemory", "flops_by_kind", "forward_peak", "receptive_fields",
           "total_flops", "training_memory", "weight_counts"]
