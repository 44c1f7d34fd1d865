"""Blocks, repeat, residual and concat: counts, names, semantics, errors, and PyTorch twins."""

from pathlib import Path

import numpy as np
import pytest

import netspec
from conftest import errors_of, one_error
from random_nets import random_weights

torch = pytest.importorskip("torch")
nn = torch.nn

ROOT = Path(__file__).resolve().parent.parent
TOL = dict(rtol=1e-4, atol=1e-5)

# Trainable parameters as published (torchvision's model documentation), 224×224×3, 1000 classes.
PUBLISHED = {
    "alexnet": 61_100_840, "vgg16": 138_357_544, "vgg19": 143_667_240,
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
    "squeezenet1_1": 1_235_496, "densenet121": 7_978_856, "mobilenet_v2": 3_504_872,
}


@pytest.mark.parametrize("name", PUBLISHED)
def test_classic_networks_have_their_published_parameter_counts(name):
    net = netspec.load(ROOT / "specs" / f"{name}.ns")
    assert net.total_params == PUBLISHED[name]
    assert net.input_shape == (224, 224, 3) and net.output_shape[-1] == 1000
    assert net.warnings == []


# ---- hand-built PyTorch twins --------------------------------------------------------

class BasicBlock(nn.Module):
    """torchvision's ResNet basic block, written out."""

    def __init__(self, cin, c, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, c, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or cin != c:
            self.downsample = nn.Sequential(nn.Conv2d(cin, c, 1, stride, bias=False),
                                            nn.BatchNorm2d(c))

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet(nn.Module):
    """torchvision's ResNet with basic blocks, written out."""

    def __init__(self, layers, classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for i, (n, c) in enumerate(zip(layers, (64, 128, 256, 512))):
            blocks = [BasicBlock(cin, c, 1 if i == 0 else 2)] + [BasicBlock(c, c) for _ in range(n - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            cin = c
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _randomise(model, seed=0):
    """Non-trivial batch-norm statistics, so that eval mode is really tested."""
    torch.manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    return model.eval()


def _state(model):
    return {k: v.numpy() for k, v in model.state_dict().items()}


def _compare(net, model, x):
    weights = net.check_weights(_state(model))   # loads by name: the names must match
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net.numpy_model(weights)(x), expected, **TOL)
    from netspec.backends.onnx import OnnxModel
    np.testing.assert_allclose(OnnxModel(net, weights)(x), expected, **TOL)


RESNET_BLOCK = """
block basic(c, s=1) {
    residual {
        conv1: conv 3x3 s$s p1 x$c nobias; bn1: bn; relu
        conv2: conv 3x3 p1 x$c nobias;     bn2: bn
    } project downsample: [ conv 1x1 s$s x$c nobias; bn ]
    relu
}
"""


@pytest.mark.parametrize("stride,cin", [(1, 16), (2, 16), (1, 8)])
def test_residual_block_matches_pytorch(stride, cin):
    net = netspec.parse(RESNET_BLOCK + f"input 12x12x{cin}\nblock1: basic(16, s={stride})")
    model = _randomise(nn.Sequential())
    model.add_module("block1", BasicBlock(cin, 16, stride))
    _randomise(model)
    has_projection = stride != 1 or cin != 16
    assert ("block1.downsample.0.weight" in net.weight_shapes()) == has_projection
    x = np.random.default_rng(0).standard_normal((2, cin, 12, 12)).astype(np.float32)
    _compare(net, model, x)


def test_small_resnet_matches_pytorch():
    net = netspec.parse(RESNET_BLOCK + """
input 64x64x3
conv1: conv 7x7 s2 p3 x64 nobias; bn1: bn; relu: relu; maxpool: pool 3 s2 p1
layer1: [ basic(64) ]
layer2: [ basic(128, s=2); basic(128) ]
layer3: [ basic(256, s=2) ]
layer4: [ basic(512, s=2) ]
avgpool: pool avg global
fc: fc 10
""")
    model = _randomise(ResNet([1, 2, 1, 1], classes=10))
    x = np.random.default_rng(1).standard_normal((2, 3, 64, 64)).astype(np.float32)
    _compare(net, model, x)


def test_resnet18_spec_has_torchvisions_state_dict():
    net = netspec.load(ROOT / "specs/resnet18.ns")
    expected = {k: tuple(v.shape) for k, v in ResNet([2, 2, 2, 2]).state_dict().items()
                if not k.endswith("num_batches_tracked")}
    assert net.weight_shapes() == expected


class Inception(nn.Module):
    """A GoogLeNet-style inception module: four branches concatenated."""

    def __init__(self, cin):
        super().__init__()
        self.b1 = nn.Conv2d(cin, 8, 1)
        self.b2 = nn.Sequential(nn.Conv2d(cin, 4, 1), nn.ReLU(), nn.Conv2d(4, 8, 3, padding=1))
        self.b3 = nn.Sequential(nn.Conv2d(cin, 2, 1), nn.ReLU(), nn.Conv2d(2, 4, 5, padding=2))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(cin, 4, 1))

    def forward(self, x):
        return torch.relu(torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1))


def test_inception_block_matches_pytorch():
    net = netspec.parse("""
block inception() {
    concat {
        branch b1: { conv 1x1 x8 }
        branch b2: [ conv 1x1 x4 relu; conv 3x3 p1 x8 ]
        branch b3: [ conv 1x1 x2 relu; conv 5x5 p2 x4 ]
        branch b4: [ pool 3 s1 p1; conv 1x1 x4 ]
    }
    relu
}
input 10x10x6
incep: inception()
""")
    assert net.output_shape == (10, 10, 8 + 8 + 4 + 4)
    model = nn.Sequential()
    model.add_module("incep", Inception(6))
    x = np.random.default_rng(2).standard_normal((2, 6, 10, 10)).astype(np.float32)
    # netspec names the single conv of b1 `incep.b1.conv1`; torch names it `incep.b1`
    state = {k.replace("incep.b1.", "incep.b1.conv1."): v for k, v in _state(model).items()}
    weights = net.check_weights(state)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net.numpy_model(weights)(x), expected, **TOL)
    from netspec.backends.onnx import OnnxModel
    np.testing.assert_allclose(OnnxModel(net, weights)(x), expected, **TOL)


