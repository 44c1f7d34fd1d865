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


def _roundtrip(spec: str, seed: int = 5, opset: int = 21):
    """The spec exported to ONNX and imported back: the same statements and shapes, and the
    same outputs from the imported weights."""
    from netspec.importer import import_onnx
    net = netspec.parse(spec, "kinds.ns")
    w = random_weights(net, seed)
    imported = import_onnx(to_onnx(net, w, opset), name="kinds")
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


# ---- group norm -----------------------------------------------------------------------

def _affine(net, seed=3):
    """Random weights, group norms' scales and shifts included (not the identity they start as)."""
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(v.shape).astype(np.float32)
            for k, v in net.init_weights().items()}


@pytest.mark.parametrize("spec, groups, eps", [
    ("input 7x5x12\ngroupnorm 3", 3, 1e-5),
    ("input 7x5x12\ngroupnorm 1 eps1e-6", 1, 1e-6),      # PoolFormer's GroupNorm1
    ("input 4x6x8\ngroupnorm 8", 8, 1e-5),               # one channel per group
    ("input 12\ngroupnorm 4", 4, 1e-5),                  # a vector, as torch takes (N, C)
])
def test_groupnorm_equals_torchs_group_norm(spec, groups, eps):
    net = netspec.parse(spec)
    w = _affine(net)
    s = net.input_shape
    x = np.random.default_rng(1).standard_normal((3, s[-1], *s[:-1])).astype(np.float32)
    gn = torch.nn.GroupNorm(groups, s[-1], eps)
    gn.load_state_dict({k.split(".")[-1]: torch.from_numpy(v) for k, v in w.items()})
    with torch.no_grad():
        want = gn(torch.from_numpy(x)).numpy()
        far = gn.double()(torch.from_numpy(x + np.float32(20)).double()).numpy()
    _outputs_agree(net, w, x, want, {"rtol": 1e-4, "atol": 1e-5})
    # a mean far from 0 (against float64): statistics as E[x²] − E[x]² in float32 lose
    # digits (onnxruntime's InstanceNormalization is 5e-5 off here); netspec sums in float64
    np.testing.assert_allclose(net.numpy_model(w)(x + np.float32(20)), far, rtol=1e-4, atol=1e-5)


def test_groupnorm_onnx_is_groupnormalization_from_opset_21():
    net = netspec.parse("input 4x4x6\ngroupnorm 2 eps1e-6\nflatten\ngroupnorm 3")
    w = _affine(net)
    ops = lambda opset: [n.op_type for n in to_onnx(net, w, opset).graph.node  # noqa: E731
                         if n.op_type != "Constant"]
    assert ops(21)[0] == "GroupNormalization"
    # opsets 18 to 20 scale each group, not each channel: the decomposition, as torch writes
    assert ops(20)[:5] == ["Reshape", "InstanceNormalization", "Reshape", "Mul", "Add"]
    assert ops(21)[-5:] == ops(20)[-5:]   # a vector: the decomposition at every opset


def test_groupnorm_counts_and_names_as_timm():
    timm = pytest.importorskip("timm")
    net = netspec.parse("input 6x6x8\nnorm: groupnorm 4\nrelu")
    layer = net["norm"]
    assert layer.params == 2 * 8 and layer.flops() == 7 * 6 * 6 * 8
    assert "normalised in 4 groups of 2 channels × 6·6 pixels each, ε = 1e-05" in \
        layer.explain()[0]
    block = torch.nn.Module()
    block.norm = timm.layers.GroupNormAct(8, 4)   # BiT's group norm + relu
    assert net.weight_shapes() == {k: tuple(v.shape) for k, v in block.state_dict().items()}
    w = _affine(net)
    block.load_state_dict({k: torch.from_numpy(v) for k, v in w.items()})
    x = _x(net)
    with torch.no_grad():
        want = block.norm(torch.from_numpy(x)).numpy()
    _outputs_agree(net, w, x, want, {"rtol": 1e-4, "atol": 1e-5})


