"""`netspec import` and `netspec check MODEL.onnx`: ONNX models back into specs.

Oracles: netspec's own specs exported to ONNX must come back as the same layers
(names, kinds, shapes, parameters) and outputs; models exported by
`torch.onnx.export` (hand-built twins, torchvision) must import to a NumPy model
computing what torch computes, with weights under the torch `state_dict` names.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import network_specs
from conftest import NAMING

import netspec
from netspec.cli import main
from netspec.importer import OnnxImportError, import_onnx
from netspec.language.format import format_spec

pytestmark = pytest.mark.filterwarnings("ignore")
onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper

ROOT = Path(__file__).resolve().parent.parent
SPECS = [str(p) for p in network_specs()]
#: Up to RUN parameters a round trip runs both networks; up to BIG it compares every
#: layer's options and every weight array (the same layers, options and weights compute
#: the same outputs); above, the options only (the weights are not materialised).
RUN, BIG = 5_000_000, 30_000_000


def _skeleton_model(net: netspec.Network) -> onnx.ModelProto:
    """net as ONNX with large initializers as headers only (dims, no data): shapes suffice."""
    from netspec.backends.onnx.graph import skeleton, tensor
    weights = {k: np.empty(s, np.float32) for k, s in net.weight_shapes().items()}   # untouched
    model, arrays = skeleton(net, weights, None)
    for name, a in arrays:
        t = tensor(name, a if a.size < 1024 else None)
        if a.size >= 1024:
            t.dims.extend(a.shape)
        model.graph.initializer.append(t)
    return model


def _rows(net: netspec.Network) -> list[tuple]:
    """Each layer's name, kind, shape, parameters and resolved options (a padding written
    `same` or with `ceil` may come back as the explicit pads that give the same windows).
    Aux heads are left out: ONNX holds the inference graph, which does not compute them."""
    return [(layer.name, layer.kind, layer.output_shape, layer.params,
             {k: v for k, v in layer.attrs().items() if k not in ("padding", "ceil")})
            for layer in net.layers if not layer.aux]


def _inference_weights(net: netspec.Network, weights: dict) -> dict:
    """The weights of the layers inference computes (not those of aux heads)."""
    aux = {layer.name for layer in net.layers if layer.aux}
    return {k: v for k, v in weights.items() if k.rsplit(".", 1)[0] not in aux}


def _assert_written_by_the_printer(text: str) -> None:
    """The import's text is what `netspec fmt` writes (the one printer), in 80 columns."""
    assert format_spec(text) == text
    assert max(len(line) for line in text.splitlines()) <= 80, text


@pytest.mark.parametrize("path", SPECS, ids=[Path(p).stem for p in SPECS])
def test_every_spec_round_trips_through_onnx(path: str) -> None:
    net = netspec.load(path, library=True)
    if isinstance(net, netspec.network.Library):
        pytest.skip("a library of blocks, not a network")
    if net.total_params > BIG:
        imported = import_onnx(_skeleton_model(net), name=net.name, weights=False)
        assert _rows(imported.network) == _rows(net)
        _assert_written_by_the_printer(imported.text)
        return
    weights = net.init_weights(seed=1)
    rng = np.random.default_rng(0)
    for k in weights:   # batch norm statistics that are not the identity
        if k.endswith("running_var"):
            weights[k] = rng.uniform(0.5, 2, weights[k].shape).astype(np.float32)
        elif k.endswith(("running_mean", "bn.bias")) or ".norm" in k and k.endswith("bias"):
            weights[k] = rng.normal(0, 0.1, weights[k].shape).astype(np.float32)
    imported = import_onnx(net.to_onnx(weights), name=net.name)
    assert imported.names_kept
    assert _rows(imported.network) == _rows(net)
    _assert_written_by_the_printer(imported.text)
    weights = _inference_weights(net, weights)   # aux heads are not exported
    assert imported.network.total_params == sum(v.size for k, v in weights.items()
                                                if not k.endswith(("running_mean", "running_var")))
    got = imported.weights()
    assert got.keys() == weights.keys()
    for k, v in weights.items():
        np.testing.assert_array_equal(got[k], v)
    if net.total_params > RUN:
        return
    shape = net.input_shape
    x = rng.standard_normal((1, shape[2], shape[0], shape[1]) if len(shape) == 3
                            else (1, shape[0])).astype(np.float32)
    np.testing.assert_array_equal(imported.network.numpy_model(got, threads=1)(x),
                                  net.numpy_model(weights, threads=1)(x))


