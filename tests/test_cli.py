"""The `netspec` command: output, exit statuses, JSON, stdin and start-up cost."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from netspec.cli import main

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.ns"))


def run(*args, stdin=None):
    """Run the real command in a subprocess, as a user would."""
    return subprocess.run([sys.executable, "-m", "netspec", *args], input=stdin,
                          capture_output=True, text=True, cwd=ROOT)


def test_check_prints_the_lenet_table():
    r = run("check", "specs/lenet5.ns")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    conv1 = next(line for line in lines if line.startswith("conv1"))
    # 28x28x6 output = 4,704 activations; (5*5*3+1)*6 = 456 parameters
    assert "28×28×6" in conv1 and "4,704" in conv1 and "456" in conv1
    assert "62,006" in r.stdout   # 456 + 2,416 + 48,120 + 10,164 + 850


def test_check_json_lists_every_layer():
    r = run("check", "--json", "specs/lenet5.ns", "specs/mnist_cnn.ns")
    assert r.returncode == 0, r.stderr
    lenet, mnist = map(json.loads, r.stdout.splitlines())
    assert lenet["network"] == "lenet5"
    assert lenet["layers"][0] == {"name": "input", "op": "input", "text": "input 32x32x3",
                                  "line": 2, "inputs": [], "output": [32, 32, 3], "params": 0,
                                  "macs": 0, "attrs": {"shape": [32, 32, 3]},
                                  # the input sees itself: one pixel, stride 1, centred on 0
                                  "rf": [1, 1], "jump": [1, 1], "rf_centre": [0.0, 0.0],
                                  "flops": 0}
    assert [lay["output"] for lay in lenet["layers"][1:3]] == [[28, 28, 6], [14, 14, 6]]
    assert lenet["total_params"] == sum(lay["params"] for lay in lenet["layers"])
    # PyTorch's MNIST example: 320 + 18,496 + 1,179,776 + 1,290
    assert mnist["total_params"] == 1_199_882


def test_check_reads_stdin():
    r = run("check", "-", stdin="input 8x8x1; conv 3x3 x2")
    assert r.returncode == 0 and "6×6×2" in r.stdout


def test_spec_errors_exit_1_with_location_and_caret(tmp_path):
    spec = tmp_path / "bad.ns"
    spec.write_text("input 8x8x3\ncnov 3x3 x2\n")
    r = run("check", str(spec))
    assert r.returncode == 1
    assert f"{spec}:2:1: error: unknown layer `cnov`" in r.stderr
    assert "^~~~" in r.stderr and "did you mean `conv`?" in r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_json_reports_errors_too(tmp_path):
    spec = tmp_path / "bad.ns"
    spec.write_text("input 8x8x3\nconv 3x3 s0 x2\n")
    r = run("check", "--json", str(spec))
    assert r.returncode == 1
    (err,) = json.loads(r.stdout)["errors"]
    assert (err["line"], err["column"]) == (2, 10)


def test_warnings_exit_0_unless_strict(tmp_path):
    spec = tmp_path / "w.ns"
    spec.write_text("input 9x9x3\nconv 2x2 s2 x4\n")
    r = run("check", str(spec))
    assert r.returncode == 0 and ":2:1: warning:" in r.stderr
    assert run("check", "--strict", str(spec)).returncode == 1


def test_usage_errors_exit_2():
    assert run("check", "no/such/file.ns").returncode == 2
    assert run("check", "--bogus", "specs/lenet5.ns").returncode == 2
    assert run().returncode == 2
    r = run("check", "no/such/file.ns")
    assert "no such spec file" in r.stderr and "Traceback" not in r.stderr


def test_a_directory_or_binary_file_is_an_error_not_a_traceback(tmp_path):
    binary = tmp_path / "x.ns"
    binary.write_bytes(b"\xff\xfe\x00")
    r = run("check", str(binary))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert run("check", str(tmp_path)).returncode == 2


def test_check_does_not_import_numpy_or_onnx():
    code = ("import sys; from netspec.cli import main; main(['check', '-q', 'specs/lenet5.ns']);"
            "print(sorted(m for m in ('numpy', 'onnx', 'onnxruntime', 'torch') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.stdout.strip() == "[]", r.stderr


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.name)
def test_shipped_specs_check_clean(spec, capsys):
    assert main(["check", "--strict", str(spec)]) == 0
    assert capsys.readouterr().err == ""


def test_init_and_run_with_weights(tmp_path):
    import numpy as np
    weights, x, y = tmp_path / "w.npz", tmp_path / "x.npy", tmp_path / "y.npy"
    r = run("init", "specs/lenet5.ns", "-o", str(weights), "--seed", "4")
    assert r.returncode == 0, r.stderr
    batch = np.random.default_rng(0).standard_normal((3, 3, 32, 32)).astype(np.float32)
    np.save(x, batch)
    r = run("run", "specs/lenet5.ns", "--input", str(x), "--weights", str(weights), "-o", str(y))
    assert r.returncode == 0, r.stderr
    import netspec
    from netspec.data.weights import load_weights
    net = netspec.load(ROOT / "specs/lenet5.ns")
    expected = net.numpy_model(load_weights(weights))(batch)
    np.testing.assert_array_equal(np.load(y), expected)
    assert "output: 3×10 float32" in r.stdout
    assert f"sample 1: argmax {expected[1].argmax()}" in r.stdout
    assert "random" not in r.stdout
    # --seed gives the same weights as init --seed, and says that they are random
    r2 = run("run", "specs/lenet5.ns", "--input", str(x), "--seed", "4")
    assert "weights: random (seed 4" in r2.stdout and "not a prediction" in r2.stdout
    assert r2.stdout.split("output:")[1] == r.stdout.split("output:")[1].split("wrote")[0]


def _printed_values(stdout: str) -> list[float]:
    """The numbers on the indented value lines of `netspec run`'s output."""
    return [float(v) for line in stdout.splitlines() if line.startswith("    ")
            for v in line.split()]


