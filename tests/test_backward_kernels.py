"""Backward kernels other than convolutions against torch autograd: pooling, fc, flatten,
dropout, the norms, activations, channel ops, merges and upsampling."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from backward_oracle import assert_close, autograd, nchw, nhwc

from netspec.numerics.backward import activations, channels, dense, norm, pool, resample


def _normal(rng, shape, scale=1.0, shift=0.0):
    return (rng.standard_normal(shape) * scale + shift).astype(np.float32)


def _check(forward, backward, torch_fn, inputs, rng, volume=None, grads=()):
    """Our forward and backward against torch's for a random dy; `grads` names the
    weight gradients, in the order of the inputs after the first."""
    y, cache = forward(*inputs)
    dy = _normal(rng, y.shape)
    expected_y, expected = autograd(torch_fn, inputs, dy, volume)
    dx, ours = backward(dy, cache)
    assert_close(y, expected_y, "y")
    assert_close(dx, expected[0], "dx")
    for name, want in zip(grads, expected[1:]):
        assert_close(ours[name], want, name)
    return cache


def _pool_pads(pads):
    """torch pools pad symmetrically: asymmetric padding is F.pad first."""
    (top, bottom), (left, right) = pads
    return (top, left) if (top, left) == (bottom, right) else None


# (H, W), kernel, stride, pads, ceil_mode
POOLS = [((7, 9), 3, 2, ((1, 1), (1, 1)), False), ((7, 9), 3, 2, ((1, 1), (1, 1)), True),
         ((8, 8), 2, None, ((0, 0), (0, 0)), False), ((5, 5), 3, 1, ((1, 1), (1, 1)), False),
         ((6, 7), (3, 2), (2, 1), ((1, 0), (0, 1)), True), ((9, 9), 3, 2, ((0, 0), (0, 0)), True)]


@pytest.mark.parametrize("case", POOLS, ids=[f"pool{i}" for i in range(len(POOLS))])
def test_max_pool(case):
    hw, k, s, pads, ceil = case
    rng = np.random.default_rng(0)
    x = _normal(rng, (2, *hw, 3))
    sym = _pool_pads(pads)
    (top, bottom), (left, right) = pads

    def torch_max(t):
        if sym is None:
            t, sym_pad = F.pad(t, (left, right, top, bottom), value=-np.inf), 0
        else:
            sym_pad = sym
        return F.max_pool2d(t, k, s, sym_pad, ceil_mode=ceil)
    _check(lambda x: pool.max_pool2d_forward(x, k, s, pads, ceil), pool.max_pool2d_backward,
           torch_max, [x], rng)


@pytest.mark.parametrize("count_pad", [True, False])
@pytest.mark.parametrize("case", [c for c in POOLS if _pool_pads(c[3]) is not None],
                         ids=lambda c: f"{c[0]}-k{c[1]}-s{c[2]}-ceil{c[4]}")
def test_avg_pool(case, count_pad):
    hw, k, s, pads, ceil = case
    rng = np.random.default_rng(1)
    x = _normal(rng, (2, *hw, 3))
    _check(lambda x: pool.avg_pool2d_forward(x, k, s, pads, ceil, count_pad),
           pool.avg_pool2d_backward,
           lambda t: F.avg_pool2d(t, k, s, _pool_pads(pads), ceil, count_pad), [x], rng)


def test_avg_pool_asymmetric_padding():
    """torch has no asymmetric pooling padding: the oracle sums a zero-padded copy and
    divides by the count of input cells (or of every padded cell) per window."""
    rng = np.random.default_rng(2)
    x = _normal(rng, (2, 6, 7, 3))
    pads = ((1, 0), (0, 1))

    def torch_avg(t, count_pad):
        padded = F.pad(t, (0, 1, 1, 0))
        ones = F.pad(torch.ones_like(t[:, :1]), (0, 1, 1, 0), value=float(count_pad))
        return F.avg_pool2d(padded, 3, 2, divisor_override=1) / F.avg_pool2d(ones, 3, 2,
                                                                              divisor_override=1)
    for count_pad in (True, False):
        _check(lambda x, c=count_pad: pool.avg_pool2d_forward(x, 3, 2, pads, False, c),
               pool.avg_pool2d_backward, lambda t, c=count_pad: torch_avg(t, c), [x], rng)


def test_global_and_adaptive_pools():
    rng = np.random.default_rng(3)
    x = _normal(rng, (2, 7, 5, 4))
    _check(pool.global_avg_pool_forward, pool.global_avg_pool_backward,
           lambda t: t.mean((2, 3), keepdim=True), [x], rng)
    _check(pool.global_max_pool_forward, pool.global_max_pool_backward,
           lambda t: F.adaptive_max_pool2d(t, 1), [x], rng)
    for size in [(3, 2), (7, 5), (10, 3), (1, 1), (2, 4)]:
        _check(lambda x, s=size: pool.adaptive_avg_pool_forward(x, s),
               pool.adaptive_avg_pool_backward, lambda t, s=size: F.adaptive_avg_pool2d(t, s),
               [x], rng)


@pytest.mark.parametrize("shape", [(3, 4, 5, 6), (3, 120)], ids=["volume", "vector"])
def test_fc(shape):
    """A volume is flattened in NCHW order: torch's flatten of the NCHW tensor."""
    rng = np.random.default_rng(4)
    x, w, b = _normal(rng, shape), _normal(rng, (7, 120)), _normal(rng, (7,))
    _check(dense.fc_forward, dense.fc_backward, lambda x, w, b: F.linear(x.flatten(1), w, b),
           [x, w, b], rng, [True, False, False], ("weight", "bias"))