@pytest.mark.parametrize("text, message", [
    ("input 4x4x6\ngroupnorm 4", "4 groups do not divide the 6 channels"),
    ("input 4x4x6\ngroupnorm 0", "groups must be at least 1, not 0"),
    ("input 4x4x6\ngroupnorm 2 eps0", "group-norm epsilon must be positive"),
])
def test_groupnorm_errors_point_at_the_layer(text, message):
    err = one_error(text)
    assert message in str(err) and err.line == 2


def test_groupnorm_statistics_make_the_receptive_field_the_whole_input():
    from netspec.analysis.rf import receptive_fields
    spec = "input 16x12x4\nconv 3x3 p1 x4\ngroupnorm 2\nconv 3x3 p1 x4"
    net = netspec.parse(spec)
    field = receptive_fields(net)["conv2"]
    # the oracle: autograd says output pixel (0, 0) depends on the far corner of the input
    x = torch.tensor(_x(net, 1), requires_grad=True)
    w = _affine(net)
    t = {k: torch.from_numpy(v) for k, v in w.items()}
    y = F.conv2d(F.group_norm(F.conv2d(x, t["conv1.weight"], t["conv1.bias"], padding=1), 2,
                              t["groupnorm1.weight"], t["groupnorm1.bias"]),
                 t["conv2.weight"], t["conv2.bias"], padding=1)
    y[0, :, 0, 0].sum().backward()
    assert x.grad[0, :, 15, 11].abs().sum() > 0
    # conv1's window (3, jump 1, from −1) and the statistics' (the whole input, as seen
    # through conv1: −1 … 16 and −1 … 12); conv2 adds its own 3×3 around the pixel
    assert field.span(0, 0) == (-2, 16) and field.span(0, 1) == (-2, 12)
    assert field.span(15, 0) == (-1, 17)   # conv2's window, 13 … 17, beside the statistics'
    assert field.size == (19, 15) and field.jump == (1, 1)   # per-pixel jumps are kept
    plain = receptive_fields(netspec.parse(spec.replace("groupnorm 2", "bn")))["conv2"]
    assert plain.size == (5, 5) and plain.jump == field.jump


def test_groupnorm_keeps_its_input_and_two_numbers_per_group_as_torch_does():
    net = netspec.parse("input 6x6x3\nconv 1x1 x4\ngroupnorm 2")
    w, gw, gb = (torch.randn(*s, requires_grad=True) for s in ((4, 3, 1, 1), (4,), (4,)))
    want = _torch_saved(lambda t: F.group_norm(F.conv2d(t, w), 2, gw, gb), _x(net, 3), [w, gw, gb])
    # the conv's input, group norm's input, and per sample and group a mean and 1/std
    assert saved_bytes(net, 3) == want == 3 * 4 * 6 * 6 * (3 + 4) + 3 * 2 * 2 * 4


def test_groupnorm_gradients_equal_autograds():
    _gradients("input 6x5x6\nconv 3x3 p1 x6\ngroupnorm 3 eps1e-4\nrelu\nflatten\nfc 8\n"
               "groupnorm 2")


@pytest.mark.parametrize("opset", [13, 18, 21])
def test_groupnorm_imports_back_from_netspecs_onnx(opset):
    _roundtrip("input 6x6x3\nconv 3x3 p1 x8\ngroupnorm 4\nrelu\ngroupnorm 2 eps1e-6\n"
               "flatten\nfc 6\ngroupnorm 3", opset=opset)


