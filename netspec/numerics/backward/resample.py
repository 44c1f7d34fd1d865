"""Upsampling, forward and backward: nearest and bilinear, as torch's F.interpolate
with align_corners=False, to any output H×W (a factor is an output size).

Both are separable: along H, then along W. Each output row (column) reads one
source row (nearest) or two, weighted (bilinear), whose indices never decrease
along the output; the backward adds each output's gradient back into its
sources, by `np.add.reduceat` over the runs of outputs that share a source.

Space to depth (TResNet's stem) moves each block of pixels into the channels: a
permutation, whose backward is the inverse permutation.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


def nearest_index(n_in: int, n_out: int) -> np.ndarray:
    """Source index floor(dst·in/out), in float32 as torch computes it."""
    scale = np.float32(n_in) / np.float32(n_out)
    return np.minimum(np.floor(np.arange(n_out, dtype=np.float32) * scale).astype(np.int64),
                      n_in - 1)


def linear_sources(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Half-pixel source positions (dst + ½)·in/out − ½, clamped at 0, in float32 as
    torch: the lower index, the upper index and the upper one's weight."""
    scale = np.float32(n_in) / np.float32(n_out)
    src = np.maximum((np.arange(n_out, dtype=np.float32) + np.float32(0.5)) * scale
                     - np.float32(0.5), np.float32(0))
    lo = np.minimum(src.astype(np.int64), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, (src - lo).astype(np.float32)


def _scatter(values: np.ndarray, index: np.ndarray, n: int, axis: int) -> np.ndarray:
    """Σ values along `axis` into n bins by a non-decreasing `index` (bins no index
    names stay 0): one reduceat over the runs of equal indices."""
    starts = np.flatnonzero(np.r_[True, index[1:] != index[:-1]])
    shape = list(values.shape)
    shape[axis] = n
    out = np.zeros(shape, values.dtype)
    where = [slice(None)] * values.ndim
    where[axis] = index[starts]
    out[tuple(where)] = np.add.reduceat(values, starts, axis=axis)
    return out


class UpsampleCache(NamedTuple):
    """The input's H×W and the mode (no values: the backward needs only the sizes)."""

    in_hw: tuple[int, int]
    mode: str


def upsample_forward(x: np.ndarray, out_hw: tuple[int, int],
                     mode: str = "nearest") -> tuple[np.ndarray, UpsampleCache]:
    """x (N, H, W, C) resampled to (N, OH, OW, C), `nearest` or `bilinear`."""
    (h, w), (oh, ow) = x.shape[1:3], out_hw
    if mode == "nearest":
        y = x[:, nearest_index(h, oh)][:, :, nearest_index(w, ow)]
    elif mode == "bilinear":
        (r0, r1, rl), (c0, c1, cl) = linear_sources(h, oh), linear_sources(w, ow)
        rl, cl = rl.astype(x.dtype)[:, None, None], cl.astype(x.dtype)[:, None]
        t = x[:, r0] * (1 - rl) + x[:, r1] * rl             # along H
        y = t[:, :, c0] * (1 - cl) + t[:, :, c1] * cl       # along W
    else:
        raise ValueError(f"upsampling mode {mode!r}: nearest or bilinear")
    return y, UpsampleCache((h, w), mode)


def upsample_backward(dy: np.ndarray, cache: UpsampleCache) -> tuple[np.ndarray, dict]:
    """Each output's gradient added back into its source pixels, with its weights."""
    (h, w), (oh, ow) = cache.in_hw, dy.shape[1:3]
    if cache.mode == "nearest":
        t = _scatter(dy, nearest_index(w, ow), w, axis=2)
        return _scatter(t, nearest_index(h, oh), h, axis=1), {}
    (r0, r1, rl), (c0, c1, cl) = linear_sources(h, oh), linear_sources(w, ow)
    rl, cl = rl.astype(dy.dtype)[:, None, None], cl.astype(dy.dtype)[:, None]
    t = _scatter(dy * (1 - cl), c0, w, axis=2) + _scatter(dy * cl, c1, w, axis=2)
    return _scatter(t * (1 - rl), r0, h, axis=1) + _scatter(t * rl, r1, h, axis=1), {}


def space_to_depth_forward(x: np.ndarray, block: int) -> tuple[np.ndarray, int]:
    """Each block×block patch of pixels into the channels (timm's SpaceToDepth, ONNX's
    SpaceToDepth): y[n, h, w, (i·block + j)·C + c] = x[n, h·block + i, w·block + j, c].
    The cache is `block`."""
    n, h, w, c = x.shape
    patches = x.reshape(n, h // block, block, w // block, block, c).transpose(0, 1, 3, 2, 4, 5)
    return patches.reshape(n, h // block, w // block, block * block * c), block


def space_to_depth_backward(dy: np.ndarray, block: int) -> tuple[np.ndarray, dict]:
    """The inverse permutation: depth back to space."""
    n, h, w, cc = dy.shape
    c = cc // (block * block)
    patches = dy.reshape(n, h, w, block, block, c).transpose(0, 1, 3, 2, 4, 5)
    return patches.reshape(n, h * block, w * block, c), {}
