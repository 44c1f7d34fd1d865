"""The modern-CNN layer kinds against PyTorch: activations, bn epsilon, gates, countpad, aux heads."""

import numpy as np
import onnx
import pytest

import netspec
from netspec.backends.onnx import OnnxModel, to_onnx
from random_nets import random_weights

torch = pytest.importorskip("torch")
F = torch.nn.functional
TOL = {"rtol": 1e-5, "atol": 1e-6}

#: Each activation as torch computes it (the oracle), by netspec name.
TORCH_ACTIVATIONS = {
    "silu": F.silu, "gelu": F.gelu, "hswish": F.hardswish, "hsigmoid": F.hardsigmoid,
    "leaky": F.leaky_relu, "leaky 0.2": lambda t: F.leaky_relu(t, 0.2),
    "leaky 1.5": lambda t: F.leaky_relu(t, 1.5),
}


def _wide_values() -> np.ndarray:
    """A 1×2×8×8 batch from −60 to 60: the kinks at ±3 and 0, and tails where naive
    formulas overflow (e^60) or lose every digit."""
    v = np.concatenate([np.linspace(-60, 60, 64), np.linspace(-4, 4, 64)]).astype(np.float32)
    return v.reshape(1, 2, 8, 8)


@pytest.mark.parametrize("act", sorted(TORCH_ACTIVATIONS))
@pytest.mark.parametrize("opset", [13, 19, 21])
def test_activations_match_torch_in_numpy_and_onnxruntime(act, opset):
    net = netspec.parse(f"input 8x8x2\n{act}")
    x = _wide_values()
    want = TORCH_ACTIVATIONS[act](torch.from_numpy(x)).numpy()
    got = net.numpy_model({})(x)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, **TOL)
    np.testing.assert_allclose(OnnxModel(net, {}, opset)(x), want, **TOL)


def test_activation_shorthand_after_conv_and_fc():
    net = netspec.parse("input 6x6x3\nconv 3x3 x4 hswish\nfc 5 leaky 0.1")
    assert [layer.op for layer in net.layers] == ["input", "conv", "hswish", "fc", "leaky"]
    assert net["leaky1"].slope == pytest.approx(0.1)
    assert netspec.parse("input 4\nleaky")["leaky1"].slope == pytest.approx(0.01)   # torch's default


def test_onnx_uses_the_standard_operators_for_each_opset():
    def ops(spec, opset):
        return [n.op_type for n in to_onnx(netspec.parse(spec), {}, opset).graph.node]
    assert ops("input 4x4x1\ngelu", 20) == ["Gelu"]
    assert ops("input 4x4x1\ngelu", 19) == ["Div", "Erf", "Add", "Mul", "Mul"]
    assert ops("input 4x4x1\nhswish", 14) == ["HardSwish"]
    assert ops("input 4x4x1\nhswish", 13) == ["HardSigmoid", "Mul"]
    assert ops("input 4x4x1\nsilu", 21) == ["Sigmoid", "Mul"]
    assert ops("input 4x4x1\nleaky 0.3", 21) == ["LeakyRelu"]
    sigmoid = to_onnx(netspec.parse("input 4x4x1\nhsigmoid"), {}, 21).graph.node[0]
    attrs = {a.name: a.f for a in sigmoid.attribute}
    assert sigmoid.op_type == "HardSigmoid"
    assert attrs["alpha"] == pytest.approx(1 / 6) and attrs["beta"] == pytest.approx(0.5)


def test_batch_norm_epsilon_is_used_by_every_backend():
    # a variance of 1e-3 makes ε = 1e-3 halve the variance term's weight: 1/√(2e-3), not 1/√(1.01e-3)
    net = netspec.parse("input 3x3x2\nbn eps1e-3")
    assert net["bn1"].eps == pytest.approx(1e-3)
    assert netspec.parse("input 3x3x2\nbn")["bn1"].eps == pytest.approx(1e-5)
    w = {"bn1.weight": np.ones(2, np.float32), "bn1.bias": np.zeros(2, np.float32),
         "bn1.running_mean": np.zeros(2, np.float32),
         "bn1.running_var": np.full(2, 1e-3, np.float32)}
    x = np.ones((1, 2, 3, 3), np.float32)
    expected = 1 / np.sqrt(1e-3 + 1e-3)
    np.testing.assert_allclose(net.numpy_model(w)(x), expected, rtol=1e-5)
    np.testing.assert_allclose(OnnxModel(net, w)(x), expected, rtol=1e-5)


