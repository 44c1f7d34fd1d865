"""Activations, forward and backward, each as torch computes its gradient.

What each keeps is what torch's autograd keeps: relu, tanh, sigmoid and softmax
their output; relu6 (hardtanh), silu, gelu, hswish, hsigmoid, leaky, mish and
elu their input. Every forward returns a new array (never its input, which a
cache may hold). Softmax is over the last axis: a volume's channels, a vector's values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np


class ActivationCache(NamedTuple):
    """The one array the backward reads (the input or the output: see each function),
    and the parameter of a parametrised activation (leaky's slope, elu's alpha)."""

    saved: np.ndarray
    parameter: float | None = None


Forward = Callable[..., tuple[np.ndarray, ActivationCache]]
Backward = Callable[[np.ndarray, ActivationCache], tuple[np.ndarray, dict]]


def _c(x: np.ndarray, value: float) -> np.floating:
    """A constant in x's precision (float32 arithmetic stays float32)."""
    return x.dtype.type(value)


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, ActivationCache]:
    """max(x, 0), as a clip to [0, ∞): numpy's `maximum` with a scalar runs ~3× slower."""
    y = np.clip(x, _c(x, 0), _c(x, np.inf))
    return y, ActivationCache(y)


def relu_backward(dy: np.ndarray, cache: ActivationCache) -> tuple[np.ndarray, dict]:
    """dy where the output is positive (torch's threshold_backward on the result)."""
    return np.multiply(dy, cache.saved > 0), {}


def relu6_forward(x: np.ndarray) -> tuple[np.ndarray, ActivationCache]:
    """min(max(x, 0), 6)."""
    return np.clip(x, _c(x, 0), _c(x, 6)), ActivationCache(x)


def relu6_backward(dy: np.ndarray, cache: ActivationCache) -> tuple[np.ndarray, dict]:
    """dy strictly inside (0, 6), 0 at and beyond the ends (torch's hardtanh_backward)."""
    x = cache.saved
    return np.multiply(dy, (x > 0) & (x < 6)), {}