def test_dense_and_fire_style_concat_with_an_identity_branch():
    net = netspec.parse("input 6x6x4\nconcat { branch {} branch { conv 3x3 p1 x3 } }")
    assert net.output_shape == (6, 6, 7)
    w = random_weights(net, 0)
    x = np.random.default_rng(0).standard_normal((1, 4, 6, 6)).astype(np.float32)
    y = net.numpy_model(w)(x)
    np.testing.assert_array_equal(y[:, :4], x)   # the input comes first, unchanged


# ---- semantics -------------------------------------------------------------------

def test_names_follow_the_structure():
    net = netspec.parse("""
block unit(c) { conv 3x3 p1 x$c; bn; relu }
input 8x8x3
stem: conv 3x3 p1 x4
features: [ conv 1x1 x4 relu; unit(4); [ bn; relu ] ]
head: { unit(4); unit(4) }
unit(4)
repeat 2 { conv 1x1 x4 }
stage: repeat 2 unit(4)
fc 2
""")
    names = [layer.name for layer in net.layers]
    assert names == [
        "input", "stem",
        "features.0", "features.1",                                  # conv, relu
        "features.2.conv1", "features.2.bn1", "features.2.relu1",    # a block takes one index
        "features.3.0", "features.3.1",                              # a nested sequence too
        "head.unit1.conv1", "head.unit1.bn1", "head.unit1.relu1",
        "head.unit2.conv1", "head.unit2.bn1", "head.unit2.relu1",
        "unit1.conv1", "unit1.bn1", "unit1.relu1",
        "conv1", "conv2",                                            # stem was named, so conv1
        "stage.0.conv1", "stage.0.bn1", "stage.0.relu1",
        "stage.1.conv1", "stage.1.bn1", "stage.1.relu1",
        "fc1"]


def test_project_is_used_only_when_the_shape_changes():
    spec = RESNET_BLOCK + "input 8x8x4\na: basic(4)\nb: basic(8)\nc: basic(8, s=2)\nd: basic(8)"
    net = netspec.parse(spec)
    projections = sorted({k.split(".")[0] for k in net.weight_shapes() if "downsample" in k})
    assert projections == ["b", "c"]
    assert net.output_shape == (4, 4, 8)