def test_run_prints_the_values_of_a_small_output(tmp_path):
    """At most 64 numbers are printed whole (to 4 significant digits), as well as the argmax;
    a larger output is summarised."""
    import numpy as np
    import netspec
    net = netspec.load(ROOT / "specs/lenet5.ns")
    x = tmp_path / "x.npy"
    for n, shown in ((6, True), (7, False)):   # 60 numbers are printed, 70 are not
        batch = np.random.default_rng(n).standard_normal((n, 3, 32, 32)).astype(np.float32)
        np.save(x, batch)
        r = run("run", "specs/lenet5.ns", "--input", str(x), "--seed", "1")
        assert r.returncode == 0, r.stderr
        values = _printed_values(r.stdout)
        if shown:
            expected = net.numpy_model(net.init_weights(1))(batch).reshape(-1)
            np.testing.assert_allclose(values, expected, rtol=6e-4)
        else:
            assert values == [] and r.stdout.count("argmax") == 7
    # a fully convolutional output is printed map by map: the course's vertical edge filter
    # [1 0 -1] on a 6x6 image, light on the left half, gives 30 down the two middle columns
    spec = tmp_path / "edge.ns"
    spec.write_text("input 6x6x1\nedges: conv 3x3 x2 nobias\n")
    image = np.zeros((1, 1, 6, 6), np.float32)
    image[..., :3] = 10
    np.save(x, image)
    r = run("run", str(spec), "--input", str(x), "--weights", "specs/edges.npz")
    assert r.returncode == 0, r.stderr
    assert "sample 0, channel 0:" in r.stdout and "sample 0, channel 1:" in r.stdout
    assert _printed_values(r.stdout) == [0, 30, 30, 0] * 4 + [0] * 16


