"""ONNX export: valid models, shapes onnx agrees with, and the same numbers as NumPy and PyTorch."""

import re
from pathlib import Path

import numpy as np
import onnx
import pytest

import netspec
from netspec.backends.onnx import export as onnx_export
from netspec.backends.onnx.graph import DEFAULT_OPSET
from netspec.backends.onnx import OnnxModel, run_onnx_file, save_onnx, to_onnx
from random_nets import random_spec, random_weights

torch = pytest.importorskip("torch")
from torch_reference import torch_forward  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.ns"))
TOL = dict(rtol=1e-4, atol=1e-5)


def _batch(net, n=2, seed=0):
    shape = net.numpy_model(random_weights(net, 0)).input_shape
    return np.random.default_rng(seed).standard_normal((n, *shape)).astype(np.float32)


@pytest.mark.parametrize("seed", range(40))
def test_random_networks_numpy_onnxruntime_and_pytorch_agree(seed):
    net = netspec.parse(random_spec(seed))
    weights = random_weights(net, seed)
    x = _batch(net, 3, seed)
    expected = torch_forward(net, weights, x)
    np.testing.assert_allclose(OnnxModel(net, weights)(x), expected, **TOL)
    np.testing.assert_allclose(net.numpy_model(weights)(x), expected, **TOL)


def assert_close_at_scale(actual, expected):
    """rtol 1e-4 and atol 1e-5 × the output's scale (max |value|, at least 1).

    Deep networks (AlexNet's fc layers sum 9,216 then 4,096 float32 products) lose
    about 1e-6 of their output's magnitude to summation order alone, so an output
    that cancels to near 0 is compared with the error its neighbours carry.
    """
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5 * scale)


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.name)
def test_every_shipped_spec_runs_the_same_on_onnxruntime(spec):
    net = netspec.load(spec)
    weights = random_weights(net, 3)
    x = _batch(net)
    assert_close_at_scale(OnnxModel(net, weights)(x), net.numpy_model(weights)(x))


def _strip_value_info(model):
    bare = onnx.ModelProto()
    bare.CopyFrom(model)
    del bare.graph.value_info[:]
    return bare


@pytest.mark.parametrize("seed", range(20))
def test_onnx_shape_inference_agrees_with_netspec(seed):
    net = netspec.parse(random_spec(seed))
    model = to_onnx(net, net.init_weights(0))
    inferred = onnx.shape_inference.infer_shapes(_strip_value_info(model), strict_mode=True)
    shapes = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in [*inferred.graph.value_info, *inferred.graph.output]}
    for layer in net.layers[1:]:
        h = layer.output_shape
        expected = ["N", h[2], h[0], h[1]] if len(h) == 3 else ["N", h[0]]
        assert shapes[layer.name] == expected, layer.name


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.name)
def test_exported_models_pass_the_full_checker(spec):
    net = netspec.load(spec)
    onnx.checker.check_model(to_onnx(net, net.init_weights(0)), full_check=True)


@pytest.mark.parametrize("opset", [13, 17, None])
def test_old_and_default_opsets_run(opset):
    net = netspec.parse("input 8x8x3\nconv 3x3 same x4\nbn\nrelu\npool avg 2\ndropout 0.5\n"
                        "flatten\nfc 5\nsoftmax")
    weights = random_weights(net, 0)
    model = to_onnx(net, weights, opset=opset)
    assert model.opset_import[0].version == (opset or DEFAULT_OPSET)
    x = _batch(net)
    np.testing.assert_allclose(OnnxModel(net, weights, opset)(x), net.numpy_model(weights)(x), **TOL)


def test_unsupported_opset_is_a_clear_error():
    net = netspec.parse("input 2\nfc 1")
    with pytest.raises(netspec.NetspecError, match="opset 9 is not supported"):
        to_onnx(net, net.init_weights(), opset=9)


