"""`netspec export --torch`: generated PyTorch modules load netspec's weights and agree.

The oracle is torch itself running the generated code: for every spec, the
module's state_dict has exactly netspec's weight names and shapes, takes
netspec's weights with `load_state_dict(strict=True)` and computes what the
NumPy model computes; `ruff check` passes on it and `torch.jit.script` takes it
(`torch.compile`, where two groups share a label and TorchScript cannot).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import network_specs
from conftest import NAMING, small_network
from zoo_oracle import batch_statistics

import netspec
from netspec.cli import main
from netspec.backends.torch import TorchCodegenError, torch_source

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore")

ROOT = Path(__file__).resolve().parent.parent
SPECS = [str(p) for p in network_specs()]
#: Above this many parameters only the state_dict's names and shapes are compared
#: (built on the meta device, so nothing is allocated).
BIG = 15_000_000


def _load_module(source: str, path: Path):
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _network_class(module, source: str):
    line = next(x for x in source.splitlines() if x.strip().startswith("model = "))
    return getattr(module, line.split("= ")[1].strip().rstrip("()"))


def _weights(net: netspec.Network, seed: int = 1) -> dict[str, np.ndarray]:
    weights = net.init_weights(seed=seed)
    rng = np.random.default_rng(seed)
    for k in weights:   # batch norm that is not the identity
        if k.endswith("running_var"):
            weights[k] = rng.uniform(0.5, 2, weights[k].shape).astype(np.float32)
        elif k.endswith("running_mean"):
            weights[k] = rng.normal(0, 0.1, weights[k].shape).astype(np.float32)
    return weights


def _input(net: netspec.Network, n: int = 2) -> np.ndarray:
    s = net.input_shape
    shape = (n, s[2], s[0], s[1]) if len(s) == 3 else (n, s[0])
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def _check(net: netspec.Network, tmp_path: Path, script: bool = False) -> str:
    source = torch_source(net)
    module = _load_module(source, tmp_path / f"gen_{net.name}.py")
    cls = _network_class(module, source)
    if net.total_params > BIG:
        with torch.device("meta"):
            model = cls()
        got = {k: tuple(v.shape) for k, v in model.state_dict().items()
               if not k.endswith("num_batches_tracked")}
        assert got == {k: tuple(v) for k, v in net.weight_shapes().items()}
        return source
    weights = _weights(net)
    model = cls().eval()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=True)
    x = _input(net, 1)
    with torch.no_grad():
        got = model(torch.from_numpy(x)).numpy()
    want = net.numpy_model(weights, threads=1)(x)
    # atol 1e-4 of the output's scale, as tests/test_zoo.py: a deep net (RegNetY-1.6GF's 27
    # blocks, outputs near 300) loses about 3e-5 of its scale to summation order alone
    if not np.allclose(got, want, rtol=1e-4, atol=1e-4 * max(1, np.abs(want).max())):
        # Random batch-norm statistics can leave a net's values unbounded: StarNet's star
        # products square them each block (outputs near 1e5), and float32, in torch and
        # NumPy alike, loses 1e-3 to 1e-2 of the output there. Compare again with the
        # statistics of the batch (as tests/test_zoo.py), which keeps every value near 1.
        batch_statistics(model, torch.from_numpy(_input(net)))
        weights = {k: v.numpy() for k, v in model.state_dict().items()
                   if not k.endswith("num_batches_tracked")}
        with torch.no_grad():
            got = model(torch.from_numpy(x)).numpy()
        want = net.numpy_model(weights, threads=1)(x)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * max(1, np.abs(want).max()))
    if script and "_parts = (" in source:
        # Two groups under one label (LR-ASPP's `backbone:` halves) share one container
        # whose children carry netspec's keys; forward calls the parts from a plain tuple.
        # TorchScript calls only registered submodules, and registering the parts would
        # list every weight twice in the state_dict (`backbone_parts.0.0.weight` beside
        # `backbone.0.weight`), so `torch.jit.script` cannot take this module. torch.compile
        # (the successor torch names when it deprecates jit.script) takes it as one graph.
        compiled = torch.compile(model, backend="eager", fullgraph=True)
        with torch.no_grad():
            np.testing.assert_allclose(compiled(torch.from_numpy(x)).numpy(), got, rtol=1e-5,
                                       atol=1e-6)
    elif script:
        scripted = torch.jit.script(model)
        with torch.no_grad():
            np.testing.assert_allclose(scripted(torch.from_numpy(x)).numpy(), got, rtol=1e-5,
                                       atol=1e-6)
    return source


def _ruff(path: Path) -> subprocess.CompletedProcess:
    ruff = shutil.which("ruff") or shutil.which("ruff", path=str(Path(sys.executable).parent))
    if ruff is None:
        pytest.skip("ruff is not installed")
    return subprocess.run([ruff, "check", "--isolated", "--no-cache", str(path)],
                          capture_output=True, text=True, check=False)


@pytest.mark.parametrize("path", SPECS, ids=[Path(p).stem for p in SPECS])
def test_every_spec_generates_a_module_with_netspec_weights_and_outputs(path: str,
                                                                       tmp_path: Path) -> None:
    net = small_network(path)
    small = net.total_params < 5_000_000
    source = _check(net, tmp_path, script=small)
    result = _ruff(tmp_path / f"gen_{net.name}.py")
    assert result.returncode == 0, result.stdout
    assert "import numpy" not in source   # torch only


def test_blocks_become_classes_with_their_parameters(tmp_path: Path) -> None:
    source = torch_source(netspec.load(ROOT / "specs" / "resnet18.ns"))
    assert "class Basic(nn.Module):" in source
    assert "def __init__(self, in_channels: int, c: int, s: int = 1) -> None:" in source
    assert "x = x + identity" in source                 # the residual is the forward's add
    # the projection exists where torchvision's does: stride ≠ 1 or the channels change
    assert "if c != c_in or s != 1:" in source and "self.downsample = None" in source
    # a stage is a class with a loop; its first block takes the stride
    assert "class BasicStage(nn.Sequential):" in source
    assert "for j in range(n):" in source and 'f"{j}"' in source
    assert "Basic(ch, c, s=s if j == 0 else 1)" in source
    assert "self.layer2 = BasicStage(64, 2, 128, s=2)" in source
    dense = torch_source(netspec.load(ROOT / "specs" / "densenet121.ns"))
    assert "for i in range(n):" in dense and 'f"denselayer{i + 1}"' in dense   # repeat $n
    assert "torch.cat(" in dense


SPEC = """
block vgg(n, c) { repeat $n { conv 3x3 p1 x$c relu }; pool 2 }
block inception(a, b) {
    concat {
        branch p1: [ conv 1x1 x$a; relu ]
        branch { conv 1x1 x{C/2} relu; conv 3x3 p1 x$b }
        branch {}
    }
}
block bottle(c) {
    residual { conv 1x1 x$c nobias; bn; relu; conv 3x3 p1 x{4*c} } shortcut proj: [ conv 1x1 x{4*c} ]
    tanh
}
input 16x16x3
stem: [ vgg(2, 8); vgg(1, 16) ]
inception(8, 16)
bottle(4)
lrn 3 a0.001 b0.7 k2
pool max 3 s2 p1 ceil
fc 32; bn; sigmoid; dropout 0.3
fc 10; softmax
"""


def test_loops_concat_shortcuts_and_vector_layers(tmp_path: Path) -> None:
    source = _check(netspec.parse(SPEC, "mix.ns"), tmp_path, script=True)
    assert "class Vgg(nn.Sequential):" in source and "class Inception(nn.Module):" in source
    assert "nn.BatchNorm1d(32)" in source
    assert _ruff(tmp_path / "gen_mix.py").returncode == 0


@pytest.mark.parametrize("text", [
    "input 9x9x3\nconv 4x4 same x4\nconv 3x5 same d2 x4 relu6\npool 3 s1 same\npool avg 2 s1\nfc 3",
    "input 12\nfc 8; bn; tanh; dropout 0.5; fc 4; softmax",
    "input 13x10x3\nconv 3x3 p1 x4\npool avg to 5x3\nfc 5",
    "block b(k) { conv 3x3 p1 x{C*2}; pool max 2 s$k ceil }\ninput 7x7x2\nb(2); b(k=1)\nflatten",
    # the shortcut of a residual whose body is a call depends on the call's stride
    "block down(s) { conv 3x3 s$s p1 x{C} }\n"
    "block res(s=1) { residual { down(s=$s) } project sc: [ conv 1x1 s$s x{C} ] }\n"
    "block opt(s=1) { residual? { down(s=$s); relu } }\n"
    "input 8x8x4\nres(); res(s=2); opt(); opt(s=2)",
])
def test_padding_strides_and_vectors(text: str, tmp_path: Path) -> None:
    _check(netspec.parse(text, "small.ns"), tmp_path, script=True)




def test_names_with_params_dashes_counters_and_numbers(tmp_path: Path) -> None:
    source = _check(netspec.parse(NAMING, "naming.ns"), tmp_path, script=True)
    assert 'f"block{k}-{j}"' in source and "for j in range(n):" in source


def test_the_projection_is_where_the_builder_put_it(tmp_path: Path) -> None:
    """A 3×3 stride-2 conv with padding 1 keeps a 1×1 input 1×1 ((1 + 2 - 3) // 2 + 1 = 1), so
    netspec uses no projection although `s != 1`: the module must not have one either."""
    block = "block b(s=1) { residual { conv 3x3 s$s p1 x4 } project sc: [ conv 1x1 s$s x4 ] }\n"
    skip = "block o(s=1) { residual? { conv 3x3 s$s p1 x4 } }\n"   # and `residual?` adds
    net = netspec.parse(block + skip + "input 1x1x4\nb(s=2); o(s=2)\n", "tiny.ns")
    assert not any(name.startswith("b1.sc") for name in net.weight_shapes())
    assert [layer.name for layer in net.layers if layer.kind == "add"] == ["b1.add1", "o1.add1"]
    _check(net, tmp_path, script=True)
    # 2×2 → 1×1 projects, 1×1 → 1×1 does not: one class cannot say both from `s` alone
    net = netspec.parse(block + "input 2x2x4\nb(s=2); b(s=2)\n", "tiny.ns")
    assert "b1.sc.0.weight" in net.weight_shapes() and "b2.sc.0.weight" not in net.weight_shapes()
    with pytest.raises(TorchCodegenError, match="height and width") as info:
        torch_source(net)
    assert info.value.line == 1


def test_what_it_cannot_write_is_an_error_with_a_position() -> None:
    net = netspec.parse("block b(c) { residual { conv 3x3 p1 x$c } project { conv 1x1 x$c } }\n"
                        "input 8x8x3\nb(4)\n", "p.ns")
    with pytest.raises(TorchCodegenError, match="unlabelled projection") as info:
        torch_source(net)
    assert info.value.line == 1


def test_generating_code_loads_neither_torch_nor_numpy(tmp_path: Path) -> None:
    code = ("import sys, netspec; from netspec.backends.torch import torch_source; "
            f"torch_source(netspec.load({str(ROOT / 'specs' / 'densenet121.ns')!r})); "
            "print(sorted(m for m in ('torch', 'numpy', 'onnx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT)}, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_export_torch(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "lenet.ns"
    spec.write_text((ROOT / "specs" / "lenet5.ns").read_text())
    assert main(["export", str(spec), "--torch"]) == 0
    assert (tmp_path / "lenet.py").read_text().startswith('"""lenet')
    assert main(["export", str(spec), "--torch", "-o", str(spec)]) == 2
    assert main(["export", str(spec), "--torch", "--onnx"]) == 2
    assert spec.read_text() == (ROOT / "specs" / "lenet5.ns").read_text()


def test_import_then_export_torch_computes_what_torch_computed(tmp_path: Path) -> None:
    """The issue's end to end: torchvision resnet18 → ONNX → spec → PyTorch code + weights."""
    tv = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    original = tv.models.resnet18().eval()
    torch.onnx.export(original, torch.zeros(1, 3, 64, 64), str(tmp_path / "r18.onnx"),
                      dynamo=False, input_names=["input"],
                      training=torch.onnx.TrainingMode.PRESERVE)
    assert main(["import", str(tmp_path / "r18.onnx"), "-o", str(tmp_path / "r18.ns"),
                 "--weights-out", str(tmp_path / "r18.npz")]) == 0
    text = (tmp_path / "r18.ns").read_text()
    assert len([s for s in text.splitlines() if s.strip()]) <= 20   # as short as specs/resnet18.ns
    assert main(["check", "-q", str(tmp_path / "r18.ns")]) == 0
    assert main(["export", str(tmp_path / "r18.ns"), "--torch", "-o",
                 str(tmp_path / "r18_model.py")]) == 0
    source = (tmp_path / "r18_model.py").read_text()
    module = _load_module(source, tmp_path / "r18_model.py")
    model = _network_class(module, source)().eval()
    npz = np.load(tmp_path / "r18.npz")
    model.load_state_dict({k: torch.from_numpy(v) for k, v in npz.items()})   # the documented line
    assert set(npz.files) == {k for k in original.state_dict() if "num_batches" not in k}
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 3, 64, 64),
                                                                  dtype=np.float32))
    with torch.no_grad():
        np.testing.assert_allclose(model(x).numpy(), original(x).numpy(), rtol=1e-4, atol=1e-5)


def test_what_torch_cannot_be_written_is_an_error_at_its_line_with_a_caret(tmp_path, capsys):
    spec = tmp_path / "proj.ns"
    spec.write_text("input 8x8x4\n# a projection nobody named\n"
                    "residual { conv 3x3 p1 x8 } project { conv 1x1 x8 }\nrelu\n")
    out = tmp_path / "proj.py"
    assert main(["export", str(spec), "--torch", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{spec}:3:1: error: --torch cannot write an unlabelled projection" in err
    assert "    3 | residual { conv 3x3 p1 x8 } project { conv 1x1 x8 }\n      | ^" in err
    assert "hint:" in err and not out.exists()
