"""Transposed convolution (torch's conv_transpose2d) on NHWC batches: forward and backward.

A transposed conv is a conv's backward run forwards: its output is what a conv
with the same weights (read as (K=C_in, C=K/groups, FH, FW)) would give as its
input's gradient, for the deconv's input as that conv's output gradient. So its
forward is im2col.matmul_col2im, its input's gradient im2col.im2col_matmul (a
conv of the output gradient), and its weights' gradient im2col.weight_grad with
input and output swapped.

The canvas is the uncropped output, (H − 1)·s + d·(FH − 1) + 1 rows; `padding`
crops p from each border and `output_padding` adds rows and columns at the
bottom and right, which no input pixel reaches (they hold the bias alone).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import channel_sum

from .im2col import Weights, channel_major, im2col_matmul, matmul_col2im, weight_grad
from .windows import Pair, pair


class DeconvCache(NamedTuple):
    """The input and weights (as torch keeps) and the geometry."""

    x: np.ndarray
    weight: np.ndarray
    has_bias: bool
    strides: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    out_hw: tuple[int, int]


def _canvas(x_hw: tuple[int, int], kernel: tuple[int, int], strides: tuple[int, int],
            padding: tuple[int, int], dilation: tuple[int, int],
            out_hw: tuple[int, int]) -> tuple[int, int]:
    """Rows and columns of the uncropped output, at least up to the cropped output's end."""
    return tuple(max((n - 1) * s + d * (f - 1) + 1, p + o)   # type: ignore[return-value]
                 for n, f, s, p, d, o in zip(x_hw, kernel, strides, padding, dilation, out_hw))


def deconv2d_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None,
                     stride: Pair = 1, padding: Pair = 0, dilation: Pair = 1,
                     output_padding: Pair = 0, groups: int = 1) -> tuple[np.ndarray, DeconvCache]:
    """y = conv_transpose2d(x, weight) + bias in NHWC.

    x (N, H, W, C_in); weight (C_in, K/groups, FH, FW); y (N, OH, OW, K) with
    OH = (H − 1)·s − 2p + d·(FH − 1) + output_padding + 1, and likewise OW.
    """
    strides, pads, dil, extra = pair(stride), pair(padding), pair(dilation), pair(output_padding)
    c, kg, fh, fw = weight.shape
    n, h, w, _ = x.shape
    if x.shape[3] != c or c % groups:
        raise ValueError(f"deconv weight {weight.shape} does not fit {x.shape[3]} channels in "
                         f"{groups} groups")
    out_hw = tuple((size - 1) * s - 2 * p + d * (f - 1) + e + 1
                   for size, f, s, p, d, e in zip((h, w), (fh, fw), strides, pads, dil, extra))
    canvas = _canvas((h, w), (fh, fw), strides, pads, dil, out_hw)
    wts = Weights(weight, groups, channel_major(c, n * h * w))
    full = matmul_col2im(x, wts, (n, *canvas, kg * groups), strides, dil)
    y = np.ascontiguousarray(full[:, pads[0]:pads[0] + out_hw[0], pads[1]:pads[1] + out_hw[1]])
    if bias is not None:
        y += bias
    return y, DeconvCache(x, weight, bias is not None, strides, pads, dil, groups, out_hw)


def deconv2d_backward(dy: np.ndarray, cache: DeconvCache,
                      need_dx: bool = True) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
    """(dx, {"weight": dW, "bias": db}) for the output's gradient dy (N, OH, OW, K)."""
    x, weight, has_bias, strides, pads, dil, groups, out_hw = cache
    c, kg, fh, fw = weight.shape
    n, h, w, _ = x.shape
    canvas = _canvas((h, w), (fh, fw), strides, pads, dil, out_hw)
    dfull = np.zeros((n, *canvas, kg * groups), dy.dtype)
    dfull[:, pads[0]:pads[0] + out_hw[0], pads[1]:pads[1] + out_hw[1]] = dy
    wts = Weights(weight, groups, channel_major(c, n * h * w))
    grads = {"weight": weight_grad(dfull, np.ascontiguousarray(x), strides, dil, wts)}
    if has_bias:
        grads["bias"] = channel_sum(dy)
    dx = im2col_matmul(dfull, (h, w), strides, dil, wts) if need_dx else None
    return dx, grads
