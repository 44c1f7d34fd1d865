"""The three matrix products of a convolution, by cache-sized im2col blocks.

For a padded input xp, the weights as per-group matrices (`Weights`) and the
output grid (N, OH, OW):

- `im2col_matmul`: y = cols · W, the forward pass;
- `matmul_col2im`: dxp = col2im(dy · Wᵀ), the input's gradient (the FH·FW column
  blocks of each row of dy · Wᵀ are added back into the padded input, one strided
  add per kernel tap);
- `weight_grad`: dW = dyᵀ · cols, the weights' gradient,

where cols is the (N·OH·OW, FH·FW·Cg) matrix of every window's values. cols is
never made whole: each block of output rows copies its windows into one buffer
(about IM2COL_BYTES, the size the inference model measured fastest), so the
matrix product reads it from cache. With few filters (LeNet's 6 and 16) copying
the windows costs more than the product, and blocks a quarter that size are faster
(LeNet-5's training step at batch 64, one thread: 1.6×; ResNet-18's layers, of 64
filters and more, keep the larger blocks). A transposed convolution is the same three
products with the roles of input and output swapped (deconv.py).

cols' columns come in one of two orders. Tap-major, (FH, FW, C), copies each tap's
C channels as one contiguous run, the fast copy when the activations are larger
than the weights; the weights are then reordered to match (a copy). Channel-major,
(C, FH, FW), is torch's weight layout itself, so the weights and their gradient
need no copy: the order for the deep layers, whose weights are larger than the
windows' values (ResNet-18's 512-channel convs at batch 32: 2.4 M weights, 147 k
window values).
"""

from __future__ import annotations

from math import prod

import numpy as np

from .windows import blocks, tap, taps, windows

#: Bytes of one block's im2col (or col2im) buffer.
IM2COL_BYTES = 2**20
#: ... but at least this many rows, below which BLAS runs a product inefficiently.
MIN_BLOCK_ROWS = 1024
#: With fewer filters than this (per group), copying the windows costs more than the
#: product: blocks of FEW_FILTERS_BYTES (at least FEW_FILTERS_ROWS output pixels).
FEW_FILTERS = 32
FEW_FILTERS_BYTES = 2**18
FEW_FILTERS_ROWS = 256
#: Channel-major columns when the filters outnumber the output pixels (the im2col
#: matrix's rows) over this: the weights are then the larger operand to reorder.
CHANNEL_MAJOR_RATIO = 0.25


class Weights:
    """A conv's (K, Cg, FH, FW) weights as G per-group matrices in its im2col's column
    order: a view in channel-major order, a reordered copy in tap-major order."""

    def __init__(self, weight: np.ndarray, groups: int, channel_major: bool) -> None:
        k, cg, fh, fw = weight.shape
        self.kernel, self.groups, self.channel_major = (fh, fw), groups, channel_major
        self.channels = cg
        kg = k // groups
        if channel_major:   # (G, Kg, Cg·FH·FW)
            self.mats = np.ascontiguousarray(weight).reshape(groups, kg, cg * fh * fw)
        else:               # (G, FH·FW·Cg, Kg)
            self.mats = np.ascontiguousarray(weight.reshape(groups, kg, cg, fh, fw)
                                             .transpose(0, 3, 4, 2, 1)).reshape(groups, -1, kg)

    @property
    def filters(self) -> int:
        """Filters per group."""
        return self.mats.shape[1 if self.channel_major else 2]

    def forward(self, g: int) -> np.ndarray:
        """Group g's (depth, Kg) matrix: cols · it = y."""
        return self.mats[g].T if self.channel_major else self.mats[g]

    def backward(self, g: int) -> np.ndarray:
        """Group g's (Kg, depth) matrix: dy · it = dcols."""
        return self.mats[g] if self.channel_major else self.mats[g].T

    def to_weight(self, per_group: np.ndarray) -> np.ndarray:
        """(G, Kg, depth) gradients, each row in this column order, as (K, Cg, FH, FW)."""
        g, kg, _ = per_group.shape
        fh, fw = self.kernel
        if self.channel_major:
            return per_group.reshape(g * kg, self.channels, fh, fw)
        return np.ascontiguousarray(per_group.reshape(g * kg, fh, fw, self.channels)
                                    .transpose(0, 3, 1, 2))


def channel_major(filters: int, rows: int) -> bool:
    """Whether a conv with `filters` output channels over `rows` output pixels (N·OH·OW)
    orders its im2col by channel (see the module's docstring)."""
    return filters > CHANNEL_MAJOR_RATIO * rows


