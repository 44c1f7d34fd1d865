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
    want = _torch_saved(lambda t: pool(F.conv2d(t, w)), _x(net, 1), [w])
    # the conv's input; blur's input, its 8×9 padded copy and its 4 filters of 3×3
    assert saved_bytes(net, 1) == want == 4 * (6 * 7 * 3 + 6 * 7 * 4 + 8 * 9 * 4 + 4 * 9)


def test_blur_gradients_equal_autograds():
    _gradients("input 15x14x3\nconv 3x3 p1 x4\nblur\nblur 4 s1\nblur 5 s3\nflatten\nfc 3")


def test_blur_imports_back_from_netspecs_onnx():
    _roundtrip("input 15x14x3\nconv 3x3 p1 x4 relu\nblur\nblur 4 s1\nblur 5 s3\nfc 3")


def test_blur_in_pytorch_code(tmp_path):
    source = _torch_code("block body(s) { blur 3 s$s }\ninput 9x8x3\nconv 3x3 p1 x4\n"
                         "residual { body(1) }\nblur\nblur 4 s1\nflatten\nfc 3", tmp_path, "blurs")
    assert "BlurPool2d(4, filt_size=4, stride=1)" in source and "BlurPool2d(4)" in source


def test_blur_numpy_memory_is_what_tracemalloc_sees():
    from test_memory import _allocated

    from netspec.analysis.memory import forward_peak
    from netspec.backends.numpy.memory import NumpyRuntime
    net = netspec.parse("input 32x32x8\nblur\nblur 5 s1\nblur 4")
    assert forward_peak(net, 16, runtime=NumpyRuntime()).bytes == \
        pytest.approx(_allocated(net, 16), rel=0.10)


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
