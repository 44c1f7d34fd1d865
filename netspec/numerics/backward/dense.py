"""Fully connected layers, flatten and dropout, forward and backward.

`fc` connects every input value to each unit: a volume is flattened first, in
NCHW (C-major) order, because its weight's columns are in torch's order. `linear`
is the same product applied to the last axis alone (each pixel's channels, or a
vector's values), torch's nn.Linear.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import channel_sum


class LinearCache(NamedTuple):
    """The input (as given: a volume stays NHWC) and the weight, as torch keeps."""

    x: np.ndarray
    weight: np.ndarray
    has_bias: bool


def _nchw_rows(x: np.ndarray) -> np.ndarray:
    """A batch as (N, F) rows in NCHW order: a volume's values transposed, a vector as is."""
    if x.ndim == 4:
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x).reshape(x.shape[0], -1)


def fc_forward(x: np.ndarray, weight: np.ndarray,
               bias: np.ndarray | None = None) -> tuple[np.ndarray, LinearCache]:
    """(N, out) = flatten(x) · weightᵀ + bias; weight (out, in), `in` in NCHW order.

    The cache keeps x itself (not its flattened copy, which backward makes again):
    x is usually kept anyway, by the activation before.
    """
    y = _nchw_rows(x) @ weight.T
    if bias is not None:
        y += bias
    return y, LinearCache(x, weight, bias is not None)


def fc_backward(dy: np.ndarray, cache: LinearCache,
                need_dx: bool = True) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
    """(dx in x's shape, {"weight": dyᵀ·flatten(x), "bias": Σ dy})."""
    x, weight, has_bias = cache
    grads = {"weight": dy.T @ _nchw_rows(x)}
    if has_bias:
        grads["bias"] = channel_sum(dy)
    if not need_dx:
        return None, grads
    dx = dy @ weight
    if x.ndim == 4:
        n, h, w, c = x.shape
        dx = np.ascontiguousarray(dx.reshape(n, c, h, w).transpose(0, 2, 3, 1))
    return dx, grads


def linear_forward(x: np.ndarray, weight: np.ndarray,
                   bias: np.ndarray | None = None) -> tuple[np.ndarray, LinearCache]:
    """x · weightᵀ + bias over the last axis: (..., in) → (..., out), weight (out, in)."""
    rows = x.reshape(-1, x.shape[-1])
    y = rows @ weight.T
    if bias is not None:
        y += bias
    return y.reshape(*x.shape[:-1], weight.shape[0]), LinearCache(x, weight, bias is not None)


def linear_backward(dy: np.ndarray, cache: LinearCache,
                    need_dx: bool = True) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
    """(dy · weight, {"weight": dyᵀ · x, "bias": Σ dy}), summed over every pixel."""
    x, weight, has_bias = cache
    d = dy.reshape(-1, weight.shape[0])
    grads = {"weight": d.T @ x.reshape(-1, x.shape[-1])}
    if has_bias:
        grads["bias"] = channel_sum(d)
    if not need_dx:
        return None, grads
    return (d @ weight).reshape(x.shape), grads


def flatten_forward(x: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """(N, C·H·W) in NCHW order, as torch's flatten of an NCHW tensor (a vector stays).

    The cache is the input's shape only.
    """
    return _nchw_rows(x), x.shape


def flatten_backward(dy: np.ndarray, cache: tuple[int, ...]) -> tuple[np.ndarray, dict]:
    """dy back in the input's NHWC shape."""
    if len(cache) != 4:
        return dy, {}
    n, h, w, c = cache
    return np.ascontiguousarray(dy.reshape(n, c, h, w).transpose(0, 2, 3, 1)), {}


class DropoutCache(NamedTuple):
    """Which values were kept (one byte each; torch keeps a float mask) and 1/(1 − p)."""

    kept: np.ndarray | None   # None at inference, where dropout is the identity
    scale: np.floating


def dropout_forward(x: np.ndarray, p: float, rng: np.random.Generator | None = None,
                    training: bool = True) -> tuple[np.ndarray, DropoutCache]:
    """Training: each value kept with probability 1 − p (drawn from `rng`) and scaled by
    1/(1 − p), dropped values 0; inference (or p = 0): the identity, x itself.

    The scale is computed as torch does, 1/(1 − p) in x's precision, and a kept value
    is x·scale, as torch's x·(mask/(1 − p)).
    """
    scale = x.dtype.type(1) / x.dtype.type(1 - p)
    if not training or p == 0:
        return x, DropoutCache(None, scale)
    if rng is None:
        raise ValueError("dropout in training needs a random generator")
    kept = rng.random(x.shape, dtype=np.float32) >= np.float32(p)
    y = np.multiply(x, kept)
    y *= scale
    return y, DropoutCache(kept, scale)


def dropout_backward(dy: np.ndarray, cache: DropoutCache) -> tuple[np.ndarray, dict]:
    """dy·scale where the value was kept, 0 where dropped (dy itself at inference)."""
    if cache.kept is None:
        return dy, {}
    dx = np.multiply(dy, cache.kept)
    dx *= cache.scale
    return dx, {}
