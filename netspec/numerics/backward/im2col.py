"""The three matrix products of a convolution, by cache-sized im2col blocks.

For a padded input xp, weights as per-group matrices `wmat` (G, FH·FW·Cg, Kg) and
the output grid (N, OH, OW):

- `im2col_matmul`: y = cols · wmat, the forward pass;
- `matmul_col2im`: dxp = col2im(dy · wmatᵀ), the input's gradient (the FH·FW
  column blocks of each row of dy · wmatᵀ are added into the padded input, one
  strided add per kernel tap);
- `weight_grad`: dW = colsᵀ · dy, the weights' gradient,

where cols is the (N·OH·OW, FH·FW·Cg) matrix of every window's values. cols is
never made whole: each block of output rows copies its windows into one buffer
(about IM2COL_BYTES, the size the inference model measured fastest), so the
matrix product reads it from cache. A transposed convolution is the same three
products with the roles of input and output swapped (deconv.py).
"""

from __future__ import annotations

from math import prod

import numpy as np

from .windows import blocks, tap, taps, windows

#: Bytes of one block's im2col (or col2im) buffer.
IM2COL_BYTES = 2**20
#: ... but at least this many rows, below which BLAS runs a product inefficiently.
MIN_BLOCK_ROWS = 1024


def weight_matrix(weight: np.ndarray, groups: int) -> np.ndarray:
    """(K, Cg, FH, FW) weights as per-group (G, FH·FW·Cg, K/G) matrices, in the window
    view's (FH, FW, C) order."""
    k, cg, fh, fw = weight.shape
    return np.ascontiguousarray(weight.reshape(groups, k // groups, cg, fh, fw)
                                .transpose(0, 3, 4, 2, 1).reshape(groups, fh * fw * cg, k // groups))


def weight_from_matrix(wmat: np.ndarray, kernel: tuple[int, int]) -> np.ndarray:
    """The inverse of `weight_matrix`: (G, FH·FW·Cg, Kg) back to (K, Cg, FH, FW)."""
    g, depth, kg = wmat.shape
    fh, fw = kernel
    cg = depth // (fh * fw)
    return np.ascontiguousarray(wmat.reshape(g, fh, fw, cg, kg).transpose(0, 4, 3, 1, 2)
                                .reshape(g * kg, cg, fh, fw))


def _blocks(n: int, out_hw: tuple[int, int], depth: int, itemsize: int) -> list[tuple[slice, slice]]:
    ow = out_hw[1]
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

    def of(self, part: np.ndarray, group: int, cg: int) -> np.ndarray:
        """Group `group`'s channels of a window view as an (M, FH·FW·Cg) matrix."""
        cols = self.get((*part.shape[:5], cg))
        np.copyto(cols, part[..., group * cg:(group + 1) * cg])
        return cols.reshape(prod(part.shape[:3]), -1)


def im2col_matmul(xp: np.ndarray, out_hw: tuple[int, int], kernel: tuple[int, int],
                  strides: tuple[int, int], dilation: tuple[int, int],
                  wmat: np.ndarray) -> np.ndarray:
    """y (N, OH, OW, K): each output pixel's window of xp times the weights."""
    n, c = xp.shape[0], xp.shape[3]
    g, depth, kg = wmat.shape
    y = np.empty((n, *out_hw, g * kg), xp.dtype)
    if _pointwise(xp.shape[1:3], out_hw, kernel, strides, g):
        np.matmul(xp.reshape(-1, c), wmat[0], out=y.reshape(-1, kg))
        return y
    win = windows(xp, out_hw, kernel, strides, dilation)
    cols = _Cols(xp.dtype)
    for s, r in _blocks(n, out_hw, depth * g, xp.itemsize):
        part = win[s, r]
        o = y[s, r].reshape(-1, g * kg)
        for gi in range(g):
            if g == 1:
                np.matmul(cols.of(part, 0, c), wmat[0], out=o)
            else:
                o[:, gi * kg:(gi + 1) * kg] = cols.of(part, gi, c // g) @ wmat[gi]
    return y


def matmul_col2im(dy: np.ndarray, wmat: np.ndarray, xp_shape: tuple[int, ...],
                  kernel: tuple[int, int], strides: tuple[int, int],
                  dilation: tuple[int, int]) -> np.ndarray:
    """The gradient of the padded input (zero where no window reads): each output
    pixel's dy times the weights' transpose, added back into its window."""
    n, oh, ow, _ = dy.shape
    g, depth, kg = wmat.shape
    cg = xp_shape[3] // g
    if _pointwise(xp_shape[1:3], (oh, ow), kernel, strides, g):
        return np.matmul(dy.reshape(-1, kg), wmat[0].T).reshape(xp_shape)
    dxp = np.zeros(xp_shape, dy.dtype)
    wt = np.ascontiguousarray(wmat.transpose(0, 2, 1))   # (G, Kg, depth)
    buffer = _Cols(dy.dtype)
    for s, r in _blocks(n, (oh, ow), depth * g, dy.itemsize):
        d = dy[s, r]
        m = prod(d.shape[:3])
        d = d.reshape(m, g * kg)
        target = dxp[s]
        for gi in range(g):
            dcols = buffer.get((m, depth))
            np.matmul(d[:, gi * kg:(gi + 1) * kg], wt[gi], out=dcols)
            dc = dcols.reshape(*dy[s, r].shape[:3], *kernel, cg)
            for _, i, j in taps(kernel):
                view = tap(target, i, j, (oh, ow), strides, dilation, rows=r)
                view[..., gi * cg:(gi + 1) * cg] += dc[:, :, :, i, j]
    return dxp


def weight_grad(xp: np.ndarray, dy: np.ndarray, kernel: tuple[int, int],
                strides: tuple[int, int], dilation: tuple[int, int], groups: int) -> np.ndarray:
    """dW as per-group matrices (G, FH·FW·Cg, Kg): every window's values times its dy."""
    n, oh, ow, k = dy.shape
    c = xp.shape[3]
    cg, kg = c // groups, k // groups
    depth = kernel[0] * kernel[1] * cg
    if _pointwise(xp.shape[1:3], (oh, ow), kernel, strides, groups):
        return np.matmul(xp.reshape(-1, c).T, dy.reshape(-1, k))[None]
    dw = np.zeros((groups, depth, kg), dy.dtype)
    step = np.empty((depth, kg), dy.dtype)
    win = windows(xp, (oh, ow), kernel, strides, dilation)
    cols = _Cols(xp.dtype)
    for s, r in _blocks(n, (oh, ow), depth * groups, xp.itemsize):
        part = win[s, r]
        d = dy[s, r].reshape(-1, k)
        for gi in range(groups):
            np.matmul(cols.of(part, gi, cg).T, d[:, gi * kg:(gi + 1) * kg], out=step)
            dw[gi] += step
    return dw
