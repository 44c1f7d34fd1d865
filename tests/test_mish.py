"""`mish` (x·tanh(softplus(x))) through every capability, against PyTorch's nn.Mish,
onnxruntime and autograd: the kind added to prove the one-home-per-kind design."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

import netspec
from netspec.backends.onnx import OnnxModel, to_onnx
from netspec.backends.torch import torch_source
from netspec.importer import OnnxImportError, import_onnx

torch = pytest.importorskip("torch")
F = torch.nn.functional
TOL = {"rtol": 1e-5, "atol": 1e-6}
SPEC = "input 6x6x3\nconv 3x3 p1 x4 mish\nmish\npool avg global\nfc 5 mish\n"


def _wide_values() -> np.ndarray:
    """A 1×2×8×8 batch from −60 to 60 and around 0: tails where e^x overflows float32
    (e^60), where softplus turns linear (x > 20), and where mish underflows to −0."""
    v = np.concatenate([np.linspace(-60, 60, 64), np.linspace(-4, 4, 64)]).astype(np.float32)
    return v.reshape(1, 2, 8, 8)


def _weights(net: netspec.Network) -> dict[str, np.ndarray]:
    return net.init_weights(seed=3)


def _torch_net(weights: dict[str, np.ndarray]) -> torch.nn.Module:
    """The same network written by hand in torch."""
    conv, fc = torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Linear(4, 5)
    with torch.no_grad():
        for module, name in ((conv, "conv1"), (fc, "fc1")):
            module.weight.copy_(torch.from_numpy(weights[f"{name}.weight"]))
            module.bias.copy_(torch.from_numpy(weights[f"{name}.bias"]))
    return torch.nn.Sequential(conv, torch.nn.Mish(), torch.nn.Mish(),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), fc,
                               torch.nn.Mish()).eval()


@pytest.mark.parametrize("opset", [17, 18, 21])
def test_mish_equals_torch_in_numpy_and_onnxruntime(opset: int) -> None:
    net = netspec.parse("input 8x8x2\nmish")
    x = _wide_values()
    want = F.mish(torch.from_numpy(x)).numpy()
    got = net.numpy_model({})(x)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, **TOL)
    np.testing.assert_allclose(OnnxModel(net, {}, opset)(x), want, **TOL)


def test_onnx_writes_mish_from_opset_18_and_its_composed_form_before() -> None:
    def ops(opset: int) -> list[str]:
        return [n.op_type for n in to_onnx(netspec.parse("input 4x4x1\nmish"), {}, opset)
                .graph.node]
    assert ops(18) == ["Mish"]
    assert ops(17) == ["Softplus", "Tanh", "Mul"]


def test_a_network_with_mish_counts_and_runs_as_torch_does() -> None:
    net = netspec.parse(SPEC)
    # FLOPs by hand: softplus, tanh, multiply per value; conv1's output is 6·6·4
    assert net["mish1"].flops() == 3 * 6 * 6 * 4
    assert net["mish3"].flops() == 3 * 5
    assert net["mish1"].params == 0 and net["mish1"].output_shape == (6, 6, 4)
    assert net["mish1"].saves == ("input",)   # torch's mish_backward reads x
    weights = _weights(net)
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(np.float32) * 4
    with torch.no_grad():
        want = _torch_net(weights)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net.numpy_model(weights, threads=1)(x), want, rtol=1e-5,
                               atol=1e-6)


def test_generated_pytorch_code_uses_nn_mish(tmp_path: Path) -> None:
    import importlib.util
    net = netspec.parse(SPEC)
    source = torch_source(net)
    assert "nn.Mish()" in source
    path = tmp_path / "gen_mish.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("gen_mish", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    line = next(x for x in source.splitlines() if x.strip().startswith("model = "))
    model = getattr(module, line.split("= ")[1].strip().rstrip("()"))().eval()
    weights = _weights(net)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    x = np.random.default_rng(1).standard_normal((2, 3, 6, 6)).astype(np.float32)
    with torch.no_grad():
        got = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, _torch_net(weights)(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("training", [False, True])
def test_gradients_equal_autograd(training: bool) -> None:
    net = netspec.parse(SPEC)
    weights = _weights(net)
    x = np.random.default_rng(2).standard_normal((2, 3, 6, 6)).astype(np.float32) * 3
    dy = np.random.default_rng(3).standard_normal((2, 5)).astype(np.float32)
    dx, dw = netspec.gradients(net, weights, x, dy, training=training)
    model = _torch_net(weights)
    xt = torch.from_numpy(x).requires_grad_(True)
    model(xt).backward(torch.from_numpy(dy))
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    conv, fc = model[0], model[5]
    np.testing.assert_allclose(dw["conv1.weight"], conv.weight.grad.numpy(), rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(dw["fc1.bias"], fc.bias.grad.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("opset", [17, 18])
def test_netspecs_own_export_imports_back_as_mish(opset: int) -> None:
    net = netspec.parse(SPEC)
    weights = _weights(net)
    imported = import_onnx(to_onnx(net, weights, opset))
    assert [lay.kind for lay in imported.network.layers] == [lay.kind for lay in net.layers]
    x = np.random.default_rng(4).standard_normal((1, 3, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(imported.network.numpy_model(imported.weights())(x),
                               net.numpy_model(weights)(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("opset", [17, 18])
def test_torchs_own_export_of_nn_mish_imports(opset: int, tmp_path: Path) -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Mish()).eval()
    path = tmp_path / "mish.onnx"
    with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull), \
            contextlib.redirect_stdout(io.StringIO()):
        torch.onnx.export(model, torch.zeros(1, 3, 6, 6), str(path), dynamo=False,
                          opset_version=opset, input_names=["input"])
    imported = import_onnx(path)
    assert "mish" in imported.text
    x = np.random.default_rng(5).standard_normal((1, 3, 6, 6)).astype(np.float32)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(imported.network.numpy_model(imported.weights())(x), want,
                               rtol=1e-5, atol=1e-6)


def test_a_softplus_that_is_not_mish_is_refused_by_name() -> None:
    # x → Softplus → Relu: the pattern never closes, so the import must stop, not drop
    # the softplus (which would silently compute relu(x))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4])
    graph = helper.make_graph([helper.make_node("Softplus", ["x"], ["s"], name="soft"),
                               helper.make_node("Relu", ["s"], ["y"], name="act")],
                              "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(OnnxImportError) as err:
        import_onnx(model)
    message = str(err.value)
    assert '"act" (Relu' in message and '"soft" (Softplus)' in message   # both nodes named
