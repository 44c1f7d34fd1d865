"""`pool avg to HxW` (adaptive average pooling) against torch.nn.AdaptiveAvgPool2d."""

from __future__ import annotations

import numpy as np
import pytest

import netspec
from conftest import one_error
from netspec.kinds.pool import adaptive_windows


@pytest.mark.parametrize("n, o", [(7, 7), (14, 7), (10, 3), (5, 7), (1, 6), (2, 7), (13, 4)])
def test_windows_follow_torchs_formula(n, o):
    import math
    assert adaptive_windows(n, o) == [(math.floor(i * n / o), math.ceil((i + 1) * n / o))
                                      for i in range(o)]


def test_shape_params_and_attrs():
    net = netspec.parse("input 13x10x8\navgpool: pool avg to 7x5\nfc 3", "t.ns")
    pool = net["avgpool"]
    assert pool.output_shape == (7, 5, 8) and pool.params == 0 and pool.macs == 0
    assert pool.attrs() == {"mode": "avg", "output_size": [7, 5]}
    assert net["fc1"].params == (7 * 5 * 8 + 1) * 3
    assert netspec.parse("input 3x3x2\npool avg to 6", "t.ns").output_shape == (6, 6, 2)


@pytest.mark.parametrize("text, message", [
    ("input 8x8x3\npool max to 2x2", "adaptive pooling is average pooling only"),
    ("input 8x8x3\npool avg to 0x2", "the output size must be at least 1, not 0"),
    ("input 8x8x3\npool avg to 2x2x2", "the output size of `pool avg to` must be N or FxF"),
    ("input 8x8x3\nfc 4\npool avg to 2x2", "needs an H×W×C volume"),
])
def test_errors(text, message):
    assert message in str(one_error(text))


@pytest.mark.parametrize("h, w, oh, ow", [(14, 14, 7, 7), (10, 9, 3, 4), (2, 2, 7, 7),
                                          (1, 3, 6, 6), (13, 7, 13, 7), (5, 11, 1, 1)])
def test_numpy_and_onnxruntime_match_torch(h, w, oh, ow):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from netspec.backends.onnx import OnnxModel
    net = netspec.parse(f"input {h}x{w}x3\npool avg to {oh}x{ow}", "t.ns")
    x = np.random.default_rng(1).standard_normal((2, 3, h, w), dtype=np.float32)
    want = torch.nn.AdaptiveAvgPool2d((oh, ow))(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net.numpy_model({})(x), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(OnnxModel(net, {})(x), want, rtol=1e-5, atol=1e-6)


def test_onnx_uses_averagepool_when_the_output_divides_the_input():
    pytest.importorskip("onnx")
    def ops(text: str) -> list[str]:
        return [n.op_type for n in netspec.parse(text, "t.ns").to_onnx().graph.node]
    assert ops("input 14x14x3\npool avg to 7x7") == ["AveragePool"]
    assert ops("input 10x14x3\npool avg to 3x7") == ["MatMul", "MatMul"]
