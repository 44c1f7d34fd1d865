"""A second oracle for every backward kernel: in float64, the gradients' inner product
with a random direction equals the forward's central finite difference along it.

This checks the gradients without torch: a kernel that agreed with a wrong torch
reference, or a gradient formula for the wrong function, fails here.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np
import pytest
from backward_oracle import directional_check

from netspec.numerics.backward import activations, channels, dense, norm, pool, resample

#: (forward, the inputs' shapes, (dy, cache) → the gradients in input order)
Case = tuple[Callable, list[tuple[int, ...]], Callable]


def _first(backward: Callable, *names: str) -> Callable:
    """Gradients in input order from a backward returning (dx, {name: grad})."""
    def grads(dy, cache):
        dx, g = backward(dy, cache)
        return [dx, *(g[n] for n in names)]
    return grads


def _merge(backward: Callable) -> Callable:
    """Gradients from a merge's backward, which returns a list of dx."""
    return lambda dy, cache: list(backward(dy, cache)[0])


V = (2, 5, 6, 4)   # a small odd-sized volume
CASES: dict[str, Case] = {
    "max_pool": (lambda x: pool.max_pool2d_forward(x, 3, 2, ((1, 0), (1, 1)), True),
                 [V], _first(pool.max_pool2d_backward)),
    "avg_pool": (lambda x: pool.avg_pool2d_forward(x, 3, 2, ((1, 0), (0, 1)), True, False),
                 [V], _first(pool.avg_pool2d_backward)),
    "global_avg": (pool.global_avg_pool_forward, [V], _first(pool.global_avg_pool_backward)),
    "global_max": (pool.global_max_pool_forward, [V], _first(pool.global_max_pool_backward)),
    "adaptive": (lambda x: pool.adaptive_avg_pool_forward(x, (3, 4)), [V],
                 _first(pool.adaptive_avg_pool_backward)),
    "fc": (dense.fc_forward, [V, (3, 120), (3,)], _first(dense.fc_backward, "weight", "bias")),
    "linear": (dense.linear_forward, [V, (3, 4), (3,)],
               _first(dense.linear_backward, "weight", "bias")),
    "flatten": (dense.flatten_forward, [V], _first(dense.flatten_backward)),
    "dropout": (lambda x: dense.dropout_forward(x, 0.4, np.random.default_rng(5), True),
                [V], _first(dense.dropout_backward)),
    "bn_training": (lambda x, w, b: norm.batch_norm_forward(x, w, b, np.zeros(4), np.ones(4),
                                                            1e-5, True),
                    [V, (4,), (4,)], _first(norm.batch_norm_backward, "weight", "bias")),
    "bn_inference": (lambda x, w, b: norm.batch_norm_forward(x, w, b, np.full(4, 0.3),
                                                             np.full(4, 2.0), 1e-5, False),
                     [V, (4,), (4,)], _first(norm.batch_norm_backward, "weight", "bias")),
    "layer_norm": (norm.layer_norm_forward, [V, (4,), (4,)],
                   _first(norm.layer_norm_backward, "weight", "bias")),
    "group_norm": (lambda x, w, b: norm.group_norm_forward(x, 2, w, b), [V, (4,), (4,)],
                   _first(norm.group_norm_backward, "weight", "bias")),
    "lrn": (lambda x: norm.lrn_forward(x, 4, 0.5, 0.75, 1.0), [V],
            _first(norm.lrn_backward)),
    "layer_scale": (channels.layer_scale_forward, [V, (4, 1, 1)],
                    _first(channels.layer_scale_backward, "")),
    "shuffle": (lambda x: channels.shuffle_forward(x, 2), [V],
                _first(channels.shuffle_backward)),
    "chunk": (lambda x: channels.chunk_forward(x, 1, 2), [V], _first(channels.chunk_backward)),
    "add": (lambda a, b: channels.add_forward([a, b]), [V, V], _merge(channels.add_backward)),
    "concat": (lambda a, b: channels.concat_forward([a, b]), [V, (2, 5, 6, 3)],
               _merge(channels.concat_backward)),
    "mul_gate": (lambda a, b: channels.mul_forward([a, b]), [V, (2, 1, 1, 4)],
                 _merge(channels.mul_backward)),
    "nearest": (lambda x: resample.upsample_forward(x, (11, 7), "nearest"), [V],
                _first(resample.upsample_backward)),
    "bilinear": (lambda x: resample.upsample_forward(x, (11, 7), "bilinear"), [V],
                 _first(resample.upsample_backward)),
    **{f"act_{name}": (lambda x, f=forward, n=name: f(x, *{"leaky": (0.2,), "elu": (0.7,)}
                                                       .get(n, ())),
                       [V], _first(backward))
       for name, (forward, backward) in activations.ACTIVATIONS.items()},
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_along_a_direction(name):
    forward, shapes, gradients = CASES[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    inputs = [rng.standard_normal(s) * 2 for s in shapes]
    y, cache = forward(*inputs)
    dy = rng.standard_normal(y.shape)
    # gelu's erf is Abramowitz and Stegun's (error 1.5e-7), its gradient the exact one's
    rtol = 1e-5 if name == "act_gelu" else 1e-6
    directional_check(lambda *a: forward(*a)[0], inputs, gradients(dy, cache), dy, rtol=rtol)