@pytest.mark.parametrize("spec, message", [
    ("input 4x4x2\nbn eps0", "epsilon must be positive"),
    ("input 4x4x2\npool max 3 s1 p1 countpad", "`countpad` applies to average pooling only"),
    ("input 4x4x2\naux { fc 3 }", "ends inside an `aux` head"),
    ("input 4x4x2\ngate { }", "a gate has no layers"),
])
def test_bad_uses_are_clear_errors(spec, message):
    with pytest.raises(netspec.NetspecError) as err:
        netspec.parse(spec)
    assert message in str(err.value)


def test_squeeze_and_excitation_equals_torchvisions_module():
    torchvision = pytest.importorskip("torchvision")
    se = torchvision.ops.SqueezeExcitation(8, 3).eval()
    net = netspec.parse("input 5x5x8\n"
                        "gate { pool avg global; fc1: conv 1x1 x3 relu; fc2: conv 1x1 x8 sigmoid }")
    assert net.total_params == sum(p.numel() for p in se.parameters())
    assert net.output_shape == (5, 5, 8) and net["mul1"].inputs[0] is net["input"]
    weights = {k: v.detach().numpy() for k, v in se.state_dict().items()}
    x = np.random.default_rng(0).standard_normal((2, 8, 5, 5)).astype(np.float32)
    with torch.no_grad():
        want = se(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net.numpy_model(weights)(x), want, **TOL)
    np.testing.assert_allclose(OnnxModel(net, weights)(x), want, **TOL)
    onnx.checker.check_model(to_onnx(net, weights), full_check=True)


def test_a_labelled_gate_prefixes_its_layers():
    net = netspec.parse("input 4x4x8\nse: gate { pool avg global; fc1: conv 1x1 x2 relu; "
                        "fc2: conv 1x1 x8 sigmoid }")
    assert set(net.weight_shapes()) == {"se.fc1.weight", "se.fc1.bias", "se.fc2.weight",
                                        "se.fc2.bias"}


