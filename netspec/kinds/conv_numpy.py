"""Convolution: one BLAS matrix multiply per cache-sized im2col block; depthwise row-blocked.

A conv step takes an optional `act`, an elementwise activation that overwrites
its argument (ops.ELEMENTWISE): it is applied to each output block right after
the bias, while the block is still in cache. A batch norm after the conv is
folded into its weights before lowering (model.py, `fold`), so conv + bn +
relu is a single pass over the output.
"""

from __future__ import annotations

import threading
from math import gcd, prod
from typing import TYPE_CHECKING

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..numerics.elementwise import Activation
from ..numerics.threads import channel_chunks, each, width
from ..numerics.windows import Step, _pad, _windows, row_blocks

if TYPE_CHECKING:
    from .conv import Conv

#: Each im2col block is sized to stay under this, so that it is still in cache
#: when the matrix multiply reads it (measured on a 2-core Xeon, VGG's 128→128
#: conv at 32×32, batch 32: 54 ms with 4–8 MiB blocks, 75 ms with 64 MiB ones; on
#: this project's 2-core EPYC, 1 MiB L2 per core, 1 MiB blocks run ResNet-18 and
#: VGG-mini 2–4% faster than 4 MiB ones at batch 16 and 32).
IM2COL_BYTES = 2**20
#: ... but at least this many rows, below which a matrix multiply runs inefficiently.
MIN_BLOCK_ROWS = 1024
#: Splitting one sample's output rows across threads stops at blocks of this many
#: rows; a smaller output is split by output channels instead.
MIN_SPLIT_ROWS = 128
#: A depthwise conv works on blocks of output rows of about this size, so that a
#: block stays in the core's cache while every tap adds to it (MobileNetV2's and
#: EfficientNet-B0's depthwise layers, one thread: 7–8% faster than with 256 KiB
#: blocks, and MobileNetV2 at batch 16 on two threads 13%: fewer, longer einsum calls).
DEPTHWISE_BLOCK_BYTES = 2**20
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


def im2col_bytes(layer: Conv, batch: int) -> int:
    """The largest im2col block a forward pass of `batch` samples allocates for `layer`."""
    if _depthwise(layer):
        return 0
    n, r = im2col_blocks(layer, batch)[0]
    return len(range(batch)[n]) * len(range(layer.output_shape[0])[r]) * _row_bytes(layer)


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


def conv_step(layer: Conv, w: dict[str, np.ndarray]) -> Step:
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


def _depthwise_phases(layer: Conv) -> list[tuple[int, list[int]]]:
    """The kernel columns by the column phase of the padded input they read.

    Tap column j of output column w reads padded column s·w + d·j (stride s,
    dilation d), that is column w + (d·j)//s of phase (d·j) % s: the padded
    columns q, q + s, q + 2s, …. Within a phase the taps' offsets step by d/g
    (g = gcd(s, d)), so that one strided view reads them all.
    """
    s, d = layer.strides[1], layer.dilation
    by: dict[int, list[int]] = {}
    for j in range(layer.kernel[1]):
        by.setdefault(d * j % s, []).append(j)
    return sorted(by.items())


