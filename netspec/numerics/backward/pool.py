"""Pooling on NHWC batches, forward and backward: max and average over windows (torch's
max_pool2d and avg_pool2d, with `ceil_mode` and explicit, possibly asymmetric
padding), global average and max, and adaptive average pooling to a fixed H×W.

Windows are read one kernel tap at a time (a strided view of the padded input per
tap, on cache-sized blocks of output rows), and gradients go back the same way:
one strided add per tap. Max pooling keeps, per output value, the tap its maximum
came from (the first, in row-major order, on ties, as torch picks), as one byte
where torch keeps an int64 index; it keeps no input.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .windows import NO_PADS, Pads, Pair, blocks, output_size, pad, pair, tap, taps

#: Pooling works on blocks of output rows of about this size, cache-resident while
#: every tap passes over them (the inference model's measured size).
BLOCK_BYTES = 256 * 2**10


class PoolCache(NamedTuple):
    """What a windowed pool's backward needs: the geometry, and for max pooling the
    tap of each maximum, for average pooling 1/count of each window."""

    x_shape: tuple[int, ...]
    kernel: tuple[int, int]
    strides: tuple[int, int]
    pads: Pads        # as given
    padded: Pads      # extended at the end so that every window fits (`ceil_mode`)
    chosen: np.ndarray | None   # max: (N, OH, OW, C) tap index of the maximum
    inverse_count: np.ndarray | None   # avg: (1, OH, OW, 1)


def _geometry(x_shape: tuple[int, ...], kernel: Pair, stride: Pair | None, pads: Pads,
              ceil_mode: bool) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], Pads]:
    """(kernel, strides, output H×W, padding extended to the last window's end)."""
    k = pair(kernel)
    s = k if stride is None else pair(stride)
    out = tuple(output_size(n, f, st, p, 1, ceil_mode)
                for n, f, st, p in zip(x_shape[1:3], k, s, pads))
    padded = tuple((p[0], max(p[1], (o - 1) * st + f - n - p[0]))
                   for n, f, st, p, o in zip(x_shape[1:3], k, s, pads, out))
    return k, s, out, padded   # type: ignore[return-value]


def _blocks(x_shape: tuple[int, ...], out_hw: tuple[int, int]) -> list[tuple[slice, slice]]:
    return blocks(x_shape[0], out_hw[0], out_hw[1] * x_shape[3] * 4, BLOCK_BYTES)


def max_pool2d_forward(x: np.ndarray, kernel: Pair, stride: Pair | None = None,
                       pads: Pads = NO_PADS, ceil_mode: bool = False) -> tuple[np.ndarray, PoolCache]:
    """The maximum of each window, padding being −∞ (never a maximum); stride defaults
    to the kernel, as torch's.

    The maximum is one `maximum` per tap; then, tap by tap, the outputs that equal
    their tap's value and were not claimed by an earlier tap record it (masked
    copies, `where=`, run several times slower than these whole-array operations).
    """
    k, s, out_hw, padded = _geometry(x.shape, kernel, stride, pads, ceil_mode)
    xp = pad(x, padded, -np.inf)
    y = np.empty((x.shape[0], *out_hw, x.shape[3]), x.dtype)
    chosen = np.zeros(y.shape, np.uint8 if k[0] * k[1] <= 256 else np.int32)
    for b, r in _blocks(x.shape, out_hw):
        o, ch, part = y[b, r], chosen[b, r], xp[b]
        views = [tap(part, i, j, out_hw, s, rows=r) for _, i, j in taps(k)]
        np.copyto(o, views[0])
        for v in views[1:]:
            np.maximum(o, v, out=o)
        claimed = np.equal(views[0], o)
        hit = np.empty(o.shape, bool)
        for t, v in enumerate(views[1:], 1):
            np.equal(v, o, out=hit)
            np.greater(hit, claimed, out=hit)   # equal, and no earlier tap was
            claimed |= hit
            ch += hit.astype(ch.dtype) * ch.dtype.type(t)
    return y, PoolCache(x.shape, k, s, pads, padded, chosen, None)


def max_pool2d_backward(dy: np.ndarray, cache: PoolCache) -> tuple[np.ndarray, dict]:
    """Each output's gradient goes to its window's maximum (added where windows overlap;
    written at once where they do not)."""
    dxp = _padded_zeros(cache, dy.dtype)
    out_hw = dy.shape[1:3]
    overlap = any(s < f for s, f in zip(cache.strides, cache.kernel))
    for b, r in _blocks(cache.x_shape, out_hw):
        d, ch, part = dy[b, r], cache.chosen[b, r], dxp[b]
        hit, share = np.empty(d.shape, bool), np.empty_like(d)
        for t, i, j in taps(cache.kernel):
            view = tap(part, i, j, out_hw, cache.strides, rows=r)
            np.equal(ch, t, out=hit)
            if overlap:
                view += np.multiply(d, hit, out=share)
            else:
                np.multiply(d, hit, out=view)
    return _unpad(dxp, cache), {}


def avg_pool2d_forward(x: np.ndarray, kernel: Pair, stride: Pair | None = None,
                       pads: Pads = NO_PADS, ceil_mode: bool = False,
                       count_include_pad: bool = True) -> tuple[np.ndarray, PoolCache]:
    """The mean of each window (torch's avg_pool2d, whose default counts the padding).

    A window's count is its cells inside the input, or with `count_include_pad`
    inside the input and its written padding, never the cells `ceil_mode` adds.
    """
    k, s, out_hw, padded = _geometry(x.shape, kernel, stride, pads, ceil_mode)
    (top, bottom), (left, right) = padded
    h, w = x.shape[1:3]
    counted = np.zeros((1, top + h + bottom, left + w + right, 1), x.dtype)
    if count_include_pad:
        counted[:, :top + h + pads[0][1], :left + w + pads[1][1]] = 1
    else:
        counted[:, top:top + h, left:left + w] = 1
    count = sum(tap(counted, i, j, out_hw, s) for _, i, j in taps(k))
    inverse = (1 / count).astype(x.dtype)
    xp = pad(x, padded, 0.0)
    y = np.empty((x.shape[0], *out_hw, x.shape[3]), x.dtype)
    for b, r in _blocks(x.shape, out_hw):
        o, part = y[b, r], xp[b]
        for t, i, j in taps(k):
            v = tap(part, i, j, out_hw, s, rows=r)
            if t == 0:
                np.copyto(o, v)
            else:
                o += v
        o *= inverse[:, r]
    return y, PoolCache(x.shape, k, s, pads, padded, None, inverse)


def avg_pool2d_backward(dy: np.ndarray, cache: PoolCache) -> tuple[np.ndarray, dict]:
    """Each output's gradient, divided by its window's count, added to every cell of it."""
    dxp = _padded_zeros(cache, dy.dtype)
    out_hw = dy.shape[1:3]
    for b, r in _blocks(cache.x_shape, out_hw):
        share = dy[b, r] * cache.inverse_count[:, r]
        for _, i, j in taps(cache.kernel):
            tap(dxp[b], i, j, out_hw, cache.strides, rows=r)[...] += share
    return _unpad(dxp, cache), {}


def _padded_zeros(cache: PoolCache, dtype: np.dtype) -> np.ndarray:
    n, h, w, c = cache.x_shape
    (top, bottom), (left, right) = cache.padded
    return np.zeros((n, top + h + bottom, left + w + right, c), dtype)


def _unpad(dxp: np.ndarray, cache: PoolCache) -> np.ndarray:
    """The input's part of a padded gradient (the padding's gradient is dropped)."""
    (top, _), (left, _) = cache.padded
    h, w = cache.x_shape[1:3]
    if dxp.shape[1:3] == (h, w):
        return dxp
    return np.ascontiguousarray(dxp[:, top:top + h, left:left + w])


class GlobalPoolCache(NamedTuple):
    """The input's shape, and for max pooling where each channel's maximum was."""

    x_shape: tuple[int, ...]
    argmax: np.ndarray | None   # (N, 1, C) pixel index of each maximum


def global_avg_pool_forward(x: np.ndarray) -> tuple[np.ndarray, GlobalPoolCache]:
    """(N, 1, 1, C): the mean over H×W. Keeps nothing but the shape, as torch's mean."""
    n, h, w, c = x.shape
    mean = x.reshape(n, h * w, c).sum(axis=1, dtype=np.float64) / (h * w)
    return mean.astype(x.dtype).reshape(n, 1, 1, c), GlobalPoolCache(x.shape, None)


def global_avg_pool_backward(dy: np.ndarray, cache: GlobalPoolCache) -> tuple[np.ndarray, dict]:
    """dy/(H·W) at every pixel."""
    n, h, w, c = cache.x_shape
    dx = np.empty(cache.x_shape, dy.dtype)
    dx[...] = dy.reshape(n, 1, 1, c) / dy.dtype.type(h * w)
    return dx, {}


def global_max_pool_forward(x: np.ndarray) -> tuple[np.ndarray, GlobalPoolCache]:
    """(N, 1, 1, C): the maximum over H×W (torch's adaptive_max_pool2d to 1×1, whose
    gradient goes to the first maximum)."""
    n, h, w, c = x.shape
    flat = x.reshape(n, h * w, c)
    argmax = flat.argmax(axis=1)[:, None, :]
    y = np.take_along_axis(flat, argmax, axis=1)
    return y.reshape(n, 1, 1, c), GlobalPoolCache(x.shape, argmax)


def global_max_pool_backward(dy: np.ndarray, cache: GlobalPoolCache) -> tuple[np.ndarray, dict]:
    """dy at each channel's maximum, 0 elsewhere."""
    n, h, w, c = cache.x_shape
    dx = np.zeros((n, h * w, c), dy.dtype)
    np.put_along_axis(dx, cache.argmax, dy.reshape(n, 1, c), axis=1)
    return dx.reshape(cache.x_shape), {}


def adaptive_windows(n: int, o: int) -> list[tuple[int, int]]:
    """torch's AdaptiveAvgPool2d windows: output i averages cells floor(i·n/o) to
    ceil((i + 1)·n/o) − 1."""
    return [(i * n // o, -(-(i + 1) * n // o)) for i in range(o)]


def _averaging(n: int, o: int, dtype: np.dtype) -> np.ndarray:
    """(o, n): row i holds 1/size over window i."""
    a = np.zeros((o, n), dtype)
    for i, (start, end) in enumerate(adaptive_windows(n, o)):
        a[i, start:end] = 1 / (end - start)
    return a


class AdaptiveCache(NamedTuple):
    """The averaging matrices over H and over W (no input: the pool is linear)."""

    rows: np.ndarray
    cols: np.ndarray


def adaptive_avg_pool_forward(x: np.ndarray, size: Pair) -> tuple[np.ndarray, AdaptiveCache]:
    """Average pooling to a fixed (OH, OW): two small matrix products, over H then W."""
    oh, ow = pair(size)
    a_h, a_w = _averaging(x.shape[1], oh, x.dtype), _averaging(x.shape[2], ow, x.dtype)
    t = np.einsum("ih,nhwc->niwc", a_h, x, optimize=True)
    return np.einsum("jw,niwc->nijc", a_w, t, optimize=True), AdaptiveCache(a_h, a_w)


def adaptive_avg_pool_backward(dy: np.ndarray, cache: AdaptiveCache) -> tuple[np.ndarray, dict]:
    """The transposed products: dy spread back over each window, divided by its size."""
    t = np.einsum("ih,nijc->nhjc", cache.rows, dy, optimize=True)
    return np.ascontiguousarray(np.einsum("jw,nhjc->nhwc", cache.cols, t, optimize=True)), {}
