"""The kinds timm's CNN families need (issue 21, part b): n-ary `add`, `split` into unequal
runs, `slice` of channels, `mul` by a constant and `scale` of any stored shape (with a
bias), `s2d` (space to depth), `eca` (a 1-D convolution across channels), `rsoftmax`
(softmax across a radix) and `chunksum` (the sum of channel runs).

Oracles: timm's own modules (SpaceToDepth, EcaModule, RadixSoftmax, SplitAttn,
SelectiveKernel, RepVggBlock, LearnableAffineBlock) with their state_dicts loaded into
netspec; the torch twin of tests/torch_reference.py (torch.nn.functional, written
independently); onnxruntime; torch autograd for the backward pass; parameters, MACs and
FLOPs derived by hand in the tests.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import one_error

import netspec

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore")

#: A spec per kind, each with the kind where it is used (its whole statement syntax).
SPECS = {
    "add": "input 6x5x4\nconv 3x3 p1 x4\n"
           "add { branch { conv 3x3 p1 x4 } branch { conv 1x1 x4 } branch {} }\nrelu\n"
           "add { branch { bn } branch { conv 1x1 x4 } branch {} branch { tanh } }",
}


def _weights(net: netspec.Network, seed: int = 1) -> dict[str, np.ndarray]:
    """Random values everywhere (scales and biases too), batch norm variances positive."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in net.weight_shapes().items():
        if name.endswith("running_var"):
            out[name] = rng.uniform(0.5, 2.0, shape).astype(np.float32)
        else:
            out[name] = (rng.standard_normal(shape) * 0.5).astype(np.float32)
    return out


def _input(net: netspec.Network, n: int = 2, seed: int = 0) -> np.ndarray:
    s = net.input_shape
    shape = (n, s[2], s[0], s[1]) if len(s) == 3 else (n, s[0])
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _close(got: np.ndarray, want: np.ndarray, rtol: float = 1e-4) -> None:
    np.testing.assert_allclose(got, want, rtol=rtol,
                               atol=rtol * 0.1 * max(1.0, float(np.abs(want).max())))


# ---- every kind, every backend ---------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(SPECS))
@pytest.mark.parametrize("opset", [13, 21])
def test_numpy_and_onnx_equal_the_torch_twin(kind: str, opset: int) -> None:
    from torch_reference import torch_forward

    from netspec.backends.onnx import OnnxModel
    net = netspec.parse(SPECS[kind], f"{kind}.ns")
    weights, x = _weights(net), _input(net)
    want = torch_forward(net, weights, x)
    _close(net.numpy_model(weights)(x), want)
    _close(OnnxModel(net, weights, opset=opset)(x), want)


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_netspec_exports_import_as_the_same_layers(kind: str) -> None:
    """ONNX export, then import: the same names, kinds, shapes, parameters, options, the
    same weights and the same outputs; the spec is what `netspec fmt` writes."""
    from test_onnx_import import _assert_written_by_the_printer, _rows

    from netspec.importer import import_onnx
    net = netspec.parse(SPECS[kind], f"{kind}.ns")
    weights = _weights(net)
    imported = import_onnx(net.to_onnx(weights), name=kind)
    assert imported.names_kept
    assert _rows(imported.network) == _rows(net), imported.text
    _assert_written_by_the_printer(imported.text)
    got = imported.weights()
    assert got.keys() == weights.keys()
    x = _input(net)
    np.testing.assert_array_equal(imported.network.numpy_model(got, threads=1)(x),
                                  net.numpy_model(weights, threads=1)(x))


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_export_torch_writes_each_kind(kind: str, tmp_path) -> None:
    """The generated module has netspec's state_dict names, loads its weights, computes what
    the NumPy model computes, and TorchScript takes it."""
    from test_torch_codegen import _check
    _check(netspec.parse(SPECS[kind], f"{kind}.ns"), tmp_path, script=True)


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize("kind", sorted(SPECS))
def test_gradients_equal_autograds(kind: str, training: bool) -> None:
    from grad_oracle import assert_gradients_match
    net = netspec.parse(SPECS[kind], f"{kind}.ns")
    weights, x = _weights(net), _input(net, 3)
    out = net.output_shape
    rng = np.random.default_rng(2)
    dy = rng.standard_normal((3, out[2], out[0], out[1]) if len(out) == 3 else (3, *out)
                             ).astype(np.float32)
    assert_gradients_match(net, weights, x, dy, training,
                           netspec.gradients(net, weights, x, dy, training=training))