def test_groupnorm_of_opset_18_scales_each_group():
    """GroupNormalization-18 has one scale and shift per group: read as each group's value
    for each of its channels."""
    import onnx
    from onnx import helper

    from netspec.importer import import_onnx
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 6, 4, 4])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 6, 4, 4])
    scale = np.array([2.0, -1.0, 0.5], np.float32)
    shift = np.array([0.1, 0.2, 0.3], np.float32)
    graph = helper.make_graph(
        [helper.make_node("GroupNormalization", ["x", "s", "b"], ["y"], name="gn",
                          num_groups=3, epsilon=1e-5)], "g", [x], [y],
        [onnx.numpy_helper.from_array(scale, "s"), onnx.numpy_helper.from_array(shift, "b")])
    imported = import_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]),
                           name="gn18")
    weights = imported.weights()
    assert imported.network.layers[1].text == "groupnorm 3"
    np.testing.assert_array_equal(weights["gn.weight"], np.repeat(scale, 2))
    np.testing.assert_array_equal(weights["gn.bias"], np.repeat(shift, 2))


def test_groupnorm_in_pytorch_code(tmp_path):
    source = _torch_code("input 6x6x3\nconv 3x3 p1 x8\ngroupnorm 4\nrelu\n"
                         "groupnorm 2 eps1e-6\nflatten\nfc 6\ngroupnorm 3", tmp_path, "gns")
    assert "nn.GroupNorm(4, 8)" in source and "nn.GroupNorm(2, 8, eps=1e-06)" in source
    assert "nn.GroupNorm(3, 6)" in source


# ---- blur -----------------------------------------------------------------------------

@pytest.mark.parametrize("spec, size, stride", [
    ("input 9x8x4\nblur", 3, 2), ("input 7x7x3\nblur 3 s1", 3, 1), ("input 8x9x2\nblur 4", 4, 2),
    ("input 11x6x2\nblur 5 s2", 5, 2), ("input 9x10x2\nblur 2 s3", 2, 3)])
def test_blur_equals_timms_blurpool(spec, size, stride):
    timm = pytest.importorskip("timm")
    net = netspec.parse(spec)
    x = _x(net)
    pool = timm.layers.BlurPool2d(x.shape[1], size, stride)
    assert not pool.state_dict() and net.weight_shapes() == {}   # a buffer, not a weight
    with torch.no_grad():
        want = pool(torch.from_numpy(x)).numpy()
    assert net.output_shape == (want.shape[2], want.shape[3], want.shape[1])
    _outputs_agree(net, {}, x, want, TOL)


def test_blur_arithmetic_by_hand():
    net = netspec.parse("input 9x8x4\nblur\nblur 4 s1")
    b1, b2 = net["blur1"], net["blur2"]
    # padding floor((s − 1 + F − 1)/2): 1 for 3 s2, 1 for 4 s1; out floor((n + 2p − F)/s) + 1
    assert b1.pads == ((1, 1), (1, 1)) and b1.output_shape == (5, 4, 4)
    assert b2.pads == ((1, 1), (1, 1)) and b2.output_shape == (4, 3, 4)
    assert b1.macs == 5 * 4 * 4 * 9 and b1.flops() == 2 * b1.macs and b1.params == 0
    assert b2.macs == 4 * 3 * 4 * 16
    assert "filter = binomial row C(2, k)/2^2, its outer product; params = 0" in b1.explain()


def test_blur_receptive_field_is_its_window():
    from netspec.analysis.rf import receptive_fields
    fields = receptive_fields(netspec.parse("input 16x16x2\nconv 3x3 p1 x2\nblur\nblur 5 s1"))
    # conv: 3, jump 1; blur 3 s2 p1: 3 + 2·1 = 5, jump 2; blur 5 s1 p2: 5 + 4·2 = 13
    assert [fields[n].rf for n in ("conv1", "blur1", "blur2")] == [(3, 3), (5, 5), (13, 13)]
    assert fields["blur2"].jump == (2, 2) and fields["blur2"].start == (-6, -6)


