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
    "eca": "input 6x6x16\nconv 3x3 p1 x16\nse: gate { pool avg global; conv: eca; sigmoid }\n"
           "pool avg global\nflatten\neca 5\nfc 3",
    "rsoftmax": "input 4x4x16\nconv 1x1 x16\nrsoftmax 2\nconv 1x1 x16\nrsoftmax 2 g4\n"
                "rsoftmax 4 g2\nrsoftmax 1\npool avg global\nflatten\nrsoftmax 2 g2",
    "chunksum": "input 4x4x12\nconv 1x1 x12\nchunksum 2\nchunksum 3\nconv 1x1 x8\n"
                "pool avg global\nflatten\nchunksum 4",
    "s2d": "input 8x16x3\ns2d 4\nconv 1x1 x8\ns2d 2\nrelu\nconv 1x1 x4",
    "scale": "input 5x4x6\nconv 1x1 x6\ngamma: scale (C,)\nlab: scale (1,) bias\n"
             "gain: scale ()\nlayer_scale: scale\nsc: scale (C,) bias\nscale (C,1,1) bias\n"
             "flatten\nfc 4\nv: scale (C,)\nscale (1,) bias",
    "mul": "input 5x4x6\nconv 1x1 x6\nmul 0.17\nrelu\nresidual { conv 3x3 p1 x6; mul 0.2 }\n"
           "mul -2\nflatten\nfc 3\nmul 1e-1",
    "slice": "input 5x4x12\nslice 2:10\nconv 1x1 x8\nslice :6\nslice -4:\nrelu\nslice 1:-1\n"
             "flatten\nslice 3:7",
    "split": "input 6x5x16\nsplit 4,12 { branch [ conv 3x3 p1 x4 ] branch b: [ conv 1x1 x6 ] }\n"
             "split 2,3,5 { branch { conv 1x1 x2 } branch {} branch { relu } }\n"
             "split {C//4},{C - C//4} { branch { conv 3x3 p1 x{C} nobias } branch {} }",
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


# ---- split into unequal runs ----------------------------------------------------------
def test_split_runs_are_the_sizes_written_in_order() -> None:
    net = netspec.parse(SPECS["split"])
    chunks = [layer for layer in net.layers if layer.kind == "chunk"]
    assert [c.channels for c in chunks] == [(0, 4), (4, 16), (0, 2), (2, 5), (5, 10),
                                            (0, 2), (2, 10)]
    assert net.output_shape == (6, 5, 10)
    assert all(c.flops() == 0 and c.params == 0 for c in chunks)


def test_fasternet_partial_conv_of_timm() -> None:
    """timm's FasterNet Partial_conv3 ('split_cat'): conv over the first C/4 channels, the
    rest passed on: torch.split(x, [C/4, C − C/4], 1), then cat."""
    from timm.models.fasternet import Partial_conv3
    module = Partial_conv3(16, 4, "split_cat").eval()
    net = netspec.parse("input 6x6x16\nsplit {C//4},{C - C//4} "
                        "{ branch { partial_conv3: conv 3x3 p1 x{C} nobias } branch {} }")
    _same_as_timm(module, net)


