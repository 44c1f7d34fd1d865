"""Padding and window views of NHWC batches, shared by convolution and pooling."""

from __future__ import annotations

from typing import Callable

import numpy as np
from numpy.lib.stride_tricks import as_strided

#: A lowered layer: one array per input in, one array out.
Step = Callable[[np.ndarray], np.ndarray]


def _pad(x: np.ndarray, pads: tuple[tuple[int, int], tuple[int, int]], value: float) -> np.ndarray:
    """x with `value` added around H and W (x itself when there is no padding)."""
    (top, bottom), (left, right) = pads
    if not (top or bottom or left or right):
        return x
    n, h, w, c = x.shape
    out = np.empty((n, h + top + bottom, w + left + right, c), np.float32)
    out[:, :top] = value
    out[:, top + h:] = value
    out[:, top:top + h, :left] = value
    out[:, top:top + h, left + w:] = value
    out[:, top:top + h, left:left + w] = x
    return out


def _windows(xp: np.ndarray, out_hw: tuple[int, int], kernel: tuple[int, int],
             strides: tuple[int, int], dilation: int) -> np.ndarray:
    """A read-only (N, OH, OW, FH, FW, C) view of every window of a padded NHWC batch."""
    n, _, _, c = xp.shape
    s0, s1, s2, s3 = xp.strides
    return as_strided(xp, (n, *out_hw, *kernel, c),
                      (s0, s1 * strides[0], s2 * strides[1], s1 * dilation, s2 * dilation, s3),
                      writeable=False)


def _taps(xp: np.ndarray, out_hw: tuple[int, int], kernel: tuple[int, int],
          strides: tuple[int, int], dilation: int = 1):
    """The (N, OH, OW, C) slice of `xp` that kernel tap (i, j) reads, for every tap."""
    (oh, ow), (sh, sw) = out_hw, strides
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            yield i * kernel[1] + j, xp[:, i * dilation:i * dilation + (oh - 1) * sh + 1:sh,
                                        j * dilation:j * dilation + (ow - 1) * sw + 1:sw]


def row_blocks(n: int, oh: int, row_bytes: int, target: int,
               threads: int = 1) -> list[tuple[slice, slice]]:
    """(samples, output rows) blocks of about `target` bytes of output, whole samples
    together when one is smaller; at least `threads` blocks when there are enough rows."""
    rows = max(1, target // max(row_bytes, 1))
    if n < threads:
        rows = min(rows, -(-oh // threads))
    if rows >= oh:
        per = max(1, rows // oh)
        return [(slice(s, s + per), slice(0, oh)) for s in range(0, n, per)]
    count = -(-oh // rows)
    bounds = [oh * i // count for i in range(count + 1)]
    return [(slice(s, s + 1), slice(a, b)) for s in range(n) for a, b in zip(bounds, bounds[1:])]