@pytest.mark.parametrize("text, message", [
    ("input 4x4x6\nblur 1", "the blur filter must be at least 2 wide, not 1"),
    ("input 4x4x6\nblur 3 s0", "stride must be at least 1, not 0"),
    ("input 1x4x6\nblur", "mirrors 1 pixels on each side, which needs an input larger than 1×1"),
    ("input 4x4x6\nflatten\nblur", "`blur` needs an H×W×C volume"),
])
def test_blur_errors_point_at_the_layer(text, message):
    err = one_error(text)
    assert message in str(err) and err.line == text.count("\n") + 1


def test_blur_keeps_its_input_the_padded_copy_and_the_filter_as_torch_does():
    timm = pytest.importorskip("timm")
    net = netspec.parse("input 6x7x3\nconv 1x1 x4\nblur")
    w = torch.randn(4, 3, 1, 1, requires_grad=True)
    pool = timm.layers.BlurPool2d(4, 3, 2)
    want = _torch_saved(lambda t: pool(F.conv2d(t, w)), _x(net, 3), [w])
    # per sample the conv's input, blur's input and its 8×9 padded copy; its 4 filters of
    # 3×3 once
    assert saved_bytes(net, 3) == want == 4 * 3 * (6 * 7 * 3 + 6 * 7 * 4 + 8 * 9 * 4) + 4 * 4 * 9


def test_blur_gradients_equal_autograds():
    _gradients("input 15x14x3\nconv 3x3 p1 x4\nblur\nblur 4 s1\nblur 5 s3\nflatten\nfc 3")


def test_blur_imports_back_from_netspecs_onnx():
    _roundtrip("input 15x14x3\nconv 3x3 p1 x4 relu\nblur\nblur 4 s1\nblur 5 s3\nfc 3")


def test_blur_in_pytorch_code(tmp_path):
    source = _torch_code("block body(s) { blur 3 s$s }\ninput 9x8x3\nconv 3x3 p1 x4\n"
                         "residual { body(1) }\nblur\nblur 4 s1\nflatten\nfc 3", tmp_path, "blurs")
    assert "BlurPool2d(4, filt_size=4, stride=1)" in source and "BlurPool2d(4)" in source




def test_timms_blurpool_exported_by_torchs_dynamo_exporter_imports_as_blur(tmp_path):
    """torch.onnx.export(dynamo=True) writes BlurPool2d as Pad (reflect) and a depthwise Conv
    by the filter (the legacy exporter computes the Pad's sizes in the graph: not read)."""
    timm = pytest.importorskip("timm")
    import warnings

    from netspec.importer import import_onnx
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1),
                                timm.layers.BlurPool2d(4, 3, 2)).eval()
    x = torch.randn(2, 3, 9, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x[:1],), str(tmp_path / "blur.onnx"), dynamo=True,
                          opset_version=18, verbose=False)
    import onnx
    imported = import_onnx(onnx.load(str(tmp_path / "blur.onnx")), name="blur")
    assert [layer.text for layer in imported.network.layers][1:] == ["conv 3x3 p1 x4", "blur"]
    with torch.no_grad():
        want = model(x).numpy()
    got = imported.network.numpy_model(imported.weights())(x.numpy())
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


# ---- weight-standardised conv ---------------------------------------------------------

def _timm_module(spec_line: str, c_in: int):
    """timm's module for one `ws` conv statement (the oracle), with random parameters."""
    timm = pytest.importorskip("timm")
    from timm.layers import ScaledStdConv2d, ScaledStdConv2dSame, StdConv2d, StdConv2dSame
    layer = netspec.parse(f"input 9x8x{c_in}\n{spec_line}")["conv1"]
    ws, same = layer.ws, layer.padding == "same"
    pad = {} if same else {"padding": layer.padding}
    common = dict(stride=layer.strides[0], dilation=layer.dilation, groups=layer.groups,
                  bias=layer.bias, eps=ws.eps)
    if ws.gain:
        cls = ScaledStdConv2dSame if same else ScaledStdConv2d
        module = cls(c_in, layer.filters, layer.kernel[0], gamma=ws.gamma, **pad, **common)
    else:
        cls = StdConv2dSame if same else StdConv2d
        module = cls(c_in, layer.filters, layer.kernel[0], **pad, **common)
    torch.manual_seed(3)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.5 + (1 if p.shape[1:] == (1, 1, 1) else 0))
    return timm, module