@pytest.mark.parametrize("bias", [True, False])
def test_linear_per_pixel(bias):
    rng = np.random.default_rng(5)
    x, w = _normal(rng, (3, 4, 5, 6)), _normal(rng, (9, 6))
    inputs = [x, w] + ([_normal(rng, (9,))] if bias else [])
    # channels last on both sides: the torch tensors are the NHWC arrays themselves
    _check(lambda x, w, b=None: dense.linear_forward(x, w, b), dense.linear_backward,
           lambda x, w, b=None: F.linear(x, w, b), inputs, rng, [False] * len(inputs),
           ("weight", "bias"))


def test_flatten_is_nchw_order():
    rng = np.random.default_rng(6)
    _check(dense.flatten_forward, dense.flatten_backward, lambda t: t.flatten(1),
           [_normal(rng, (3, 4, 5, 6))], rng)


def test_dropout_training_and_inference():
    """Training: the same mask in torch (x·mask/(1 − p)); inference: the identity."""
    rng = np.random.default_rng(7)
    x = _normal(rng, (4, 5, 6, 8))
    p = 0.3
    y, cache = dense.dropout_forward(x, p, np.random.default_rng(11), training=True)
    mask = nchw(cache.kept.astype(np.float32), grad=False)
    dy = _normal(rng, y.shape)
    expected_y, (expected_dx,) = autograd(lambda t: t * (mask / (1 - p)), [x], dy)
    assert_close(y, expected_y)
    assert_close(dense.dropout_backward(dy, cache)[0], expected_dx)
    assert abs(cache.kept.mean() - (1 - p)) < 0.05   # 960 draws: σ ≈ 0.015
    again, _ = dense.dropout_forward(x, p, np.random.default_rng(11), training=True)
    np.testing.assert_array_equal(again, y)          # seeded
    y, cache = dense.dropout_forward(x, p, training=False)
    assert y is x and dense.dropout_backward(dy, cache)[0] is dy


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(4, 5, 6, 3), (7, 5)], ids=["volume", "vector"])
def test_batch_norm(shape, training):
    rng = np.random.default_rng(8)
    c = shape[-1]
    x = _normal(rng, shape, 2.0, 1.0)
    w, b, mean = _normal(rng, (c,)), _normal(rng, (c,)), _normal(rng, (c,))
    var = (rng.random(c) + 0.5).astype(np.float32)
    torch_mean, torch_var = torch.tensor(mean), torch.tensor(var)
    cache = _check(lambda x, w, b: norm.batch_norm_forward(x, w, b, mean, var, 1e-5, training),
                   norm.batch_norm_backward,
                   lambda x, w, b: F.batch_norm(x, torch_mean, torch_var, w, b, training, 0.1, 1e-5),
                   [x, w, b], rng, [True, False, False], ("weight", "bias"))
    if training:   # torch updated its running statistics during the forward
        norm.batch_norm_update_running(mean, var, cache)
        assert_close(mean, torch_mean.numpy(), "running mean")
        assert_close(var, torch_var.numpy(), "running var (unbiased)")
    else:
        with pytest.raises(ValueError, match="training forward"):
            norm.batch_norm_update_running(mean, var, cache)


def test_batch_norm_training_needs_two_values_per_channel():
    """As torch: one sample of a vector has no variance to normalise by."""
    ones = np.ones(3, np.float32)
    with pytest.raises(ValueError, match="more than one value per channel"):
        norm.batch_norm_forward(ones[None], ones, ones, ones, ones, training=True)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm(torch.ones(1, 3), None, None, training=True)


