"""The kinds timm's CNN families need (issue 21, part a): elu, group norm, blur pool,
weight-standardised conv and TF `same` padding, each against outside oracles: torch
(nn.ELU, nn.GroupNorm, timm's BlurPool2d, StdConv2d, ScaledStdConv2d, Conv2dSame,
MaxPool2dSame, AvgPool2dSame), onnxruntime, torch autograd and torch's saved tensors;
parameters, MACs and FLOPs derived by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import one_error

import netspec
from netspec.analysis.memory import saved_bytes
from netspec.backends.onnx import OnnxModel, to_onnx
from random_nets import random_weights

torch = pytest.importorskip("torch")
F = torch.nn.functional
TOL = {"rtol": 1e-5, "atol": 1e-6}


def _x(net, n=2, seed=0):
    h, w, c = net.input_shape
    return np.random.default_rng(seed).standard_normal((n, c, h, w)).astype(np.float32)


def _outputs_agree(net, weights, x, want, tol=None):
    """netspec's NumPy model and the ONNX export under onnxruntime (opsets 13 and 21) both
    give `want`."""
    tol = tol or {"rtol": 1e-5, "atol": 1e-5 * max(1.0, float(np.abs(want).max()))}
    np.testing.assert_allclose(net.numpy_model(weights)(x), want, **tol)
    for opset in (13, 21):
        np.testing.assert_allclose(OnnxModel(net, weights, opset)(x), want, **tol)


def _torch_saved(fn, x: np.ndarray, params: list) -> int:
    """Bytes of the tensors torch's autograd keeps for `fn(x)` (its input needing a gradient),
    the parameters themselves not counted (netspec counts them as weights)."""
    xt = torch.tensor(x, requires_grad=True)
    kept = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: kept.append(t) or t, lambda t: t):
        fn(xt)
    skip = {p.untyped_storage().data_ptr() for p in params}
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in kept}
    return sum(n for ptr, n in storages.items() if ptr not in skip)


def _roundtrip(spec: str, seed: int = 5):
    """The spec exported to ONNX and imported back: the same statements and shapes, and the
    same outputs from the imported weights."""
    from netspec.importer import import_onnx
    net = netspec.parse(spec, "kinds.ns")
    w = random_weights(net, seed)
    imported = import_onnx(net.to_onnx(w), name="kinds")
    got = imported.network
    assert [(layer.text, layer.output_shape) for layer in got.layers] == \
        [(layer.text, layer.output_shape) for layer in net.layers]
    x = _x(net, seed=seed)
    np.testing.assert_allclose(got.numpy_model(imported.weights())(x), net.numpy_model(w)(x),
                               **TOL)
    return imported


def _gradients(spec: str, seed: int = 1) -> None:
    """netspec.gradients against torch autograd (tests/grad_oracle.py), in inference and
    in training mode."""
    from grad_oracle import assert_gradients_match
    net = netspec.parse(spec)
    w = random_weights(net, seed)
    rng = np.random.default_rng(seed)
    x = _x(net, 3, seed)
    out = net.output_shape
    dy = rng.standard_normal((3, out[2], out[0], out[1]) if len(out) == 3 else (3, *out),
                             dtype=np.float32)
    for training in (False, True):
        assert_gradients_match(net, w, x, dy, training,
                               netspec.gradients(net, w, x, dy, training=training))


def _torch_code(spec: str, tmp_path, name: str) -> str:
    """`export --torch` of the spec: its module loads netspec's weights by name and computes
    what the NumPy model computes, also under torch.jit.script."""
    from test_torch_codegen import _check
    return _check(netspec.parse(spec, f"{name}.ns"), tmp_path, script=True)


# ---- elu ------------------------------------------------------------------------------

def _wide_values() -> np.ndarray:
    """−60 … 60 and −4 … 4: e^x underflows at one end, tiny negatives keep their digits."""
    v = np.concatenate([np.linspace(-60, 60, 64), np.linspace(-4, 4, 63), [-1e-6]])
    return v.astype(np.float32).reshape(1, 2, 8, 8)


@pytest.mark.parametrize("alpha", [None, 0.5, 1.7])
def test_elu_equals_torch_in_numpy_and_onnxruntime(alpha):
    net = netspec.parse("input 8x8x2\nelu" + ("" if alpha is None else f" {alpha}"))
    x = _wide_values()
    want = F.elu(torch.from_numpy(x), 1.0 if alpha is None else alpha).numpy()
    assert np.isfinite(net.numpy_model({})(x)).all()
    _outputs_agree(net, {}, x, want, TOL)
    node = to_onnx(net, {}).graph.node[0]
    assert node.op_type == "Elu" and node.attribute[0].f == pytest.approx(alpha or 1.0)


def test_elu_is_a_shorthand_with_four_flops_per_value():
    net = netspec.parse("input 6x6x3\nconv 3x3 x4 elu\nfc 5 elu 0.3")
    assert [layer.op for layer in net.layers] == ["input", "conv", "elu", "fc", "elu"]
    assert (net["elu1"].alpha, net["elu2"].alpha) == (1.0, 0.3)
    # a comparison, an exp, a subtract and a multiply per value
    assert net["elu1"].flops() == 4 * 4 * 4 * 4 and net["elu2"].flops() == 4 * 5
    assert net["elu1"].params == 0
    assert "y = x for x > 0, else 0.3·(e^x − 1)" in net["elu2"].explain()


def test_elu_keeps_its_input_as_torch_does():
    net = netspec.parse("input 6x6x3\nconv 1x1 x4\nelu 0.5")
    w = torch.randn(4, 3, 1, 1, requires_grad=True)
    want = _torch_saved(lambda t: F.elu(F.conv2d(t, w), 0.5), _x(net, 3), [w])
    assert saved_bytes(net, 3) == want == 3 * 4 * 6 * 6 * (3 + 4)   # conv's input, elu's


def test_elu_with_an_infinite_alpha_is_an_error():
    err = one_error("input 4x4x2\nelu 1e999")
    assert "the α of `elu` must be a finite number, not inf" in str(err) and err.line == 2


def test_elu_gradients_equal_autograds():
    _gradients("input 6x5x3\nconv 3x3 p1 x4 elu 0.7\nelu\nflatten\nfc 3 elu 1.3")


def test_elu_imports_back_from_netspecs_onnx():
    _roundtrip("input 6x6x3\nconv 3x3 p1 x4 elu\nelu 0.25\nfc 3")


def test_elu_in_pytorch_code(tmp_path):
    source = _torch_code("input 6x6x3\nconv 3x3 p1 x4 elu\nelu 0.25\nfc 3", tmp_path, "elus")
    assert "nn.ELU()" in source and "nn.ELU(0.25)" in source
