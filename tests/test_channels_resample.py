"""Layer norm, layer scale, per-pixel linear, split, shuffle, transposed conv and upsampling:
arithmetic derived by hand, errors, and both backends against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import one_error

import netspec

SPECS = {
    "layernorm": "input 6x5x8\nlayernorm eps1e-6\nconv 1x1 x4\nflatten\nlayernorm\nfc 3",
    "scale": "input 6x5x8\nlayer_scale: scale\nconv 3x3 x4",
    "linear": "input 6x5x8\nlinear 32 relu\nlinear 8 nobias\nflatten\nlinear 5",
    "split": "input 6x6x12\nsplit { branch {} branch b: [ conv 1x1 x6; relu ] }\nshuffle 2\n"
             "split { branch {} branch { conv 3x3 p1 x4 } branch { pool 3 s1 p1 } }\nshuffle 3",
    "deconv": "input 5x4x6\ndeconv 3x3 s2 p1 op1 x4\ndeconv 2x3 s3 d2 g2 op1 nobias x6 relu\n"
              "deconv 4x4 s2 p1 g2 x2",
    "upsample": "input 5x4x3\nupsample 2\nupsample bilinear 3x2\nupsample bilinear to 7x5\n"
                "upsample nearest to 13x9\n"
                "concat { branch [ conv 1x1 x2 ] branch [ pool avg global; upsample bilinear to branch ] }\n"
                "upsample bilinear to input\nupsample nearest to input",
}


@pytest.mark.parametrize("kind", sorted(SPECS))
@pytest.mark.parametrize("opset", [13, 21])
def test_numpy_and_onnx_equal_pytorch(kind, opset):
    torch = pytest.importorskip("torch")
    from torch_reference import torch_forward

    from netspec.backends.onnx import OnnxModel
    net = netspec.parse(SPECS[kind])
    rng = np.random.default_rng(1)
    # random values everywhere (layer scales and norms too), not the identity they start as
    weights = {k: rng.standard_normal(v.shape).astype(np.float32)
               for k, v in net.init_weights().items()}
    h, w, c = net.input_shape
    x = rng.standard_normal((2, c, h, w), dtype=np.float32)
    torch.manual_seed(0)
    want = torch_forward(net, weights, x)
    tol = {"rtol": 1e-4, "atol": 1e-5 * max(1.0, float(np.abs(want).max()))}
    np.testing.assert_allclose(net.numpy_model(weights)(x), want, **tol)
    np.testing.assert_allclose(OnnxModel(net, weights, opset=opset)(x), want, **tol)


def test_transposed_conv_arithmetic():
    net = netspec.parse(SPECS["deconv"])
    d1, d2, d3 = (layer for layer in net.layers if layer.op == "deconv")
    # (n − 1)·s − 2p + d·(f − 1) + op + 1
    assert d1.output_shape == ((5 - 1) * 2 - 2 + 2 + 1 + 1, (4 - 1) * 2 - 2 + 2 + 1 + 1, 4)
    assert d2.output_shape == ((10 - 1) * 3 + 2 * 1 + 1 + 1, (8 - 1) * 3 + 2 * 2 + 1 + 1, 6)
    assert d3.output_shape == ((31 - 1) * 2 - 2 + 3 + 1, (27 - 1) * 2 - 2 + 3 + 1, 2)
    # weights (C_in, K/g, FH, FW): every input pixel meets every weight once
    assert net.weight_shapes()[f"{d2.name}.weight"] == (4, 3, 2, 3)
    assert d1.params == 6 * 4 * 9 + 4 and d2.params == 4 * 3 * 6
    assert d1.macs == 5 * 4 * 6 * 4 * 9
    assert netspec.kinds.transposed_output_size(7, 4, 2, 1) == 14


def test_channel_layers_count_their_parameters_and_name_their_arrays():
    net = netspec.parse("input 6x5x8\nlayernorm\nlayer_scale: scale\nlinear 32\nlinear 8 nobias")
    assert [layer.params for layer in net.layers[1:]] == [2 * 8, 8, (8 + 1) * 32, 32 * 8]
    assert net.layers[3].macs == 6 * 5 * 8 * 32
    shapes = net.weight_shapes()
    assert shapes["layer_scale"] == (8, 1, 1)      # a bare parameter, as torch's CNBlock
    assert shapes["linear1.weight"] == (32, 8) and "linear2.bias" not in shapes
    weights = net.init_weights()
    assert np.all(weights["layer_scale"] == 1) and np.all(weights["layernorm1.weight"] == 1)


def test_split_and_upsample_shapes_and_names():
    net = netspec.parse("input 8x8x6\n"
                        "convs: concat { branch [ conv 1x1 x4 ] branch [ pool avg global; "
                        "upsample bilinear to branch ] }\n"
                        "split { branch {} branch b: [ conv 1x1 x5 ] }\nupsample to 20x3\n"
                        "upsample bilinear 2x3")
    assert net["convs.0.0"].output_shape == (8, 8, 4)     # a labelled concat numbers branches
    assert net["convs.1.1"].output_shape == (8, 8, 6)     # back to the branch's input H×W
    assert net["b.0"].input_shape == (8, 8, 5)
    assert net.output_shape == (40, 9, 10)


@pytest.mark.parametrize("text, message", [
    ("input 4x4x5\nsplit { branch {} branch { conv 1x1 x2 } }",
     "`split` into 2 branches needs channels divisible by 2"),
    ("input 4x4x6\nshuffle 4", "shuffle groups 4 does not divide the 6 input channels"),
    ("input 4x4x6\ndeconv 3x3 same x4", "unexpected `same` in `deconv`"),
    ("input 4x4x6\ndeconv 3x3 s2 op2 x4", "output padding 2 must be smaller than the stride"),
    ("input 1x1x6\ndeconv 1x1 p1 x4", "output height is -1"),
    ("input 4x4x6\ndeconv 3x3 g4 x4", "groups 4 does not divide the 6 input channels"),
    ("input 4x4x6\nupsample bilinear to branch", "`upsample ... to branch` is outside any branch"),
    ("input 4x4x6\nlayernorm eps0", "epsilon must be positive"),
    ("input 4x4x6\nupsample 0", "upsampling factor must be at least 1"),
    ("input 4x4x6\nfc 3\nscale", "`scale` needs an H×W×C volume"),
])
def test_errors_point_at_the_layer(text, message):
    err = one_error(text)
    assert message in str(err)
    assert err.line == text.count("\n") + 1


def test_linear_is_no_longer_an_alias_of_fc():
    net = netspec.parse("input 2x2x3\nlinear 4")
    assert net.output_shape == (2, 2, 4)


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_export_torch_writes_each_kind(kind, tmp_path):
    """`export --torch` writes the kind as a module whose outputs are netspec's."""
    pytest.importorskip("torch")
    from test_torch_codegen import _check
    _check(netspec.parse(SPECS[kind], f"{kind}.ns"), tmp_path, script=True)