WS_CONVS = ["conv 3x3 p1 x6 ws eps1e-8 nobias",                    # BiT's StdConv2d
            "conv 3x3 s2 x8 ws gain gamma1.7139588594436646 eps1e-5",   # NFNet's ScaledStdConv2d
            "conv 3x3 s2 same x8 ws gain eps1e-5",                      # dm_nfnet's …Same
            "conv 5x5 s2 same g2 x4 ws nobias",                         # StdConv2dSame, groups
            "conv 1x1 x5 ws gain gamma2"]


@pytest.mark.parametrize("line", WS_CONVS)
def test_ws_conv_equals_timms_std_convs(line):
    _, module = _timm_module(line, 4)
    net = netspec.parse(f"input 9x8x4\n{line}")
    weights = {f"conv1.{k}": v.detach().numpy() for k, v in module.state_dict().items()}
    assert net.weight_shapes() == {k: v.shape for k, v in weights.items()}   # names, order too
    assert list(net.weight_shapes()) == list(weights)
    assert net.total_params == sum(p.numel() for p in module.parameters())
    x = _x(net)
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    _outputs_agree(net, weights, x, want, {"rtol": 1e-4, "atol": 1e-5})


def test_ws_conv_arithmetic_by_hand():
    net = netspec.parse("input 8x8x3\nconv 3x3 p1 x8 ws\nconv 3x3 x4 ws gain nobias")
    c1, c2 = net["conv1"], net["conv2"]
    assert c1.params == (27 + 1) * 8 and c2.params == (72 + 1) * 4   # the gain replaces the bias
    assert c1.macs == 8 * 8 * 8 * 27 and c2.flops() == 2 * 6 * 6 * 4 * 72
    assert net.weight_shapes()["conv2.gain"] == (4, 1, 1, 1)
    assert "ŵ = (w − mean)/√(var + 1e-06) per filter, over its 72 weights, times gain·1/√72" \
        in c2.explain()[1]
    assert np.all(net.init_weights()["conv2.gain"] == 1)   # timm's gain_init


@pytest.mark.parametrize("text, message", [
    ("input 4x4x6\nconv 3x3 x4 gain", "`gain` (a learnable gain per filter) applies to a "
                                      "weight-standardised conv only"),
    ("input 4x4x6\nconv 3x3 x4 eps1e-5", "`eps` (the standardisation's ε) applies to a weight"),
    ("input 4x4x6\nconv 3x3 x4 ws gamma1.7", "`gamma` scales the gain: it needs `ws gain`"),
    ("input 4x4x6\nconv 3x3 x4 ws eps0", "the standardisation's epsilon must be positive"),
])
def test_ws_errors_point_at_the_option(text, message):
    err = one_error(text)
    option = message.split("`")[1] if message.startswith("`") else "eps"
    assert message in str(err) and err.line == 2
    assert err.column == text.splitlines()[1].index(option) + 1


@pytest.mark.parametrize("line", [WS_CONVS[0], WS_CONVS[1]])
def test_ws_conv_keeps_what_torch_keeps(line):
    _, module = _timm_module(line, 3)
    net = netspec.parse(f"input 9x8x3\n{line}")
    want = _torch_saved(module, _x(net, 3), list(module.parameters()))
    # the input per sample; once per pass ŵ, the filters' means and 1/stds (and gain·scale)
    assert saved_bytes(net, 3) == want


def test_ws_conv_gradients_equal_autograds():
    _gradients("input 9x8x3\nconv 3x3 p1 x6 ws eps1e-8 nobias relu\n"
               "conv 3x3 s2 x8 ws gain gamma1.7139588594436646 eps1e-5\nbn\n"
               "conv 3x3 s2 same g2 x4 ws gain\nflatten\nfc 3")


