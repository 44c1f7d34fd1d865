"""Channel-wise layers and merges, forward and backward: layer scale, channel shuffle,
channel chunks (a `split`'s branches), add, concat and multiply (a gate's end).

Merges take a list of inputs and their backward returns a list of gradients, one
per input. add's and concat's are read-only views of dy (no copy, as torch's add
and cat hand the gradient on): write into them only after a copy.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np

from . import channel_dot, channel_sum


def _read_only(a: np.ndarray) -> np.ndarray:
    view = a.view()
    view.flags.writeable = False
    return view


class ScaleCache(NamedTuple):
    """The input and the scale, as torch keeps for a product; the suffixes of the scale
    (and of the bias, if any), and the bias's shape."""

    x: np.ndarray
    gamma: np.ndarray
    keys: tuple[str, ...]
    bias_shape: tuple[int, ...] | None


def _broadcast(a: np.ndarray) -> np.ndarray:
    """A scale as it multiplies NHWC or N×F: one factor per channel (any shape of C
    values: (C, 1, 1), (C,)), or one for all ((1,), ())."""
    return a.reshape(-1) if a.size > 1 else a.reshape(())


def layer_scale_forward(x: np.ndarray, gamma: np.ndarray, bias: np.ndarray | None = None,
                        keys: tuple[str, ...] = ("",)) -> tuple[np.ndarray, ScaleCache]:
    """x·gamma (+ bias), gamma and bias in any shape of C values or of one (torch's
    layouts: ConvNeXt's (C, 1, 1) or (C,), HGNetV2's (1,), NFNet's ()); `keys` are their
    weight suffixes ("" for a bare parameter named by the layer alone)."""
    y = x * _broadcast(gamma)
    if bias is not None:
        y += _broadcast(bias)
    return y, ScaleCache(x, gamma, keys, None if bias is None else bias.shape)


def layer_scale_backward(dy: np.ndarray, cache: ScaleCache) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(dy·gamma, {gamma's key: Σ dy·x per channel (or over all) in gamma's shape, and
    the bias's: Σ dy likewise})."""
    x, gamma, keys, bias_shape = cache
    if gamma.size > 1:
        dgamma = channel_dot(dy, x)
    else:
        dgamma = np.einsum("i,i->", dy.reshape(-1), x.reshape(-1), dtype=np.float64)
    grads = {keys[0]: dgamma.astype(dy.dtype).reshape(gamma.shape)}
    if bias_shape is not None:
        dbias = channel_sum(dy) if gamma.size > 1 else dy.sum(dtype=np.float64)
        grads[keys[1]] = np.asarray(dbias, dy.dtype).reshape(bias_shape)
    return dy * _broadcast(gamma), grads


def const_mul_forward(x: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """x times a constant (in x's precision); the cache is the factor, as x's dtype."""
    f = np.asarray(factor, x.dtype)
    return x * f, f


def const_mul_backward(dy: np.ndarray, factor: np.ndarray) -> tuple[np.ndarray, dict]:
    return dy * factor, {}


def shuffle_forward(x: np.ndarray, groups: int) -> tuple[np.ndarray, int]:
    """ShuffleNet's channel shuffle: C channels as `groups` rows of C/groups, transposed.
    The cache is `groups`."""
    *lead, c = x.shape
    return x.reshape(*lead, groups, c // groups).swapaxes(-1, -2).reshape(*lead, c), groups


def shuffle_backward(dy: np.ndarray, groups: int) -> tuple[np.ndarray, dict]:
    """The inverse shuffle: a shuffle by C/groups."""
    return shuffle_forward(dy, dy.shape[-1] // groups)[0], {}


def run_forward(x: np.ndarray, start: int, stop: int) -> tuple[np.ndarray, tuple[int, ...]]:
    """Channels [start, stop) (torch's `x[:, start:stop]`, a `split`'s run, a `slice`), a
    copy. The cache is (the input's shape, start, stop)."""
    return np.ascontiguousarray(x[..., start:stop]), (*x.shape, start, stop)


def run_backward(dy: np.ndarray, cache: tuple[int, ...]) -> tuple[np.ndarray, dict]:
    """dy in its run's channels, zero elsewhere. (The runs of one split together are a
    concat's inverse: `split_backward` joins their gradients without the zeros.)"""
    *shape, start, stop = cache
    dx = np.zeros(shape, dy.dtype)
    dx[..., start:stop] = dy
    return dx, {}


def chunk_forward(x: np.ndarray, index: int, count: int) -> tuple[np.ndarray, tuple[int, ...]]:
    """Chunk `index` of `count` equal channel chunks (torch's chunk), a copy; its cache as
    `run_forward`'s."""
    c = x.shape[-1] // count
    return run_forward(x, index * c, (index + 1) * c)


chunk_backward = run_backward


def split_forward(x: np.ndarray, count: int) -> tuple[list[np.ndarray], int]:
    """All `count` channel chunks (each a copy); the cache is `count`."""
    return [chunk_forward(x, i, count)[0] for i in range(count)], count


def split_backward(dys: list[np.ndarray], count: int) -> tuple[np.ndarray, dict]:
    """The chunks' gradients concatenated back along the channels."""
    return np.concatenate(dys, axis=-1), {}


def add_forward(xs: list[np.ndarray]) -> tuple[np.ndarray, int]:
    """The elementwise sum of equal-shaped inputs; the cache is how many."""
    y = xs[0] + xs[1] if len(xs) > 1 else xs[0].copy()
    for x in xs[2:]:
        y += x
    return y, len(xs)


def add_backward(dy: np.ndarray, count: int) -> tuple[list[np.ndarray], dict]:
    """dy for every input (the same read-only view)."""
    view = _read_only(dy)
    return [view] * count, {}


def concat_forward(xs: list[np.ndarray]) -> tuple[np.ndarray, list[int]]:
    """Inputs joined along the last axis (a volume's channels); the cache is each
    input's width along it."""
    return np.concatenate(xs, axis=-1), [x.shape[-1] for x in xs]


def concat_backward(dy: np.ndarray, widths: list[int]) -> tuple[list[np.ndarray], dict]:
    """dy cut back into each input's channels (read-only views)."""
    bounds = np.cumsum([0, *widths])
    return [_read_only(dy[..., a:b]) for a, b in itertools.pairwise(bounds)], {}


class MulCache(NamedTuple):
    """Both factors, as torch keeps for a product."""

    x: np.ndarray
    gate: np.ndarray


def mul_forward(xs: list[np.ndarray]) -> tuple[np.ndarray, MulCache]:
    """x·gate, the gate either x's shape or (N, 1, 1, C), one value per channel broadcast
    over H×W (squeeze-and-excitation's gate)."""
    x, gate = xs
    return x * gate, MulCache(x, gate)


def mul_backward(dy: np.ndarray, cache: MulCache) -> tuple[list[np.ndarray], dict]:
    """[dy·gate, dy·x], the latter summed over H×W for a broadcast gate."""
    x, gate = cache
    dgate = dy * x
    if gate.shape != x.shape:
        dgate = dgate.sum(axis=(1, 2), keepdims=True, dtype=np.float64).astype(dy.dtype)
    return [dy * gate, dgate], {}
