"""Convolution: one BLAS matrix multiply per cache-sized im2col block; depthwise row-blocked.

A conv step takes an optional `act`, an elementwise activation that overwrites
its argument (ops.ELEMENTWISE): it is applied to each output block right after
the bias, while the block is still in cache. A batch norm after the conv is
folded into its weights before lowering (model.py, `fold`), so conv + bn +
relu is a single pass over the output.
"""

from __future__ import annotations

import threading
from math import prod
from typing import TYPE_CHECKING

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..layers import Conv
from .ops import Activation
from .threads import channel_chunks, each, width
from .windows import Step, _pad, _taps, _windows, row_blocks

if TYPE_CHECKING:
    from ..network import Network

#: Each im2col block is sized to stay under this, so that it is still in cache
#: when the matrix multiply reads it (measured on a 2-core Xeon, VGG's 128→128
#: conv at 32×32, batch 32: 54 ms with 4–8 MiB blocks, 75 ms with 64 MiB ones).
IM2COL_BYTES = 4 * 2**20
#: ... but at least this many rows, below which a matrix multiply runs inefficiently.
MIN_BLOCK_ROWS = 1024
#: Splitting one sample's output rows across threads stops at blocks of this many
#: rows; a smaller output is split by output channels instead.
MIN_SPLIT_ROWS = 128
#: A depthwise conv works on blocks of output rows of about this size, so that the
#: block and the product of one tap stay in the core's cache.
DEPTHWISE_BLOCK_BYTES = 256 * 2**10
#: From this many channels on, a depthwise conv sums its taps with one einsum per
#: block (at stride 1, and at larger strides), rather than tap by tap.
EINSUM_CHANNELS_STRIDE1, EINSUM_CHANNELS = 128, 48
#: A stride-1 conv with at most this many filters runs by shared rows (`_row_shared`):
#: a matrix multiply whose columns are the K filters runs BLAS at a few GFLOP/s.
ROW_SHARED_FILTERS = 16
#: ... on blocks of whole samples whose row matrix stays near this size.
ROW_SHARED_BYTES = 2**20


class _Buffers:
    """One im2col buffer per thread for the blocks of one conv call, reused from block
    to block (a freshly allocated one costs a page fault every 4 KiB: LeNet's first
    conv at batch 128, 13 ms with new blocks, 9 ms reusing one) and freed with the call."""

    def __init__(self) -> None:
        self.by_thread: dict[int, np.ndarray] = {}

    def get(self, size: int) -> np.ndarray:
        """This thread's buffer, at least `size` floats."""
        buf = self.by_thread.get(threading.get_ident())
        if buf is None or buf.size < size:
            buf = self.by_thread[threading.get_ident()] = np.empty(size, np.float32)
        return buf[:size]


def _row_bytes(layer: Conv) -> int:
    """Bytes of im2col for one row of output (OW windows)."""
    return layer.output_shape[1] * prod(layer.kernel) * layer.in_channels * 4