def test_optional_residual_adds_only_where_shapes_match():
    net = netspec.parse("input 8x8x4\nresidual? { conv 3x3 p1 x4 }\nresidual? { conv 3x3 p1 x6 }")
    assert [layer.op for layer in net.layers] == ["input", "conv", "add", "conv"]


def test_shortcut_is_always_used():
    net = netspec.parse("input 8x8x4\nresidual { conv 3x3 p1 x4 } shortcut { conv 1x1 x4 }")
    assert [layer.op for layer in net.layers] == ["input", "conv", "conv", "add"]
    add = net.layers[-1]
    assert [i.name for i in add.inputs] == ["conv1", "conv2"]


def test_parameters_expressions_and_the_input_shape():
    net = netspec.parse("""
block b(c, t=2) { conv 1x1 x{c*t}; conv 3x3 p1 g{C} x{C}; conv 1x1 x{C/2 + $c - c}; fc {H*W} }
input 6x5x3
b(8)
""")
    shapes = [layer.output_shape for layer in net.layers]
    # x{8*2} = 16; depthwise g16 x16; x{16/2} = 8; fc {H*W} = 6*5 = 30
    assert shapes[1:] == [(6, 5, 16), (6, 5, 16), (6, 5, 8), (30,)]
    assert net.layers[2].groups == 16
    assert net.layers[2].text == "conv 3x3 p1 g16 x16"   # shown with the values filled in


def test_ceil_pooling_global_pooling_relu6_and_lrn_match_pytorch():
    net = netspec.parse("input 10x10x6\npool 3 s2 p1 ceil\nlrn 5 a0.001 b0.6 k2\n"
                        "conv 3x3 x6 nobias relu6\npool avg 2 s2 ceil\npool avg global")
    assert [lay.output_shape for lay in net.layers][1:] == [
        (6, 6, 6),   # ceil((10 + 2 - 3)/2) + 1 = 6; window 5 starts at 10 < 10 + 1, kept
        (6, 6, 6), (4, 4, 6), (4, 4, 6),   # lrn; conv 3x3: 6 - 3 + 1 = 4; relu6
        (2, 2, 6),   # ceil((4 - 2)/2) + 1 = 2
        (1, 1, 6)]
    assert net.layers[3].params == 3 * 3 * 6 * 6   # no bias
    from torch_reference import torch_forward
    w = random_weights(net, 0)
    x = np.random.default_rng(0).standard_normal((2, 6, 10, 10)).astype(np.float32)
    np.testing.assert_allclose(net.numpy_model(w)(x), torch_forward(net, w, x), **TOL)


# ---- errors ----------------------------------------------------------------------

def test_residual_shape_mismatch_shows_both_shapes_and_where_they_came_from():
    err = one_error("input 8x8x4\nconv 3x3 p1 x4\nresidual {\n conv 3x3 s2 p1 x8\n}")
    assert isinstance(err, netspec.ShapeError) and err.line == 3
    assert "the body gives 4×4×8 but the shortcut gives 8×8×4" in str(err)
    notes = err.diagnostic.notes
    assert "body: 4×4×8 from `conv2`, line 4" in notes
    assert "shortcut: 8×8×4 from `conv1`, line 2" in notes
    assert "project" in err.hint
    err = one_error("input 8x8x4\nresidual { conv 3x3 s2 p1 x8 } project { conv 1x1 x8 }")
    assert "the body gives 4×4×8 but the shortcut gives 8×8×8" in str(err)
    assert err.hint == "make the projection give 4×4×8 too"


def test_concat_size_mismatch_shows_every_branch():
    err = one_error("input 8x8x4\nconcat {\n branch { conv 1x1 x2 }\n branch { pool 2 }\n}")
    assert "differ in height and width: 8×8×2, 4×4×4" in str(err)
    assert err.diagnostic.notes == ("branch 1: 8×8×2 from `conv1`, line 3",
                                    "branch 2: 4×4×4 from `pool1`, line 4")


def test_errors_inside_blocks_name_the_call():
    err = one_error("block b(c) {\n conv 9x9 x$c\n}\ninput 8x8x3\nconv 1x1 x3\nfirst: b(4)")
    assert err.line == 2 and "`first.conv1` output height and width are 0" in str(err)
    assert "in `first` = b(c=4), line 6" in err.diagnostic.notes