def test_graph_carries_the_specs_names_lines_and_shapes():
    net = netspec.parse("input 9x9x3\nstem: conv 4x4 s2 same x8 relu\nfc 10", "s.ns")
    model = to_onnx(net, net.init_weights(0))
    g = model.graph
    assert [i.name for i in g.initializer] == ["stem.weight", "stem.bias", "fc1.weight", "fc1.bias"]
    nodes = {n.name: n for n in g.node}
    assert nodes["stem"].op_type == "Conv" and nodes["stem"].doc_string == "s.ns:2: conv 4x4 s2 same x8"
    assert nodes["relu1"].doc_string == "s.ns:2: relu"
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in nodes["stem"].attribute}
    # same at stride 2: out ceil(9/2) = 5, total padding (5-1)*2 + 4 - 9 = 3 → 1 before, 2 after
    assert attrs["pads"] == [1, 1, 2, 2] and "auto_pad" not in attrs
    dims = [d.dim_param or d.dim_value for d in g.input[0].type.tensor_type.shape.dim]
    assert g.input[0].name == "input" and dims == ["N", 3, 9, 9]
    assert g.output[0].name == "fc1"
    assert {v.name for v in g.value_info} == {"stem", "relu1", "fc1.flat"}


def test_save_is_atomic_and_runs(tmp_path):
    net = netspec.load(ROOT / "specs/lenet5.ns")
    weights = net.init_weights(1)
    path = tmp_path / "lenet5.onnx"
    assert save_onnx(net, weights, path) == {"opset": DEFAULT_OPSET,
                                             "external": None}
    # the streamed file parses to exactly the in-memory model
    assert onnx.load(path) == to_onnx(net, weights)
    x = _batch(net)
    np.testing.assert_allclose(run_onnx_file(path, x), net.numpy_model(weights)(x), **TOL)
    assert [p.name for p in tmp_path.iterdir()] == ["lenet5.onnx"]
    with pytest.raises(netspec.InputError, match="expects N×3×32×32"):
        run_onnx_file(path, x[:, :1])


def test_large_models_use_external_data(tmp_path, monkeypatch):
    monkeypatch.setattr(onnx_export, "EXTERNAL_DATA_BYTES", 1000)   # stand-in for 2 GB
    net = netspec.load(ROOT / "specs/lenet5.ns")
    weights = net.init_weights(2)
    path = tmp_path / "big.onnx"
    info = save_onnx(net, weights, path, opset=13)
    data = info["external"]
    assert info["opset"] == 13 and re.fullmatch(r"big\.onnx\.[0-9a-f]{16}\.data", data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.onnx", data]
    assert path.stat().st_size < 20_000   # the weights (248 KB) are not inside
    onnx.checker.check_model(str(path), full_check=True)
    x = _batch(net)
    np.testing.assert_allclose(run_onnx_file(path, x), net.numpy_model(weights)(x), **TOL)


def test_foreign_onnx_models_are_refused_clearly(tmp_path):
    from onnx import TensorProto, helper
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["c"])], "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2]) for n in "ab"],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [2])])
    path = tmp_path / "two.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8),
              path)
    with pytest.raises(netspec.NetspecError, match="one float input"):
        run_onnx_file(path, np.zeros(2, np.float32))


def test_a_model_past_protobufs_limit_runs_from_external_data(monkeypatch):
    # protobuf cannot hold 2 GiB in memory (RegNetY-128GF's weights are 2.6 GB): past the
    # limit, OnnxModel loads the model from a file with its weights beside it. The limit
    # is lowered here so that a small network takes that path.
    monkeypatch.setattr(onnx_export, "EXTERNAL_DATA_BYTES", 1000)
    loaded = []
    from netspec.backends.onnx import runtime
    session = runtime._session
    monkeypatch.setattr(runtime, "_session", lambda m: loaded.append(m) or session(m))
    net = netspec.parse("input 8x8x3\nconv 3x3 x16 relu\nfc 10")
    weights = random_weights(net, 0)
    assert sum(a.nbytes for a in weights.values()) > 1000
    x = _batch(net)
    assert_close_at_scale(OnnxModel(net, weights)(x), net.numpy_model(weights)(x))
    assert len(loaded) == 1 and isinstance(loaded[0], str)   # from a file, not from memory
