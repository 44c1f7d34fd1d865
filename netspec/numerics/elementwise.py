"""Elementwise work in cache-sized pieces, and folding a per-channel affine into weights.

An elementwise activation (each kind's `elementwise()`, netspec.kinds.activations)
overwrites the array it is given and returns it. `chunked` hands it cache-sized
pieces, so that its passes over a piece, and its temporaries, stay in the core's
cache; the pieces are shared by the model's threads when the running step may
split its work.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .threads import each

#: An elementwise activation: overwrites the array it is given and returns it.
Activation = Callable[[np.ndarray], np.ndarray]
#: `chunked` cuts an array into pieces of at most this many values (128 KiB): an
#: activation's passes over a piece, and its temporaries, stay in the core's cache
#: (GELU at 56×56×384: 37 ms over whole arrays).
CHUNK = 32768


def pieces(x: np.ndarray) -> list[np.ndarray]:
    """Views of x, each at most CHUNK values, that together cover it once.

    A contiguous array is cut along its flat order, a matrix (a block of some
    output columns) by rows; anything else is one piece.
    """
    if x.flags.c_contiguous:
        flat = x.reshape(-1)
        return [flat[i:i + CHUNK] for i in range(0, flat.size, CHUNK)]
    if x.ndim == 2:
        rows = max(1, CHUNK // max(x.shape[1], 1))
        return [x[i:i + rows] for i in range(0, x.shape[0], rows)]
    return [x]


def chunked(act: Activation) -> Activation:
    """`act` applied piece by piece (`pieces`), the pieces shared by the threads when the
    running step may split its work."""
    def run(x: np.ndarray) -> np.ndarray:
        each(act, pieces(x))
        return x
    return run


def fold(w: dict[str, np.ndarray], scale: np.ndarray, shift: np.ndarray) -> dict[str, np.ndarray]:
    """The weights of a layer whose outputs (weight's first axis) feed a per-channel
    `x·scale + shift` alone (a batch norm, a layer scale), with it folded in:
    weight·scale and bias·scale + shift."""
    weight = w["weight"]
    folded = (weight * scale.reshape(-1, *[1] * (weight.ndim - 1))).astype(np.float32)
    bias = shift if w.get("bias") is None else (w["bias"] * scale + shift).astype(np.float32)
    return {**w, "weight": folded, "bias": bias}
