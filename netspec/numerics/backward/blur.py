"""Blur pooling (timm's BlurPool2d, the anti-aliased downsampling of TResNet and resnetblur),
forward and backward: reflect padding, then every channel filtered by the same fixed
binomial F×F kernel at a stride.

The kernel is the outer product of the binomial row C(F−1, k)/2^(F−1), so the filter runs
as two 1-D passes (down the rows, then along them), F slices each, instead of F² taps.
The inference model runs the same forward (its cache is dropped).
"""

from __future__ import annotations

from math import comb
from typing import NamedTuple

import numpy as np


def binomial(size: int) -> np.ndarray:
    """The 1-D filter C(size − 1, k)/2^(size − 1), k = 0 … size − 1 (sums to 1; exact in
    float32: each is a small whole number over a power of two)."""
    return np.array([comb(size - 1, k) for k in range(size)], np.float64) / 2 ** (size - 1)


def reflect_pad(x: np.ndarray, pad: int) -> np.ndarray:
    """H and W of an NHWC array padded by `pad` on every side, mirrored without repeating
    the edge (torch's `F.pad(mode="reflect")`)."""
    return np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")


def _filter(v: np.ndarray, taps: np.ndarray, stride: int, axis: int, out: int) -> np.ndarray:
    """Σ_k taps[k]·v[k + stride·i] along `axis` (1 or 2), for i < out."""
    def part(k: int) -> tuple[slice, ...]:
        index = [slice(None)] * 4
        index[axis] = slice(k, k + stride * (out - 1) + 1, stride)
        return tuple(index)
    y = v[part(0)] * taps[0]
    for k in range(1, len(taps)):
        y += v[part(k)] * taps[k]
    return y


def _spread(dy: np.ndarray, taps: np.ndarray, stride: int, axis: int, n: int) -> np.ndarray:
    """The transpose of `_filter`: dy's rows (or columns) added back onto the `n` they read."""
    shape = list(dy.shape)
    shape[axis] = n
    dv = np.zeros(shape, dy.dtype)
    out = dy.shape[axis]
    for k, tap in enumerate(taps):
        index = [slice(None)] * 4
        index[axis] = slice(k, k + stride * (out - 1) + 1, stride)
        dv[tuple(index)] += dy * tap
    return dv


class BlurCache(NamedTuple):
    """The input's H×W (the gradient needs no values: the filter is fixed), and the window."""

    hw: tuple[int, int]
    size: int
    stride: int
    pad: int


def blur_forward(x: np.ndarray, size: int, stride: int, pad: int) -> tuple[np.ndarray, BlurCache]:
    """Each channel of NHWC `x`, reflect-padded by `pad`, filtered by the size×size binomial
    kernel at `stride`: output floor((n + 2·pad − size)/stride) + 1 along H and W."""
    taps = binomial(size).astype(x.dtype)
    xp = reflect_pad(x, pad) if pad else x
    oh, ow = ((n + 2 * pad - size) // stride + 1 for n in x.shape[1:3])
    rows = _filter(xp, taps, stride, 1, oh)
    return _filter(rows, taps, stride, 2, ow), BlurCache(x.shape[1:3], size, stride, pad)


def _unreflect(dxp: np.ndarray, pad: int, axis: int, n: int) -> np.ndarray:
    """The gradient of reflect padding along `axis`: each mirrored cell's gradient added onto
    the cell it copies (padded cell k < pad copies pad − k; cell pad + n + k copies n − 2 − k)."""
    def cells(a: int, b: int, step: int = 1) -> tuple[slice, ...]:
        index = [slice(None)] * 4
        index[axis] = slice(a, b, step)
        return tuple(index)
    dx = dxp[cells(pad, pad + n)].copy()
    dx[cells(1, pad + 1)] += np.flip(dxp[cells(0, pad)], axis)
    dx[cells(n - 1 - pad, n - 1)] += np.flip(dxp[cells(pad + n, 2 * pad + n)], axis)
    return dx


def blur_backward(dy: np.ndarray, cache: BlurCache) -> tuple[np.ndarray, dict]:
    """The filter's transpose (dy spread back over the windows), then reflect padding's."""
    (h, w), size, stride, pad = cache
    taps = binomial(size).astype(dy.dtype)
    d_rows = _spread(dy, taps, stride, 2, w + 2 * pad)
    dxp = _spread(d_rows, taps, stride, 1, h + 2 * pad)
    if not pad:
        return dxp, {}
    return _unreflect(_unreflect(dxp, pad, 1, h), pad, 2, w), {}
