"""Per-pixel channel layers in NHWC: layer norm, layer scale, linear, split chunks, shuffle."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..numerics.elementwise import Activation
from ..numerics.threads import channel_chunks, chunks, each, width
from ..numerics.windows import Step

if TYPE_CHECKING:
    from .base import Layer
    from .channels import Linear, Shuffle
    from .norm import LayerNorm

#: Linear and layer norm work on blocks of about this many output values (1 MiB),
#: which the model's threads share at batch 1: a fused activation, or the norm's
#: passes, then run over a block still in cache (ConvNeXt-T, two threads: 8–9% faster
#: than with 256 KiB blocks at batch 1 and 16).
BLOCK_VALUES = 262144
#: ... but a linear's block keeps at least this many pixels (rows of its matrix
#: multiply), below which the matrix multiply runs inefficiently.
MIN_ROWS = 32


def _row_blocks(m: int, values_per_row: int, min_rows: int = 1) -> list[slice]:
    """range(m) in equal blocks of about BLOCK_VALUES values, at least `min_rows` rows each."""
    rows = max(min_rows, BLOCK_VALUES // max(values_per_row, 1))
    return chunks(m, -(-m // rows))


def layernorm_step(layer: LayerNorm, w: dict[str, np.ndarray]) -> Step:
    """(x − mean) / √(var + ε) · weight + bias over the last axis (the channels),
    by blocks of pixels."""
    weight, bias, eps = w["weight"], w["bias"], np.float32(layer.epsilon)

    def layernorm(x: np.ndarray) -> np.ndarray:
        c = x.shape[-1]
        rows, out = x.reshape(-1, c), np.empty(x.shape, np.float32)
        flat = out.reshape(-1, c)

        def block(r: slice) -> None:
            centred = flat[r]
            np.subtract(rows[r], rows[r].mean(axis=-1, keepdims=True, dtype=np.float32),
                        out=centred)
            var = np.einsum("ij,ij->i", centred, centred)[:, None]
            var /= np.float32(c)
            var += eps
            np.sqrt(var, out=var)
            centred /= var
            centred *= weight
            centred += bias
        each(block, _row_blocks(rows.shape[0], c))
        return out
    return layernorm


def linear_step(layer: Linear, w: dict[str, np.ndarray]) -> Step:
    """Each pixel's channels times the weight: one matrix multiply per block of pixels
    (the whole batch is one matrix, not a stack of per-row ones), bias and a fused
    activation added while the block is in cache. A matrix too small to give each
    thread a block is split by output channels instead."""
    weight_t = np.ascontiguousarray(w["weight"].T)
    k = weight_t.shape[1]
    bias = w.get("bias")

    def linear(x: np.ndarray, act: Activation | None = None) -> np.ndarray:
        rows = x.reshape(-1, x.shape[-1])   # the channels are the last axis: a pixel is a row
        out = np.empty((rows.shape[0], k), np.float32)
        blocks = [(r, slice(None)) for r in _row_blocks(rows.shape[0], k, MIN_ROWS)]
        if len(blocks) < width():
            blocks = [(slice(None), ch) for ch in channel_chunks(k, width())]

        def block(where: tuple[slice, slice]) -> None:
            r, ch = where
            o = out[r, ch]
            np.matmul(rows[r], weight_t[:, ch], out=o)
            if bias is not None:
                o += bias[ch]
            if act is not None:
                act(o)
        each(block, blocks)
        return out.reshape(*x.shape[:-1], k)
    return linear


def shuffle_step(layer: Shuffle) -> Step:
    g = layer.groups

    def shuffle(x: np.ndarray) -> np.ndarray:
        *lead, c = x.shape
        return x.reshape(*lead, g, c // g).swapaxes(-1, -2).reshape(*lead, c)
    return shuffle


def shuffled_concat(concat: Layer, shuffle: Shuffle) -> Step:
    """A concat whose only reader is a channel shuffle, writing each input's channels
    straight to where the shuffle puts them: one copy of the values instead of two
    (ShuffleNetV2 joins its branches so in every unit).

    The shuffle sees C channels as `groups` rows of C/groups and transposes them, so
    concatenated channel i·(C/groups) + j lands at j·groups + i: each row i of
    the concatenation is a strided column of the output.
    """
    g, c = shuffle.groups, shuffle.output_shape[-1]
    per = c // g
    starts = [0]
    for layer in concat.inputs:
        starts.append(starts[-1] + layer.output_shape[-1])

    def step(*xs: np.ndarray) -> np.ndarray:
        out = np.empty((*xs[0].shape[:-1], c), np.float32)
        rows = out.reshape(*out.shape[:-1], per, g)   # rows[..., j, i] = concatenated i·per + j
        for x, start, stop in zip(xs, starts, starts[1:]):
            for i in range(start // per, -(-stop // per)):
                lo, hi = max(start, i * per), min(stop, (i + 1) * per)
                rows[..., lo - i * per:hi - i * per, i] = x[..., lo - start:hi - start]
        return out
    return step
