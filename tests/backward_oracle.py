"""Test-only oracles for the backward kernels: torch autograd on the same values, and
central finite differences in float64.

Tolerances (float32, as the forward tests' rtol 1e-4, atol 1e-5): float32 keeps 24
bits (a relative 6e-8 per rounding). A gradient value here is a sum of up to ~10⁴
products, which torch and NumPy add in different orders: each order's error is
bounded by about log2(terms)·6e-8 ≈ 1e-6 of the sum of the terms' magnitudes,
and those magnitudes are of the order of the array's largest value, not of each
value (a sum that cancels to nearly 0 keeps the absolute error of its terms). So
every comparison allows rtol 1e-4 plus an absolute 1e-5 times the largest
magnitude in the expected array: 10–100× the rounding a correct kernel makes, and
10³–10⁵× below what a wrong formula gives (a missing term, a wrong index or
sign moves values by a sizeable fraction of their magnitude).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

RTOL, ATOL = 1e-4, 1e-5


def nchw(a: np.ndarray, grad: bool = True) -> torch.Tensor:
    """An NHWC array as an NCHW torch tensor (vectors as they are), a leaf that
    requires grad."""
    t = torch.tensor(np.ascontiguousarray(a.transpose(0, 3, 1, 2)) if a.ndim == 4 else a)
    return t.requires_grad_(grad)


def nhwc(t: torch.Tensor) -> np.ndarray:
    """A torch tensor back as an NHWC array (vectors as they are)."""
    a = t.detach().numpy()
    return a.transpose(0, 2, 3, 1) if a.ndim == 4 else a


def assert_close(actual: np.ndarray, expected: np.ndarray, what: str = "") -> None:
    """Within RTOL of each value plus ATOL times the largest expected magnitude."""
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    scale = max(1.0, float(np.abs(expected).max(initial=0)))
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL * scale, err_msg=what)


def autograd(fn: Callable[..., torch.Tensor], inputs: Sequence[np.ndarray],
             dy: np.ndarray, volume: Sequence[bool] | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """torch's output and the gradients of every input for output gradient dy.

    Inputs flagged in `volume` (by default every 4-d one) are NHWC arrays handed to
    `fn` as NCHW tensors; the others (weights, or inputs an op reads channels last)
    as they are. The output and dy are converted as the first input is.
    """
    volume = [a.ndim == 4 for a in inputs] if volume is None else volume
    tensors = [nchw(a) if v else torch.tensor(a, requires_grad=True)
               for a, v in zip(inputs, volume)]
    y = fn(*tensors)
    y.backward(nchw(dy, grad=False) if volume[0] else torch.tensor(dy))
    grads = [nhwc(t.grad) if v else t.grad.numpy() for t, v in zip(tensors, volume)]
    return nhwc(y) if volume[0] else y.detach().numpy(), grads


def directional_check(forward: Callable[..., np.ndarray], inputs: Sequence[np.ndarray],
                      gradients: Sequence[np.ndarray], dy: np.ndarray, seed: int = 0,
                      h: float = 1e-6, rtol: float = 1e-6) -> None:
    """The float64 gradients against central differences, along one random direction.

    L(θ) = ⟨dy, forward(*θ)⟩; its derivative along v is Σ ⟨gradient_i, v_i⟩, and
    (L(θ + h·v) − L(θ − h·v))/2h approximates it with an error of order h²·L''' plus
    the rounding ~1e-16·|L|/h, both ~1e-10 of L here, far below `rtol`.
    """
    rng = np.random.default_rng(seed)
    directions = [rng.standard_normal(a.shape) for a in inputs]

    def loss(step: float) -> float:
        return float(np.sum(dy * forward(*[a + step * v for a, v in zip(inputs, directions)])))

    numeric = (loss(h) - loss(-h)) / (2 * h)
    analytic = sum(float(np.sum(g * v)) for g, v in zip(gradients, directions))
    assert abs(numeric - analytic) <= rtol * max(1.0, abs(numeric)), (numeric, analytic)
