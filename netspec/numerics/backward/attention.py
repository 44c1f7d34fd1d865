"""Attention across channels, forward and backward, on the last axis of NHWC or N×F arrays:
ECA's 1-D convolution across the channels, the radix softmax of split attention (ResNeSt,
SKNet) and the sum of a radix's channel runs.

- `channel_conv`: y[c] = Σ_j w[j]·x[c + j − p], zero padding p = (k − 1)/2 on each side
  (torch's Conv1d(1, 1, k, padding=p, bias=False) over the channels, timm's EcaModule);
- `radix_softmax`: the C channels of each pixel in the layout (G, R, C/(G·R)) (timm's
  RadixSoftmax views (B, G, R, -1)), softmax over R, given in the layout (R, G, C/(G·R));
  for R = 1, a sigmoid;
- `chunk_sum`: the C channels as R runs of C/R, added run by run: y[c] = Σ_r x[r·C/R + c].
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .activations import sigmoid_backward, sigmoid_forward


class ChannelConvCache(NamedTuple):
    """The input and the weight (k,), as torch keeps for a convolution."""

    x: np.ndarray
    w: np.ndarray


def channel_conv_forward(x: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, ChannelConvCache]:
    """A 1-D convolution across the last axis, weight (1, 1, k) (k odd), zero-padded to keep
    the length: k shifted copies of x, each times its tap."""
    w = weight.reshape(-1)
    k, c = w.size, x.shape[-1]
    p = (k - 1) // 2
    padded = np.zeros((*x.shape[:-1], c + 2 * p), x.dtype)
    padded[..., p:p + c] = x
    y = np.zeros_like(x)
    for j in range(k):
        y += w[j] * padded[..., j:j + c]
    return y, ChannelConvCache(x, w)


def channel_conv_backward(dy: np.ndarray, cache: ChannelConvCache) -> tuple[np.ndarray, dict]:
    """dx[c] = Σ_j w[j]·dy[c − j + p]; dw[j] = Σ over the batch (and pixels) and c of
    dy[c]·x[c + j − p] (accumulated in float64), shaped (1, 1, k)."""
    x, w = cache
    k, c = w.size, x.shape[-1]
    p = (k - 1) // 2
    padded = np.zeros((*x.shape[:-1], c + 2 * p), x.dtype)
    padded[..., p:p + c] = x
    flat_dy = dy.reshape(-1, c)
    dw = np.array([np.einsum("ij,ij->", flat_dy, padded[..., j:j + c].reshape(-1, c),
                             dtype=np.float64) for j in range(k)])
    dpadded = np.zeros_like(padded)
    for j in range(k):
        dpadded[..., j:j + c] += w[j] * dy
    return dpadded[..., p:p + c], {"weight": dw.astype(dy.dtype).reshape(1, 1, k)}


class RadixCache(NamedTuple):
    """The output (in the input's layout (G, R, c')), radix and groups; for R = 1 the
    sigmoid's cache."""

    saved: object
    radix: int
    groups: int


def _grouped(a: np.ndarray, first: int, second: int) -> np.ndarray:
    """The last axis as (first, second, rest)."""
    return a.reshape(*a.shape[:-1], first, second, a.shape[-1] // (first * second))


def radix_softmax_forward(x: np.ndarray, radix: int, groups: int) -> tuple[np.ndarray, RadixCache]:
    """Softmax over the radix of channels laid out (G, R, c'), given laid out (R, G, c')."""
    if radix == 1:
        y, cache = sigmoid_forward(x)
        return y, RadixCache(cache, 1, groups)
    a = _grouped(x, groups, radix)                       # (..., G, R, c')
    e = np.exp(a - a.max(axis=-2, keepdims=True))
    e /= e.sum(axis=-2, keepdims=True)
    y = np.ascontiguousarray(np.swapaxes(e, -3, -2)).reshape(x.shape)   # (..., R, G, c')
    return y, RadixCache(e, radix, groups)


def radix_softmax_backward(dy: np.ndarray, cache: RadixCache) -> tuple[np.ndarray, dict]:
    """dy back into the input's layout, then y·(dy − Σ_R dy·y)."""
    saved, radix, groups = cache
    if radix == 1:
        return sigmoid_backward(dy, saved)
    e = saved
    g = np.swapaxes(_grouped(dy, radix, groups), -3, -2)   # (..., G, R, c')
    dx = g * e
    dx -= e * dx.sum(axis=-2, keepdims=True)
    return np.ascontiguousarray(dx).reshape(dy.shape), {}


def chunk_sum_forward(x: np.ndarray, radix: int) -> tuple[np.ndarray, int]:
    """The R runs of C/R channels added, first to last (as torch's sum over the radix);
    the cache is R."""
    c = x.shape[-1] // radix
    y = x[..., :c].copy()
    for r in range(1, radix):
        y += x[..., r * c:(r + 1) * c]
    return y, radix


def chunk_sum_backward(dy: np.ndarray, radix: int) -> tuple[np.ndarray, dict]:
    """dy for every run."""
    return np.concatenate([dy] * radix, axis=-1), {}
