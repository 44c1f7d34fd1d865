"""Weight standardisation (timm's StdConv2d and ScaledStdConv2d: BiT, NFNet), forward and
backward: each filter's N = C/g·FH·FW weights moved to mean 0 and variance 1 (biased,
÷N), ŵ = (w − mean)/√(var + ε), then, in the scaled form, times gain·γ/√N per filter.

torch computes it as `F.batch_norm(w.reshape(1, K, N), training=True)` on every forward,
so autograd carries the gradient through the statistics: with x̂ the standardised weights,
a = gain·scale and g = dŵ·a, dw = (g − mean(g) − x̂·mean(g·x̂))/√(var + ε) and
dgain = scale·Σ dŵ·x̂, per filter. The conv then runs on ŵ (netspec.numerics.backward.conv).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class StandardiseCache(NamedTuple):
    """Per filter the standardised weights x̂ (before the gain), 1/std and the multiplier
    a = gain·scale (None without a gain), and the scale."""

    xhat: np.ndarray
    invstd: np.ndarray
    multiplier: np.ndarray | None
    scale: float


def standardise_forward(weight: np.ndarray, eps: float, gain: np.ndarray | None = None,
                        scale: float = 1.0) -> tuple[np.ndarray, StandardiseCache]:
    """ŵ of `weight` (K, C/g, FH, FW) in its precision, the statistics summed in float64;
    with `gain` (K, 1, 1, 1), times gain·scale per filter."""
    k = weight.shape[0]
    rows = weight.reshape(k, -1).astype(np.float64)
    mean = rows.mean(axis=1, keepdims=True)
    centred = rows - mean
    invstd = 1 / np.sqrt(np.einsum("kn,kn->k", centred, centred)[:, None] / rows.shape[1] + eps)
    xhat = (centred * invstd).astype(weight.dtype)
    multiplier = None
    out = xhat
    if gain is not None:
        multiplier = (gain.reshape(k, 1) * weight.dtype.type(scale)).astype(weight.dtype)
        out = xhat * multiplier
    return out.reshape(weight.shape), StandardiseCache(
        xhat, invstd.astype(weight.dtype), multiplier, scale)


def standardise_backward(dw_hat: np.ndarray, cache: StandardiseCache
                         ) -> tuple[np.ndarray, np.ndarray | None]:
    """(dw, dgain) for the gradient dŵ of the standardised weights (dgain None without a
    gain), the per-filter sums in float64."""
    xhat, invstd, multiplier, scale = cache
    k = xhat.shape[0]
    d = dw_hat.reshape(k, -1).astype(np.float64)
    x = xhat.astype(np.float64)
    dgain = None
    if multiplier is not None:
        dgain = (scale * np.einsum("kn,kn->k", d, x)).astype(dw_hat.dtype).reshape(k, 1, 1, 1)
        d = d * multiplier.astype(np.float64)
    dw = (d - d.mean(axis=1, keepdims=True) -
          x * np.einsum("kn,kn->k", d, x)[:, None] / x.shape[1]) * invstd
    return dw.astype(dw_hat.dtype).reshape(dw_hat.shape), dgain