@pytest.mark.parametrize("text", [
    "input 14x14x3\nconv 3x3 p1 x4\npool avg to 7x7\nfc 5",       # equal windows: AveragePool
    "input 13x10x3\nconv 3x3 p1 x4\npool avg to 5x3\nfc 5",       # overlapping: two MatMuls
    "input 9x9x2\nconv 4x4 same x3\npool 3 s1 same\npool avg 3 s2 ceil\nfc 6 tanh\nfc 2 sigmoid",
    "input 8x8x2\nconv 1x1 x2\npool 3 s2 ceil\npool avg 2 s1 p1\nflatten",   # ceil matters
])
def test_small_specs_round_trip(text: str) -> None:
    net = netspec.parse(text, "small.ns")
    weights = net.init_weights(seed=3)
    imported = import_onnx(net.to_onnx(weights), name="small")
    assert _rows(imported.network) == _rows(net)
    assert ("ceil" in imported.text) == ("8x8x2" in text)
    x = np.random.default_rng(0).standard_normal((2, net.input_shape[2], *net.input_shape[:2]))
    np.testing.assert_allclose(imported.network.numpy_model(imported.weights())(x),
                               net.numpy_model(weights)(x), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("act,opset", [("silu", 21), ("gelu", 17), ("hswish", 13)])
def test_a_self_gated_activation_written_as_a_mul_imports_as_itself(act: str, opset: int) -> None:
    # x·gate(x) is a Mul of two computed values, which a `mul` merge also reads: the
    # activation's own pattern must be asked first, or the import becomes a gate
    net = netspec.parse(f"input 6x6x3\nconv 3x3 x4 {act}\nfc 3", "act.ns")
    imported = import_onnx(net.to_onnx(net.init_weights(seed=1), opset=opset), name="act")
    assert [lay.kind for lay in imported.network.layers] == [lay.kind for lay in net.layers]


def test_dashed_names_and_number_labels_come_back() -> None:
    net = netspec.parse(NAMING, "naming.ns")
    imported = import_onnx(net.to_onnx(seed=0), name="naming")
    assert imported.names_kept and _rows(imported.network) == _rows(net)
    assert "block2-0:" in imported.text and "2: fc 10" in imported.text


def test_a_gemm_bias_is_never_replaced_by_a_following_add() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    inits = [helper.make_tensor(n, TensorProto.FLOAT, s, np.ones(int(np.prod(s)), np.float32))
             for n, s in (("W", [3, 4]), ("B", [3]), ("C", [3]))]
    nodes = [helper.make_node("Gemm", ["x", "W", "B"], ["g"], name="fc", transB=1),
             helper.make_node("Add", ["g", "C"], ["y"], name="plus")]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(OnnxImportError, match=r"Add only as the bias of a fully connected layer"):
        import_onnx(model)


def test_the_imported_spec_reads_like_the_hand_written_one() -> None:
    net = netspec.load(ROOT / "specs" / "resnet18.ns")
    text = import_onnx(_skeleton_model(net), name="r18", weights=False).text
    assert "block " in text and "residual" in text and "project downsample:" in text
    statements = [s for s in text.splitlines() if s.strip() and not s.startswith("#")]
    assert len(statements) <= 20, text


def test_weight_names_come_from_the_initializers_when_node_names_say_nothing() -> None:
    net = netspec.load(ROOT / "specs" / "mobilenet_cifar.ns")
    model = net.to_onnx(seed=0)
    model.producer_name = "some exporter"
    for n, node in enumerate(model.graph.node):
        node.name = f"node_{n}"
    imported = import_onnx(model)
    assert imported.names_kept
    assert set(imported.weights()) == set(net.weight_shapes())


# ---- models torch exported -------------------------------------------------------------

torch = None


def _torch():
    global torch
    torch = pytest.importorskip("torch")
    return torch


def _export(model, shape: tuple[int, ...], tmp_path: Path, preserve: bool = True,
            dynamic: bool = True) -> Path:
    t = _torch()
    path = tmp_path / "model.onnx"
    kwargs = {"dynamo": False, "input_names": ["input"], "opset_version": 17,
              "training": t.onnx.TrainingMode.PRESERVE if preserve else t.onnx.TrainingMode.EVAL}
    if dynamic:
        kwargs["dynamic_axes"] = {"input": {0: "N"}}
    with open(os.devnull, "w") as devnull:   # the exporter's deprecation chatter
        import contextlib
        with contextlib.redirect_stderr(devnull):
            t.onnx.export(model.eval(), t.zeros(shape), str(path), **kwargs)
    return path


def _same_as_torch(model, path: Path, shape: tuple[int, ...], state_names: bool = True):
    t = _torch()
    imported = import_onnx(path)
    weights = imported.weights()
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    with t.no_grad():
        want = model.eval()(t.from_numpy(x)).numpy()
    got = imported.network.numpy_model(weights, threads=1)(x)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    if state_names:   # weights keep their state_dict names (and values)
        state = {k: v.numpy() for k, v in model.state_dict().items()}
        for k, v in weights.items():
            np.testing.assert_array_equal(v, state[k])
    return imported


def _randomise_bn(model) -> None:
    t = _torch()
    g = t.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, t.nn.BatchNorm2d):
            m.running_mean.copy_(t.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(t.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(t.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(t.randn(m.num_features, generator=g) * 0.1)


#: torchvision's classes; DenseNet in a small configuration (same code, same patterns:
#: its export is the slowest), batch norm kept (PRESERVE) or folded into the convs (EVAL).
TORCHVISION = [("resnet18", {}, True), ("resnet18", {}, False), ("mobilenet_v2", {}, True),
               ("DenseNet", {"growth_rate": 8, "block_config": (2, 3), "num_init_features": 16,
                             "bn_size": 2}, True),
               ("squeezenet1_1", {}, False)]


@pytest.mark.parametrize("name,config,preserve", TORCHVISION,
                         ids=[f"{n}-{'bn' if p else 'folded'}" for n, _, p in TORCHVISION])
def test_torchvision_models_import_to_the_same_outputs(name: str, config: dict, preserve: bool,
                                                       tmp_path: Path) -> None:
    t = _torch()
    tv = pytest.importorskip("torchvision")
    t.manual_seed(0)
    model = getattr(tv.models, name)(**config)
    _randomise_bn(model)
    path = _export(model, (1, 3, 64, 64), tmp_path, preserve)
    imported = _same_as_torch(model, path, (2, 3, 64, 64), state_names=preserve)
    assert imported.names_kept
    if preserve:   # every trainable parameter of the original, under its own name
        trainable = sum(p.numel() for p in model.parameters())
        assert imported.network.total_params == trainable
    if name == "resnet18":   # `out += self.downsample(x)` in layer2.0: still a residual
        assert "project downsample:" in imported.text and "add {" not in imported.text


#: torchvision's segmentation models (their `F.interpolate(…, size=x.shape[-2:])` calls
#: and merges) and words their imported specs must have.
SEGMENTATION = [
    # LR-ASPP: low_classifier(low) + high_classifier(F.interpolate(cbr(high) · scale(high),
    # size=low.shape[-2:])): an add and a mul of two branches, `to branch`, `to input`
    ("lraspp_mobilenet_v3_large", True, ("add {", "mul {", "upsample bilinear to branch")),
    ("lraspp_mobilenet_v3_large", False, ("add {", "mul {", "upsample bilinear to branch")),
    # DeepLabV3's ASPP: the image pooling branch resized to its input's size, in a concat
    # of the numbered children of `convs`
    ("deeplabv3_mobilenet_v3_large", True, ("convs: concat {", "upsample bilinear to branch")),
]


@pytest.mark.parametrize("name,preserve,words", SEGMENTATION,
                         ids=[f"{n.split('_')[0]}-{'bn' if p else 'folded'}"
                              for n, p, _ in SEGMENTATION])
def test_torchvision_segmentation_models_import_with_merges_and_resizes(
        name: str, preserve: bool, words: tuple[str, ...], tmp_path: Path) -> None:
    t = _torch()
    tv = pytest.importorskip("torchvision")
    t.manual_seed(0)
    model = getattr(tv.models.segmentation, name)(weights=None, weights_backbone=None,
                                                  num_classes=5).eval()
    _randomise_bn(model)

    class Out(t.nn.Module):   # the model returns {"out": …}; the test compares that tensor
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model(x)["out"]

    path = _export(model, (1, 3, 48, 48), tmp_path, preserve)
    imported = _same_as_torch(Out(), path, (2, 3, 48, 48), state_names=False)
    assert imported.names_kept
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    for k, v in imported.weights().items() if preserve else ():   # the state_dict's names
        np.testing.assert_array_equal(v, state[k])
    text = imported.text
    assert "upsample bilinear to input" in text and "residual { classifier" not in text
    for w in words:
        assert w in text, text
    # and on to PyTorch code: the imported spec's module loads the imported weights and
    # computes what torchvision's model computes
    from netspec.backends.torch import torch_source
    source = torch_source(imported.network)
    namespace: dict = {}
    exec(compile(source, "generated.py", "exec"), namespace)   # noqa: S102 (our own output)
    cls = namespace[source.split("model = ")[1].split("(")[0].strip()]
    generated = cls().eval()
    generated.load_state_dict({k: t.from_numpy(v) for k, v in imported.weights().items()})
    x = t.from_numpy(np.random.default_rng(2).standard_normal((1, 3, 48, 48)).astype(np.float32))
    with t.no_grad():
        np.testing.assert_allclose(generated(x).numpy(), model(x)["out"].numpy(),
                                   rtol=1e-4, atol=1e-5)


def test_a_hand_built_twin_with_every_handled_pattern(tmp_path: Path) -> None:
    t = _torch()
    nn = t.nn

    class Branches(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(8, 4, 1)
            self.b = nn.Sequential(nn.Conv2d(8, 4, 3, padding=1), nn.Tanh())

        def forward(self, x):
            return t.cat([self.a(x), self.b(x), x], 1)

    class Twin(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(8)
            self.act = nn.ReLU6()
            self.mix = Branches()
            self.res = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.ReLU())
            self.pool = nn.AvgPool2d(3, stride=2, ceil_mode=True)
            self.gate = nn.Sigmoid()
            self.w = nn.Parameter(t.randn(16 * 4 * 4, 10) * 0.1)
            self.b = nn.Parameter(t.randn(10))

        def forward(self, x):
            x = self.act(self.bn(self.stem(x)))
            x = self.mix(x)
            x = self.pool(x + self.res(x))
            x = self.gate(x)
            x = x.view(x.size(0), -1)
            return t.softmax(t.matmul(x, self.w) + self.b, dim=1)

    t.manual_seed(0)
    model = Twin()
    _randomise_bn(model)
    for dynamic in (False, True):   # x.view(x.size(0), -1): a constant, or Shape → Gather → …
        path = _export(model, (2, 3, 15, 15), tmp_path, dynamic=dynamic)
        _same_as_torch(model, path, (2, 3, 15, 15), state_names=False)


def test_a_twin_with_gates_and_the_newer_activations(tmp_path: Path) -> None:
    """SiLU and Hardswish (exported as x·Sigmoid(x), x·HardSigmoid(x) or HardSwish), GELU
    (Div, Erf, Add, Mul, Mul before opset 20), Hardsigmoid, LeakyReLU, batch norm with
    ε = 1e-3, an average that counts its padding, and squeeze-and-excitation: x × gate(x)."""
    t = _torch()
    nn = t.nn

    class SE(nn.Module):
        def __init__(self, c: int) -> None:
            super().__init__()
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc1 = nn.Conv2d(c, 4, 1)
            self.fc2 = nn.Conv2d(4, c, 1)
            self.act = nn.SiLU()
            self.scale = nn.Hardsigmoid()

        def forward(self, x):
            return x * self.scale(self.fc2(self.act(self.fc1(self.avgpool(x)))))

    class Twin(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(8, eps=1e-3)
            self.act = nn.Hardswish()
            self.se = SE(8)
            self.conv = nn.Conv2d(8, 8, 3, padding=1)
            self.gelu = nn.GELU()
            self.leaky = nn.LeakyReLU(0.2)
            self.pool = nn.AvgPool2d(3, stride=1, padding=1)   # counts the padding
            self.fc = nn.Linear(8, 5)

        def forward(self, x):
            x = self.se(self.act(self.bn(self.stem(x))))
            x = self.pool(self.leaky(self.gelu(self.conv(x))))
            return self.fc(t.flatten(t.nn.functional.adaptive_avg_pool2d(x, 1), 1))

    t.manual_seed(0)
    model = Twin()
    _randomise_bn(model)
    for opset in (17, 20):
        path = tmp_path / f"twin{opset}.onnx"
        with open(os.devnull, "w") as devnull:
            import contextlib
            with contextlib.redirect_stderr(devnull):
                t.onnx.export(model.eval(), t.zeros(1, 3, 12, 12), str(path), dynamo=False,
                              input_names=["input"], opset_version=opset,
                              training=t.onnx.TrainingMode.PRESERVE)
        imported = _same_as_torch(model, path, (2, 3, 12, 12))
        kinds = [layer.kind for layer in imported.network.layers]
        assert {"hswish", "silu", "hsigmoid", "gelu", "leaky", "mul"} <= set(kinds)
        assert "se.fc1.weight" in imported.weights() and "bn eps1e-3" in imported.text
        assert "countpad" in imported.text and "gate {" in imported.text


def test_a_twin_with_two_branch_merges_and_a_projection(tmp_path: Path) -> None:
    """torch's adds of two computed paths: in a module, of equal shapes (`add { … }`); in
    a module that holds both paths and changes the shape (`residual … project`, as
    ResNet); and a product of two paths, the per-channel one first (`mul { … }`)."""
    t = _torch()
    nn = t.nn

    class Pair(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.left = nn.Conv2d(8, 8, 3, padding=1)
            self.right = nn.Sequential(nn.Conv2d(8, 8, 1), nn.ReLU())

        def forward(self, x):
            return self.left(x) + self.right(x)

    class Down(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(16)
            self.relu = nn.ReLU()
            self.downsample = nn.Sequential(nn.Conv2d(8, 16, 1, stride=2, bias=False),
                                            nn.BatchNorm2d(16))

        def forward(self, x):
            return self.relu(self.bn1(self.conv1(x)) + self.downsample(x))

    class Product(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.f = nn.Conv2d(16, 16, 1)
            self.s = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(16, 16, 1), nn.Sigmoid())

        def forward(self, x):
            return self.s(x) * self.f(x)

    class Twin(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, padding=1)
            self.upsample = Pair()   # a module named like a keyword of netspec's
            self.down = Down()
            self.product = Product()

        def forward(self, x):
            return self.product(self.down(self.upsample(t.relu(self.stem(x)))))

    t.manual_seed(0)
    model = Twin()
    _randomise_bn(model)
    path = _export(model, (1, 3, 10, 10), tmp_path)
    imported = _same_as_torch(model, path, (2, 3, 10, 10))
    text = imported.text
    assert imported.names_kept and "project downsample:" in text, text
    assert text.count("add {") == 1 and "mul {" in text and "gate" not in text, text
    assert "upsample.right.0.weight" in imported.weights()
    assert "upsample: upsample_block" in text   # a block holding the add, not named `upsample`


def _interpolating_twin():
    """F.interpolate as torch models call it: by a factor, to constant sizes, to another
    value's size (the branch input's: DeepLab's image pooling; an earlier value's), and to
    the network input's size."""
    t = _torch()
    nn, F = t.nn, t.nn.functional

    class ImagePool(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.conv = nn.Conv2d(8, 4, 1)

        def forward(self, x):
            size = x.shape[-2:]
            return F.interpolate(self.conv(self.pool(x)), size=size, mode="bilinear",
                                 align_corners=False)

    class Twin(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
            self.near = nn.Conv2d(8, 4, 1)
            self.image = ImagePool()
            self.head = nn.Conv2d(8, 5, 3, padding=1)

        def forward(self, x):
            y = t.relu(self.stem(x))
            z = t.cat([self.near(y), self.image(y)], 1)
            z = self.head(F.interpolate(z, scale_factor=2, mode="nearest"))
            z = F.interpolate(z, size=y.shape[-2:], mode="bilinear", align_corners=False)
            z = F.interpolate(z, size=(11, 9), mode="nearest")
            return F.interpolate(z, size=x.shape[-2:], mode="bilinear", align_corners=False)

    t.manual_seed(0)
    return Twin().eval()


@pytest.mark.parametrize("dynamic", [True, False], ids=["dynamic-batch", "fixed"])
def test_resizes_torch_exports_come_back_as_upsample(dynamic: bool, tmp_path: Path) -> None:
    model = _interpolating_twin()
    path = _export(model, (2, 3, 15, 15), tmp_path, dynamic=dynamic)
    imported = _same_as_torch(model, path, (2, 3, 15, 15))
    x = np.random.default_rng(0).standard_normal((2, 3, 15, 15)).astype(np.float32)
    got = imported.network.numpy_model(imported.weights(), threads=1)(x)
    np.testing.assert_allclose(got, _ort(onnx.load(str(path)), x), rtol=1e-5, atol=1e-6)
    text = imported.text
    # with a fixed batch the exporter folds x.shape into constants: the sizes it wrote
    branch, image = ("to branch", "to input") if dynamic else ("to 8x8", "to 15x15")
    for words in ("upsample nearest 2", f"upsample bilinear {branch}",
                  "upsample bilinear to 8x8", "upsample nearest to 11x9",
                  f"upsample bilinear {image}"):
        assert words in text, text
    assert text.index("concat") < text.index(branch) < text.index("nearest 2")


#: Resizes netspec has no upsample for, and the words of the error.
RESIZES = {
    "scale-1.5": ("7 pixels from 5, not 7.5: ONNX samples at 1.5, netspec at 7/5", "scales",
                  lambda F, x: F.interpolate(x, scale_factor=1.5, mode="nearest")),
    "align-corners": ("", "align_corners",
                      lambda F, x: F.interpolate(x, size=(9, 9), mode="bilinear",
                                                 align_corners=True)),
    "bicubic": ("", "cubic", lambda F, x: F.interpolate(x, scale_factor=2, mode="bicubic")),
}


@pytest.mark.parametrize("case", list(RESIZES))
def test_resizes_netspec_cannot_express_are_errors(case: str, tmp_path: Path) -> None:
    t = _torch()
    _, words, call = RESIZES[case]

    class Resize(t.nn.Module):
        def forward(self, x):
            return call(t.nn.functional, x)

    path = _export(Resize(), (1, 3, 5, 5), tmp_path, dynamic=False)
    with pytest.raises(OnnxImportError) as info:
        import_onnx(path)
    message = str(info.value)
    assert words in message and "(Resize, node" in message, message


@pytest.mark.parametrize("attrs,words", [
    ({"antialias": 1}, "antialias"),   # opset 18's; torch does not export antialias=True
    ({"coordinate_transformation_mode": "pytorch_half_pixel"}, "first pixel"),   # to 1×1
])
def test_resizes_made_by_other_exporters_netspec_cannot_express(attrs: dict,
                                                                words: str) -> None:
    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 0.125, 0.125])
    nodes = [_conv(pads=[1, 1, 1, 1]),
             helper.make_node("Resize", ["c", "", "scales"], ["y"], name="shrink",
                              mode="linear", **attrs)]
    with pytest.raises(OnnxImportError, match=rf'"shrink" \(Resize, node 2 of 2\).*{words}'):
        import_onnx(_graph(nodes, opset=18, inits=[scales]))


# ---- what netspec cannot express -------------------------------------------------------


def _graph(nodes, *, opset: int = 17, inits=()) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])
    y = helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3], np.ones(108, np.float32))
    graph = helper.make_graph(nodes, "g", [x], [y], [w, *inits])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _conv(name: str = "stem", **attrs) -> onnx.NodeProto:
    return helper.make_node("Conv", ["x", "w"], ["c"], name=name, kernel_shape=[3, 3], **attrs)


def test_an_unknown_operator_names_the_node_its_op_and_position() -> None:
    model = _graph([_conv(pads=[1, 1, 1, 1]),
                    helper.make_node("Selu", ["c"], ["y"], name="act")])
    with pytest.raises(OnnxImportError) as info:
        import_onnx(model)
    message = str(info.value)
    assert 'node "act"' in message and "Selu" in message and "node 2 of 2" in message
    assert [layer.name for layer in info.value.partial] == ["stem"]


@pytest.mark.parametrize("nodes,words", [
    ([_conv(pads=[0, 0, 1, 1])], "padding"),                             # asymmetric, not `same`
    ([_conv(strides=[1, 2])], "stride"),
    ([_conv(), helper.make_node("Clip", ["c", "lo", "hi"], ["y"], name="clip")], "Clip"),
    ([_conv(), helper.make_node("Softmax", ["c"], ["y"], axis=3)], "Softmax over axis 3"),
])
def test_inexpressible_nodes_are_errors_not_guesses(nodes, words: str) -> None:
    inits = [helper.make_tensor("lo", TensorProto.FLOAT, [], [-1.0]),
             helper.make_tensor("hi", TensorProto.FLOAT, [], [1.0])]
    with pytest.raises(OnnxImportError, match=words):
        import_onnx(_graph(nodes, inits=inits))


def test_branches_that_do_not_nest_are_joined_by_name() -> None:
    """s1 feeds both a1 and the final add: the paths cross, no nesting of merges says it,
    so the values are named and the adds read them (and compute what onnxruntime does)."""
    nodes = [_conv(pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r1"], name="r1"),
             helper.make_node("Sigmoid", ["c"], ["s1"], name="s1"),
             helper.make_node("Add", ["r1", "s1"], ["a1"], name="a1"),
             helper.make_node("Add", ["a1", "s1"], ["y"], name="a2")]
    text = _same_as_ort(_graph(nodes), "relu_out = {}\nfrom stem\nsigmoid\nsigmoid_out = {}\n"
                                       "add(relu_out, sigmoid_out)\n")
    assert "add(add_out, sigmoid_out)" in text


# ---- merges of two computed branches: `add { branch … }`, `mul { branch … }` ------------


def _ort(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _same_as_ort(model: onnx.ModelProto, text: str) -> str:
    """Import `model`: its NumPy model computes what onnxruntime computes, `text` is in
    the spec."""
    imported = import_onnx(model)
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(imported.network.numpy_model(imported.weights())(x),
                               _ort(model, x), rtol=1e-5, atol=1e-6)
    assert text in imported.text, imported.text
    return imported.text


def test_an_add_of_two_branches_inside_a_residual() -> None:
    """x + (relu(x) + sigmoid(x)): the inner add's consumers are grouped under the outer
    add's input they reach, and the inner add of two computed branches is `add { … }`."""
    nodes = [_conv(pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r1"], name="r1"),
             helper.make_node("Sigmoid", ["c"], ["s1"], name="s1"),
             helper.make_node("Add", ["r1", "s1"], ["a1"], name="a1"),
             helper.make_node("Add", ["a1", "c"], ["y"], name="a2")]
    text = _same_as_ort(_graph(nodes), "add {")
    assert "residual" in text and text.index("residual") < text.index("add {"), text


def test_a_product_of_two_branches_puts_the_per_channel_one_second() -> None:
    """sigmoid(pool(x)) · relu(x): netspec's mul broadcasts its second branch, so the
    branches are swapped (the product is the same)."""
    nodes = [_conv(pads=[1, 1, 1, 1]),
             helper.make_node("GlobalAveragePool", ["c"], ["p"], name="p"),
             helper.make_node("Sigmoid", ["p"], ["s"], name="s"),
             helper.make_node("Relu", ["c"], ["r"], name="r"),
             helper.make_node("Mul", ["s", "r"], ["y"], name="m")]
    text = _same_as_ort(_graph(nodes), "mul {")
    assert text.index("relu") < text.index("pool avg global"), text


def _nested(rng, depth: int) -> str:
    """A random statement keeping 6×6×4: layers, or (above depth 2) a residual, gate, concat,
    add or mul whose branches are random statements too."""
    kind = rng.choice(["layer", "layer", "residual", "shortcut", "add", "mul", "concat",
                       "gate"] if depth < 2 else ["layer"])
    if kind == "layer":
        return rng.choice(["conv 3x3 p1 x{C}", "conv 1x1 x{C} sigmoid", "relu", "bn", "tanh"])
    body = "; ".join(_nested(rng, depth + 1) for _ in range(rng.randint(1, 3)))
    second = "; ".join(_nested(rng, depth + 1) for _ in range(rng.randint(1, 2)))
    label = f"b{rng.randrange(10**9)}: "   # a labelled group, or none
    label, other = rng.choice(["", label]), rng.choice(["", label.replace("b", "c", 1)])
    return {
        "residual": f"residual {{ {body} }}",
        "shortcut": f"residual {{ {body} }} shortcut "
                    + (f"{label}[ conv 1x1 x{{C}} ]" if label else "{ conv 1x1 x{C} }"),
        "add": f"add {{ branch {label}{{ {body} }} branch "
               f"{rng.choice(['{}', other + '{ ' + second + ' }'])} }}",
        "mul": f"mul {{ branch {label}{{ {body} }} branch {{ "
               f"{rng.choice([second, 'pool avg global; conv 1x1 x{C} sigmoid'])} }} }}",
        "concat": f"concat {{ branch {{ {body} }} branch {{ {second} }} }}; conv 1x1 x4",
        "gate": f"gate {{ {body} }}",
    }[kind]


@pytest.mark.parametrize("seed", range(40))
def test_random_nestings_of_merges_round_trip(seed: int) -> None:
    """Every fork's consumers grouped by the join input they reach, at any nesting: the
    same layers, names and outputs come back."""
    import random
    rng = random.Random(seed)
    text = "input 6x6x4\n" + "\n".join(_nested(rng, 0) for _ in range(rng.randint(1, 3)))
    net = netspec.parse(text, "nested.ns")
    weights = net.init_weights(seed=seed)
    imported = import_onnx(net.to_onnx(weights), name="nested")
    assert imported.names_kept and _rows(imported.network) == _rows(net), imported.text
    x = np.random.default_rng(seed).standard_normal((1, 4, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(imported.network.numpy_model(imported.weights(), threads=1)(x),
                                  net.numpy_model(weights, threads=1)(x))


def test_netspec_exports_say_residual_or_add_where_both_compute_the_same() -> None:
    """`residual { A } shortcut B` and `add { branch A branch B }` compute the same; the
    node's doc_string says which statement netspec exported, and it comes back."""
    net = netspec.parse("input 8x8x3\nconv 3x3 p1 x4\n"
                        "residual { conv 3x3 p1 x4 } shortcut sc: [ conv 1x1 x4 ]\n"
                        "add { branch { conv 3x3 p1 x4; relu } branch { conv 1x1 x4 } }\n"
                        "mul { branch { conv 1x1 x4 } branch { pool avg global; sigmoid } }\n",
                        "merges.ns")
    weights = net.init_weights(seed=4)
    imported = import_onnx(net.to_onnx(weights), name="merges")
    assert _rows(imported.network) == _rows(net)
    assert "shortcut sc:" in imported.text and "add {" in imported.text
    assert "mul {" in imported.text
    lraspp = netspec.load(ROOT / "specs" / "segmentation" / "lraspp_mobilenet_v3_large.ns")
    text = import_onnx(_skeleton_model(lraspp), weights=False).text
    assert "add {" in text and "mul {" in text and "upsample bilinear to branch" in text


def test_old_opsets_are_refused() -> None:
    with pytest.raises(OnnxImportError, match="opset 11"):
        import_onnx(_graph([_conv()], opset=11))


# ---- the command line ------------------------------------------------------------------------


def test_cli_import_writes_a_spec_that_checks_and_its_weights(tmp_path: Path, capsys) -> None:
    net = netspec.load(ROOT / "specs" / "squeezenet1_1.ns")
    weights = net.init_weights(seed=2)
    from netspec.backends.onnx import save_onnx
    save_onnx(net, weights, tmp_path / "sq.onnx")
    assert main(["import", str(tmp_path / "sq.onnx"), "-o", str(tmp_path / "sq.ns"),
                 "--weights-out", str(tmp_path / "w.npz")]) == 0
    assert main(["check", "-q", str(tmp_path / "sq.ns")]) == 0   # (squeezenet loses input: a warning)
    back = netspec.load(tmp_path / "sq.ns")
    from netspec.data.weights import load_weights
    got = back.check_weights(load_weights(tmp_path / "w.npz"))
    for k, v in weights.items():
        np.testing.assert_array_equal(got[k], v)
    capsys.readouterr()
    assert main(["check", str(tmp_path / "sq.onnx")]) == 0
    assert "features.3.expand1x1" in capsys.readouterr().out


def test_cli_check_of_an_unimportable_model_shows_the_table_up_to_there(tmp_path: Path,
                                                                        capsys) -> None:
    model = _graph([_conv(pads=[1, 1, 1, 1]),
                    helper.make_node("Selu", ["c"], ["y"], name="act")])
    onnx.save(model, str(tmp_path / "m.onnx"))
    assert main(["check", str(tmp_path / "m.onnx")]) == 1
    out = capsys.readouterr()
    assert "Selu" in out.err and "Traceback" not in out.err
    assert "stem" in out.out and "8×8×4" in out.out


def test_cli_import_usage_errors(tmp_path: Path, capsys) -> None:
    assert main(["import", str(tmp_path / "missing.onnx")]) == 2
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    assert main(["import", str(tmp_path / "bad.onnx")]) == 1
    assert main(["import", str(tmp_path / "bad.onnx"), "-o", str(tmp_path / "bad.onnx")]) == 2
    assert (tmp_path / "bad.onnx").read_bytes() == b"not a model"
    assert "Traceback" not in capsys.readouterr().err


def test_stdout_gets_the_spec_without_o(tmp_path: Path, capsys) -> None:
    net = netspec.load(ROOT / "specs" / "lenet5.ns")
    onnx.save(net.to_onnx(), str(tmp_path / "l.onnx"))
    assert main(["import", str(tmp_path / "l.onnx")]) == 0
    text = capsys.readouterr().out
    assert netspec.parse(text).total_params == net.total_params
    assert io is not None
