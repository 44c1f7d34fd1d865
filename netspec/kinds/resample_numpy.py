"""Transposed convolution (one matrix multiply, then a scatter-add per tap) and
upsampling (nearest and bilinear, as torch's F.interpolate with align_corners=False)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..numerics.windows import Step

if TYPE_CHECKING:
    from .resample import Deconv, Upsample


def deconv_step(layer: Deconv, w: dict[str, np.ndarray]) -> Step:
    """Every input pixel times the weights gives an FH×FW×K patch; patches spaced
    s apart (taps d apart) are summed, then `p` is cropped from each border."""
    g, k = layer.groups, layer.filters
    fh, fw = layer.kernel
    s, d, p = layer.stride, layer.dilation, layer.padding
    cg, kg = layer.in_channels // g, k // g
    oh, ow = layer.output_shape[:2]
    # (C_in, Kg, FH, FW) → per group (Cg, FH·FW·Kg), so a product's columns are (tap, filter)
    wmat = np.ascontiguousarray(w["weight"].reshape(g, cg, kg, fh, fw)
                                .transpose(0, 1, 3, 4, 2).reshape(g, cg, fh * fw * kg))
    bias = w.get("bias")

    def deconv(x: np.ndarray) -> np.ndarray:
        n, h, wd, _ = x.shape
        full_h, full_w = (h - 1) * s + d * (fh - 1) + 1, (wd - 1) * s + d * (fw - 1) + 1
        # room for the output padding past the last patch, read as zeros
        full = np.zeros((n, max(full_h, p + oh), max(full_w, p + ow), k), np.float32)
        for gi in range(g):
            cols = (x[..., gi * cg:(gi + 1) * cg].reshape(-1, cg) @ wmat[gi]).reshape(
                n, h, wd, fh, fw, kg)
            for i in range(fh):
                for j in range(fw):
                    full[:, i * d:i * d + (h - 1) * s + 1:s, j * d:j * d + (wd - 1) * s + 1:s,
                         gi * kg:(gi + 1) * kg] += cols[:, :, :, i, j]
        out = np.ascontiguousarray(full[:, p:p + oh, p:p + ow])
        if bias is not None:
            out += bias
        return out
    return deconv


def _nearest_index(n_in: int, n_out: int) -> np.ndarray:
    """Source index floor(dst · in/out), in float32 as torch computes it."""
    scale = np.float32(n_in) / np.float32(n_out)
    return np.minimum(np.floor(np.arange(n_out, dtype=np.float32) * scale).astype(np.int64),
                      n_in - 1)


def _linear_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Half-pixel source positions (dst + ½)·in/out − ½, clamped at 0: the lower
    index, the upper index and the upper one's weight."""
    scale = np.float32(n_in) / np.float32(n_out)
    src = np.maximum((np.arange(n_out, dtype=np.float32) + np.float32(0.5)) * scale
                     - np.float32(0.5), np.float32(0))
    lo = np.minimum(src.astype(np.int64), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, (src - lo).astype(np.float32)


def upsample_step(layer: Upsample) -> Step:
    (h, wd), (oh, ow) = layer.input_shape[:2], layer.output_shape[:2]
    if layer.mode == "nearest":
        rows, cols = _nearest_index(h, oh), _nearest_index(wd, ow)
        return lambda x: x[:, rows][:, :, cols]
    (r0, r1, rl), (c0, c1, cl) = _linear_weights(h, oh), _linear_weights(wd, ow)
    rl, cl = rl[:, None, None], cl[:, None]

    def bilinear(x: np.ndarray) -> np.ndarray:
        y = x[:, r0] * (1 - rl) + x[:, r1] * rl            # along H
        return y[:, :, c0] * (1 - cl) + y[:, :, c1] * cl    # along W
    return bilinear