@pytest.mark.parametrize("spec,message,hint", [
    ("input 8x8x3\nbasci(4)", "unknown layer or block `basci`", "did you mean `basic`?"),
    ("input 8x8x3\nbasic(4, 5)", "takes 1 parameter (c), not 2", None),
    ("input 8x8x3\nbasic(q=4)", "takes 1 parameter (c), not `q`", None),
    ("input 8x8x3\nbasic()", "needs a value for `c`", "e.g. `basic(c=64)`"),
    ("input 8x8x3\nconv 3x3 x$c", "unknown parameter `c` (parameters exist only in blocks)", None),
    ("input 8x8x3\nconv 3x3 x{7/2}", "`{7/2}` is not a whole number (7 / 2)", "use `//` to round down"),
    ("input 8x8x3\nconv 3x3 x{1 +}", "`{1 +}` is not an expression", None),
    ("input 8x8x3\nconv 3x3 x{__import__('os')}", "cannot evaluate", None),
    ("input 8x8x3\nrepeat -1 { relu }", "repeat count must not be negative, not -1", None),
    ("input 8x8x3\n{ input 2x2x2 }", "`input` belongs at the top level", None),
])
def test_composition_errors(spec, message, hint):
    err = one_error("block basic(c) { conv 3x3 p1 x$c }\n" + spec)
    assert message in str(err), str(err)
    if hint:
        assert err.hint == hint


def test_recursion_and_duplicate_blocks():
    assert "more than 32 deep" in str(errors_of("block a() { a() }\ninput 2x2x1\na()")[0])
    err = one_error("block a() { relu }\nblock a() { tanh }\ninput 2x2x1\na()")
    assert "block `a` is defined twice" in str(err)


def test_block_call_without_parentheses_is_explained():
    err = one_error("block fire(s) { conv 1x1 x$s }\ninput 8x8x3\nfire 16")
    assert "takes its arguments in parentheses" in str(err) and err.hint.startswith("e.g. `fire(64)`")


def test_unused_block_warns():
    (w,) = netspec.parse("block lonely() { relu }\ninput 2x2x1").warnings
    assert "block `lonely` is defined but never used" in w.message and w.code == "unused-block"


def test_warnings_can_be_silenced_per_line_and_code():
    assert netspec.parse("input 9x9x3\nconv 2x2 s2 x4  # netspec: ignore").warnings == []
    assert netspec.parse("input 9x9x3\nconv 2x2 s2 x4  # netspec: ignore[lost-input]").warnings == []
    (w,) = netspec.parse("input 9x9x3\nconv 2x2 s2 x4  # netspec: ignore[large-fc]").warnings
    assert w.code == "lost-input"


def test_bad_parameter_names():
    assert "`C` cannot name a parameter" in str(one_error("block b(C) { relu }\ninput 2x2x1\nb(1)"))
    assert "`c` of `b` is named twice" in str(errors_of("block b(c, c) { relu }\ninput 2x2x1\nb(1)")[0])


def test_limits_are_errors_not_crashes():
    deep = "input 2x2x1\n" + "{" * 3000 + "relu" + "}" * 3000
    assert "nested more than 100 deep" in str(one_error(deep))
    err = one_error("input 2x2x1\nrepeat 2000000000 relu")
    assert "`repeat 2000000000` expands to more than 100,000 statements" in str(err)
    assert "repeat count" in err.hint and (err.line, err.column) == (2, 1)


def test_repeat_0_builds_nothing():
    # a stage of n blocks is `block(...); repeat {n-1} block(...)`, and n may be 1
    net = netspec.parse("block b(c) { conv 1x1 x$c }\ninput 4x4x3\nb(8)\nrepeat 0 b(16)\n"
                        "s: repeat 0 relu")
    assert [lay.name for lay in net.layers] == ["input", "b1.conv1"]
    assert net.output_shape == (4, 4, 8)
    stage = "block stage(n) { conv 1x1 x4; repeat {n-1} relu }\ninput 4x4x3\n"
    for n in (1, 3):   # one conv, then n − 1 relus
        kinds = [lay.kind for lay in netspec.parse(stage + f"stage({n})").layers]
        assert kinds == ["input", "conv"] + ["relu"] * (n - 1)