def _blocks(n: int, out_hw: tuple[int, int], depth: int, itemsize: int,
            filters: int) -> list[tuple[slice, slice]]:
    """The (samples, output rows) blocks of a product whose window columns are `depth`
    values deep and whose other side has `filters` columns."""
    ow = out_hw[1]
    if filters < FEW_FILTERS:
        return blocks(n, out_hw[0], ow * depth * itemsize, FEW_FILTERS_BYTES,
                      -(-FEW_FILTERS_ROWS // ow))
    return blocks(n, out_hw[0], ow * depth * itemsize, IM2COL_BYTES, -(-MIN_BLOCK_ROWS // ow))


def _pointwise(in_hw: tuple[int, ...], out_hw: tuple[int, int], kernel: tuple[int, int],
               strides: tuple[int, int], groups: int) -> bool:
    """A 1×1 stride-1 window over the whole input: cols is the input itself."""
    return kernel == (1, 1) and strides == (1, 1) and tuple(in_hw) == out_hw and groups == 1


class _Cols:
    """One reusable buffer for a call's im2col blocks (a fresh one per block costs a page
    fault every 4 KiB)."""

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = dtype
        self.buffer = np.empty(0, dtype)

    def get(self, shape: tuple[int, ...]) -> np.ndarray:
        size = prod(shape)
        if self.buffer.size < size:
            self.buffer = np.empty(size, self.dtype)
        return self.buffer[:size].reshape(shape)

    def of(self, part: np.ndarray, group: int, w: Weights) -> np.ndarray:
        """Group `group`'s channels of an (n, rows, OW, FH, FW, C) window view as an
        (M, FH·FW·Cg) matrix, its columns in w's order."""
        cg = w.channels
        values = part[..., group * cg:(group + 1) * cg]
        if w.channel_major:
            cols = self.get((*part.shape[:3], cg, *part.shape[3:5]))
            np.copyto(cols, values.transpose(0, 1, 2, 5, 3, 4))
        else:
            cols = self.get((*part.shape[:5], cg))
            np.copyto(cols, values)
        return cols.reshape(prod(part.shape[:3]), -1)


def im2col_matmul(xp: np.ndarray, out_hw: tuple[int, int], strides: tuple[int, int],
                  dilation: tuple[int, int], w: Weights) -> np.ndarray:
    """y (N, OH, OW, K): each output pixel's window of xp times the weights."""
    n, c = xp.shape[0], xp.shape[3]
    g, kg = w.groups, w.filters
    y = np.empty((n, *out_hw, g * kg), xp.dtype)
    if _pointwise(xp.shape[1:3], out_hw, w.kernel, strides, g):
        np.matmul(xp.reshape(-1, c), w.forward(0), out=y.reshape(-1, kg))
        return y
    win = windows(xp, out_hw, w.kernel, strides, dilation)
    cols = _Cols(xp.dtype)
    for s, r in _blocks(n, out_hw, prod(w.kernel) * c, xp.itemsize, kg):
        part = win[s, r]
        o = y[s, r].reshape(-1, g * kg)
        for gi in range(g):
            if g == 1:
                np.matmul(cols.of(part, 0, w), w.forward(0), out=o)
            else:
                o[:, gi * kg:(gi + 1) * kg] = cols.of(part, gi, w) @ w.forward(gi)
    return y


def matmul_col2im(dy: np.ndarray, w: Weights, xp_shape: tuple[int, ...],
                  strides: tuple[int, int], dilation: tuple[int, int]) -> np.ndarray:
    """The gradient of the padded input (zero where no window reads): each output
    pixel's dy times the weights' transpose, added back into its window."""
    n, oh, ow, _ = dy.shape
    g, kg, cg = w.groups, w.filters, w.channels
    fh, fw = w.kernel
    if _pointwise(xp_shape[1:3], (oh, ow), w.kernel, strides, g):
        return np.matmul(dy.reshape(-1, kg), w.backward(0)).reshape(xp_shape)
    dxp = np.zeros(xp_shape, dy.dtype)
    buffer = _Cols(dy.dtype)
    depth = fh * fw * cg
    for s, r in _blocks(n, (oh, ow), depth * g, dy.itemsize, kg):
        d = dy[s, r]
        lead = d.shape[:3]
        d = d.reshape(-1, g * kg)
        target = dxp[s]
        for gi in range(g):
            dcols = buffer.get((d.shape[0], depth))
            np.matmul(d[:, gi * kg:(gi + 1) * kg], w.backward(gi), out=dcols)
            if w.channel_major:
                dc = dcols.reshape(*lead, cg, fh, fw).transpose(0, 1, 2, 4, 5, 3)
            else:
                dc = dcols.reshape(*lead, fh, fw, cg)
            for _, i, j in taps(w.kernel):
                view = tap(target, i, j, (oh, ow), strides, dilation, rows=r)
                view[..., gi * cg:(gi + 1) * cg] += dc[:, :, :, i, j]
    return dxp


def weight_grad(xp: np.ndarray, dy: np.ndarray, strides: tuple[int, int],
                dilation: tuple[int, int], w: Weights) -> np.ndarray:
    """dW (K, Cg, FH, FW): every window's values times its dy, as dyᵀ · cols per group
    (that orientation: the product's long side is the reduction, which BLAS runs
    faster than colsᵀ · dy when K is small, 2× for LeNet's six filters)."""
    n, oh, ow, k = dy.shape
    g, kg = w.groups, w.filters
    c = xp.shape[3]
    depth = prod(w.kernel) * w.channels
    if _pointwise(xp.shape[1:3], (oh, ow), w.kernel, strides, g):
        return np.matmul(dy.reshape(-1, k).T, xp.reshape(-1, c)).reshape(k, c, 1, 1)
    dw = np.zeros((g, kg, depth), dy.dtype)
    step = np.empty((kg, depth), dy.dtype)
    win = windows(xp, (oh, ow), w.kernel, strides, dilation)
    cols = _Cols(xp.dtype)
    plan = _blocks(n, (oh, ow), depth * g, xp.itemsize, kg)
    for s, r in plan:
        part = win[s, r]
        d = dy[s, r].reshape(-1, k)
        for gi in range(g):
            out = dw[gi] if len(plan) == 1 else step
            np.matmul(d[:, gi * kg:(gi + 1) * kg].T, cols.of(part, gi, w), out=out)
            if len(plan) > 1:
                dw[gi] += step
    return w.to_weight(dw)
