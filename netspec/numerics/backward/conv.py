"""2-D convolution (torch's conv2d) on NHWC batches: forward and backward.

Weights (K, C/groups, FH, FW), bias (K,) or None; padding explicit per side. The
cache keeps the input and the weights, as torch's autograd does (torch keeps a
padded copy when padding is asymmetric; here the padding is redone in backward).

A grouped conv is one matrix product per group (im2col.py); a depthwise conv
(one input channel per group) is FH·FW multiply-adds of whole arrays, one per
kernel tap, on cache-sized blocks of output rows.

The input's gradient of a stride-1 conv is itself a stride-1 conv: of dy, padded
by d·(F − 1) less the forward's padding, with the filters flipped and their
channels and filters swapped. That is one im2col copy of dy and one product
whose output is the input's size, where col2im's product is FH·FW times the
input's size and is then added back tap by tap (LeNet's 5×5 convs: several
times faster). It is used where im2col is tap-major (the activations outweigh
the weights, which are copied flipped); larger strides, and the deep layers
(channel-major, where the flipped copy would be the larger cost), use col2im.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import channel_sum

from .im2col import Weights, channel_major, im2col_matmul, matmul_col2im, weight_grad
from .windows import (
    NO_PADS,
    Pads,
    Pair,
    blocks,
    crop,
    output_size,
    pad,
    pad_or_crop,
    pair,
    tap,
    taps,
)

#: A depthwise conv works on blocks of about this many bytes of output, so that each
#: tap's multiply-add reads and writes the block in cache.
DEPTHWISE_BLOCK_BYTES = 2**18


class ConvCache(NamedTuple):
    """What conv2d_backward needs: the input and weights (as torch keeps) and the geometry."""

    x: np.ndarray
    weight: np.ndarray
    has_bias: bool
    strides: tuple[int, int]
    pads: Pads
    dilation: tuple[int, int]
    groups: int


def conv2d_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None,
                   stride: Pair = 1, pads: Pads = NO_PADS, dilation: Pair = 1,
                   groups: int = 1) -> tuple[np.ndarray, ConvCache]:
    """y = conv2d(x, weight) + bias, torch's convolution (a cross-correlation) in NHWC.

    x (N, H, W, C); weight (K, C/groups, FH, FW); y (N, OH, OW, K) with
    OH = floor((H + top + bottom − dh·(FH − 1) − 1)/sh) + 1, and likewise OW.
    """
    strides, dil = pair(stride), pair(dilation)
    k, cg, fh, fw = weight.shape
    n, h, w, c = x.shape
    if c != cg * groups or k % groups:
        raise ValueError(f"conv weight {weight.shape} does not fit {c} channels in {groups} groups")
    out_hw = (output_size(h, fh, strides[0], pads[0], dil[0]),
              output_size(w, fw, strides[1], pads[1], dil[1]))
    if _depthwise(weight, groups, c):
        y = _depthwise_forward(x, weight, strides, pads, dil, out_hw)
    else:
        y = im2col_matmul(pad(x, pads), out_hw, strides, dil,
                          Weights(weight, groups, channel_major(k, n * out_hw[0] * out_hw[1])))
    if bias is not None:
        y += bias
    return y, ConvCache(x, weight, bias is not None, strides, pads, dil, groups)


def conv2d_backward(dy: np.ndarray, cache: ConvCache,
                    need_dx: bool = True) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
    """(dx, {"weight": dW, "bias": db}) for the output's gradient dy (N, OH, OW, K).

    With `need_dx` False (the network's first layer) dx is not computed and None.
    """
    x, weight, has_bias, strides, pads, dil, groups = cache
    dy = np.ascontiguousarray(dy)
    k, _, fh, fw = weight.shape
    hw = x.shape[1:3]
    xp = pad(x, pads)
    grads: dict[str, np.ndarray] = {}
    if _depthwise(weight, groups, x.shape[3]):
        dxp, grads["weight"] = _depthwise_backward(xp, dy, weight, strides, dil, need_dx)
        dx = None if dxp is None else crop(dxp, pads, hw)
    else:
        w = Weights(weight, groups, channel_major(k, dy.size // k))
        grads["weight"] = weight_grad(xp, dy, strides, dil, w)
        if not need_dx:
            dx = None
        elif strides == (1, 1) and not w.channel_major and (fh, fw) != (1, 1):
            dx = _full_conv(dy, weight, groups, pads, dil, x.shape)
        else:
            dx = crop(matmul_col2im(dy, w, xp.shape, strides, dil), pads, hw)
    if has_bias:
        grads["bias"] = channel_sum(dy)
    return dx, grads


def _full_conv(dy: np.ndarray, weight: np.ndarray, groups: int, pads: Pads,
               dil: tuple[int, int], x_shape: tuple[int, ...]) -> np.ndarray:
    """A stride-1 conv's input gradient as the conv of dy with the flipped, transposed
    filters (C, K/groups, FH, FW), dy padded (or cropped) by d·(F − 1) − padding."""
    k, cg, fh, fw = weight.shape
    flipped = (weight.reshape(groups, k // groups, cg, fh, fw).transpose(0, 2, 1, 3, 4)
               [..., ::-1, ::-1].reshape(groups * cg, k // groups, fh, fw))
    around = tuple((d * (f - 1) - before, d * (f - 1) - after)
                   for d, f, (before, after) in zip(dil, (fh, fw), pads))
    n, h, w, c = x_shape
    return im2col_matmul(pad_or_crop(dy, around), (h, w), (1, 1), dil,   # type: ignore[arg-type]
                         Weights(flipped, groups, channel_major(c, n * h * w)))


def _depthwise(weight: np.ndarray, groups: int, channels: int) -> bool:
    """One filter per input channel (and more than one channel): tap by tap, not im2col.
    (With a channel multiplier, or one input channel, im2col is several times faster.)"""
    return weight.shape[1] == 1 and groups == channels == weight.shape[0] > 1


def _depthwise_blocks(n: int, out_hw: tuple[int, int], k: int,
                      itemsize: int) -> list[tuple[slice, slice]]:
    return blocks(n, out_hw[0], out_hw[1] * k * itemsize, DEPTHWISE_BLOCK_BYTES)


def _depthwise_forward(x: np.ndarray, weight: np.ndarray, strides: tuple[int, int], pads: Pads,
                       dil: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """One filter per channel: a multiply-add per kernel tap."""
    k, _, fh, fw = weight.shape
    xp = pad(x, pads)
    kernel = weight.reshape(k, fh, fw).transpose(1, 2, 0)   # (FH, FW, K)
    y = np.empty((x.shape[0], *out_hw, k), x.dtype)
    for s, r in _depthwise_blocks(x.shape[0], out_hw, k, x.itemsize):
        o, part = y[s, r], xp[s]
        tmp = np.empty_like(o)
        for t, i, j in taps((fh, fw)):
            src = tap(part, i, j, out_hw, strides, dil, rows=r)
            if t == 0:
                np.multiply(src, kernel[i, j], out=o)
            else:
                o += np.multiply(src, kernel[i, j], out=tmp)
    return y


def _depthwise_backward(xp: np.ndarray, dy: np.ndarray, weight: np.ndarray,
                        strides: tuple[int, int], dil: tuple[int, int],
                        need_dx: bool) -> tuple[np.ndarray | None, np.ndarray]:
    """(dx padded, dW) of a depthwise conv: per tap, dW[:, tap] = Σ dy·window and
    dx[window] += dy·W[:, tap]."""
    k, _, fh, fw = weight.shape
    out_hw = dy.shape[1:3]
    kernel = weight.reshape(k, fh, fw).transpose(1, 2, 0)
    dw = np.zeros((fh, fw, k), dy.dtype)
    dxp = np.zeros(xp.shape, dy.dtype) if need_dx else None
    for s, r in _depthwise_blocks(xp.shape[0], out_hw, k, xp.itemsize):
        d = dy[s, r]
        tmp = np.empty_like(d)
        for _, i, j in taps((fh, fw)):
            dw[i, j] += np.einsum("nhwk,nhwk->k", tap(xp[s], i, j, out_hw, strides, dil, r), d)
            if dxp is not None:
                tap(dxp[s], i, j, out_hw, strides, dil, r)[...] += np.multiply(d, kernel[i, j],
                                                                               out=tmp)
    return dxp, np.ascontiguousarray(dw.transpose(2, 0, 1)).reshape(k, 1, fh, fw)
