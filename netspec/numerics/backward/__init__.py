"""Forward and backward passes of every layer kind, in NumPy, for training.

Each op is a pair `X_forward(x, ...) -> (y, cache)` and `X_backward(dy, cache) ->
(dx, grads)`: grads maps a weight's suffix ("weight", "bias"; "" for a layer scale)
to its gradient, and is empty for ops without weights. Merges (add, concat, mul)
take a list of inputs and give a list of gradients. Ops whose forward differs in
training (batch norm, dropout) take `training`; the others compute the same
either way. Weighted ops' backward takes `need_dx=False` for a network's first
layer, whose input needs no gradient.

Conventions, as netspec's inference model: volumes are NHWC arrays (N, H, W, C),
vectors (N, F); weights in PyTorch's layouts and names; padding explicit per side,
((top, bottom), (left, right)). Every op works in its input's precision (float32
in training; the tests also run them in float64).

A cache holds what torch's autograd keeps (conv, pool, fc and batch norm their
input, relu, tanh, sigmoid and softmax their output, ...), as references to the
op's own input or output arrays, never copies, so that an array kept by two ops
(a relu's output, which the next conv keeps as its input) is held once:
`saved_arrays` lists them. A forward never writes into its input; a backward may
return dy itself, or read-only views of it (add, concat, dropout at inference),
so copy before writing into a gradient.

Modules: conv (conv2d, depthwise), deconv (conv_transpose2d), im2col (their
matrix products), pool, dense (fc, linear, flatten, dropout), norm (batch, layer,
group, local response), activations, channels (layer scale, constant multiply,
shuffle, chunk and channel runs, split, add, concat, mul), resample (upsampling, space
to depth), attention (ECA's convolution across channels, radix softmax, sum of runs),
windows (shared views).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def channel_sum(a: np.ndarray) -> np.ndarray:
    """Σ over every axis but the last (the channels), accumulated in float64 and given in
    a's precision. NumPy adds the rows of an (M, C) array one after another, so a float32
    sum's error grows with M: a batch norm's statistics over 4,608 values (MnasNet at
    96×96, batch 2) came out 1e-5 off, where torch's are 5e-7; in float64 they are exact
    to float32's rounding, for twice a float32 sum's time."""
    return a.reshape(-1, a.shape[-1]).sum(axis=0, dtype=np.float64).astype(a.dtype)


def channel_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Σ a·b over every axis but the last, accumulated in float64 (see channel_sum)."""
    c = a.shape[-1]
    return np.einsum("ij,ij->j", a.reshape(-1, c), b.reshape(-1, c),
                     dtype=np.float64).astype(a.dtype)


def saved_arrays(cache: object) -> Iterator[np.ndarray]:
    """Every array a cache holds (in its fields, tuples and lists), each once."""
    seen: set[int] = set()
    stack = [cache]
    while stack:
        item = stack.pop()
        if isinstance(item, np.ndarray):
            if id(item) not in seen:
                seen.add(id(item))
                yield item
        elif isinstance(item, (tuple, list)):
            stack.extend(item)