def test_run_reads_either_layout_and_one_sample(tmp_path):
    """The spec says H×W×C, PyTorch N×C×H×W: `run --input` reads N×C×H×W, N×H×W×C and one
    sample of either, says which layout it read, and gives the same output for each."""
    import numpy as np
    batch = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    arrays = {"N×C×H×W": batch, "N×H×W×C": batch.transpose(0, 2, 3, 1),
              "one C×H×W sample": batch[0], "one H×W×C sample": batch[0].transpose(1, 2, 0)}
    outs = {}
    for layout, array in arrays.items():
        x, y = tmp_path / "x.npy", tmp_path / f"{len(outs)}.npy"
        np.save(x, array)
        r = run("run", "specs/lenet5.ns", "--input", str(x), "-o", str(y))
        assert r.returncode == 0 and r.stderr == "", r.stderr
        assert f"read as {layout}" in r.stdout
        outs[layout] = np.load(y)
    np.testing.assert_array_equal(outs["N×H×W×C"], outs["N×C×H×W"])
    np.testing.assert_array_equal(outs["one H×W×C sample"], outs["N×C×H×W"][:1])
    np.testing.assert_array_equal(outs["one C×H×W sample"], outs["N×C×H×W"][:1])
    # when H = W = C both layouts have the shape: read as N×C×H×W, with a warning that
    # says how to transpose an N×H×W×C array
    cube = tmp_path / "cube.ns"
    cube.write_text("input 4x4x4\nfc 2\n")
    np.save(x, np.ones((1, 4, 4, 4), np.float32))
    r = run("run", str(cube), "--input", str(x))
    assert r.returncode == 0 and "read as N×C×H×W" in r.stdout
    assert "warning" in r.stderr and "x.transpose(0, 3, 1, 2)" in r.stderr
    # a vector input: N×F, or one sample of F
    vec = tmp_path / "vec.ns"
    vec.write_text("input 5\nfc 2\n")
    np.save(x, np.ones(5, np.float32))
    r = run("run", str(vec), "--input", str(x))
    assert r.returncode == 0 and "read as one sample of F" in r.stdout, r.stderr


def test_run_errors(tmp_path):
    import numpy as np
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 32, 3, 32), np.float32))   # neither N×C×H×W nor N×H×W×C
    out = tmp_path / "y.npy"
    r = run("run", "specs/lenet5.ns", "--input", str(x), "-o", str(out))
    assert r.returncode == 1 and "input has shape 1×32×3×32, but lenet5 takes N×C×H×W = " \
        "N×3×32×32 or N×H×W×C = N×32×32×3" in r.stderr
    assert "transpose it to N×C×H×W (x.transpose(0, 2, 1, 3) in NumPy)" in r.stderr
    assert not out.exists()
    np.save(x, np.zeros((1, 32, 32, 1), np.float32))   # a grey image for an RGB network
    r = run("run", "specs/lenet5.ns", "--input", str(x))
    assert r.returncode == 1 and "input has shape 1×32×32×1" in r.stderr
    assert "transpose" not in r.stderr
    assert run("run", "specs/lenet5.ns", "--input", str(tmp_path / "none.npy")).returncode == 2
    w = tmp_path / "w.npz"
    np.savez(w, nothing=np.zeros(1))
    np.save(x, np.zeros((1, 3, 32, 32), np.float32))
    r = run("run", "specs/lenet5.ns", "--input", str(x), "--weights", str(w))
    assert r.returncode == 1 and "missing array `conv1.weight`" in r.stderr
    assert "Traceback" not in r.stderr
    assert run("run", "specs/lenet5.ns", "--input", str(x), "--backend", "tf").returncode == 2


def test_export_run_onnx_and_numpy_agree(tmp_path):
    import numpy as np
    spec = tmp_path / "lenet5.ns"
    spec.write_text((ROOT / "specs/lenet5.ns").read_text())
    r = run("export", str(spec), "--onnx", "--seed", "2")
    assert r.returncode == 0, r.stderr
    onnx_file = tmp_path / "lenet5.onnx"          # default: the spec's name
    assert onnx_file.exists() and "opset 21" in r.stdout
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32))
    outs = []
    for args in (["run", str(spec), "--seed", "2"], ["run", str(spec), "--seed", "2", "--backend", "onnx"],
                 ["run", str(onnx_file)]):
        y = tmp_path / f"y{len(outs)}.npy"
        r = run(*args, "--input", str(x), "-o", str(y))
        assert r.returncode == 0, r.stderr
        outs.append(np.load(y))
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(outs[2], outs[0], rtol=1e-4, atol=1e-5)