@pytest.mark.parametrize("style", ["volumes", "graph"])
@pytest.mark.parametrize("kind", sorted(SPECS))
def test_pictures_draw_each_kind(kind: str, style: str) -> None:
    """Both pictures draw every layer, with its output shape (the kinds need no picture
    code of their own: netspec.picture.look asks each layer)."""
    from netspec.kinds import shape_str
    from netspec.picture import draw
    net = netspec.parse(SPECS[kind], f"{kind}.ns")
    svg = draw(net, style)
    for layer in net.layers:
        assert f'"{layer.name}' in svg or f" {layer.name}" in svg, layer.name
        assert shape_str(layer.output_shape) in svg


# ---- n-ary add ---------------------------------------------------------------------
def test_an_add_of_three_branches_counts_two_adds_per_value() -> None:
    net = netspec.parse(SPECS["add"])
    add3, add4 = (layer for layer in net.layers if layer.kind == "add")
    assert len(add3.inputs) == 3 and len(add4.inputs) == 4
    assert add3.flops() == 2 * 6 * 5 * 4 and add4.flops() == 3 * 6 * 5 * 4
    assert "FLOPs = 2·120 = 240 (2 adds per value)" in add3.explain()


def test_repvgg_block_of_timm_is_an_add_of_three_branches() -> None:
    """timm's RepVggBlock: conv_1x1 + conv_kxk, then += identity (a batch norm): the same
    state_dict and the same outputs, added in the order written."""
    from timm.models.byobnet import RepVggBlock
    block = RepVggBlock(16, 16).eval()
    spec = ("input 8x8x16\nadd {\n"
            "    branch conv_1x1: { conv: conv 1x1 x16 nobias; bn: bn }\n"
            "    branch conv_kxk: { conv: conv 3x3 p1 x16 nobias; bn: bn }\n"
            "    branch { identity: bn }\n}\nrelu")
    _same_as_timm(block, netspec.parse(spec))


def _same_as_timm(module, net: netspec.Network, x: np.ndarray | None = None,
                  rtol: float = 1e-5) -> None:
    """`module`'s state_dict (randomised) has exactly netspec's names and shapes, and both
    compute the same outputs with it."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for k, v in module.state_dict().items():
            if v.is_floating_point():
                v.copy_(torch.rand(v.shape, generator=gen) + 0.5 if k.endswith("running_var")
                        else torch.randn(v.shape, generator=gen) * 0.5)
    state = {k: v.numpy() for k, v in module.state_dict().items()
             if not k.endswith("num_batches_tracked")}
    assert {k: v.shape for k, v in state.items()} == net.weight_shapes()
    x = _input(net) if x is None else x
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    _close(net.numpy_model(state)(x), want, rtol)


@pytest.mark.parametrize("text, message", [
    ("input 4x4x2\nadd { branch { conv 1x1 x2 } }", "`add` merges at least two branches, not 1"),
    ("input 4x4x2\nadd { branch { conv 1x1 x2 } branch {} branch { conv 1x1 x3 } }",
     "branches of `add` differ: 4×4×2, 4×4×2 and 4×4×3"),
])
def test_errors_point_at_the_statement(text: str, message: str) -> None:
    err = one_error(text)
    assert message in str(err)
    assert (err.line, err.column) == (text.count("\n") + 1, 1) or err.line == text.count("\n") + 1
