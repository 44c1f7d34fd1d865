"""Max and average pooling (padding counted only with `countpad`), and their global forms."""

from __future__ import annotations

import numpy as np

from math import prod
from typing import TYPE_CHECKING

from ..numerics.threads import each, width
from ..numerics.windows import Step, _pad, _taps, row_blocks

if TYPE_CHECKING:
    from .pool import AdaptivePool, Pool

#: Pooling works on blocks of output rows of about this size (cache-resident while
#: every tap passes over them), which the model's threads share at batch 1.
BLOCK_BYTES = 256 * 2**10


def _global_average(layer: Pool) -> Step:
    """The mean over H×W as one matrix product per sample, a row of 1/(H·W) times the
    (H·W, C) pixels: BLAS streams the volume once (EfficientNet's squeeze at
    112×112×32, 8 samples: 0.25 ms against 1.9 ms for `mean` over two axes)."""
    h, w, c = layer.input_shape
    row = np.full((1, h * w), 1 / (h * w), np.float32)

    def average(x: np.ndarray) -> np.ndarray:
        return np.matmul(row, x.reshape(x.shape[0], h * w, c)).reshape(x.shape[0], 1, 1, c)
    return average


def pool_step(layer: Pool) -> Step:
    if layer.global_pool:
        if layer.mode == "max":
            return lambda x: x.max(axis=(1, 2), keepdims=True)
        return _global_average(layer)
    out_hw = layer.output_shape[:2]
    pads = layer.floor_pads()
    h, wd = layer.input_shape[:2]
    oh, ow, c = layer.output_shape

    def by_blocks(x: np.ndarray, fill: float, combine: np.ufunc) -> np.ndarray:
        """Each block of output rows: tap 0 copied in, the other taps combined into it."""
        xp = _pad(x, pads, fill)
        out = np.empty((x.shape[0], *out_hw, x.shape[3]), np.float32)
        views = [view for _, view in _taps(xp, out_hw, layer.kernel, layer.strides)]

        def block(where: tuple[int, slice]) -> None:
            s, r = where
            o = out[s, r]
            np.copyto(o, views[0][s, r])
            for view in views[1:]:
                combine(o, view[s, r], out=o)
        each(block, row_blocks(x.shape[0], oh, ow * c * 4, BLOCK_BYTES, width()))
        return out

    if layer.mode == "max":
        return lambda x: by_blocks(x, -np.inf, np.maximum)

    # average over the input cells each window covers; padding is not counted, unless
    # `countpad`: then the written padding is, but not what `ceil` adds past it
    if layer.count_pad:
        (top, bottom), (left, right) = pads
        (_, pad_h), (_, pad_w) = layer.pads
        mask = np.zeros((1, top + h + bottom, left + wd + right, 1), np.float32)
        mask[:, :top + h + pad_h, :left + wd + pad_w] = 1
    else:
        mask = np.pad(np.ones((1, h, wd, 1), np.float32), ((0, 0), *pads, (0, 0)))
    count = sum(view for _, view in _taps(mask, out_hw, layer.kernel, layer.strides))
    inv = (1.0 / count).astype(np.float32)

    def avgpool(x: np.ndarray) -> np.ndarray:
        out = by_blocks(x, 0.0, np.add)
        out *= inv
        return out
    return avgpool


def averaging_matrix(windows: list[tuple[int, int]], n: int) -> np.ndarray:
    """(outputs, n): row i averages the input cells of window i."""
    a = np.zeros((len(windows), n), np.float32)
    for i, (start, end) in enumerate(windows):
        a[i, start:end] = 1.0 / (end - start)
    return a


def adaptive_step(layer: AdaptivePool) -> Step:
    """Adaptive average pooling as two small matrix products, over H then over W."""
    (rows, cols), (h, wd) = layer.windows(), layer.input_shape[:2]
    a_h, a_w = averaging_matrix(rows, h), averaging_matrix(cols, wd)

    def adaptive_pool(x: np.ndarray) -> np.ndarray:   # NHWC
        t = np.einsum("ih,nhwc->niwc", a_h, x, optimize=True)
        return np.einsum("jw,niwc->nijc", a_w, t, optimize=True)
    return adaptive_pool


#: A ufunc over a strided view copies each operand through a buffer of this size.
UFUNC_BUFFER = 8192 * 4


def scratch(layer: Pool, batch: int) -> int:
    """A padded copy of a padded input, and a ufunc's buffer over the strided taps."""
    if layer.global_pool:
        return 0
    (t, b), (left, r) = layer.floor_pads()
    h, w, c = layer.input_shape
    padded = 4 * batch * (h + t + b) * (w + left + r) * c if t or b or left or r else 0
    return padded + min(UFUNC_BUFFER, 4 * batch * prod(layer.output_shape))