def test_export_errors_leave_no_file(tmp_path):
    out = tmp_path / "o.onnx"
    r = run("export", "specs/lenet5.ns", "--onnx", "--opset", "5", "-o", str(out))
    assert r.returncode == 2 and "--opset 5 is not supported" in r.stderr
    bad = tmp_path / "bad.ns"
    bad.write_text("input 8x8x3\nconv 9x9 x2\n")
    assert run("export", str(bad), "--onnx", "-o", str(out)).returncode == 1
    assert list(tmp_path.iterdir()) == [bad]
    x = tmp_path / "x.npy"
    np_code = "import numpy as np, sys; np.save(sys.argv[1], np.zeros((1, 3, 32, 32), np.float32))"
    subprocess.run([sys.executable, "-c", np_code, str(x)], check=True)
    assert run("run", str(tmp_path / "none.onnx"), "--input", str(x)).returncode == 2
    garbage = tmp_path / "g.onnx"
    garbage.write_text("garbage")
    r = run("run", str(garbage), "--input", str(x))
    assert r.returncode == 1 and "cannot load ONNX model" in r.stderr


def test_bench_reports_both_backends_and_the_ratios():
    r = run("bench", "specs/lenet5.ns", "--batch", "4", "--repeat", "1")
    assert r.returncode == 0, r.stderr
    for line in ("numpy", "onnxruntime", "ratio numpy/onnxruntime", "numpy.matmul", "RSS peak"):
        assert line in r.stdout


def test_depth_sums_rows_by_name_prefix():
    r = run("check", "--depth", "2", "specs/resnet18.ns")
    assert r.returncode == 0, r.stderr
    row = next(line for line in r.stdout.splitlines() if line.startswith("layer2.0 "))
    # conv1 3·3·64·128 + bn 2·128 + conv2 3·3·128·128 + bn 2·128 + downsample 64·128 + bn 2·128
    params = 3 * 3 * 64 * 128 + 256 + 3 * 3 * 128 * 128 + 256 + 64 * 128 + 256
    assert "basic(c=128, s=2)" in row and "28×28×128" in row and f"{params:,}" in row
    assert run("check", "--depth", "0", "specs/lenet5.ns").returncode == 2


def test_json_gives_each_layers_inputs():
    r = run("check", "--json", "specs/resnet18.ns")
    layers = {lay["name"]: lay for lay in json.loads(r.stdout)["layers"]}
    assert layers["input"]["inputs"] == []
    assert layers["layer2.0.add1"]["inputs"] == ["layer2.0.bn2", "layer2.0.downsample.1"]
    assert layers["layer1.0.add1"]["inputs"] == ["layer1.0.bn2", "maxpool"]


def test_windows_line_endings_and_a_byte_order_mark(tmp_path):
    spec = tmp_path / "crlf.ns"
    spec.write_bytes(b"\xef\xbb\xbfinput 8x8x3\r\nconv 3x3 x2\r\ncnov 1x1 x2\r\n")
    r = run("check", str(spec))
    assert r.returncode == 1 and f"{spec}:3:1: error: unknown layer `cnov`" in r.stderr
    assert "\r" not in r.stderr
    spec.write_bytes(b"\xef\xbb\xbfinput 8x8x3\r\nconv 3x3 x2\r\n")
    assert run("check", str(spec)).returncode == 0