def _phases(x: np.ndarray, pads: tuple[tuple[int, int], tuple[int, int]],
            stride: int) -> list[np.ndarray]:
    """The zero-padded batch split into `stride` column phases, each a contiguous
    (N, HP, ⌈(WP − q)/stride⌉, C) array, written in one pass over x (at stride 1,
    `_pad`'s copy, or x itself when it is contiguous and needs no padding)."""
    if stride == 1:
        return [np.ascontiguousarray(_pad(x, pads, 0.0))]
    (top, bottom), (left, right) = pads
    n, h, w, c = x.shape
    hp, wp = h + top + bottom, w + left + right
    phases = []
    for q in range(stride):
        columns = -(-(wp - q) // stride)
        first = -(-(left - q) // stride)   # the first phase column that holds input
        last = (left + w - 1 - q) // stride
        plane = np.empty((n, hp, columns, c), np.float32)
        plane[:, :top] = 0.0
        plane[:, top + h:] = 0.0
        plane[:, top:top + h, :first] = 0.0
        plane[:, top:top + h, last + 1:] = 0.0
        col = q + stride * first - left   # the input column at `first`
        stop = col + stride * (last - first) + 1
        plane[:, top:top + h, first:last + 1] = x[:, :, col:stop:stride]
        phases.append(plane)
    return phases


def _depthwise_conv(layer: Conv, w: dict[str, np.ndarray]) -> Step:
    """Depthwise conv by blocks of output rows, one `einsum` per block and column phase.

    An output row is OW·C contiguous floats, and at column stride 1 so is what
    each tap reads of an input row, at an offset. The einsum's inner loop then
    multiplies and adds a whole row per tap (with that tap's weights tiled along
    the row), one fused pass where a multiply and an add per tap take two
    (MobileNetV2's depthwise layers, one sample, one thread: 1.26× faster than tap
    by tap, 1.04–1.53× per layer). At a larger column stride the padded input is
    first split into column phases (`_depthwise_phases`), each read at stride 1,
    and the phases' sums are added.
    """
    k = layer.filters
    fh, fw = layer.kernel
    oh, ow = layer.output_shape[:2]
    sh, sw = layer.strides
    d = layer.dilation
    kernel = w["weight"].reshape(k, fh, fw).transpose(1, 2, 0)   # (FH, FW, K)
    row = ow * k
    # per phase: which plane, the offset of its first tap, the step between its taps
    # (in columns of that plane), and its taps' weights tiled along a whole row
    phases = []
    for q, taps in _depthwise_phases(layer):
        tiled = np.broadcast_to(kernel[:, taps, None, :], (fh, len(taps), ow, k))
        phases.append((q, taps[0] * d // sw, d // gcd(sw, d),
                       np.ascontiguousarray(tiled).reshape(fh, len(taps), row)))
    bias = w.get("bias")
    if bias is not None:
        bias = np.tile(bias, ow)

    def conv(x: np.ndarray, act: Activation | None = None) -> np.ndarray:
        n = x.shape[0]
        planes = _phases(x, layer.pads, sw)
        out = np.empty((n, oh, ow, k), np.float32)
        views = []
        for q, first, step, weights in phases:
            p = planes[q]
            s0, s1 = p.strides[:2]
            views.append((as_strided(p[:, :, first:], (n, oh, fh, weights.shape[1], row),
                                      (s0, s1 * sh, s1 * d, 4 * k * step, 4), writeable=False),
                          weights))

        def block(where: tuple[slice, slice]) -> None:
            s, r = where
            o = out[s, r]
            o = o.reshape(*o.shape[:2], row)
            (view, weights), *later = views
            np.einsum("nhijk,ijk->nhk", view[s, r], weights, out=o)
            for view, weights in later:
                o += np.einsum("nhijk,ijk->nhk", view[s, r], weights)
            if bias is not None:
                o += bias
            if act is not None:
                act(o)

        each(block, row_blocks(n, oh, row * 4, DEPTHWISE_BLOCK_BYTES, width()))
        return out

    return conv


def scratch(layer: Conv, batch: int) -> int:
    """What a conv step allocates beyond its output: a padded copy of a padded input; one
    im2col block at a time (none for a 1×1 stride-1 conv, whose window view is already a
    matrix), and for a grouped conv the product per block (then, the block freed, its
    transposed copy); a stride-1 conv with few filters a block of samples' input rows,
    its sum and one product; a depthwise conv its column phases (one copy, made even
    without padding at a stride over 1) and, with more than one phase, each later
    phase's sum of a block of rows."""
    (t, b), (left, r) = layer.pads
    h, w, c = layer.input_shape
    padded = 4 * batch * (h + t + b) * (w + left + r) * c if t or b or left or r else 0
    if _depthwise(layer):
        stride = layer.strides[1]
        phases = padded or (4 * batch * h * w * c if stride > 1 else 0)
        if len(_depthwise_phases(layer)) == 1:
            return phases
        oh, ow, k = layer.output_shape
        samples, rows = row_blocks(batch, oh, ow * k * 4, DEPTHWISE_BLOCK_BYTES)[0]
        return phases + len(range(batch)[samples]) * len(range(oh)[rows]) * ow * k * 4
    if _row_shared(layer):
        per = min(batch, row_shared_samples(layer, h + t + b))
        c, fw, oh, ow = layer.in_channels, layer.kernel[1], *layer.output_shape[:2]
        return padded + 4 * per * (c * fw * (h + t + b) * ow + 2 * layer.filters * oh * ow)
    samples, rows = im2col_blocks(layer, batch)[0]
    m = len(range(batch)[samples]) * len(range(layer.output_shape[0])[rows]) * \
        layer.output_shape[1]
    direct = layer.kernel == (1, 1) and layer.strides == (1, 1) and layer.groups == 1
    block = 0 if direct else 4 * m * prod(layer.kernel) * layer.in_channels   # all groups
    if layer.groups > 1:   # the product, then (the block freed) its transposed copy
        block = max(block + 4 * m * layer.filters, 2 * 4 * m * layer.filters)
    return padded + block
