"""Padding, window views and tap slices of NHWC batches, shared by conv and pooling.

A window op reads, for kernel tap (i, j), the slice of the padded input that
starts at (i·dh, j·dw) and steps (sh, sw): one strided view per tap. Backward
passes scatter into the same slices, so that a gradient is FH·FW strided adds
over whole arrays, never a Python loop over pixels.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
from numpy.lib.stride_tricks import as_strided

#: Padding of H and W, each (before, after): ((top, bottom), (left, right)).
Pads = tuple[tuple[int, int], tuple[int, int]]
#: One value for both axes, or (height, width).
Pair = int | tuple[int, int]
NO_PADS: Pads = ((0, 0), (0, 0))


def pair(v: Pair) -> tuple[int, int]:
    """(v, v) for one number, else the pair itself."""
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def output_size(n: int, f: int, s: int, pads: tuple[int, int], d: int = 1,
                ceil_mode: bool = False) -> int:
    """Window positions along one axis, as torch computes them.

    floor((n + before + after − d·(f − 1) − 1)/s) + 1, or with `ceil_mode` the
    ceiling, less one if the last window would start past the input and the
    padding before it (torch's `pooling_output_shape`).
    """
    span = n + pads[0] + pads[1] - d * (f - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= n + pads[0]:
        out -= 1
    return out


def pad(x: np.ndarray, pads: Pads, value: float = 0.0) -> np.ndarray:
    """x with `value` around H and W (x itself when there is no padding)."""
    (top, bottom), (left, right) = pads
    if not (top or bottom or left or right):
        return x
    n, h, w, c = x.shape
    out = np.empty((n, h + top + bottom, w + left + right, c), x.dtype)
    out[:, :top] = value
    out[:, top + h:] = value
    out[:, top:top + h, :left] = value
    out[:, top:top + h, left + w:] = value
    out[:, top:top + h, left:left + w] = x
    return out


def pad_or_crop(x: np.ndarray, pads: Pads) -> np.ndarray:
    """x with zeros added around H and W, a negative amount cropping that side instead."""
    (top, bottom), (left, right) = pads
    h, w = x.shape[1:3]
    x = x[:, max(-top, 0):h - max(-bottom, 0), max(-left, 0):w - max(-right, 0)]
    return pad(x, ((max(top, 0), max(bottom, 0)), (max(left, 0), max(right, 0))))


def crop(xp: np.ndarray, pads: Pads, hw: tuple[int, int]) -> np.ndarray:
    """The unpadded (H, W) part of a padded batch, contiguous (xp itself if unpadded)."""
    (top, _), (left, _) = pads
    if xp.shape[1:3] == hw and top == left == 0:
        return xp
    return np.ascontiguousarray(xp[:, top:top + hw[0], left:left + hw[1]])


def windows(xp: np.ndarray, out_hw: tuple[int, int], kernel: tuple[int, int],
            strides: tuple[int, int], dilation: tuple[int, int]) -> np.ndarray:
    """A read-only (N, OH, OW, FH, FW, C) view of every window of a padded NHWC batch."""
    n, _, _, c = xp.shape
    s0, s1, s2, s3 = xp.strides
    return as_strided(xp, (n, *out_hw, *kernel, c),
                      (s0, s1 * strides[0], s2 * strides[1], s1 * dilation[0],
                       s2 * dilation[1], s3), writeable=False)


def tap(xp: np.ndarray, i: int, j: int, out_hw: tuple[int, int], strides: tuple[int, int],
        dilation: tuple[int, int] = (1, 1), rows: slice = slice(None)) -> np.ndarray:
    """The (N, OH, OW, C) slice of `xp` that kernel tap (i, j) reads (a writable view),
    or of output rows `rows` only."""
    (oh, ow), (sh, sw), (dh, dw) = out_hw, strides, dilation
    first, stop, _ = rows.indices(oh)
    top = i * dh + first * sh
    return xp[:, top:top + (stop - first - 1) * sh + 1:sh,
              j * dw:j * dw + (ow - 1) * sw + 1:sw]


def taps(kernel: tuple[int, int]) -> Iterator[tuple[int, int, int]]:
    """(t, i, j) for every tap, t = i·FW + j (row-major, as torch scans a window)."""
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            yield i * kernel[1] + j, i, j


def blocks(n: int, oh: int, row_bytes: int, target: int,
           min_rows: int = 1) -> list[tuple[slice, slice]]:
    """(samples, output rows) blocks of about `target` bytes (`row_bytes` per output row),
    but at least `min_rows` output rows: whole samples together when one is smaller,
    else equal runs of rows of one sample."""
    rows = max(target // max(row_bytes, 1), min_rows, 1)
    if rows >= oh:
        per = max(1, rows // oh)
        return [(slice(s, s + per), slice(0, oh)) for s in range(0, n, per)]
    count = -(-oh // rows)
    bounds = [oh * i // count for i in range(count + 1)]
    return [(slice(s, s + 1), slice(a, b)) for s in range(n) for a, b in itertools.pairwise(bounds)]
