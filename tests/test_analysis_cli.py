"""`netspec explain`, `sizes`, `diff`, table formats and columns, and `--input`:
expected numbers derived here from the formulas."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

import netspec
from netspec.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "netspec", *args], input=stdin,
                          capture_output=True, text=True, cwd=ROOT, check=False)


def test_explain_fills_in_the_arithmetic(capsys):
    assert main(["explain", "specs/lenet5.ns", "conv1", "pool1"]) == 0
    out = capsys.readouterr().out
    macs = 28 * 28 * 6 * 5 * 5 * 3
    assert f"out = floor((32 + 2·0 − 5)/1) + 1 = {(32 - 5) // 1 + 1}" in out
    assert f"params = (5·5·3 + 1)·6 = {(5 * 5 * 3 + 1) * 6}" in out
    assert f"MACs = 28·28·6·5·5·3 = {macs:,}" in out
    assert f"FLOPs = 2·MACs + 28·28·6 (bias) = {2 * macs + 28 * 28 * 6:,}" in out
    assert "rf H, W = 1 + (5−1)·1 = 5" in out and "rf H, W = 5 + (2−1)·1 = 6" in out
    assert "conv2" not in out.split("MACs count")[0]   # only the layers asked for


def test_explain_same_padding_and_the_flops_breakdown(capsys, tmp_path):
    spec = tmp_path / "s.ns"
    spec.write_text("input 7x7x2\nconv 3x3 s2 same x4 relu\npool max 2\nfc 3\n")
    assert main(["explain", str(spec)]) == 0
    out = capsys.readouterr().out
    # out = ceil(7/2) = 4; total padding (4−1)·2 + 3 − 7 = 2, one on each side
    assert "same H, W: out = ceil(7/2) = 4, padding max((4−1)·2 + 3 − 7, 0) = 2 = " \
           "1 before + 1 after" in out
    conv = 2 * (4 * 4 * 4 * 3 * 3 * 2) + 4 * 4 * 4   # two per MAC, one per bias add
    relu = 4 * 4 * 4
    pool = 2 * 2 * 4 * (2 * 2 - 1)                    # 3 comparisons per output
    fc = 2 * (16 * 3) + 3
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line[:1].isalpha()}
    assert rows["conv"][3] == f"{conv:,}" and rows["relu"][3] == f"{relu:,}"
    assert rows["pool"][3] == f"{pool:,}" and rows["fc"][3] == f"{fc:,}"
    assert rows["total"][3] == f"{conv + relu + pool + fc:,}"


def test_explain_same_at_stride_one_gives_the_courses_formula(capsys, tmp_path):
    """At stride 1 `same` pads p = (f − 1)/2 on each side, as the course writes it, beside
    TensorFlow's formula; an even kernel leaves half a cell (padded after); a dilated one
    spans d·(f − 1) + 1; at stride 2 the course's formula does not apply and is not shown."""
    spec = tmp_path / "s.ns"
    spec.write_text("input 9x9x1\nconv 5x5 same x1\nconv 4x4 same x1\nconv 3x3 d3 same x1\n"
                    "conv 3x3 s2 same x1\n")
    assert main(["explain", str(spec)]) == 0
    out = capsys.readouterr().out
    blocks = {b.split()[0]: b for b in out.split("\nconv")[1:]}   # "1": conv1's lines...
    assert "at stride 1, the course's p = (f − 1)/2 = (5 − 1)/2 = 2 on each side" in \
        blocks["1"]
    assert "p = (f − 1)/2 = (4 − 1)/2 = 1.5 is not whole: 1 before + 2 after" in blocks["2"]
    span = 3 * (3 - 1) + 1   # 7
    assert f"p = (f − 1)/2 = ({span} − 1)/2 = {(span - 1) // 2} on each side" in blocks["3"]
    assert "course" not in blocks["4"]


def test_explain_an_unknown_layer_is_a_usage_error():
    r = run("explain", "specs/lenet5.ns", "cnov1")
    assert r.returncode == 2 and "did you mean `conv1`" in r.stderr


def test_sizes_of_lenet_by_hand():
    r = run("sizes", "specs/lenet5.ns", "--range", "1:64")
    assert r.returncode == 0, r.stderr

    def sizes(n):   # conv 5 → pool 2 → conv 5 → pool 2, floor rounding
        a = n - 4
        b = (a - 2) // 2 + 1
        c = b - 4
        d = (c - 2) // 2 + 1
        return a, b, c, d
    accepted = [n for n in range(1, 65) if min(sizes(n)) >= 1 and sizes(n)[0] >= 2
                and sizes(n)[2] >= 2]
    lossless = [n for n in accepted if (sizes(n)[0] - 2) % 2 == 0 and (sizes(n)[2] - 2) % 2 == 0]
    assert accepted[0] == 16 and lossless == list(range(16, 65, 4))
    assert "accepted:        every size from 16" in r.stdout
    assert "lose no input:   every 4k from 16" in r.stdout
    # fc1 reads 5×5×16 = 400 values only where the last pool gives 5: n = 32…35
    assert [n for n in accepted if sizes(n)[3] == 5] == [32, 33, 34, 35]
    assert "only 32, 33, 34, 35 keep the network as written" in r.stdout