@pytest.mark.parametrize("shape", [(4, 5, 6, 16), (7, 12)], ids=["per-pixel", "vector"])
def test_layer_norm(shape):
    """Over the last axis. (With very few channels, dx is a difference of nearly equal
    terms and float32 keeps fewer digits of it: 8 or more keep the tolerance.)"""
    rng = np.random.default_rng(9)
    c = shape[-1]
    x, w, b = _normal(rng, shape, 2.0, 1.0), _normal(rng, (c,)), _normal(rng, (c,))
    _check(lambda x, w, b: norm.layer_norm_forward(x, w, b, 1e-6), norm.layer_norm_backward,
           lambda x, w, b: F.layer_norm(x, (c,), w, b, 1e-6), [x, w, b], rng,
           [False, False, False], ("weight", "bias"))


@pytest.mark.parametrize("groups", [1, 2, 3, 12])
def test_group_norm(groups):
    rng = np.random.default_rng(10)
    x, w, b = _normal(rng, (3, 5, 4, 12), 2.0), _normal(rng, (12,)), _normal(rng, (12,))
    _check(lambda x, w, b: norm.group_norm_forward(x, groups, w, b), norm.group_norm_backward,
           lambda x, w, b: F.group_norm(x, groups, w, b, 1e-5), [x, w, b], rng,
           [True, False, False], ("weight", "bias"))


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 8])
def test_lrn(size):
    """torch's window: channels c − ⌊size/2⌋ … c + ⌊(size − 1)/2⌋ (even sizes lean back)."""
    rng = np.random.default_rng(11)
    x = _normal(rng, (2, 3, 4, 7))
    _check(lambda x: norm.lrn_forward(x, size, 0.1, 0.75, 2.0), norm.lrn_backward,
           lambda t: F.local_response_norm(t, size, 0.1, 0.75, 2.0), [x], rng)


TORCH_ACTIVATIONS = {
    "relu": F.relu, "relu6": F.relu6, "leaky": lambda t: F.leaky_relu(t, 0.2),
    "tanh": torch.tanh, "sigmoid": torch.sigmoid, "softmax": lambda t: F.softmax(t, dim=1),
    "silu": F.silu, "gelu": F.gelu, "hsigmoid": F.hardsigmoid, "hswish": F.hardswish,
    "mish": F.mish, "elu": lambda t: F.elu(t, 0.7),
}
PARAMETERS = {"leaky": (0.2,), "elu": (0.7,)}


@pytest.mark.parametrize("name", sorted(activations.ACTIVATIONS))
def test_activation(name):
    """Random values at a scale that reaches every piece of each function, and the
    points where torch's gradients switch (±3, 0, 6) exactly."""
    rng = np.random.default_rng(12)
    x = _normal(rng, (3, 4, 5, 8), 4.0)
    x[0, 0, 0] = [-3, 3, 0, 6, -6, 1e-3, -20, 20]
    forward, backward = activations.ACTIVATIONS[name]
    cache = _check(lambda x: forward(x, *PARAMETERS.get(name, ())), backward,
                   TORCH_ACTIVATIONS[name], [x], rng)
    kept_output = name in ("relu", "tanh", "sigmoid", "softmax")   # as torch's autograd
    assert (cache.saved is not x) == kept_output


def test_softmax_of_vectors():
    rng = np.random.default_rng(13)
    _check(activations.softmax_forward, activations.softmax_backward,
           lambda t: F.softmax(t, dim=1), [_normal(rng, (5, 10), 5.0)], rng)