def test_ws_conv_is_not_folded_with_the_batch_norm_after_it():
    # the NumPy model folds a bn into a plain conv's weight; a ws conv would standardise the
    # scale away, so its bn runs on its own
    from netspec.backends.numpy.plan import fusions
    net = netspec.parse("input 6x6x3\nconv 3x3 p1 x4 ws\nbn\nconv 3x3 p1 x4\nbn")
    assert "conv1" not in fusions(net) and fusions(net)["conv2"].affine is net["bn2"]
    from torch_reference import torch_forward
    w = random_weights(net, 2)
    x = _x(net)
    np.testing.assert_allclose(net.numpy_model(w)(x), torch_forward(net, w, x), rtol=1e-4,
                               atol=1e-5)


def test_ws_onnx_standardises_the_state_dict_weights_in_the_graph():
    net = netspec.parse("input 6x6x3\nconv 3x3 x4 ws gain gamma2")
    w = random_weights(net, 1)
    model = to_onnx(net, w)
    ops = [n.op_type for n in model.graph.node if n.op_type != "Constant"]
    assert ops == ["Reshape", "InstanceNormalization", "Reshape", "Mul", "Mul", "Conv"]
    inits = {t.name: tuple(t.dims) for t in model.graph.initializer}
    assert inits["conv1.weight"] == (4, 3, 3, 3) and inits["conv1.gain"] == (4, 1, 1, 1)


@pytest.mark.parametrize("opset", [13, 21])
def test_ws_conv_imports_back_from_netspecs_onnx(opset):
    imported = _roundtrip("input 9x8x3\nconv 3x3 p1 nobias x6 ws eps1e-8 relu\n"
                          "conv 3x3 s2 x8 ws gain gamma1.7139588594436646 eps1e-5\n"
                          "conv 1x1 x4 ws gain\nconv 1x1 x4 ws", opset=opset)
    assert set(imported.weights()) >= {"conv2.gain", "conv3.gain", "conv1.weight"}


def test_ws_conv_in_pytorch_code(tmp_path):
    source = _torch_code("input 9x8x3\nconv 3x3 p1 nobias x6 ws eps1e-8 relu\n"
                         "conv 3x3 s2 x8 ws gain gamma1.7139588594436646 eps1e-5\n"
                         "conv 3x3 s2 same x8 ws gain\nconv 3x3 p1 x4 ws\nflatten\nfc 3",
                         tmp_path, "stdconvs")
    assert "StdConv2d(3, 6, 3, padding=1, eps=1e-08)" in source
    assert "ScaledStdConv2d(6, 8, 3, stride=2, gamma=1.7139588594436646, eps=1e-05)" in source
    assert "ScaledStdConv2d(8, 8, 3, stride=2, same=True)" in source
    assert "StdConv2d(8, 4, 3, padding=1, bias=True)" in source


# ---- TensorFlow's `same` at a stride (timm's `tf_` models) ------------------------------

def _same_module(line: str, c: int):
    """timm's dynamic-padding module for one `same` statement at a stride (the oracle)."""
    pytest.importorskip("timm")
    from timm.layers.conv2d_same import Conv2dSame
    from timm.layers.pool2d_same import AvgPool2dSame, MaxPool2dSame
    layer = netspec.parse(f"input 9x9x{c}\n{line}").layers[1]
    if layer.op == "conv":
        torch.manual_seed(1)
        return Conv2dSame(c, layer.filters, layer.kernel, layer.strides, dilation=layer.dilation,
                          groups=layer.groups)
    if layer.mode == "max":
        return MaxPool2dSame(layer.kernel, layer.strides)
    # the zeros pad_same adds are counted whatever count_include_pad says: `countpad`
    return AvgPool2dSame(layer.kernel, layer.strides, count_include_pad=False)