def _pick(where: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a where `where`, else b, as a·where + b·(not where): exact for finite values (each
    product is the value or 0; an infinity would give NaN, on inputs a training step
    has already lost) and ~10× faster than np.where, which is slow on NumPy 2.4."""
    out = np.multiply(a, where)
    out += np.multiply(b, ~where)
    return out


def leaky_forward(x: np.ndarray, slope: float = 0.01) -> tuple[np.ndarray, ActivationCache]:
    """x where x > 0, else slope·x: the larger of the two for slopes up to 1, the smaller
    beyond."""
    pick = np.maximum if slope <= 1 else np.minimum
    return pick(x, x * _c(x, slope)), ActivationCache(x, slope)


def leaky_backward(dy: np.ndarray, cache: ActivationCache) -> tuple[np.ndarray, dict]:
    """dy where x > 0, else slope·dy."""
    return _pick(cache.saved > 0, dy, dy * _c(dy, cache.parameter)), {}


def tanh_forward(x: np.ndarray) -> tuple[np.ndarray, ActivationCache]:
    """tanh(x)."""
    y = np.tanh(x)
    return y, ActivationCache(y)


def tanh_backward(dy: np.ndarray, cache: ActivationCache) -> tuple[np.ndarray, dict]:
    """dy·(1 − y²)."""
    y = cache.saved
    return dy * (1 - y * y), {}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """1/(1 + e^−x) as 0.5·tanh(0.5·x) + 0.5: no overflow for large |x|."""
    s = np.tanh(x * _c(x, 0.5))
    s *= _c(x, 0.5)
    s += _c(x, 0.5)
    return s


def sigmoid_forward(x: np.ndarray) -> tuple[np.ndarray, ActivationCache]:
    """1/(1 + e^−x)."""
    y = _sigmoid(x)
    return y, ActivationCache(y)


def sigmoid_backward(dy: np.ndarray, cache: ActivationCache) -> tuple[np.ndarray, dict]:
    """dy·(1 − y)·y."""
    y = cache.saved
    return dy * (1 - y) * y, {}


def softmax_forward(x: np.ndarray) -> tuple[np.ndarray, ActivationCache]:
    """e^x / Σ e^x over the last axis, the maximum subtracted first."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    return e, ActivationCache(e)


def softmax_backward(dy: np.ndarray, cache: ActivationCache) -> tuple[np.ndarray, dict]:
    """y·(dy − Σ dy·y) over the last axis."""
    y = cache.saved
    dx = dy * y
    dx -= y * dx.sum(axis=-1, keepdims=True)
    return dx, {}


def silu_forward(x: np.ndarray) -> tuple[np.ndarray, ActivationCache]:
    """x·sigmoid(x) (swish)."""
    return x * _sigmoid(x), ActivationCache(x)


def silu_backward(dy: np.ndarray, cache: ActivationCache) -> tuple[np.ndarray, dict]:
    """dy·s·(1 + x·(1 − s)), s = sigmoid(x), as torch's silu_backward."""
    x = cache.saved
    s = _sigmoid(x)
    return dy * s * (1 + x * (1 - s)), {}


#: Abramowitz and Stegun 7.1.26: erf(a) = 1 − t·P(t)·e^(−a²), t = 1/(1 + p·a), a ≥ 0,
#: with absolute error below 1.5e-7 (the inference model's GELU uses the same).
_ERF_P = 0.3275911
_ERF_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def _erf(v: np.ndarray) -> np.ndarray:
    a = np.abs(v)
    t = 1 / (1 + _c(v, _ERF_P) * a)
    poly = np.zeros_like(a)
    for coefficient in reversed(_ERF_A):
        poly += _c(v, coefficient)
        poly *= t
    return np.copysign(1 - poly * np.exp(-a * a), v)


def gelu_forward(x: np.ndarray) -> tuple[np.ndarray, ActivationCache]:
    """Exact GELU, x·Φ(x) = x/2·(1 + erf(x/√2))."""
    return x * _c(x, 0.5) * (1 + _erf(x * _c(x, 1 / np.sqrt(2)))), ActivationCache(x)


def gelu_backward(dy: np.ndarray, cache: ActivationCache) -> tuple[np.ndarray, dict]:
    """dy·(Φ(x) + x·φ(x)), φ the standard normal density."""
    x = cache.saved
    cdf = _c(x, 0.5) * (1 + _erf(x * _c(x, 1 / np.sqrt(2))))
    pdf = np.exp(x * x * _c(x, -0.5)) * _c(x, 1 / np.sqrt(2 * np.pi))
    return dy * (cdf + x * pdf), {}


def hsigmoid_forward(x: np.ndarray) -> tuple[np.ndarray, ActivationCache]:
    """relu6(x + 3)/6, torch's Hardsigmoid."""
    return np.clip(x + _c(x, 3), _c(x, 0), _c(x, 6)) / _c(x, 6), ActivationCache(x)


def hsigmoid_backward(dy: np.ndarray, cache: ActivationCache) -> tuple[np.ndarray, dict]:
    """dy·(1/6) strictly inside (−3, 3), else 0."""
    x = cache.saved
    return np.multiply(dy * _c(dy, 1 / 6), (x > -3) & (x < 3)), {}


def hswish_forward(x: np.ndarray) -> tuple[np.ndarray, ActivationCache]:
    """x·relu6(x + 3)/6, torch's Hardswish."""
    return x * (np.clip(x + _c(x, 3), _c(x, 0), _c(x, 6)) / _c(x, 6)), ActivationCache(x)


def hswish_backward(dy: np.ndarray, cache: ActivationCache) -> tuple[np.ndarray, dict]:
    """0 up to −3, dy·(x/3 + 1/2) strictly between −3 and 3, dy from 3 on (torch's
    hardswish_backward)."""
    x = cache.saved
    middle = dy * (x / _c(x, 3) + _c(x, 0.5))
    return _pick(x < 3, np.multiply(middle, x > -3), dy), {}


def _softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + e^x) without overflow."""
    return np.logaddexp(_c(x, 0), x)


def mish_forward(x: np.ndarray) -> tuple[np.ndarray, ActivationCache]:
    """x·tanh(softplus(x)), torch's Mish."""
    return x * np.tanh(_softplus(x)), ActivationCache(x)


def mish_backward(dy: np.ndarray, cache: ActivationCache) -> tuple[np.ndarray, dict]:
    """dy·(t + x·sigmoid(x)·(1 − t²)), t = tanh(softplus(x)), as torch's mish_backward."""
    x = cache.saved
    t = np.tanh(_softplus(x))
    return dy * (t + x * _sigmoid(x) * (1 - t * t)), {}


def elu_forward(x: np.ndarray, alpha: float = 1.0) -> tuple[np.ndarray, ActivationCache]:
    """x for x > 0, else α·(e^x − 1), torch's ELU."""
    return _pick(x > 0, x, _c(x, alpha) * np.expm1(np.minimum(x, _c(x, 0)))), \
        ActivationCache(x, alpha)


def elu_backward(dy: np.ndarray, cache: ActivationCache) -> tuple[np.ndarray, dict]:
    """dy for x > 0, else dy·α·e^x."""
    x = cache.saved
    return _pick(x > 0, dy, dy * _c(x, cache.parameter) * np.exp(np.minimum(x, _c(x, 0)))), {}


#: Every activation by netspec's keyword: (forward, backward). leaky and elu take their
#: parameter as the forward's second argument.
ACTIVATIONS: dict[str, tuple[Forward, Backward]] = {
    "relu": (relu_forward, relu_backward), "relu6": (relu6_forward, relu6_backward),
    "leaky": (leaky_forward, leaky_backward), "tanh": (tanh_forward, tanh_backward),
    "sigmoid": (sigmoid_forward, sigmoid_backward), "softmax": (softmax_forward, softmax_backward),
    "silu": (silu_forward, silu_backward), "gelu": (gelu_forward, gelu_backward),
    "hsigmoid": (hsigmoid_forward, hsigmoid_backward), "hswish": (hswish_forward, hswish_backward),
    "mish": (mish_forward, mish_backward), "elu": (elu_forward, elu_backward),
}
