"""A layer's training step: its op's forward and backward in one shape for every kind.

The ops of this package differ in how they take inputs and give gradients (a merge
takes a list, a weighted op's backward takes `need_dx`); a `TrainStep` is the same
for every kind, so that the graph runner (netspec.training.model) never asks which
kind a layer is:

- `forward(*xs) -> (y, cache)`, one NHWC (or N×F) array per input;
- `backward(dy, cache, need_dx) -> (dxs, grads)`: dxs one gradient per input (None
  when `need_dx` is false: no input needs one), grads a weight suffix → its gradient;
- `update(cache)`, or None: after a training forward, update the layer's buffers
  in place (batch norm's running statistics, as torch does during its forward).

Each kind builds its step in its own module (`Layer.training_step`) from these helpers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

Grads = dict[str, np.ndarray]


class TrainStep(NamedTuple):
    """One layer's forward (keeping what its backward needs), backward and buffer update."""

    forward: Callable[..., tuple[np.ndarray, Any]]
    backward: Callable[[np.ndarray, Any, bool], tuple[list[np.ndarray] | None, Grads]]
    update: Callable[[Any], None] | None = None


def unary(forward: Callable[[np.ndarray], tuple[np.ndarray, Any]],
          backward: Callable[[np.ndarray, Any], tuple[np.ndarray, Grads]],
          update: Callable[[Any], None] | None = None) -> TrainStep:
    """The step of a one-input op whose backward always gives dx (activations, pooling,
    normalisations, reshapes)."""
    def back(dy: np.ndarray, cache: Any, need_dx: bool) -> tuple[list[np.ndarray] | None, Grads]:
        dx, grads = backward(dy, cache)
        return ([dx] if need_dx else None), grads
    return TrainStep(forward, back, update)


def weighted(forward: Callable[[np.ndarray], tuple[np.ndarray, Any]],
             backward: Callable[..., tuple[np.ndarray | None, Grads]]) -> TrainStep:
    """The step of a one-input op with weights, whose backward skips dx when no input
    needs it (conv, deconv, fc, linear)."""
    def back(dy: np.ndarray, cache: Any, need_dx: bool) -> tuple[list[np.ndarray] | None, Grads]:
        dx, grads = backward(dy, cache, need_dx=need_dx)
        return ([dx] if need_dx else None), grads
    return TrainStep(forward, back)


def merge(forward: Callable[[list[np.ndarray]], tuple[np.ndarray, Any]],
          backward: Callable[[np.ndarray, Any], tuple[list[np.ndarray], Grads]]) -> TrainStep:
    """The step of an op over several inputs (add, concat, mul)."""
    def back(dy: np.ndarray, cache: Any, need_dx: bool) -> tuple[list[np.ndarray] | None, Grads]:
        dxs, grads = backward(dy, cache)
        return (list(dxs) if need_dx else None), grads
    return TrainStep(lambda *xs: forward(list(xs)), back)