@pytest.mark.parametrize("h, w", [(9, 8), (7, 7), (10, 13)])
@pytest.mark.parametrize("line", ["conv 3x3 s2 same x4", "conv 5x5 s2 same x4",
                                  "conv 4x4 s2 same d2 g2 x4", "conv 3x3 s3 same x2",
                                  "pool max 3 s2 same", "pool max 2 same", "pool max 3x5 s2 same",
                                  "pool avg 3 s2 same countpad", "pool avg 2 same countpad"])
def test_same_at_a_stride_equals_timms_dynamic_same_modules(line, h, w):
    module = _same_module(line, 2).eval()
    net = netspec.parse(f"input {h}x{w}x2\n{line}")
    weights = {f"conv1.{k}": v.detach().numpy() for k, v in module.state_dict().items()}
    x = _x(net)
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    assert net.output_shape == (want.shape[2], want.shape[3], want.shape[1])
    _outputs_agree(net, weights, x, want, {"rtol": 1e-5, "atol": 1e-5})


def test_same_average_without_countpad_divides_by_the_input_cells():
    # TensorFlow's average pooling: 7 → 4 at stride 2 pads 1 after; the last window of
    # row 0 holds columns 6 and the padding, so it is x[0, 6]·(1/2) + … over real cells
    net = netspec.parse("input 7x7x1\npool avg 2 s2 same")
    x = np.arange(49, dtype=np.float32).reshape(1, 1, 7, 7)
    y = net.numpy_model({})(x)[0, 0]
    assert y[0, 3] == pytest.approx((6 + 13) / 2) and y[3, 3] == pytest.approx(48)
    assert y[0, 0] == pytest.approx((0 + 1 + 7 + 8) / 4)
    np.testing.assert_allclose(OnnxModel(net, {})(x)[0, 0], y)


SAME_SPEC = """block down(s) { conv 3x3 s$s same x4 }
input 9x8x3
conv 3x3 s2 same x4
residual { down(1) }
down(2)
pool max 3 s2 same
conv 4x4 same x4
pool avg 2 same countpad
pool avg 3 s2 same
conv 3x3 s2 same x4 ws gain
flatten
fc 3
"""


def test_same_at_a_stride_in_pytorch_code(tmp_path):
    """The generated code pads in forward where the padding depends on the input's size (as
    timm's Conv2dSame, MaxPool2dSame, AvgPool2dSame), and scripts with TorchScript."""
    source = _torch_code(SAME_SPEC, tmp_path, "same")
    assert "Conv2dSame(3, 4, 3, stride=2)" in source and "def pad_same(" in source
    assert "Conv2dSame(in_channels, 4, 3, stride=s)" in source   # a block's parameter stride
    assert "MaxPool2dSame(3, 2)" in source and "AvgPool2dSame(2, 2)" in source
    assert "AvgPool2dSame(3, 2, count_include_pad=False)" in source
    assert "nn.Conv2d(4, 4, 4, padding='same')" in source   # stride 1: torch pads itself
    assert "ScaledStdConv2d(4, 4, 3, stride=2, same=True)" in source


# ---- every new kind together ----------------------------------------------------------

ALL = """input 32x32x3
stem: conv 3x3 s2 same x16 ws gain gamma1.7139588594436646 eps1e-5
groupnorm 4
elu
blur
conv 3x3 p1 nobias x16 ws eps1e-8
groupnorm 1 eps1e-6
pool max 3 s2 same
pool avg 2 same countpad
flatten
fc 10 elu 0.5
"""


@pytest.mark.parametrize("style", ["volumes", "graph"])
def test_the_new_kinds_are_drawn(style):
    from netspec.picture import draw
    svg = draw(netspec.parse(ALL, "all.ns"), style)
    assert "<svg" in svg and "groupnorm" in svg and "blur" in svg