def test_mixnet_mixed_conv_of_timm() -> None:
    """timm's MixedConv2d: channels split C//n each with the rest to the first, one kernel
    size per run, outputs concatenated (its ModuleDict keys are the run numbers)."""
    from timm.layers import MixedConv2d
    module = MixedConv2d(20, 20, [3, 5, 7], dilation=1, depthwise=True).eval()
    runs = [20 // 3 + 20 % 3, 20 // 3, 20 // 3]
    net = netspec.parse(f"input 9x9x20\nsplit {','.join(map(str, runs))} {{\n" + "".join(
        f"    branch {{ {i}: conv {k}x{k} p{k // 2} g{c} x{c} nobias }}\n"
        for i, (k, c) in enumerate(zip([3, 5, 7], runs))) + "}")
    _same_as_timm(module, net)


@pytest.mark.parametrize("text, message, column", [
    ("input 4x4x8\nsplit 2,2 { branch {} branch {} }",
     "the runs of `split` add up to 4 channels, but its input is 4×4×8", 7),
    ("input 4x4x8\nsplit 2,2,4 { branch {} branch {} }", "`split` into 3 runs has 2 branches", 7),
    ("input 4x4x8\nsplit 8,0 { branch {} branch {} }",
     "a run of `split` must be at least 1 channel, not 0", 7),
    ("input 4x4x6\nsplit { branch {} branch {} branch {} branch {} }",
     "`split` into 4 branches needs channels divisible by 4", 1),
])
def test_split_errors_point_at_the_runs(text: str, message: str, column: int) -> None:
    err = one_error(text)
    assert message in str(err)
    assert (err.line, err.column) == (2, column)


def test_split_runs_print_and_parse_back() -> None:
    from netspec.language.format import format_spec
    text = "input 4x4x8\nsplit   {C-2},$n { branch { relu } branch {} }\n"
    out = format_spec("block b(n) {\n" + text.split("\n")[1] + "\n}\n" + text.split("\n")[0]
                      + "\nb(2)\n")
    assert "    split {C-2},$n { branch { relu } branch {} }\n" in out
    assert format_spec(out) == out


def _torch_export_imports(module, shape: tuple[int, ...], tmp_path, text: str,
                          state_names: bool = True, dynamic: bool = True) -> str:
    """`module` exported by torch.onnx.export (opset 17) imports to a NumPy model computing
    what torch computes (with its weights under their state_dict names where
    `state_names`); `text` is in the imported spec."""
    from test_onnx_import import _export, _same_as_torch
    imported = _same_as_torch(module, _export(module, shape, tmp_path, dynamic=dynamic),
                              shape, state_names)
    assert text in imported.text, imported.text
    return imported.text


def test_a_torch_export_of_an_unequal_split_imports(tmp_path) -> None:
    """(The importer does not yet name convs numbered inside a split's branches, timm's
    `conv_dw.0`: the outputs are compared, not the names.)"""
    from timm.layers import MixedConv2d
    module = MixedConv2d(20, 20, [3, 5, 7], dilation=1, depthwise=True)
    _torch_export_imports(module, (1, 20, 9, 9), tmp_path, "split 8,6,6 {", state_names=False)


# ---- slice ---------------------------------------------------------------------------
def test_slice_takes_the_channels_python_would() -> None:
    net = netspec.parse(SPECS["slice"])
    slices = [layer for layer in net.layers if layer.kind == "slice"]
    assert [s.channels for s in slices] == [(2, 10), (0, 6), (2, 6), (1, 3), (3, 7)]
    assert [s.output_shape for s in slices] == [(5, 4, 8), (5, 4, 6), (5, 4, 4), (5, 4, 2), (4,)]
    assert all(s.params == 0 and s.flops() == 0 for s in slices)
    assert slices[0].explain()[0] == "channels 2…9 of 12, out = 5×4×8"


def test_dpn_dual_path_reads_as_slices() -> None:
    """DPN's DualPathBlock: resid = x_s1 + out[:, :n]; dense = cat(x_s2, out[:, n:])."""
    net = netspec.parse("input 4x4x24\nconv 1x1 x40\n"
                        "concat { branch { slice :16 } branch { slice 16: } }")
    assert net.output_shape == (4, 4, 40)


@pytest.mark.parametrize("text, message, hint", [
    ("input 4x4x8\nslice 4:12", "`slice 4:12` takes channels 4 to 11, but its input has 8 "
     "(4×4×8)", "the channels are numbered 0 to 7"),
    ("input 4x4x8\nslice 6:2", "`slice 6:2` takes no channels, but its input has 8", None),
    ("input 4x4x8\nslice -9:", "takes channels -1 to 7", None),
])
def test_slice_errors_point_at_the_range(text: str, message: str, hint: str | None) -> None:
    err = one_error(text)
    assert message in str(err)
    assert (err.line, err.column) == (2, 7)
    if hint:
        assert hint in err.hint


def test_slice_is_still_a_label() -> None:
    net = netspec.parse("input 4x4x8\nslice: slice :4\nrelu")
    assert net["slice"].output_shape == (4, 4, 4)
    err = one_error("input 4x4x8\nslice 1-3")   # a syntax error, with the statement's form
    assert "unexpected `1-3` in `slice`" in str(err) and "slice :64" in err.hint


def test_a_torch_export_of_channel_slices_imports(tmp_path) -> None:
    class Dual(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 12, 1)

        def forward(self, x):
            y = self.conv(x)
            return torch.cat([y[:, :4] + y[:, 4:8], y[:, 8:]], 1)
    _torch_export_imports(Dual(), (1, 3, 6, 6), tmp_path, "slice 8:12")


# ---- scale and mul -------------------------------------------------------------------
def test_scales_store_the_shapes_written() -> None:
    net = netspec.parse(SPECS["scale"])
    shapes = net.weight_shapes()
    assert shapes["gamma"] == (6,) and shapes["gain"] == () and shapes["layer_scale"] == (6, 1, 1)
    assert shapes["lab.scale"] == shapes["lab.bias"] == (1,)
    assert shapes["sc.scale"] == shapes["sc.bias"] == (6,)
    assert shapes["v"] == (4,)
    # parameters: C, 2·1, 1, C, 2·C, 2·C; FLOPs one (and one more with a bias) per value
    assert [net[n].params for n in ("gamma", "lab", "gain", "layer_scale", "sc")] == \
        [6, 2, 1, 6, 12]
    assert net["gamma"].flops() == 5 * 4 * 6 and net["lab"].flops() == 2 * 5 * 4 * 6
    init = net.init_weights()
    assert init["lab.scale"] == 1 and init["lab.bias"] == 0 and init["gain"] == 1


def test_constant_multiply_counts_one_flop_per_value() -> None:
    net = netspec.parse(SPECS["mul"])
    muls = [layer for layer in net.layers if layer.kind == "const_mul"]
    assert [m.factor for m in muls] == [0.17, 0.2, -2.0, 0.1]
    assert [m.flops() for m in muls] == [120, 120, 120, 3] and net.total_params == 42 + 330 + 363
    assert muls[0].explain()[0] == "out = in × 0.17 = 5×4×6"


def test_learnable_affine_block_of_timm() -> None:
    """HGNetV2's LearnableAffineBlock: scale·x + bias, both of shape (1,)."""
    from timm.models.hgnet import LearnableAffineBlock

    class Stem(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
            self.lab = LearnableAffineBlock()

        def forward(self, x):
            return self.lab(self.conv(x))
    net = netspec.parse("input 8x8x3\nconv: conv 3x3 p1 x8 nobias\nlab: scale (1,) bias")
    _same_as_timm(Stem().eval(), net)


def test_convnext_block_of_timm_has_a_gamma_of_c() -> None:
    """timm's ConvNeXtBlock: its layer scale is a bare `gamma` of shape (C,)."""
    from timm.models.convnext import ConvNeXtBlock
    block = ConvNeXtBlock(16, ls_init_value=1e-6).eval()
    net = netspec.parse("input 7x7x16\nresidual {\n    conv_dw: conv 7x7 p3 g16 x16\n"
                        "    norm: layernorm eps1e-6\n"
                        "    mlp: { fc1: linear 64 gelu; fc2: linear 16 }\n"
                        "    gamma: scale (C,)\n}")
    _same_as_timm(block, net)


def test_inception_resnet_block35_of_timm_scales_its_residual() -> None:
    """timm's Block35: out = conv2d(cat(branches)) · 0.17 + x, then relu."""
    from timm.models.inception_resnet_v2 import Block35
    cbr = "{{ conv: conv {k}x{k} p{p} x{c} nobias; bn: bn; relu }}"
    seq = lambda *convs: "[ " + "; ".join(f"{i}: " + cbr.format(k=k, p=k // 2, c=c)
                                          for i, (k, c) in enumerate(convs)) + " ]"
    spec = ("input 6x6x320\nresidual {\n    concat {\n"
            f"        branch {{ branch0: {cbr.format(k=1, p=0, c=32)} }}\n"
            f"        branch branch1: {seq((1, 32), (3, 32))}\n"
            f"        branch branch2: {seq((1, 32), (3, 48), (3, 64))}\n    }}\n"
            "    conv2d: conv 1x1 x320\n    mul 0.17\n}\nrelu")
    _same_as_timm(Block35(scale=0.17).eval(), netspec.parse(spec))


@pytest.mark.parametrize("text, message, column", [
    ("input 4x4x8\nfc 3\nscale", "`scale` needs an H×W×C volume", 1),
    ("input 4x4x8\nscale (C,2)", "unexpected", 7),
    ("input 4x4x8\nmul x", "unexpected", 5),
])
def test_scale_and_mul_errors(text: str, message: str, column: int) -> None:
    err = one_error(text)
    assert message in str(err)
    assert (err.line, err.column) == (text.count("\n") + 1, column)


def test_a_torch_export_of_constant_multiplies_imports(tmp_path) -> None:
    class Scaled(torch.nn.Module):   # Inception-ResNet's `out * self.scale + x`
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            return torch.relu(self.conv(x) * 0.17 + x)
    _torch_export_imports(Scaled(), (1, 4, 6, 6), tmp_path, "mul 0.17")


# ---- s2d -----------------------------------------------------------------------------
def test_space_to_depth_is_timms_not_pixel_unshuffle() -> None:
    """timm's SpaceToDepth (TResNet's stem): channel (i·4 + j)·C + c; torch's PixelUnshuffle
    orders the same values c·16 + i·4 + j."""
    from timm.layers import SpaceToDepth

    class Stem(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.s2d = SpaceToDepth()
            self.conv = torch.nn.Conv2d(48, 8, 1)

        def forward(self, x):
            return self.conv(self.s2d(x))
    net = netspec.parse("input 8x12x3\ns2d: s2d 4\nconv: conv 1x1 x8")
    _same_as_timm(Stem().eval(), net)
    x = _input(netspec.parse("input 8x12x3\ns2d 4"))
    got = netspec.parse("input 8x12x3\ns2d 4").numpy_model()(x)
    np.testing.assert_array_equal(got, SpaceToDepth()(torch.from_numpy(x)).numpy())
    assert not np.array_equal(got, torch.nn.functional.pixel_unshuffle(torch.from_numpy(x), 4))


def test_space_to_depth_shape_and_receptive_field() -> None:
    from netspec.analysis.rf import receptive_fields
    net = netspec.parse("input 224x224x3\ns2d 4\nconv 3x3 p1 x64")
    s2d, conv = net.layers[1:]
    assert s2d.output_shape == (56, 56, 48) and s2d.params == 0 and s2d.flops() == 0
    fields = receptive_fields(net)
    assert fields[s2d.name].rf == (4, 4) and fields[s2d.name].jump == (4, 4)
    assert fields[conv.name].rf == (4 + 2 * 4, 4 + 2 * 4)   # a 3×3 window at stride 4
    assert s2d.explain()[0].startswith("out = 224/4 × 224/4 × 4²·3 = 56×56×48")


@pytest.mark.parametrize("text, message, column", [
    ("input 6x8x3\ns2d 4", "`s2d 4` needs a height and width divisible by 4, but its input "
     "is 6×8×3", 5),
    ("input 8x8x3\ns2d 0", "space-to-depth block must be at least 1, not 0", 5),
    ("input 8x8x3\nfc 4\ns2d 2", "`s2d` needs an H×W×C volume", 1),
])
def test_space_to_depth_errors(text: str, message: str, column: int) -> None:
    err = one_error(text)
    assert message in str(err)
    assert (err.line, err.column) == (text.count("\n") + 1, column)


def test_a_torch_export_of_timms_space_to_depth_imports(tmp_path) -> None:
    """torch writes it as Reshape (6-D), Transpose (0, 3, 5, 1, 2, 4), Reshape (exported
    for a fixed batch: the sizes timm computes from `x.size()` are then constants)."""
    from timm.layers import SpaceToDepth

    class Stem(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.s2d = SpaceToDepth()
            self.conv = torch.nn.Conv2d(48, 8, 3, padding=1)

        def forward(self, x):
            return self.conv(self.s2d(x))
    _torch_export_imports(Stem(), (1, 3, 8, 12), tmp_path, "s2d 4", dynamic=False)


# ---- eca, rsoftmax, chunksum ---------------------------------------------------------
def test_eca_kernel_from_the_channels_is_timms() -> None:
    """ECA-Net's k from C (γ = 2, β = 1), the numbers the survey checked against timm."""
    from timm.layers import EcaModule

    from netspec.kinds.attention import eca_kernel
    for c in (16, 64, 100, 128, 256, 512, 1000, 1024, 2048, 4096):
        assert eca_kernel(c) == EcaModule(c).conv.kernel_size[0], c
    assert [eca_kernel(c) for c in (64, 128, 2048)] == [3, 5, 7]


def test_eca_counts_k_weights_and_c_k_macs() -> None:
    net = netspec.parse("input 4x4x256\nse: gate { pool avg global; conv: eca; sigmoid }")
    eca = net["se.conv"]
    assert eca.kernel == 5 and eca.params == 5 and net.weight_shapes()["se.conv.weight"] == (1, 1, 5)
    assert eca.macs == 256 * 5 and eca.flops() == 2 * 256 * 5
    assert eca.explain()[0] == "K = 5 from C = 256: t = int((log₂ 256 + 1)/2) = 4, made odd, " \
                               "at least 3"


def test_eca_resnet_gate_of_timm() -> None:
    """timm's EcaModule: x · sigmoid(conv1d(mean over H×W)), its conv keyed `se.conv.weight`."""
    from timm.layers import EcaModule

    class Block(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 128, 3, padding=1)
            self.se = EcaModule(128)

        def forward(self, x):
            return self.se(self.conv(x))
    net = netspec.parse("input 6x6x3\nconv: conv 3x3 p1 x128\n"
                        "se: gate { pool avg global; conv: eca; sigmoid }")
    _same_as_timm(Block().eval(), net)


def test_resnest_split_attention_of_timm() -> None:
    """timm's SplitAttn (ResNeSt), radix 2, cardinality 2: conv (groups G·R), bn0, relu; the
    attention reads the radix's sum, ends in a radix softmax of cardinality G; multiplied,
    the paths are summed."""
    from timm.layers.split_attn import SplitAttn
    module = SplitAttn(64, 64, groups=2, radix=2, norm_layer=torch.nn.BatchNorm2d).eval()
    net = netspec.parse(
        "input 8x8x64\nconv: conv 3x3 p1 g4 nobias x128\nbn0: bn\nrelu\n"
        "gate { chunksum 2; pool avg global; fc1: conv 1x1 g2 x32; bn1: bn; relu\n"
        "       fc2: conv 1x1 g2 x128; rsoftmax 2 g2 }\nchunksum 2")
    _same_as_timm(module, net)
    rs = next(layer for layer in net.layers if layer.kind == "rsoftmax")
    assert rs.flops() == 3 * 128 and rs.params == 0


def test_sknet_selective_kernel_of_timm() -> None:
    """timm's SelectiveKernel (skresnet18's): the input split between a 3×3 and a dilated 3×3
    path, stacked (concatenated), weighed by a softmax over the two paths, summed."""
    from timm.layers import SelectiveKernel
    module = SelectiveKernel(32, 32, split_input=True, rd_ratio=1 / 8, rd_divisor=16).eval()
    net = netspec.parse(
        "input 8x8x32\npaths: split {\n"
        "    branch [ conv: conv 3x3 p1 nobias x32; bn: bn; relu ]\n"
        "    branch [ conv: conv 3x3 p2 d2 nobias x32; bn: bn; relu ]\n}\n"
        "attn: gate { chunksum 2; pool avg global; fc_reduce: conv 1x1 nobias x16; bn: bn\n"
        "             relu; fc_select: conv 1x1 nobias x64; rsoftmax 2 }\nchunksum 2")
    _same_as_timm(module, net)
    s = net.layers[-1]
    assert s.output_shape == (8, 8, 32) and s.flops() == 8 * 8 * 32   # one add per value


@pytest.mark.parametrize("text, message, column", [
    ("input 4x4x8\neca", "`eca` convolves across the channels of one value per channel "
     "(1×1×C, or a vector), but its input is 4×4×8", 1),
    ("input 4x4x8\npool avg global\neca 4", "ECA's kernel size must be odd, not 4", 5),
    ("input 4x4x12\nrsoftmax 2 g4", "`rsoftmax 2 g4` needs channels divisible by 2·4 = 8", 1),
    ("input 4x4x12\nrsoftmax 0", "radix must be at least 1, not 0", 10),
    ("input 4x4x9\nchunksum 2", "`chunksum 2` needs channels divisible by 2, but its input "
     "is 4×4×9", 10),
])
def test_attention_errors(text: str, message: str, column: int) -> None:
    err = one_error(text)
    assert message in str(err)
    assert (err.line, err.column) == (text.count("\n") + 1, column)


# ---- memory: what autograd keeps -------------------------------------------------------
MEMORY = {
    "slice": "input 4x4x8\nconv 1x1 x8\nslice 2:6\nconv 1x1 x4",
    "split": "input 4x4x8\nconv 1x1 x8\nsplit 2,6 { branch { conv 1x1 x2 } branch {} }",
    "add": "input 4x4x8\nconv 1x1 x8\nadd { branch { conv 1x1 x8 } branch {} branch { tanh } }",
    "scale": "input 4x4x8\nconv 1x1 x8\ngamma: scale (C,)\nlab: scale (1,) bias\ngain: scale ()",
    "mul": "input 4x4x8\nconv 1x1 x8\nmul 0.5\nconv 1x1 x4",
    "s2d": "input 8x8x3\nconv 1x1 x4\ns2d 2\nconv 1x1 x4",
    "eca": "input 4x4x8\nconv 1x1 x8\ngate { pool avg global; eca; sigmoid }",
    "rsoftmax": "input 4x4x8\nconv 1x1 x8\nrsoftmax 2 g2\nconv 1x1 x8\nrsoftmax 2\n"
                "conv 1x1 x4\nrsoftmax 1",
    "chunksum": "input 4x4x8\nconv 1x1 x8\nchunksum 2\nconv 1x1 x4",
}


@pytest.mark.parametrize("kind", sorted(MEMORY))
def test_saved_for_backward_is_what_autograd_keeps(kind: str) -> None:
    """netspec's `saves` facts against the tensors torch's autograd keeps (saved-tensor
    hooks) running the torch twin with trainable weights: the same bytes."""
    from torch_reference import _layer

    from netspec.analysis.memory import saved_bytes
    net = netspec.parse(MEMORY[kind])
    params = {k: torch.tensor(v).requires_grad_() for k, v in _weights(net).items()}
    kept: list = []
    values = {"input": torch.from_numpy(_input(net))}
    with torch.autograd.graph.saved_tensors_hooks(lambda t: kept.append(t) or t, lambda t: t):
        for layer in net.layers[1:]:
            values[layer.name] = _layer(layer, params, [values[i.name] for i in layer.inputs])
    weights = {p.untyped_storage().data_ptr() for p in params.values()}
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in kept
                if t.untyped_storage().data_ptr() not in weights}
    assert saved_bytes(net, 2) == sum(storages.values())


#: Each kind on an array much larger than the network's input, for the forward peak.
PEAK = {
    "slice": "slice 8:40", "split": "split 16,48 { branch { relu } branch {} }",
    "add": "add { branch { relu } branch {} branch { tanh } }",
    "scale": "gamma: scale (C,)\nlab: scale (1,) bias", "mul": "mul 0.5", "s2d": "s2d 2",
    "eca": "pool avg global\neca", "rsoftmax": "rsoftmax 2 g2\nrsoftmax 4\nrsoftmax 1\nrsoftmax 2",
    "chunksum": "chunksum 2\nchunksum 4",
}


@pytest.mark.parametrize("kind", sorted(PEAK))
def test_forward_peak_is_within_10_percent_of_tracemalloc(kind: str) -> None:
    """The NumPy model's forward peak (each kind's output and `numpy_scratch`, its in-place
    steps) against what tracemalloc sees."""
    from test_memory import _allocated

    from netspec.analysis import forward_peak
    from netspec.backends.numpy.memory import NumpyRuntime
    net = netspec.parse("input 32x32x4\nconv 1x1 x64\n" + PEAK[kind] + "\npool avg global")
    assert forward_peak(net, 8, runtime=NumpyRuntime()).bytes == \
        pytest.approx(_allocated(net, 8), rel=0.10)


# ---- whole networks: skresnet18 and resnest14d, as timm builds them ---------------------
SKRESNET18 = """
block selective_kernel(w, s) {
    paths: split {
        branch [ conv: conv 3x3 s$s p1 nobias x$w; bn: bn; relu ]
        branch [ conv: conv 3x3 s$s p2 d2 nobias x$w; bn: bn; relu ]
    }
    attn: gate {
        chunksum 2; pool avg global
        fc_reduce: conv 1x1 nobias x{w // 8 if w > 128 else 16}; bn: bn; relu
        fc_select: conv 1x1 nobias x{2 * w}; rsoftmax 2
    }
    chunksum 2
}
block sk(w, s=1) {
    residual {
        conv1: selective_kernel($w, $s)
        conv2: { conv: conv 3x3 p1 nobias x$w; bn: bn }
    } project downsample: [ conv 1x1 s$s nobias x$w; bn ]
    relu
}
input 64x64x3
conv1: conv 7x7 s2 p3 nobias x64; bn1: bn; relu; pool 3 s2 p1
layer1: [ sk(64); sk(64) ]
layer2: [ sk(128, s=2); sk(128) ]
layer3: [ sk(256, s=2); sk(256) ]
layer4: [ sk(512, s=2); sk(512) ]
pool avg global; flatten; fc: fc 1000
"""

RESNEST14D = """
block split_attn(w) {
    conv: conv 3x3 p1 g2 nobias x{2 * w}; bn0: bn; relu
    gate {
        chunksum 2; pool avg global
        fc1: conv 1x1 x{w // 2}; bn1: bn; relu
        fc2: conv 1x1 x{2 * w}; rsoftmax 2
    }
    chunksum 2
}
block first(w) {
    residual {
        conv1: conv 1x1 nobias x$w; bn1: bn; relu
        conv2: split_attn($w)
        conv3: conv 1x1 nobias x{4 * w}; bn3: bn
    } shortcut downsample: [ 1: conv 1x1 nobias x{4 * w}; bn ]
    relu
}
block down(w) {
    residual {
        conv1: conv 1x1 nobias x$w; bn1: bn; relu
        conv2: split_attn($w)
        avd_last: pool avg 3 s2 p1 countpad
        conv3: conv 1x1 nobias x{4 * w}; bn3: bn
    } shortcut downsample: [ pool avg 2 s2; conv 1x1 nobias x{4 * w}; bn ]
    relu
}
input 64x64x3
conv1: [ conv 3x3 s2 p1 nobias x32; bn; relu; conv 3x3 p1 nobias x32; bn; relu
         conv 3x3 p1 nobias x64 ]
bn1: bn; relu; pool 3 s2 p1
layer1: [ first(64) ]
layer2: [ down(128) ]
layer3: [ down(256) ]
layer4: [ down(512) ]
pool avg global; flatten; fc: fc 1000
"""


@pytest.mark.parametrize("name, text", [("skresnet18", SKRESNET18),
                                        ("resnest14d", RESNEST14D)])
def test_whole_timm_networks_are_written_exactly(name: str, text: str) -> None:
    """timm's skresnet18 and resnest14d: parameter count, state_dict names and shapes, and
    outputs (64×64 inputs, batch statistics randomised) equal to timm's."""
    import timm
    model = timm.create_model(name, pretrained=False).eval()
    net = netspec.parse(text, f"{name}.ns")
    assert net.total_params == sum(p.numel() for p in model.parameters())
    _same_as_timm(model, net, rtol=1e-4)


@pytest.mark.parametrize("name, text", [("skresnet18", SKRESNET18),
                                        ("resnest14d", RESNEST14D)])
def test_whole_timm_networks_export_and_import(name: str, text: str, tmp_path) -> None:
    """Their PyTorch code loads netspec's weights and agrees; their ONNX comes back as the
    same layers and outputs."""
    from test_onnx_import import _rows
    from test_torch_codegen import _check

    from netspec.importer import import_onnx
    net = netspec.parse(text, f"{name}.ns")
    _check(net, tmp_path, script=True)
    weights = _weights(net)
    imported = import_onnx(net.to_onnx(weights), name=name)
    assert imported.names_kept and _rows(imported.network) == _rows(net)
    x = _input(net, 1)
    np.testing.assert_array_equal(imported.network.numpy_model(imported.weights(), threads=1)(x),
                                  net.numpy_model(weights, threads=1)(x))


def test_the_lexer_reads_a_slice_as_numbers_and_a_label_as_a_label() -> None:
    pytest.importorskip("pygments")
    from pygments.token import Error, Name, Number

    from netspec.language.lexer import NetspecLexer
    text = ("split 4,12 { branch {} branch {} }\nslice :4\nslice 2:10\nslice -2:\n"
            "3: fc 8\nstem: conv 3x3 x4\ngamma: scale (C,)\nlab: scale (1,) bias\nmul 0.17\n"
            "s2d 4\neca 5\nrsoftmax 2 g2\nchunksum 2\n")
    tokens = [(t, v) for t, v in NetspecLexer().get_tokens(text) if v.strip()]
    assert not [v for t, v in tokens if t is Error]
    labels = [v for t, v in tokens if t is Name.Label]
    assert labels == ["3", "stem", "gamma", "lab"]
    assert ("4" in [v for t, v in tokens if t in Number]) and "slice" not in labels