def im2col_blocks(layer: Conv, batch: int, threads: int = 1) -> list[tuple[slice, slice]]:
    """(samples, output rows) blocks whose im2col matrices stay near IM2COL_BYTES.

    With `threads` > 1 and one sample, the rows are cut into at least `threads`
    blocks, as long as each keeps MIN_SPLIT_ROWS rows of the matrix.
    """
    oh, ow = layer.output_shape[:2]
    rows = max(IM2COL_BYTES // _row_bytes(layer), -(-MIN_BLOCK_ROWS // ow), 1)
    if threads > 1 and batch < threads:
        rows = min(rows, max(-(-oh // threads), -(-MIN_SPLIT_ROWS // ow)))
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


def _row_shared(layer: Conv) -> bool:
    """A stride-1 conv with few filters (LeNet's): by kernel rows, filters × pixels."""
    return (layer.groups == 1 and layer.strides == (1, 1) and layer.dilation == 1
            and layer.filters <= ROW_SHARED_FILTERS and layer.kernel[0] > 1)


def row_shared_samples(layer: Conv, padded_h: int) -> int:
    """How many samples `_row_shared` takes per block."""
    fw, c, ow = layer.kernel[1], layer.in_channels, layer.output_shape[1]
    return max(1, ROW_SHARED_BYTES // (4 * c * fw * padded_h * ow))


def _depthwise_by_einsum(layer: Conv) -> bool:
    """Whether a depthwise conv sums its taps with `einsum` rather than tap by tap."""
    stride1 = layer.strides == (1, 1)
    return layer.filters >= (EINSUM_CHANNELS_STRIDE1 if stride1 else EINSUM_CHANNELS)


def _conv(layer: Conv, w: dict[str, np.ndarray]) -> Step:
    """Conv + bias (+ act), one matrix multiply per im2col block (depthwise: row blocks).

    The bias is w["bias"] whenever it is given, even for a `nobias` conv: a
    folded batch norm's shift arrives that way.
    """
    if _depthwise(layer):
        return _depthwise_conv(layer, w)
    if _row_shared(layer):
        return _row_shared_conv(layer, w)
    k, g = layer.filters, layer.groups
    fh, fw = layer.kernel
    cg, kg = layer.in_channels // g, k // g
    out_hw = layer.output_shape[:2]
    bias = w.get("bias")
    # (K, Cg, FH, FW) → per group (FH·FW·Cg, Kg), the window view's order
    wmat = np.ascontiguousarray(w["weight"].reshape(g, kg, cg, fh, fw)
                                .transpose(0, 3, 4, 2, 1).reshape(g, fh * fw * cg, kg))
    depth = fh * fw * cg
    pointwise = (fh, fw) == (1, 1) and layer.strides == (1, 1) and not any(map(any, layer.pads))

    def im2col(part: np.ndarray, buffers: _Buffers) -> np.ndarray:
        """The windows as an (M, FH·FW·Cg) matrix; a 1×1 stride-1 conv's is its input."""
        m = prod(part.shape[:3])
        if pointwise:
            return part.reshape(m, depth)
        cols = buffers.get(m * depth * g).reshape(part.shape)
        np.copyto(cols, part)
        return cols.reshape(m, depth * g)

    def finish(block: np.ndarray, ch: slice, act: Activation | None) -> None:
        if bias is not None:
            block += bias[ch]   # while the block is still in cache
        if act is not None:
            act(block)

    def conv(x: np.ndarray, act: Activation | None = None) -> np.ndarray:
        n = x.shape[0]
        threads = width()
        xp = _pad(x, layer.pads, 0.0)
        win = _windows(xp, out_hw, layer.kernel, layer.strides, layer.dilation)
        out = np.empty((n, *out_hw, k), np.float32)
        blocks = im2col_blocks(layer, n, threads)
        buffers = _Buffers()

        def block(where: tuple[slice, slice]) -> None:
            samples, rows = where
            part, o = win[samples, rows], out[samples, rows]
            m = prod(part.shape[:3])
            if g == 1:
                np.matmul(im2col(part, buffers), wmat[0], out=o.reshape(m, k))
            else:
                cols = part.reshape(*part.shape[:5], g, cg).transpose(5, 0, 1, 2, 3, 4, 6)
                o[...] = np.matmul(cols.reshape(g, m, depth), wmat).transpose(
                    1, 0, 2).reshape(o.shape)
            finish(o, slice(None), act)

        if threads == 1 or len(blocks) >= threads or g > 1:
            each(block, blocks)
            return out
        # one small sample and idle threads: split the output channels instead
        for samples, rows in blocks:
            part, o = win[samples, rows], out[samples, rows]
            m = prod(part.shape[:3])
            cols, o2 = im2col(part, buffers), o.reshape(m, k)

            def channels(ch: slice, cols: np.ndarray = cols, o2: np.ndarray = o2) -> None:
                np.matmul(cols, wmat[0][:, ch], out=o2[:, ch])
                finish(o2[:, ch], ch, act)
            each(channels, channel_chunks(k, threads))
        return out

    return conv


def _row_shared_conv(layer: Conv, w: dict[str, np.ndarray]) -> Step:
    """A stride-1 conv with few filters, computed filters × pixels, one kernel row at a time.

    For every padded input row the C·FW values each output column reads from it
    are copied once (FH times fewer than im2col copies), and kernel row i's
    (K, C·FW) weights times those rows, shifted down by i, are summed: K is the
    rows of each matrix multiply and the pixels its columns, a shape BLAS runs
    well (LeNet's first conv at batch 256: 5.5 ms CPU against 17 ms by im2col).
    """
    k, c = layer.filters, layer.in_channels
    fh, fw = layer.kernel
    oh, ow = layer.output_shape[:2]
    rows = np.ascontiguousarray(w["weight"].transpose(2, 0, 1, 3).reshape(fh, k, c * fw))
    bias = w.get("bias")

    def conv(x: np.ndarray, act: Activation | None = None) -> np.ndarray:
        xp = _pad(x, layer.pads, 0.0)
        n, hp = xp.shape[:2]
        s0, s1, s2, s3 = xp.strides
        win = as_strided(xp, (n, c, fw, hp, ow), (s0, s3, s2, s1, s2), writeable=False)
        out = np.empty((n, oh, ow, k), np.float32)
        per = row_shared_samples(layer, hp)

        def block(s: slice) -> None:
            cols = np.ascontiguousarray(win[s]).reshape(-1, c * fw, hp * ow)
            acc = np.matmul(rows[0], cols[:, :, :oh * ow])
            tmp = np.empty_like(acc)
            for i in range(1, fh):
                acc += np.matmul(rows[i], cols[:, :, i * ow:(i + oh) * ow], out=tmp)
            if bias is not None:
                acc += bias[:, None]
            if act is not None:
                act(acc)
            out[s] = acc.reshape(-1, k, oh, ow).transpose(0, 2, 3, 1)

        each(block, [slice(a, a + per) for a in range(0, n, per)])
        return out

    return conv


def _depthwise_conv(layer: Conv, w: dict[str, np.ndarray]) -> Step:
    """Depthwise conv by blocks of output rows, in one of two ways (measured on
    MobileNetV2's layers, one sample):

    - tap by tap: tap 0's product written into the block, each other tap's added
      through one cache-sized scratch array. At stride 1 each tap's weights are
      tiled along W, so that every multiply runs over whole rows (OW·C contiguous
      floats) rather than C at a time: 2.2× faster at 112×112×32.
    - one `einsum` per block over the window view: faster from 128 channels on at
      stride 1, and from 48 on at larger strides (0.85 against 1.3 ms at 56×56×96).
    """
    k = layer.filters
    fh, fw = layer.kernel
    oh, ow = layer.output_shape[:2]
    taps = w["weight"].reshape(k, fh * fw).T.copy()   # (K, 1, FH, FW) → one row per tap
    kernel = taps.reshape(fh, fw, k)
    bias = w.get("bias")
    stride1 = layer.strides == (1, 1)
    by_einsum = _depthwise_by_einsum(layer)
    if stride1 and not by_einsum:   # (taps, OW, K): each tap's weights along a whole row
        taps = np.ascontiguousarray(np.broadcast_to(taps[:, None, :], (fh * fw, ow, k)))

    def conv(x: np.ndarray, act: Activation | None = None) -> np.ndarray:
        n = x.shape[0]
        xp = _pad(x, layer.pads, 0.0)
        out = np.empty((n, oh, ow, k), np.float32)
        if by_einsum:
            win = _windows(xp, (oh, ow), layer.kernel, layer.strides, layer.dilation)
        else:
            views = [view for _, view in _taps(xp, (oh, ow), layer.kernel, layer.strides,
                                                layer.dilation)]

        def block(where: tuple[slice, slice]) -> None:
            s, r = where
            o = out[s, r]
            if by_einsum:
                np.einsum("nhwijc,ijc->nhwc", win[s, r], kernel, out=o)
            else:
                scratch = np.empty_like(o)
                np.multiply(views[0][s, r], taps[0], out=o)
                for t in range(1, len(views)):
                    np.multiply(views[t][s, r], taps[t], out=scratch)
                    o += scratch
            if bias is not None:
                o += bias
            if act is not None:
                act(o)

        each(block, row_blocks(n, oh, ow * k * 4, DEPTHWISE_BLOCK_BYTES, width()))
        return out

    return conv