def test_a_ws_convs_filters_are_drawn_standardised():
    # `draw --filters` shows what the conv convolves with: each filter at mean 0, variance 1
    net = netspec.parse("input 8x8x3\nconv 3x3 x4 ws")
    w = random_weights(net, 1)
    bank = net["conv1"].filter_bank({"weight": w["conv1.weight"], "bias": w["conv1.bias"]})
    np.testing.assert_allclose(bank.reshape(4, -1).mean(axis=1), 0, atol=1e-6)
    np.testing.assert_allclose(bank.reshape(4, -1).var(axis=1), 1, rtol=1e-4)


def test_the_new_kinds_round_trip_together(tmp_path):
    # (pooling's `same` imports as the padding that gives the same windows at this size, as
    # every pooling does: `pool 3 s2 ceil`, and no padding at all for the 2×2 average)
    imported = ALL.replace("pool max 3 s2 same", "pool 3 s2 ceil").replace(
        "pool avg 2 same countpad", "pool avg 2")
    for opset in (17, 21):
        got = _roundtrip(imported, opset=opset).network
        np.testing.assert_allclose(got.numpy_model(random_weights(got, 5))(_x(got)),
                                   netspec.parse(ALL).numpy_model(random_weights(got, 5))(_x(got)),
                                   **TOL)
    _torch_code(ALL, tmp_path, "all")


@pytest.mark.parametrize("spec", ["input 32x32x8\nblur\nblur 5 s1\nblur 4",
                                  "input 32x32x16\ngroupnorm 4\nelu\ngroupnorm 1",
                                  "input 32x32x8\nconv 3x3 p1 x16 ws\nconv 3x3 s2 same x8 ws gain"])
def test_numpy_memory_of_the_new_kinds_is_what_tracemalloc_sees(spec):
    from test_memory import _allocated

    from netspec.analysis.memory import forward_peak
    from netspec.backends.numpy.memory import NumpyRuntime
    net = netspec.parse(spec)
    assert forward_peak(net, 16, runtime=NumpyRuntime()).bytes == \
        pytest.approx(_allocated(net, 16), rel=0.10)


def test_tf_efficientnet_b0s_stem_equals_timms_at_odd_sizes():
    """A `tf_` model's stride-2 stem (timm's Conv2dSame, TF's batch-norm ε) is netspec's
    `same`, at input sizes where the padding differs (even: 0 before, 1 after; odd: 1, 1)."""
    timm = pytest.importorskip("timm")
    model = timm.create_model("tf_efficientnet_b0", pretrained=False).eval()
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for p in (model.bn1.running_mean, model.bn1.running_var, model.bn1.weight):
            p.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, p.shape).astype(np.float32)))
    weights = {k: v.numpy() for k, v in model.state_dict().items()
               if k.split(".")[0] in ("conv_stem", "bn1") and "num_batches" not in k}
    for size in (32, 33):
        net = netspec.parse(f"input {size}x{size}x3\nconv_stem: conv 3x3 s2 same nobias x32\n"
                            "bn1: bn eps1e-3\nsilu")
        x = _x(net)
        with torch.no_grad():
            want = model.bn1(model.conv_stem(torch.from_numpy(x))).numpy()
        _outputs_agree(net, weights, x, want, {"rtol": 1e-4, "atol": 1e-5})


@pytest.mark.parametrize("text, hint", [
    ("input 8x8x3\nconv 3x3 x8 ws gian", "did you mean `gain`?"),
    ("input 8x8x3\nconv 3x3 x8 wz", "[ws [gain] [gammaG] [epsE]]"),
    ("input 8x8x3\ngroupnorm", "the form is `groupnorm G [epsE]"),
    ("input 8x8x3\nblur 3 s2 p1", "the form is `blur [F] [sN]"),
])
def test_syntax_errors_in_the_new_statements_teach_their_form(text, hint):
    err = one_error(text)
    assert hint in err.render() and err.line == 2
