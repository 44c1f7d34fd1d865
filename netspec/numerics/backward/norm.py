"""Normalisations, forward and backward: batch norm (and its running statistics),
layer norm over the last axis, group norm and local response norm.

Batch norm in training normalises by the batch's mean and biased variance over
every axis but the channels (the last); at inference by the running statistics.
Its running statistics are updated by a separate call, as torch does during a
training forward: new = (1 − momentum)·old + momentum·batch, with the batch's
unbiased variance.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import channel_dot, channel_sum

#: torch's default batch-norm momentum for the running statistics.
MOMENTUM = 0.1


class BatchNormCache(NamedTuple):
    """The input and scale, as torch keeps, and per channel the mean and 1/std used
    (the batch's in training, the running ones at inference) and the batch's biased
    variance (for the running statistics; None at inference)."""

    x: np.ndarray
    weight: np.ndarray
    mean: np.ndarray
    invstd: np.ndarray
    var: np.ndarray | None
    training: bool


def batch_norm_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray,
                       running_mean: np.ndarray, running_var: np.ndarray, eps: float = 1e-5,
                       training: bool = False) -> tuple[np.ndarray, BatchNormCache]:
    """(x − mean)/√(var + ε)·weight + bias per channel (the last axis of a volume or
    a vector); the batch's statistics in training, the running ones otherwise."""
    c = x.shape[-1]
    rows = x.reshape(-1, c)
    var = None
    if training:
        if rows.shape[0] < 2:   # torch refuses it too: the variance of one value is 0
            raise ValueError("batch norm in training needs more than one value per channel")
        mean = channel_sum(rows) / x.dtype.type(rows.shape[0])
        centred = rows - mean
        var = channel_dot(centred, centred) / x.dtype.type(rows.shape[0])
        invstd = 1 / np.sqrt(var + x.dtype.type(eps))
    else:
        mean = running_mean
        invstd = 1 / np.sqrt(running_var + x.dtype.type(eps))
        centred = rows - mean
    centred *= invstd * weight
    centred += bias
    return centred.reshape(x.shape), BatchNormCache(x, weight, mean, invstd, var, training)


def batch_norm_backward(dy: np.ndarray, cache: BatchNormCache) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(dx, {"weight", "bias"}) as torch's batch_norm_backward.

    With x̂ = (x − mean)·invstd, dweight = Σ dy·x̂ and dbias = Σ dy over every axis but
    the channels. In training the statistics depend on x:
    dx = (dy − dbias/M − x̂·dweight/M)·invstd·weight, M values per channel; at
    inference dx = dy·invstd·weight.
    """
    x, weight, mean, invstd, _, training = cache
    c = x.shape[-1]
    rows, d = x.reshape(-1, c), dy.reshape(-1, c)
    m = x.dtype.type(rows.shape[0])
    centred = rows - mean
    dot = channel_dot(centred, d)
    db = channel_sum(d)
    scale = invstd * weight
    dx = d * scale
    if training:
        centred *= dot * invstd * invstd / m * scale
        dx -= centred
        dx -= db / m * scale
    return dx.reshape(x.shape), {"weight": dot * invstd, "bias": db}


def batch_norm_update_running(running_mean: np.ndarray, running_var: np.ndarray,
                              cache: BatchNormCache, momentum: float = MOMENTUM) -> None:
    """Update the running statistics in place from a training forward's batch, as torch:
    (1 − momentum)·running + momentum·batch, the variance unbiased (·M/(M − 1)),
    computed in float64 and stored in the arrays' precision."""
    if not cache.training:
        raise ValueError("the running statistics are updated from a training forward only")
    m = cache.x.size // cache.x.shape[-1]
    unbiased = cache.var.astype(np.float64) * (m / (m - 1))
    running_mean[...] = momentum * cache.mean.astype(np.float64) + (1 - momentum) * running_mean
    running_var[...] = momentum * unbiased + (1 - momentum) * running_var.astype(np.float64)


class NormCache(NamedTuple):
    """Layer and group norm: the input and scale, and per normalised group its mean
    and 1/std, as torch keeps."""

    x: np.ndarray
    weight: np.ndarray
    mean: np.ndarray
    invstd: np.ndarray
    groups: int


def _grouped(x: np.ndarray, groups: int) -> np.ndarray:
    """x as (N, values per channel, G, C/G): group norm's statistics run over axes 1 and 3
    (layer norm is one group over the last axis alone: N is then every pixel)."""
    return x.reshape(x.shape[0], -1, groups, x.shape[-1] // groups)


def _normalise(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float,
               groups: int) -> tuple[np.ndarray, NormCache]:
    v = _grouped(x, groups)
    mean = v.mean(axis=(1, 3), keepdims=True)
    centred = v - mean
    var = np.einsum("nigc,nigc->ng", centred, centred)
    var /= x.dtype.type(v.shape[1] * v.shape[3])
    invstd = (1 / np.sqrt(var + x.dtype.type(eps)))[:, None, :, None]
    centred *= invstd
    y = centred.reshape(x.shape)
    y *= weight
    y += bias
    return y, NormCache(x, weight, mean, invstd, groups)


def _normalise_backward(dy: np.ndarray, cache: NormCache) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """dx = invstd·(g − mean(g) − x̂·mean(g·x̂)), g = dy·weight, means over each group;
    dweight = Σ dy·x̂ and dbias = Σ dy over everything but the channels."""
    x, weight, mean, invstd, groups = cache
    c = x.shape[-1]
    xhat = _grouped(x, groups) - mean
    xhat *= invstd
    flat_dy, flat_xhat = dy.reshape(-1, c), xhat.reshape(-1, c)
    grads = {"weight": channel_dot(flat_dy, flat_xhat), "bias": channel_sum(flat_dy)}
    g = _grouped(dy * weight, groups)
    count = x.dtype.type(g.shape[1] * g.shape[3])
    mean_g = g.sum(axis=(1, 3), keepdims=True) / count
    mean_gx = np.einsum("nigc,nigc->ng", g, xhat)[:, None, :, None] / count
    xhat *= mean_gx
    g -= mean_g
    g -= xhat
    g *= invstd
    return g.reshape(x.shape), grads


def layer_norm_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray,
                       eps: float = 1e-5) -> tuple[np.ndarray, NormCache]:
    """Each pixel's (or vector's) values over the last axis normalised to mean 0 and
    variance 1 (biased), then ·weight + bias per channel: torch's LayerNorm over C."""
    y, cache = _normalise(x.reshape(-1, 1, x.shape[-1]), weight, bias, eps, 1)
    return y.reshape(x.shape), cache._replace(x=x)


def layer_norm_backward(dy: np.ndarray, cache: NormCache) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(dx, {"weight", "bias"}) of layer_norm_forward."""
    x = cache.x
    dx, grads = _normalise_backward(dy.reshape(-1, 1, x.shape[-1]),
                                    cache._replace(x=x.reshape(-1, 1, x.shape[-1])))
    return dx.reshape(x.shape), grads


def group_norm_forward(x: np.ndarray, groups: int, weight: np.ndarray, bias: np.ndarray,
                       eps: float = 1e-5) -> tuple[np.ndarray, NormCache]:
    """torch's GroupNorm: each sample's channels in `groups` groups, each group normalised
    over its channels and every pixel, then ·weight + bias per channel."""
    if x.shape[-1] % groups:
        raise ValueError(f"{groups} groups do not divide {x.shape[-1]} channels")
    return _normalise(x, weight, bias, eps, groups)


def group_norm_backward(dy: np.ndarray, cache: NormCache) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(dx, {"weight", "bias"}) of group_norm_forward."""
    return _normalise_backward(dy, cache)


class LRNCache(NamedTuple):
    """The input (the denominator is computed again in backward) and the parameters."""

    x: np.ndarray
    size: int
    alpha: float
    beta: float
    k: float


def _window_sum(v: np.ndarray, before: int, after: int) -> np.ndarray:
    """Σ v[c − before … c + after] along the last axis, zero past the ends."""
    c = v.shape[-1]
    padded = np.zeros((*v.shape[:-1], c + before + after), v.dtype)
    padded[..., before:before + c] = v
    out = padded[..., :c].copy()
    for t in range(1, before + after + 1):
        out += padded[..., t:t + c]
    return out


def _lrn_denominator(x: np.ndarray, size: int, alpha: float, k: float) -> np.ndarray:
    """k + α·mean of x² over channels c − ⌊size/2⌋ … c + ⌊(size − 1)/2⌋, as torch (the
    window's zeros past the ends counted in the mean)."""
    s = _window_sum(x * x, size // 2, (size - 1) // 2)
    s /= x.dtype.type(size)
    s *= x.dtype.type(alpha)
    s += x.dtype.type(k)
    return s


def lrn_forward(x: np.ndarray, size: int, alpha: float = 1e-4, beta: float = 0.75,
                k: float = 1.0) -> tuple[np.ndarray, LRNCache]:
    """torch's LocalResponseNorm across the channels (the last axis): x / D^β,
    D = k + α/size·Σ x² over the channel window."""
    return x / _lrn_denominator(x, size, alpha, k) ** x.dtype.type(beta), \
        LRNCache(x, size, alpha, beta, k)


def lrn_backward(dy: np.ndarray, cache: LRNCache) -> tuple[np.ndarray, dict]:
    """dx_j = dy_j·D_j^−β − 2αβ/size·x_j·Σ_c dy_c·x_c·D_c^(−β−1), over the channels c
    whose window holds j (c = j − ⌊(size − 1)/2⌋ … j + ⌊size/2⌋)."""
    x, size, alpha, beta, k = cache
    dtype = x.dtype.type
    denominator = _lrn_denominator(x, size, alpha, k)
    scaled = denominator ** dtype(-beta)
    u = dy * x * scaled / denominator
    spread = _window_sum(u, (size - 1) // 2, size // 2)
    spread *= x
    spread *= dtype(2 * alpha * beta / size)
    dx = dy * scaled
    dx -= spread
    return dx, {}
