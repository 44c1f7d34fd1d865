"""Convolution: one BLAS matrix multiply per cache-sized im2col block; depthwise tap by tap."""

from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING

import numpy as np

from ..layers import Conv
from .windows import Step, _pad, _taps, _windows

if TYPE_CHECKING:
    from ..network import Network

#: Each im2col block is sized to stay under this, so that it is still in cache
#: when the matrix multiply reads it (measured on a 2-core Xeon, VGG's 128→128
#: conv at 32×32, batch 32: 54 ms with 4–8 MiB blocks, 75 ms with 64 MiB ones).
IM2COL_BYTES = 4 * 2**20
#: ... but at least this many rows, below which a matrix multiply runs inefficiently.
MIN_BLOCK_ROWS = 1024


def _row_bytes(layer: Conv) -> int:
    """Bytes of im2col for one row of output (OW windows)."""
    return layer.output_shape[1] * prod(layer.kernel) * layer.in_channels * 4


def im2col_blocks(layer: Conv, batch: int) -> list[tuple[slice, slice]]:
    """(samples, output rows) blocks whose im2col matrices stay near IM2COL_BYTES."""
    oh, ow = layer.output_shape[:2]
    rows = max(IM2COL_BYTES // _row_bytes(layer), -(-MIN_BLOCK_ROWS // ow), 1)
    if rows >= oh:
        samples = rows // oh
        return [(slice(n, n + samples), slice(0, oh)) for n in range(0, batch, samples)]
    rows = -(-oh // -(-oh // rows))   # equal blocks rather than a small one at the end
    return [(slice(n, n + 1), slice(r, r + rows)) for n in range(batch) for r in range(0, oh, rows)]


def im2col_bytes(net: Network, batch: int) -> int:
    """The largest im2col block a forward pass of `batch` samples allocates."""
    sizes = []
    for layer in net.layers:
        if isinstance(layer, Conv) and not _depthwise(layer):
            n, r = im2col_blocks(layer, batch)[0]
            sizes.append(len(range(batch)[n]) * len(range(layer.output_shape[0])[r])
                         * _row_bytes(layer))
    return max(sizes, default=0)


def _depthwise(layer: Conv) -> bool:
    """One filter per input channel: computed tap by tap, without im2col."""
    return layer.groups == layer.in_channels == layer.filters


def _conv(layer: Conv, w: dict[str, np.ndarray]) -> Step:
    """Conv + bias (+ relu, when called with relu=True), one matrix multiply per im2col block."""
    k, g = layer.filters, layer.groups
    fh, fw = layer.kernel
    cg, kg = layer.in_channels // g, k // g
    out_hw = layer.output_shape[:2]
    bias = w["bias"] if layer.bias else np.zeros(k, np.float32)
    depthwise = _depthwise(layer)
    if depthwise:   # (K, 1, FH, FW) → one row of K weights per tap
        taps = w["weight"].reshape(k, fh * fw).T.copy()
    else:           # (K, Cg, FH, FW) → per group (FH·FW·Cg, Kg), the window view's order
        wmat = np.ascontiguousarray(w["weight"].reshape(g, kg, cg, fh, fw)
                                    .transpose(0, 3, 4, 2, 1).reshape(g, fh * fw * cg, kg))

    def conv(x: np.ndarray, relu: bool = False) -> np.ndarray:
        n = x.shape[0]
        xp = _pad(x, layer.pads, 0.0)
        if depthwise:  # one multiply-add per tap over the whole batch: no im2col at all
            out = np.empty((n, *out_hw, k), np.float32)
            out[...] = bias
            for t, view in _taps(xp, out_hw, layer.kernel, layer.strides, layer.dilation):
                out += view * taps[t]
            return np.maximum(out, 0, out=out) if relu else out
        win = _windows(xp, out_hw, layer.kernel, layer.strides, layer.dilation)
        out = np.empty((n, *out_hw, k), np.float32)
        for samples, rows in im2col_blocks(layer, n):
            part = win[samples, rows]
            block = out[samples, rows]
            m = prod(part.shape[:3])
            if g == 1:
                np.matmul(part.reshape(m, fh * fw * cg), wmat[0], out=block.reshape(m, k))
            else:
                cols = part.reshape(*part.shape[:5], g, cg).transpose(5, 0, 1, 2, 3, 4, 6)
                block[...] = np.matmul(cols.reshape(g, m, fh * fw * cg), wmat).transpose(
                    1, 0, 2).reshape(block.shape)
            if layer.bias:
                block += bias   # while the block is still in cache
            if relu:
                np.maximum(block, 0, out=block)
        return out

    return conv