def test_layer_scale_and_shuffle():
    rng = np.random.default_rng(14)
    x, gamma = _normal(rng, (3, 4, 5, 6)), _normal(rng, (6, 1, 1))
    _check(channels.layer_scale_forward, channels.layer_scale_backward, lambda x, g: x * g,
           [x, gamma], rng, [True, False], ("",))
    for groups in (2, 3):
        def torch_shuffle(t, g=groups):
            n, c, h, w = t.shape
            return t.reshape(n, g, c // g, h, w).transpose(1, 2).reshape(n, c, h, w)
        _check(lambda x, g=groups: channels.shuffle_forward(x, g), channels.shuffle_backward,
               torch_shuffle, [x], rng)


def test_chunk_and_split():
    rng = np.random.default_rng(15)
    x = _normal(rng, (3, 4, 5, 6))
    _check(lambda x: channels.chunk_forward(x, 1, 3), channels.chunk_backward,
           lambda t: torch.chunk(t, 3, 1)[1], [x], rng)
    ys, count = channels.split_forward(x, 2)
    dys = [_normal(rng, y.shape) for y in ys]
    t = nchw(x)
    torch.autograd.backward(torch.chunk(t, 2, 1), [nchw(d, grad=False) for d in dys])
    assert_close(channels.split_backward(dys, count)[0], nhwc(t.grad))


def test_merges():
    rng = np.random.default_rng(16)
    a, b, c = (_normal(rng, (3, 4, 5, 6)) for _ in range(3))
    y, count = channels.add_forward([a, b, c])
    assert_close(y, a + b + c)
    dy = _normal(rng, y.shape)
    grads, _ = channels.add_backward(dy, count)
    assert len(grads) == 3 and all(np.array_equal(g, dy) and not g.flags.writeable for g in grads)
    narrow = _normal(rng, (3, 4, 5, 2))
    y, widths = channels.concat_forward([a, narrow])
    dy = _normal(rng, y.shape)
    ta, tn = nchw(a), nchw(narrow)
    torch.cat([ta, tn], 1).backward(nchw(dy, grad=False))
    da, dn = channels.concat_backward(dy, widths)[0]
    assert_close(da, nhwc(ta.grad))
    assert_close(dn, nhwc(tn.grad))
    for gate in (b, _normal(rng, (3, 1, 1, 6))):   # equal shapes; one value per channel
        y, cache = channels.mul_forward([a, gate])
        dy = _normal(rng, y.shape)
        expected_y, expected = autograd(lambda x, g: x * g, [a, gate], dy)
        assert_close(y, expected_y)
        (dx, dgate), _ = channels.mul_backward(dy, cache)
        assert_close(dx, expected[0])
        assert_close(dgate, expected[1])


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
@pytest.mark.parametrize("sizes", [(4, 5, 8, 10), (3, 3, 7, 5), (6, 7, 3, 4), (5, 5, 5, 5),
                                   (2, 3, 16, 12)], ids=lambda s: "x".join(map(str, s)))
def test_upsample(mode, sizes):
    """To a fixed size, up or down (align_corners=False for bilinear, as torch's default)."""
    h, w, oh, ow = sizes
    rng = np.random.default_rng(17)
    extra = {} if mode == "nearest" else {"align_corners": False}
    _check(lambda x: resample.upsample_forward(x, (oh, ow), mode), resample.upsample_backward,
           lambda t: F.interpolate(t, size=(oh, ow), mode=mode, **extra),
           [_normal(rng, (2, h, w, 3))], rng)


@pytest.mark.parametrize("kernel,stride,pads", [(3, 2, ((1, 1), (1, 1))), (2, 2, ((0, 0), (0, 0)))])
def test_max_pool_ties_go_to_the_first_maximum(kernel, stride, pads):
    """After a relu many windows are all zeros: torch gives the gradient to the first
    maximum in row-major order, once, not to every tied value."""
    rng = np.random.default_rng(18)
    x = np.maximum(rng.integers(-2, 2, (2, 8, 8, 3)), 0).astype(np.float32)
    (top, _), (left, _) = pads
    _check(lambda x: pool.max_pool2d_forward(x, kernel, stride, pads), pool.max_pool2d_backward,
           lambda t: F.max_pool2d(t, kernel, stride, (top, left)), [x], rng)


def test_caches_hold_what_torch_keeps():
    """References to the op's own input or output (so that a value two ops keep is held
    once), plus per-channel statistics, max pooling's one-byte taps, dropout's mask."""
    from netspec.numerics.backward import saved_arrays
    from netspec.numerics.backward.conv import conv2d_forward

    rng = np.random.default_rng(19)
    x = _normal(rng, (2, 6, 6, 4))
    w = _normal(rng, (5, 4, 3, 3))
    y, cache = conv2d_forward(x, w)
    assert {id(a) for a in saved_arrays(cache)} == {id(x), id(w)}
    r, cache = activations.relu_forward(y)
    assert [a is r for a in saved_arrays(cache)] == [True]
    z, cache = norm.batch_norm_forward(r, np.ones(5, np.float32), np.zeros(5, np.float32),
                                       np.zeros(5, np.float32), np.ones(5, np.float32),
                                       training=True)
    big = [a for a in saved_arrays(cache) if a.size > 5]
    assert len(big) == 1 and big[0] is r
    _, cache = pool.max_pool2d_forward(z, 2)
    assert [(a.dtype, a.shape) for a in saved_arrays(cache)] == [(np.uint8, (2, 2, 2, 5))]
    _, cache = dense.dropout_forward(z, 0.5, rng)
    assert [a.dtype for a in saved_arrays(cache)] == [bool]
