"""Convolution and transposed convolution backward against torch autograd, and along a
random direction against finite differences in float64."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from backward_oracle import assert_close, autograd, directional_check

from netspec.numerics.backward.conv import conv2d_backward, conv2d_forward
from netspec.numerics.backward.deconv import deconv2d_backward, deconv2d_forward

# (N, H, W, C), K, kernel, stride, ((top, bottom), (left, right)), dilation, groups, bias
CONVS = [
    ((2, 7, 9, 3), 4, (3, 3), 1, ((1, 1), (1, 1)), 1, 1, True),        # plain, odd sizes
    ((2, 9, 8, 3), 5, (3, 3), 2, ((0, 1), (1, 0)), 1, 1, True),        # stride 2, asymmetric
    ((2, 11, 9, 6), 4, (3, 2), (2, 1), ((0, 2), (1, 0)), (2, 1), 2, True),   # dilated, grouped
    ((3, 8, 8, 5), 5, (3, 3), 2, ((1, 0), (1, 2)), 1, 5, True),        # depthwise, stride 2
    ((2, 8, 7, 5), 10, (3, 3), 1, ((2, 2), (2, 2)), 2, 5, False),      # channel multiplier 2
    ((2, 9, 8, 6), 6, (3, 3), 1, ((2, 2), (2, 2)), 2, 6, True),        # depthwise, dilated
    ((3, 8, 8, 1), 16, (3, 3), 1, ((1, 1), (1, 1)), 1, 1, True),       # one input channel
    ((2, 6, 6, 8), 16, (1, 1), 1, ((0, 0), (0, 0)), 1, 1, True),       # pointwise: a matmul
    ((2, 7, 7, 8), 16, (1, 1), 2, ((0, 0), (0, 0)), 1, 1, False),      # ResNet's projection
    ((2, 5, 5, 8), 12, (1, 1), 1, ((0, 0), (0, 0)), 1, 4, True),       # grouped pointwise
    ((2, 14, 14, 6), 16, (5, 5), 1, ((0, 0), (0, 0)), 1, 1, True),     # LeNet's second conv
    ((1, 40, 40, 64), 8, (3, 3), 1, ((1, 1), (1, 1)), 1, 1, True),     # several row blocks
    ((5, 4, 4, 16), 8, (3, 3), 1, ((1, 1), (1, 1)), 1, 1, True),       # several samples a block
    # stride 1, dilated, grouped, asymmetric: dx as a conv of dy (padding < d·(F − 1))
    ((2, 9, 10, 4), 6, (3, 3), 1, ((0, 3), (2, 1)), 2, 2, True),
    ((2, 6, 6, 3), 4, (3, 3), 1, ((3, 0), (0, 3)), 1, 1, True),        # padding > F − 1
    # more filters than output pixels: channel-major im2col (ResNet's deep layers)
    ((2, 3, 3, 16), 32, (3, 3), 1, ((1, 1), (1, 1)), 1, 1, True),
    ((2, 4, 5, 8), 24, (3, 3), 2, ((1, 0), (0, 1)), 1, 2, True),
]


def _conv_case(case, rng):
    shape, k, kernel, stride, pads, dilation, groups, bias = case
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((k, shape[3] // groups, *kernel)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32) if bias else None
    return x, w, b, {"stride": stride, "pads": pads, "dilation": dilation, "groups": groups}


def _torch_conv(opts):
    (top, bottom), (left, right) = opts["pads"]

    def conv(x, w, b=None):
        return F.conv2d(F.pad(x, (left, right, top, bottom)), w, b, opts["stride"], 0,
                        opts["dilation"], opts["groups"])
    return conv


@pytest.mark.parametrize("case", CONVS, ids=[f"conv{i}" for i in range(len(CONVS))])
def test_conv_backward_equals_autograd(case):
    rng = np.random.default_rng(len(case[0]) + case[1])
    x, w, b, opts = _conv_case(case, rng)
    x_before = x.copy()
    y, cache = conv2d_forward(x, w, b, **opts)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    inputs = [x, w] + ([b] if b is not None else [])
    expected_y, expected = autograd(_torch_conv(opts), inputs, dy, [True, False, False])
    dx, grads = conv2d_backward(dy, cache)
    assert_close(y, expected_y, "y")
    assert_close(dx, expected[0], "dx")
    assert_close(grads["weight"], expected[1], "weight")
    if b is not None:
        assert_close(grads["bias"], expected[2], "bias")
    else:
        assert "bias" not in grads
    assert cache.x is x and np.array_equal(x, x_before)   # kept as torch keeps it, untouched


def test_conv_without_input_gradient():
    rng = np.random.default_rng(1)
    x, w, b, opts = _conv_case(CONVS[1], rng)
    y, cache = conv2d_forward(x, w, b, **opts)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, grads = conv2d_backward(dy, cache, need_dx=False)
    _, full = conv2d_backward(dy, cache)
    assert dx is None
    np.testing.assert_array_equal(grads["weight"], full["weight"])


@pytest.mark.parametrize("case", [CONVS[2], CONVS[3], CONVS[4], CONVS[6], CONVS[12]],
                         ids=["grouped", "depthwise", "multiplier", "strided-1x1", "dx-as-conv"])
def test_conv_gradient_along_a_direction(case):
    rng = np.random.default_rng(2)
    x, w, b, opts = (a.astype(np.float64) if isinstance(a, np.ndarray) else a
                     for a in _conv_case(case, rng))
    y, cache = conv2d_forward(x, w, b, **opts)
    dy = rng.standard_normal(y.shape)
    dx, grads = conv2d_backward(dy, cache)
    if b is None:
        directional_check(lambda x, w: conv2d_forward(x, w, None, **opts)[0], [x, w],
                          [dx, grads["weight"]], dy)
    else:
        directional_check(lambda x, w, b: conv2d_forward(x, w, b, **opts)[0], [x, w, b],
                          [dx, grads["weight"], grads["bias"]], dy)


# (N, H, W, C_in), K, kernel, stride, padding, dilation, output_padding, groups, bias
DECONVS = [
    ((2, 5, 6, 4), 6, (2, 2), 2, 0, 1, 0, 1, True),                    # U-Net's up-conv
    ((2, 5, 6, 4), 6, (3, 3), 2, 1, 1, 1, 2, True),                    # cropped, grouped
    ((2, 5, 6, 4), 6, (3, 2), (2, 3), (1, 0), (2, 1), (1, 2), 2, True),   # per-axis everything
    ((2, 5, 6, 4), 4, (3, 3), 1, 0, 1, 0, 4, False),                   # depthwise
    ((1, 4, 4, 3), 5, (1, 1), 1, 0, 1, 0, 1, True),                    # pointwise
    ((1, 4, 4, 3), 5, (3, 3), 3, 2, 1, 2, 1, True),                    # output padding 2
    ((1, 2, 2, 16), 4, (3, 3), 2, 1, 1, 1, 2, True),                   # channel-major
]


def _deconv_case(case, rng):
    shape, k, kernel, stride, padding, dilation, extra, groups, bias = case
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((shape[3], k // groups, *kernel)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32) if bias else None
    return x, w, b, {"stride": stride, "padding": padding, "dilation": dilation,
                         "output_padding": extra, "groups": groups}


@pytest.mark.parametrize("case", DECONVS, ids=[f"deconv{i}" for i in range(len(DECONVS))])
def test_deconv_backward_equals_autograd(case):
    rng = np.random.default_rng(case[1])
    x, w, b, opts = _deconv_case(case, rng)
    y, cache = deconv2d_forward(x, w, b, **opts)
    dy = rng.standard_normal(y.shape).astype(np.float32)

    def deconv(x, w, b=None):
        return F.conv_transpose2d(x, w, b, opts["stride"], opts["padding"],
                                  opts["output_padding"], opts["groups"], opts["dilation"])
    inputs = [x, w] + ([b] if b is not None else [])
    expected_y, expected = autograd(deconv, inputs, dy, [True, False, False])
    dx, grads = deconv2d_backward(dy, cache)
    assert_close(y, expected_y, "y")
    assert_close(dx, expected[0], "dx")
    assert_close(grads["weight"], expected[1], "weight")
    if b is not None:
        assert_close(grads["bias"], expected[2], "bias")


def test_deconv_gradient_along_a_direction():
    rng = np.random.default_rng(3)
    x, w, b, opts = (a.astype(np.float64) if isinstance(a, np.ndarray) else a
                     for a in _deconv_case(DECONVS[2], rng))
    y, cache = deconv2d_forward(x, w, b, **opts)
    dy = rng.standard_normal(y.shape)
    dx, grads = deconv2d_backward(dy, cache)
    directional_check(lambda x, w, b: deconv2d_forward(x, w, b, **opts)[0], [x, w, b],
                      [dx, grads["weight"], grads["bias"]], dy)