def test_bad_numbers_and_unwritable_outputs_are_usage_errors(tmp_path):
    assert run("init", "specs/lenet5.ns", "-o", str(tmp_path / "w.npz"), "--seed", "-1").returncode == 2
    assert run("bench", "specs/lenet5.ns", "--batch", "0").returncode == 2
    r = run("init", "specs/lenet5.ns", "-o", str(tmp_path / "missing" / "w.npz"))
    assert r.returncode == 2 and "No such file or directory" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_reader_that_stops_early_ends_the_command_quietly():
    """`netspec explain specs/resnet50.ns | head -1`: once the reader has gone, netspec stops
    with exit 0 and nothing on stderr, as Unix tools do. The pipe's reader is closed before
    netspec writes, so its first write fails whatever the timing (head's case at its fastest);
    then the real pipeline through head."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        r = subprocess.run([sys.executable, "-m", "netspec", "explain", "specs/resnet50.ns"],
                           stdout=write_end, stderr=subprocess.PIPE, cwd=ROOT)
    finally:
        os.close(write_end)
    assert r.returncode == 0 and r.stderr == b"", r.stderr
    shell = subprocess.run(["bash", "-c", f"'{sys.executable}' -m netspec explain "
                            "specs/resnet50.ns | head -1; exit ${PIPESTATUS[0]}"],
                           capture_output=True, text=True, cwd=ROOT)
    assert shell.returncode == 0 and shell.stderr == "", shell.stderr
    assert shell.stdout == "resnet50: input 224×224×3\n"


def test_outputs_are_written_in_the_format_their_suffix_names(tmp_path):
    """`draw -o out.png` never writes SVG into a .png, nor `export --torch -o x.onnx` Python
    into an .onnx: an output is in the format its suffix names where netspec writes that
    format (with a note when a flag asked for another), and refused (exit 2) before anything
    is written otherwise."""
    spec = tmp_path / "lenet5.ns"
    spec.write_text((ROOT / "specs/lenet5.ns").read_text())
    refused = {
        ("draw", "out.png"): "out.png names a PNG image, but netspec draw writes an SVG "
                             "picture (.svg) or an HTML page (.html)",
        ("report", "out.pdf"): "names a PDF document",
        ("export", "out.pt"): "out.pt names a PyTorch checkpoint, but netspec export writes "
                              "an ONNX model (.onnx) or Python code (.py)",
        ("init", "w.npy"): "netspec init writes a NumPy archive (.npz)",
        ("import", "model.py"): "netspec import writes a spec (.ns)",
    }
    for (command, out), message in refused.items():
        source = str(tmp_path / "lenet5.onnx") if command == "import" else str(spec)
        r = run(command, source, "-o", str(tmp_path / out))
        assert r.returncode == 2 and message in r.stderr, (command, r.stderr)
    x = tmp_path / "x.npy"
    subprocess.run([sys.executable, "-c", "import numpy as np, sys; np.save(sys.argv[1], "
                    "np.zeros((1, 3, 32, 32), np.float32))", str(x)], check=True)
    r = run("run", str(spec), "--input", str(x), "-o", str(tmp_path / "y.txt"))
    assert r.returncode == 2 and "netspec run writes a NumPy array (.npy)" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lenet5.ns", "x.npy"]  # none written

    r = run("export", str(spec), "--torch", "-o", str(tmp_path / "m.onnx"))
    assert r.returncode == 0 and "so an ONNX model is written, not PyTorch code" in r.stderr
    assert (tmp_path / "m.onnx").read_bytes()[:2] != b'""'   # protobuf, not a docstring
    import onnx
    onnx.checker.check_model(onnx.load(tmp_path / "m.onnx"))
    r = run("export", str(spec), "-o", str(tmp_path / "m.py"))
    assert r.returncode == 0 and (tmp_path / "m.py").read_text().startswith('"""lenet5')
    assert run("export", str(spec), "--onnx", "-o", "-").returncode == 2
    r = run("draw", str(spec), "-o", str(tmp_path / "page.html"))
    assert r.returncode == 0 and (tmp_path / "page.html").read_text().lstrip().lower() \
        .startswith("<!doctype html")
    r = run("report", str(spec), "-o", str(tmp_path / "pic.SVG"))
    assert r.returncode == 0 and "<svg" in (tmp_path / "pic.SVG").read_text()[:300]