def test_sizes_pattern_of_two_stride_two_convs(tmp_path):
    # conv 3x3 s2 loses no row when n − 3 is even; then (n − 1)/2 must be odd: n = 4k + 3
    spec = tmp_path / "two.ns"
    spec.write_text("input 64x64x3\nconv 3x3 s2 x8\nconv 3x3 s2 x8\npool avg global\nfc 10\n")
    r = run("sizes", str(spec), "--range", "1:100")
    assert "accepted:        every size from 7" in r.stdout          # 7 → 3 → 1
    assert "lose no input:   every 4k + 3 from 7" in r.stdout
    assert "smallest:        7×7×3" in r.stdout and "note:" not in r.stdout


def test_input_size_on_check_with_an_fc_layer_that_fixes_it():
    r = run("check", "specs/resnet18.ns", "--input", "64x64x3")
    assert r.returncode == 0, r.stderr
    conv1 = next(line for line in r.stdout.splitlines() if line.startswith("conv1"))
    assert f"{(64 + 2 * 3 - 7) // 2 + 1}×{(64 + 2 * 3 - 7) // 2 + 1}×64" in conv1
    r = run("check", "--strict", "specs/lenet5.ns", "--input", "64x64x3")
    assert r.returncode == 1 and "[input-size-fixed]" in r.stderr
    # 64 → 60 → 30 → 26 → 13: fc1 reads 13·13·16 = 2,704 values instead of 400
    assert f"{13 * 13 * 16:,}" in r.stderr and "400" in r.stderr
    assert run("check", "specs/lenet5.ns", "--input", "64x64").returncode == 2


def test_input_size_on_run_and_export(tmp_path):
    np = pytest.importorskip("numpy")
    onnx = pytest.importorskip("onnx")
    spec = tmp_path / "g.ns"
    spec.write_text("input 16x16x3\nconv 3x3 p1 x4 relu\npool avg global\nfc 3\n")
    x = tmp_path / "x.npy"
    np.save(x, np.ones((2, 3, 24, 24), np.float32))
    r = run("run", str(spec), "--input", str(x), "--input-size", "24x24x3")
    assert r.returncode == 0 and "output: 2×3" in r.stdout, r.stderr
    assert run("run", str(spec), "--input", str(x)).returncode == 1   # 16×16 as written
    out = tmp_path / "g.onnx"
    r = run("export", str(spec), "--onnx", "-o", str(out), "--input", "24x24x3")
    assert r.returncode == 0, r.stderr
    dims = onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims[1:]] == [3, 24, 24]


def test_diff_of_resnet18_and_resnet34():
    r = run("diff", "specs/resnet18.ns", "specs/resnet34.ns", "--depth", "1")
    assert r.returncode == 0, r.stderr
    block = 2 * (3 * 3 * 64 * 64 + 2 * 64)           # two convs, two batch norms
    layer1 = next(line for line in r.stdout.splitlines() if line.startswith("layer1"))
    assert f"{2 * block:,} → {3 * block:,} (+{block:,})" in layer1
    assert "conv1" not in r.stdout   # unchanged rows are not shown
    assert "rows the same" in r.stdout


def test_diff_says_when_only_the_spelling_differs(tmp_path):
    """`conv 5x5 s1 x8` → `conv 5x5 x8` (stride 1 is the default), `pool 2` → `pool max 2 s2`,
    `32x32x3` → `32×32×3`, `same` → `p1` where same pads 1: the same layers, written
    differently, not changes; `same` → `p2` is a change."""
    a, b = tmp_path / "a.ns", tmp_path / "b.ns"
    a.write_text("input 32x32x3\nconv 5x5 s1 x8\npool 2\nconv 3x3 same x8\n"
                 "conv 3x3 same x8\nfc 10\n")
    b.write_text("input 32×32×3\nconv 5x5 x8\npool max 2 s2\nconv 3x3 p1 x8\n"
                 "conv 3x3 p2 x8\nfc 10\n")
    r = run("diff", str(a), str(b))
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line for line in r.stdout.splitlines()[2:-2]}
    for name, change in (("input", "input 32x32x3 → input 32×32×3"),
                         ("conv1", "conv 5x5 s1 x8 → conv 5x5 x8"),
                         ("pool1", "pool 2 → pool max 2 s2"),
                         ("conv2", "conv 3x3 same x8 → conv 3x3 p1 x8")):
        assert rows[name].split()[1] == "=", rows[name]
        assert f"{change}  (same layer, written differently)" in rows[name]
    # p2 on 14×14 (after the pool): (14 + 2·2 − 3)/1 + 1 = 16, a real change
    assert rows["conv3"].split()[1] == "~" and "14×14×8 → 16×16×8" in rows["conv3"]
    assert "written differently" not in rows["conv3"]
    assert r.stdout.splitlines()[-1] == "0 rows the same, 4 written differently"


