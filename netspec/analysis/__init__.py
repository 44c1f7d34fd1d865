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
