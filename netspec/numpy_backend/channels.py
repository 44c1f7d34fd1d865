"""Per-pixel channel layers in NHWC: layer norm, layer scale, linear, split chunks, shuffle."""

from __future__ import annotations

import numpy as np

from ..layers import Chunk, LayerNorm, LayerScale, Linear, Shuffle
from .windows import Step


def _layernorm(layer: LayerNorm, w: dict[str, np.ndarray]) -> Step:
    """(x − mean) / √(var + ε) · weight + bias over the last axis (the channels)."""
    weight, bias, eps = w["weight"], w["bias"], np.float32(layer.epsilon)

    def layernorm(x: np.ndarray) -> np.ndarray:
        centred = x - x.mean(axis=-1, keepdims=True, dtype=np.float32)
        var = np.mean(centred * centred, axis=-1, keepdims=True, dtype=np.float32)
        centred /= np.sqrt(var + eps)
        centred *= weight
        centred += bias
        return centred
    return layernorm


def _scale(layer: LayerScale, w: dict[str, np.ndarray]) -> Step:
    gamma = w[""].reshape(-1)   # (C, 1, 1) as torch keeps it → one factor per channel
    return lambda x: x * gamma


def _linear(layer: Linear, w: dict[str, np.ndarray]) -> Step:
    weight_t = np.ascontiguousarray(w["weight"].T)
    bias = w.get("bias")

    def linear(x: np.ndarray) -> np.ndarray:
        out = x @ weight_t   # the channels are the last axis: a pixel is a row
        if bias is not None:
            out += bias
        return out
    return linear


def _chunk(layer: Chunk, w: dict[str, np.ndarray]) -> Step:
    start, stop = layer.channels
    return lambda x: np.ascontiguousarray(x[..., start:stop])   # a copy: branches write in place


def _shuffle(layer: Shuffle, w: dict[str, np.ndarray]) -> Step:
    g = layer.groups

    def shuffle(x: np.ndarray) -> np.ndarray:
        *lead, c = x.shape
        return x.reshape(*lead, g, c // g).swapaxes(-1, -2).reshape(*lead, c)
    return shuffle