def test_a_gate_of_the_inputs_own_shape_multiplies_element_by_element():
    net = netspec.parse("input 6x6x3\ngate { conv 3x3 p1 x3 sigmoid }")
    w = random_weights(net, 1)
    x = np.random.default_rng(1).standard_normal((2, 3, 6, 6)).astype(np.float32)
    t = torch.from_numpy(x)
    want = (t * torch.sigmoid(F.conv2d(t, torch.from_numpy(w["conv1.weight"]),
                                       torch.from_numpy(w["conv1.bias"]), padding=1))).numpy()
    np.testing.assert_allclose(net.numpy_model(w)(x), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(OnnxModel(net, w)(x), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("gate, shape", [("pool avg global; conv 1x1 x5", "1×1×5"),
                                          ("conv 3x3 x8", "4×4×8"),
                                          ("pool 2 s2", "3×3×8")])
def test_a_gate_that_is_neither_per_channel_nor_the_inputs_shape_is_an_error(gate, shape):
    with pytest.raises(netspec.ShapeError) as err:
        netspec.parse(f"input 6x6x8\ngate {{ {gate} }}")
    text = err.value.render()
    assert f"the gate gives {shape}" in text and "1×1×8 (one value per channel) or 6×6×8" in text
    assert "input: 6×6×8 from `input`" in text


@pytest.mark.parametrize("spec", ["input 7x7x2\npool avg 3 s1 p1 countpad",
                                  "input 6x6x2\npool avg 3 s2 p1 ceil countpad",
                                  "input 7x6x2\npool avg 2 s2 same countpad",
                                  "input 5x5x2\npool avg 4 s3 p2 ceil countpad"])
def test_countpad_averages_count_the_padding_as_torch_does(spec):
    net = netspec.parse(spec)
    x = np.random.default_rng(2).standard_normal((2, *net.numpy_model({}).input_shape))
    x = x.astype(np.float32)
    layer = net["pool1"]
    (top, bottom), (left, right) = layer.pads
    t = torch.from_numpy(x)
    if (top, left) == (bottom, right):   # torch pads symmetric windows itself
        want = F.avg_pool2d(t, layer.kernel, layer.strides, padding=(top, left),
                            ceil_mode=layer.ceil_mode, count_include_pad=True)
    else:                                # zeros padded by hand are always counted
        want = F.avg_pool2d(F.pad(t, (left, right, top, bottom)), layer.kernel, layer.strides)
    np.testing.assert_allclose(net.numpy_model({})(x), want.numpy(), **TOL)
    np.testing.assert_allclose(OnnxModel(net, {})(x), want.numpy(), **TOL)


def test_countpad_corner_is_a_ninth_of_four_cells():
    ones = np.ones((1, 1, 3, 3), np.float32)
    y = netspec.parse("input 3x3x1\npool avg 3 s1 p1 countpad").numpy_model({})(ones)[0, 0]
    assert y[0, 0] == pytest.approx(4 / 9) and y[0, 1] == pytest.approx(6 / 9)
    assert y[1, 1] == pytest.approx(1)


AUX = """input 8x8x3
conv 3x3 p1 x4 relu
head: aux { pool avg to 2x2; conv 1x1 x2 nobias; bn eps1e-3; fc1: fc 5 relu; fc2: fc 3 }
conv 3x3 x6
fc 2
"""


def test_an_aux_head_has_weights_but_no_part_in_the_output():
    net = netspec.parse(AUX)
    plain = netspec.parse(AUX.replace(AUX.splitlines()[2], ""))
    head = {"head.conv1.weight": (2, 4, 1, 1), "head.fc1.weight": (5, 8), "head.fc1.bias": (5,),
            "head.fc2.weight": (3, 5), "head.fc2.bias": (3,), "head.bn1.weight": (2,),
            "head.bn1.bias": (2,), "head.bn1.running_mean": (2,), "head.bn1.running_var": (2,)}
    assert net.weight_shapes() == plain.weight_shapes() | head
    assert net.total_params == plain.total_params + 8 + 4 + 45 + 18
    assert net["conv2"].inputs == [net["relu1"]]   # the main path reads what the head read
    assert net.output_shape == (2,)
    w = random_weights(net, 0)
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    main = {k: v for k, v in w.items() if not k.startswith("head.")}
    want = plain.numpy_model(main)(x)
    np.testing.assert_allclose(net.numpy_model(w)(x), want, **TOL)
    np.testing.assert_allclose(OnnxModel(net, w)(x), want, **TOL)
    assert "head.fc2" not in net.numpy_model(w).activations(x)
    exported = to_onnx(net, w)
    assert not [i.name for i in exported.graph.initializer if i.name.startswith("head.")]
    assert not [n.name for n in exported.graph.node if n.name.startswith("head.")]


def test_export_torch_writes_every_new_kind(tmp_path):
    # the generated module's own torch layers (nn.LeakyReLU, nn.GELU, BatchNorm2d(eps=…),
    # AvgPool2d(count_include_pad=True), the gate's product) compute what NumPy computes,
    # and the aux head's modules exist for the state_dict but are not run
    import importlib.util

    from netspec.backends.torch import torch_source
    net = netspec.parse("""block se(c) { gate { pool avg global; fc1: conv 1x1 x2 relu
                                                  fc2: conv 1x1 x$c hsigmoid } }
input 8x8x3
conv 3x3 p1 x8 leaky 0.2
bn eps1e-3
gelu
se(8)
head: aux { pool avg to 2x2; fc1: fc 4 silu }
pool avg 3 s1 p1 countpad
conv 1x1 x4 hswish
fc 3
""", "kinds.ns")
    path = tmp_path / "kinds.py"
    source = torch_source(net)
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("kinds", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert "nn.LeakyReLU(0.2)" in source and "eps=0.001" in source
    assert "count_include_pad=True" in source
    model = module.Kinds().eval()
    w = random_weights(net, 3)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in w.items()}, strict=True)
    x = np.random.default_rng(3).standard_normal((2, 3, 8, 8)).astype(np.float32)
    with torch.no_grad():
        got = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, net.numpy_model(w)(x), rtol=1e-4, atol=1e-5)


def test_onnx_import_reads_the_newer_activations_bn_epsilon_and_countpad():
    from netspec.importer import import_onnx
    net = netspec.parse("input 8x8x3\nconv 3x3 p1 x4 hswish\nbn eps1e-3\nleaky 0.2\ngelu\n"
                        "hsigmoid\nleaky\npool avg 3 s1 p1 countpad\nfc 3", "kinds.ns")
    w = random_weights(net, 5)
    imported = import_onnx(net.to_onnx(w), name="kinds")
    got = imported.network
    assert [(layer.text, layer.output_shape) for layer in got.layers] == \
        [(layer.text, layer.output_shape) for layer in net.layers]
    x = np.random.default_rng(5).standard_normal((2, 3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(got.numpy_model(imported.weights())(x), net.numpy_model(w)(x),
                               **TOL)