def test_csv_markdown_columns_and_html():
    r = run("check", "specs/lenet5.ns", "--format", "csv", "--columns",
            "kernel,stride,padding,groups,params%,flops,memory", "--batch", "2")
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert rows[0] == ["layer", "kernel", "stride", "padding", "groups", "params %", "FLOPs",
                       "memory"]
    conv1 = rows[2]
    assert conv1[:5] == ["conv1", "5", "1", "0", "1"]
    assert conv1[5] == f"{100 * 456 / 62006:.1f}"
    assert conv1[7] == f"{2 * 28 * 28 * 6 * 4 / 1024:,.2f} KiB"   # 2 samples of float32
    assert rows[-1][0] == "total"
    md = run("check", "specs/lenet5.ns", "--format", "markdown").stdout.splitlines()
    table = [line for line in md if line.startswith("|")]
    assert len(table) == 2 + 9 + 1 and table[1].startswith("| --- | --- | --- | ---:")
    bad = run("check", "specs/lenet5.ns", "--columns", "kernal")
    assert bad.returncode == 2 and "unknown column `kernal`" in bad.stderr
    html = netspec.load(ROOT / "specs/lenet5.ns")._repr_html_()
    assert html.count("<tr>") == 1 + 9 + 1 and ">conv1<" in html


def test_json_rf_on_every_spatial_layer_and_the_memory_object():
    d = json.loads(run("check", "--json", "specs/resnet18.ns", "--batch", "4",
                       "--optimizer", "momentum").stdout)
    for layer in d["layers"]:
        assert ("rf" in layer) == (len(layer["output"]) == 3)
    trainable = d["trainable_params"]
    t = d["memory"]["training"]
    assert t["gradients_bytes"] == 4 * trainable and t["optimizer_bytes"] == 4 * trainable
    assert t["total_bytes"] == sum(t[k] for k in ("weights_bytes", "gradients_bytes",
                                                  "optimizer_bytes", "saved_bytes",
                                                  "in_flight_bytes"))


def test_misaligned_merge_warns_and_can_be_silenced():
    spec = "input 8x8x2\nconcat { branch { conv 3x3 s2 same x2 } branch { pool avg 2 s2 same } }"
    r = run("check", "-", stdin=spec)
    assert r.returncode == 0 and "[rf-misaligned]" in r.stderr
    r = run("check", "-", "--strict",
            stdin=spec + "  # netspec: ignore[rf-misaligned, asymmetric-same]")
    assert r.returncode == 0, r.stderr


def test_analysis_commands_do_not_import_numpy():
    code = ("import sys, io, contextlib; from netspec.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    main(['check', 'specs/resnet18.ns', '--columns', '+flops,memory'])\n"
            "    main(['check', '--json', 'specs/resnet18.ns'])\n"
            "    main(['explain', 'specs/lenet5.ns'])\n"
            "    main(['sizes', 'specs/lenet5.ns'])\n"
            "    main(['diff', 'specs/lenet5.ns', 'specs/vgg_mini.ns'])\n"
            "print(sorted(m for m in ('numpy', 'onnx', 'onnxruntime', 'torch') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       check=False)
    assert r.stdout.strip() == "[]", r.stderr


def test_size_patterns_by_hand():
    from netspec.analysis.sizes import pattern
    assert pattern(list(range(16, 65, 4)), 64) == "every 4k from 16"
    assert pattern([n for n in range(33, 300) if n % 32 == 1], 299) == "every 32k + 1 from 33"
    dense = [n for n in range(29, 449) if n % 32 in (29, 30, 31, 0)]
    assert pattern(dense, 448) == "every 32k + 29 … 32k + 32 from 29"
    assert pattern([n for n in range(13, 200) if n % 6 in (1, 3)], 199) == "every 6k + {1, 3} from 13"
    assert pattern(list(range(3, 50)), 49) == "every size from 3"
    assert pattern([5, 9, 100], 140) == "5, 9, 100" and pattern([], 9) == "none"


def test_rf_jump_and_centre_columns_by_hand():
    r = run("check", "specs/lenet5.ns", "--format", "csv", "--columns", "rf,jump,centre")
    rows = {row[0]: row[1:] for row in csv.reader(io.StringIO(r.stdout))}
    # conv2: 6 + (5−1)·2 = 14 at jump 2; unpadded, so the first window starts at 0 and its
    # centre is (14 − 1)/2 = 6.5; pool2: 14 + (2−1)·2 = 16 at jump 4, centre 7.5
    assert rows["conv2"] == ["14×14", "2×2", "6.5,6.5"]
    assert rows["pool2"] == ["16×16", "4×4", "7.5,7.5"]
    assert rows["fc1"] == ["", "", ""]
