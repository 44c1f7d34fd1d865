"""The layers without windows: fc, batch norm, activations, flatten, LRN, concat."""

from __future__ import annotations

import numpy as np

from ..layers import FC, LRN, BatchNorm, Layer
from .windows import Step


def _fc(layer: FC, w: dict[str, np.ndarray]) -> Step:
    weight, bias = w["weight"], w["bias"]   # used as given: no copy of the largest arrays
    volume = len(layer.input_shape) == 3

    def fc(x: np.ndarray) -> np.ndarray:
        if volume:   # the weight's columns are in NCHW order, so flatten NCHW
            x = x.transpose(0, 3, 1, 2)
        out = x.reshape(x.shape[0], -1) @ weight.T
        out += bias
        return out
    return fc


def _bn(layer: BatchNorm, w: dict[str, np.ndarray]) -> Step:
    scale = (w["weight"] / np.sqrt(w["running_var"] + np.float32(layer.EPSILON))).astype(np.float32)
    shift = (w["bias"] - w["running_mean"] * scale).astype(np.float32)

    def bn(x: np.ndarray) -> np.ndarray:
        return x * scale + shift
    return bn


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    return e


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * np.tanh(0.5 * x) + 0.5   # no overflow for large |x|, unlike 1/(1+e^-x)


ACTIVATIONS: dict[str, Step] = {
    "relu": lambda x: np.maximum(x, 0, out=x),
    "relu6": lambda x: np.clip(x, 0, 6, out=x),
    "tanh": lambda x: np.tanh(x, out=x),
    "sigmoid": _sigmoid,
    "softmax": _softmax,   # over the last axis: the channels of an NHWC volume
}
#: Steps that overwrite their input (the model copies an input still needed elsewhere).
IN_PLACE = {"relu", "relu6", "tanh"}


def _flatten(layer: Layer, w: dict[str, np.ndarray]) -> Step | None:
    if len(layer.input_shape) == 1:
        return None
    return lambda x: x.transpose(0, 3, 1, 2).reshape(x.shape[0], -1)


def _lrn(layer: LRN, w: dict[str, np.ndarray]) -> Step:
    """ONNX's LRN: the window over channels c − ⌊(n−1)/2⌋ … c + ⌈(n−1)/2⌉."""
    n = layer.size
    before, after = (n - 1) // 2, n - 1 - (n - 1) // 2
    scale = np.float32(layer.alpha / n)

    def lrn(x: np.ndarray) -> np.ndarray:
        c = x.shape[-1]
        sq = np.zeros((*x.shape[:-1], c + 1), np.float32)
        np.cumsum(x * x, axis=-1, out=sq[..., 1:])
        idx = np.arange(c)
        hi, lo = np.minimum(idx + after + 1, c), np.maximum(idx - before, 0)
        window = sq[..., hi] - sq[..., lo]
        return x / (np.float32(layer.k) + scale * window) ** np.float32(layer.beta)
    return lrn


def _concat(*xs: np.ndarray) -> np.ndarray:
    return np.concatenate(xs, axis=-1)   # the channels of NHWC volumes, or vectors' values
