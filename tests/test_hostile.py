"""Hostile input at every entry point: no code run, no file lost, no traceback, no hang.

Each command case runs the real `netspec` in a subprocess under an address-space
limit (`RLIMIT_AS`) and a timeout, and asserts: the exit status (1 = the spec or
its data is wrong, 2 = usage), no Python traceback, a message that names the
problem and where, and every file in the working folder unchanged. Every
hostile file is generated here, small on disk (a "bomb" only claims its size).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import signal
import struct
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

import netspec
from netspec.source import files
from netspec.cli import build_parser
from netspec.source.diagnostics import MAX_ERRORS, SHOWN_COLUMNS, Diagnostic
from netspec.source.limits import MAX_WORK

ROOT = Path(__file__).resolve().parent.parent
MEMORY = 3 * 2**30 // 2    # 1.5 GiB of address space: far below any hostile claim here
TIMEOUT = 60               # a hang fails instead of blocking the suite
SPEC = "input 8x8x1\nconv 3x3 x4 relu\nfc 3\n"


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file() and not p.is_symlink()}


def netspec_cli(folder: Path, *args: str, stdin: str | bytes | None = None,
                preexec=None, unchanged: bool = True) -> subprocess.CompletedProcess:
    """Run `netspec ARGS` in `folder`, bounded in memory and time; inputs must not change."""
    before = _digests(folder)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def setup() -> None:
        _limit_memory()
        if preexec:
            preexec()

    r = subprocess.run([sys.executable, "-m", "netspec", *args], cwd=folder, env=env,
                       input=stdin.encode() if isinstance(stdin, str) else stdin,
                       capture_output=True, timeout=TIMEOUT, preexec_fn=setup)
    r.stdout, r.stderr = r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")
    assert "Traceback" not in r.stderr, r.stderr
    if unchanged:
        after = _digests(folder)
        assert {k: v for k, v in after.items() if k in before} == before, "an input changed"
    return r


def refused(r: subprocess.CompletedProcess, status: int, *needles: str) -> None:
    assert r.returncode == status, (r.returncode, r.stderr)
    for needle in needles:
        assert needle in r.stderr, (needle, r.stderr)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "spec.ns").write_text(SPEC)
    np.save(tmp_path / "x.npy", np.ones((2, 1, 8, 8), np.float32))
    return tmp_path


# ---- data loss: no output over an input ------------------------------------------------

def test_outputs_that_are_inputs_are_refused_before_any_work(work):
    netspec.parse(SPEC).init_weights(0)
    assert netspec_cli(work, "init", "spec.ns", "-o", "w.npz", unchanged=False).returncode == 0
    (work / "link.ns").symlink_to(work / "spec.ns")
    os.link(work / "x.npy", work / "hard.npy")
    (work / "model.onnx").write_text(SPEC)   # a spec named .onnx: export's default output is itself
    cases = [
        (("init", "spec.ns", "-o", "spec.ns"), "-o spec.ns is the SPEC file"),
        (("init", "spec.ns", "-o", "link.ns"), "-o link.ns is the SPEC file (spec.ns)"),
        (("init", "./spec.ns", "-o", "spec.ns"), "is the SPEC file"),
        (("export", "spec.ns", "--onnx", "-o", "spec.ns"), "-o spec.ns is the SPEC file"),
        (("export", "spec.ns", "--weights", "w.npz", "-o", "w.npz"), "is the --weights file"),
        (("export", "model.onnx"), "the output model.onnx is the SPEC file"),
        (("run", "spec.ns", "--input", "x.npy", "-o", "x.npy"), "-o x.npy is the --input file"),
        (("run", "spec.ns", "--input", "x.npy", "-o", "hard.npy"), "is the --input file (x.npy)"),
        (("run", "spec.ns", "--input", "x.npy", "--weights", "w.npz", "-o", "w.npz"),
         "is the --weights file"),
    ]
    for args, message in cases:
        refused(netspec_cli(work, *args), 2, message, "choose another output")


def test_refusal_compares_files_not_spellings(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("1")
    b.write_text("1")
    files.refuse_overwriting_inputs({"-o": b}, {"SPEC": a})   # equal content, other file: fine
    files.refuse_overwriting_inputs({"-o": tmp_path / "new"}, {"SPEC": a, "--weights": None})
    with pytest.raises(files.OutputIsInputError):
        files.refuse_overwriting_inputs({"-o": tmp_path / "." / "a"}, {"SPEC": a})


_KILLER = """
import os, signal, sys
from netspec.source import files
sig = getattr(signal, sys.argv[2])
def write(f):
    f.write(b"x" * 100_000)
    os.kill(os.getpid(), sig)
    f.write(b"never")
try:
    files.atomic_write(sys.argv[1], write)
except files.Terminated as t:
    files.die_of(t.signum)
except KeyboardInterrupt:
    sys.exit(130)
"""


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP", "SIGINT", "SIGKILL"])
def test_a_killed_write_leaves_the_old_file_and_nothing_else(tmp_path, sig):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    if sig == "SIGKILL" and files._open_unnamed(tmp_path) is None:
        pytest.skip("no O_TMPFILE here: a SIGKILL leaves the named temporary")
    r = subprocess.run([sys.executable, "-c", _KILLER, str(target), sig], cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                       text=True, timeout=TIMEOUT)
    assert r.returncode in (-getattr(signal, sig), 130), r.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
    assert target.read_bytes() == b"old"


def test_export_killed_by_sigterm_cleans_up(work):
    script = textwrap.dedent("""
        import os, signal, sys
        from netspec import cli
        from netspec.source import files
        files.os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGTERM)   # mid-write
        sys.exit(cli.main(["export", "spec.ns", "-o", "spec.onnx"]))
    """)
    before = sorted(p.name for p in work.iterdir())
    r = subprocess.run([sys.executable, "-c", script], cwd=work, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=TIMEOUT)
    assert r.returncode == -signal.SIGTERM and "Traceback" not in r.stderr, r.stderr
    assert sorted(p.name for p in work.iterdir()) == before


def test_without_o_tmpfile_a_named_temporary_is_used_and_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "_open_unnamed", lambda directory: None)
    target = tmp_path / "out.bin"
    files.atomic_write(target, lambda f: f.write(b"new"))
    assert target.read_bytes() == b"new"

    def fail(f):
        f.write(b"partial")
        raise files.Terminated(signal.SIGTERM)
    with pytest.raises(files.Terminated):
        files.atomic_write(target, fail)
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"] and target.read_bytes() == b"new"


def test_written_files_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        files.atomic_write(tmp_path / "f", lambda f: f.write(b"1"))
    finally:
        os.umask(old)
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o644


def test_onnx_and_its_external_data_switch_as_one(tmp_path, monkeypatch):
    onnx = pytest.importorskip("onnx")
    from netspec.backends.onnx import export as onnx_export, run_onnx_file
    monkeypatch.setattr(onnx_export, "EXTERNAL_DATA_BYTES", 100)   # a stand-in for 2 GB
    net = netspec.parse(SPEC, "s.ns")
    path = tmp_path / "m.onnx"

    def data_of(model_path: Path) -> set[str]:
        model = onnx.load(str(model_path), load_external_data=False)
        return {e.value for t in model.graph.initializer for e in t.external_data
                if e.key == "location"}

    first = onnx_export.save_onnx(net, net.init_weights(1), path)["external"]
    second = onnx_export.save_onnx(net, net.init_weights(2), path)["external"]
    assert first != second and data_of(path) == {second}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m.onnx", second])

    # the model's rename fails after its new data is written: the old pair stays whole
    real = onnx_export.atomic_write

    def failing(target, write):
        if Path(target) == path:
            raise OSError(28, "No space left on device", str(target))
        real(target, write)
    monkeypatch.setattr(onnx_export, "atomic_write", failing)
    with pytest.raises(OSError):
        onnx_export.save_onnx(net, net.init_weights(3), path)
    assert data_of(path) == {second}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m.onnx", second])
    x = np.ones((1, 1, 8, 8), np.float32)
    expected = net.numpy_model(net.init_weights(2))(x)
    np.testing.assert_allclose(run_onnx_file(path, x), expected, rtol=1e-4, atol=1e-5)


def test_errors_never_name_temporary_files(work):
    (work / "out").mkdir()
    r = netspec_cli(work, "init", "spec.ns", "-o", "out")
    refused(r, 2, "out")
    assert ".tmp" not in r.stderr


# ---- numbers and expressions ----------------------------------------------------------

def test_numbers_past_the_limit_are_errors_at_their_column(work):
    (work / "big.ns").write_text("input 8x8x1\nconv 3x3 x" + "9" * 5000 + "\n")
    refused(netspec_cli(work, "check", "big.ns"), 1, "big.ns:2:11: error: a number of 5,000 "
                                                    "digits is larger than netspec reads")
    (work / "long.ns").write_text("input 8x8x1\nconv 3x3 x{" + "+".join(["1"] * 100_000) + "}\n")
    refused(netspec_cli(work, "check", "long.ns"), 1, "long.ns:2:10: error: an expression of "
                                                      "199,999 characters")
    # a group on one line is not an expression, however long
    group = "; ".join(["conv 3x3 p1 x4"] * 40)
    assert len(netspec.parse(f"input 8x8x1\nstage: {{ {group} }}").layers) == 41
    errs = [str(e) for e in _errors("input 8x8x1\nconv 3x3 x{99999999999*99999999999}")]
    assert errs == ["t.ns:2:10: `{99999999999*99999999999}` grows past 1e+18, more than any "
                    "size could be"]


def test_huge_totals_are_exact_not_an_overflow(work):
    n = 10**18 - 1
    (work / "huge.ns").write_text(f"input 1x1x{n}\nfc {n}\n")
    r = netspec_cli(work, "check", "huge.ns")
    assert r.returncode == 0, r.stderr
    assert f"{n * n + n:,} parameters" in r.stdout   # weights n·n plus n biases
    # concat doubles the channels: 2n > 10**18 after the first
    (work / "doubling.ns").write_text(f"input 1x1x{n}\nrepeat 3000 concat {{ branch {{}} "
                                      f"branch {{}} }}\nfc 2\n")
    refused(netspec_cli(work, "check", "doubling.ns"), 1,
            f"doubling.ns:2:13: error: `concat1` outputs 1×1×{2 * n}, a size past 1e+18")


def test_unicode_digits_and_nul_bytes(work):
    err = _errors("input 8x8x\uff13")[0]
    assert (err.line, err.column) == (1, 11) and "not an ASCII digit" in str(err)
    assert err.hint == "write `3`"
    (work / "nul.ns").write_bytes(b"input 8x8x1\nre\x00lu\n")
    r = netspec_cli(work, "check", "nul.ns")
    refused(r, 1, "nul.ns:2:", "re\u2400lu")
    assert "\x00" not in r.stderr


# ---- size limits: counted before the work, refused at once ----------------------------

EXPONENTIAL = "\n".join(["block b0() { relu }"] +
                        [f"block b{i}() {{ b{i - 1}; b{i - 1} }}" for i in range(1, 31)] +
                        ["input 2x2x1", "b30"])


@pytest.mark.parametrize("spec,where,message", [
    ("input 2x2x1\nrepeat 1000000000 { }", (2, 1), "`repeat 1000000000` expands to more than"),
    ("input 2x2x1\nrepeat 1000000 relu", (2, 1), "`repeat 1000000` expands to more than"),
    ("input 2x2x1\nrepeat 1000 repeat 1000 relu", (2, 1), "`repeat 1000` expands to more than"),
    (EXPONENTIAL, (33, 1), "the call `b30(...)` expands to more than"),
    ("block b(n) { repeat $n relu }\ninput 2x2x1\nrepeat 400 b(400)", (3, 1), "expands to more"),
    ("input 2x2x1\n" + "relu\n" * MAX_WORK, (MAX_WORK + 1, 1), "more than 100,000 "
                                                                      "statements"),
])
def test_expansion_limits_fire_before_the_work(work, spec, where, message):
    (work / "big.ns").write_text(spec)
    r = netspec_cli(work, "check", "big.ns")
    refused(r, 1, f"big.ns:{where[0]}:{where[1]}: error: ", message)


def test_repeat_0_is_nothing_and_negative_counts_are_errors():
    net = netspec.parse("input 4x4x2\nrepeat 0 conv 3x3 x8\nrelu")
    assert [lay.kind for lay in net.layers] == ["input", "relu"]
    err = _errors("input 4x4x2\nrepeat -2 relu")[0]
    assert "must not be negative, not -2" in str(err) and (err.line, err.column) == (2, 8)


def test_a_layer_before_input_written_with_an_expression_is_an_error():
    err = _errors("conv 3x3 x{C}\ninput 8x8x3")[0]
    assert (err.line, err.column) == (1, 10) and "comes before `input`" in str(err)


# ---- error floods, long lines, labels --------------------------------------------------

def test_error_floods_are_capped_and_long_lines_clipped(work):
    line = "cnov 3x3 x4; " * 80_000   # one 1 MB line of errors
    (work / "flood.ns").write_text("input 8x8x1\n" + line + "\n")
    r = netspec_cli(work, "check", "flood.ns")
    refused(r, 1, f"stopped after {MAX_ERRORS} errors", f"{MAX_ERRORS} errors shown, more not")
    assert r.stderr.count("error: unknown layer `cnov`") == MAX_ERRORS
    assert len(r.stderr) < MAX_ERRORS * 6 * SHOWN_COLUMNS   # not 50 copies of a 1 MB line


def test_a_clipped_line_keeps_the_caret_under_the_mistake():
    source = "x" * 500 + "BAD" + "y" * 500
    lines = Diagnostic("error", "bad", "f.ns", 1, 501, source, 3).render().splitlines()
    shown, caret = lines[1], lines[2]
    at = caret.index("^")
    assert shown[at:at + 3] == "BAD" and caret[at:] == "^~~"
    assert len(shown) < SHOWN_COLUMNS + 20 and "…" in shown


@pytest.mark.parametrize("spec,message,hint", [
    ("input 8x8x1\ninput: relu", "`input` is a keyword, not a label", "choose another name"),
    ("foo: input 8x8x1", "the input takes no label", "write `input 8x8x1`"),
    ("input 8x8x1\nmy.conv: conv 3x3 x4", "`my.conv` is not a valid label", "`my_conv`"),
    ("input 8x8x1\n-x: conv 3x3 x4", "`-x` is not a valid label", "`_x`"),
    ("input 8x8x1\nlrn 5 a-1", "lrn alpha must be a finite number ≥ 0, not -1", "defaults"),
    ("input 8x8x1\nlrn 5 k0", "lrn k must be a finite number > 0, not 0", "divisor"),
])
def test_label_and_option_messages(spec, message, hint):
    err = _errors(spec)[0]
    assert message in str(err) and hint in err.hint, (str(err), err.hint)
    assert "``" not in err.hint


def _errors(text: str) -> list[netspec.NetspecError]:
    with pytest.raises(netspec.NetspecError) as info:
        netspec.parse(text, "t.ns")
    return info.value.errors


# ---- files: weights and batches --------------------------------------------------------

def _npy_header(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    import io
    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(f, {"descr": descr, "fortran_order": False,
                                             "shape": shape})
    return f.getvalue()


def _bomb(path: Path, name: str, claimed_values: int) -> None:
    """An .npz whose member claims `claimed_values` float32 values but holds a few bytes."""
    header = _npy_header((claimed_values,))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(name + ".npy", header + bytes(4096))
    data = bytearray(path.read_bytes())
    size = struct.pack("<I", len(header) + 4 * claimed_values)
    local, central = data.index(b"PK\x03\x04"), data.index(b"PK\x01\x02")
    data[local + 22:local + 26] = size      # uncompressed size, local header
    data[central + 24:central + 28] = size  # and central directory
    path.write_bytes(bytes(data))


def test_hostile_weights_files_are_refused_from_their_headers(work):
    good = {"conv1.weight": np.ones((4, 1, 3, 3), np.float32), "conv1.bias": np.zeros(4),
            "fc1.weight": np.ones((3, 144), np.float32), "fc1.bias": np.zeros(3)}
    np.savez(work / "ok.npz", **good)
    whole = (work / "ok.npz").read_bytes()
    (work / "cut.npz").write_bytes(whole[:len(whole) // 2])
    (work / "text.npz").write_text("not a zip at all")
    _bomb(work / "bomb.npz", "fc1.weight", 900_000_000)            # claims 3.6 GB
    np.savez(work / "nan.npz", **{**good, "fc1.bias": np.array([0, np.nan, np.inf])})
    np.savez(work / "obj.npz", **{**good, "fc1.bias": np.array([None, 1, 2], dtype=object)})
    with zipfile.ZipFile(work / "huge_shape.npz", "w") as z:   # header claims 4 TB
        z.writestr("fc1.weight.npy", _npy_header((10**12,)) + bytes(64))
    cases = {
        "cut.npz": "not an .npz archive",
        "text.npz": "not an .npz archive",
        "bomb.npz": "a zip bomb",
        "nan.npz": "`fc1.bias` holds 2 NaN or infinite values",
        "obj.npz": "Python objects",
        "huge_shape.npz": "the header claims shape (1000000000000,)",
    }
    for name, message in cases.items():
        r = netspec_cli(work, "run", "spec.ns", "--input", "x.npy", "--weights", name)
        refused(r, 1, name, message)
    np.savez(work / "named.npz", **{**good, "conv9.weight": np.zeros(4)})
    r = netspec_cli(work, "export", "spec.ns", "--weights", "named.npz", "-o", "o.onnx")
    refused(r, 1, "unexpected array `conv9.weight`", "in weights file named.npz")
    assert not (work / "o.onnx").exists()


def test_weights_names_and_shapes_are_checked_before_any_data_is_read(tmp_path, monkeypatch):
    from netspec.data import arrays
    from netspec.data.weights import load_weights
    net = netspec.parse(SPEC)
    np.savez_compressed(tmp_path / "w.npz", **{"fc1.weight": np.zeros((3, 145), np.float32)})
    monkeypatch.setattr(arrays.Archive, "read", lambda *a, **k: pytest.fail("data was read"))
    with pytest.raises(netspec.WeightsError) as info:
        load_weights(tmp_path / "w.npz", net)
    messages = [str(e) for e in info.value.errors]
    assert any("`fc1.weight` has shape (3, 145), but `fc1` needs (3, 144)" in m for m in messages)
    assert any("missing array `conv1.weight`" in m for m in messages)


def test_hostile_batches(work):
    (work / "huge.npy").write_bytes(_npy_header((10**9, 1, 8, 8)) + bytes(256))
    big_header = b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**31) + b"{" * 1000
    (work / "bighead.npy").write_bytes(big_header)
    np.save(work / "empty.npy", np.zeros((0, 1, 8, 8), np.float32))
    np.save(work / "wrong.npy", np.zeros((2, 3, 8, 8), np.float32))
    cases = {
        "huge.npy": "the header claims shape (1000000000, 1, 8, 8)",
        "bighead.npy": "not a valid .npy array",
        "empty.npy": "the batch is empty",
        "wrong.npy": "wrong.npy: error: input has shape 2×3×8×8",
    }
    for name, message in cases.items():
        refused(netspec_cli(work, "run", "spec.ns", "--input", name), 1, name, message)


def test_nan_input_is_one_clear_warning(work):
    x = np.ones((2, 1, 8, 8), np.float32)
    x[0, 0, 0, 0] = np.nan
    np.save(work / "nan.npy", x)
    r = netspec_cli(work, "run", "spec.ns", "--input", "nan.npy")
    assert r.returncode == 0, r.stderr
    assert "nan.npy: warning: the batch holds 1 NaN or infinite value" in r.stderr
    assert "RuntimeWarning" not in r.stderr and "numpy" not in r.stderr


def test_bench_refuses_a_batch_that_cannot_fit(work):
    (work / "wide.ns").write_text("input 100000x100000x3\npool global\n")
    r = netspec_cli(work, "bench", "wide.ns", "--batch", "1000")
    refused(r, 1, "wide.ns: error: a batch of 1,000 and the weights need", "smaller --batch")


def test_foreign_onnx_models(work):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    def save(name: str, node, out_type: int, in_shape) -> None:
        graph = helper.make_graph([node], "g",
                                  [helper.make_tensor_value_info("a", TensorProto.FLOAT, in_shape)],
                                  [helper.make_tensor_value_info("b", out_type, None)])
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                                    ir_version=8), work / name)
    save("strings.onnx", helper.make_node("Cast", ["a"], ["b"], to=TensorProto.STRING),
         TensorProto.STRING, [None, 1, 8, 8])
    save("shapeless.onnx", helper.make_node("Identity", ["a"], ["b"]), TensorProto.FLOAT, None)
    refused(netspec_cli(work, "run", "strings.onnx", "--input", "x.npy"), 1, "strings.onnx",
            "first output is a float tensor; this one gives tensor(string)")
    r = netspec_cli(work, "run", "shapeless.onnx", "--input", "x.npy")
    assert r.returncode == 0 and "output: 2×1×8×8 float32" in r.stdout, r.stderr


# ---- reading specs: stdin, pipes, several files -------------------------------------

def test_closed_stdin_is_a_usage_error(work):
    r = netspec_cli(work, "check", "-", preexec=lambda: os.close(0))
    refused(r, 2, "standard input is closed")


def test_one_missing_file_does_not_stop_the_others(work):
    (work / "b.ns").write_text("input 4x4x2\nrelu\n")
    r = netspec_cli(work, "check", "spec.ns", "missing.ns", "b.ns")
    refused(r, 2, "no such spec file: missing.ns")
    assert "spec: 8×8×1 → 3" in r.stdout and "b: 4×4×2 → 4×4×2" in r.stdout
    r = netspec_cli(work, "check", "--json", "spec.ns", "missing.ns", "b.ns")
    first, missing, last = map(json.loads, r.stdout.splitlines())
    assert r.returncode == 2 and (first["network"], last["network"]) == ("spec", "b")
    assert missing["errors"][0]["message"] == "no such spec file: missing.ns"


def test_pipes_and_process_substitution_are_read(work):
    r = subprocess.run(["bash", "-c", f"{sys.executable} -m netspec check "
                        f"<(printf 'input 8x8x1\\nconv 3x3 x2')"], cwd=work,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                       text=True, timeout=TIMEOUT)
    assert r.returncode == 0 and "6×6×2" in r.stdout, r.stderr


def test_unreadable_specs(work):
    refused(netspec_cli(work, "check", "/dev/zero"), 1, "larger than 16 MiB")
    (work / "latin1.ns").write_bytes(b"input 8x8x1 # caf\xe9\n")
    refused(netspec_cli(work, "check", "latin1.ns"), 1, "latin1.ns: error: cannot read spec: "
                                                        "not UTF-8 text (byte 18 is 0xe9)")
    refused(netspec_cli(work, "check", "-", stdin=b"\xff\xfe"), 1, "<stdin>", "not UTF-8")
    refused(netspec_cli(work, "check", str(work)), 2, "is a directory")


# ---- the command line ---------------------------------------------------------------

def test_every_option_says_what_it_does():
    parser = build_parser()
    sub = parser._subparsers._group_actions[0]   # the COMMAND argument
    for name, command in sub.choices.items():
        for action in command._actions:
            assert action.help, f"`netspec {name} {'/'.join(action.option_strings) or action.dest}`"
    export = sub.choices["export"].format_help()
    assert "from 13" in export and "(default 21)" in export


def test_export_defaults_to_onnx_and_misspelt_commands_get_a_suggestion(work):
    r = netspec_cli(work, "export", "spec.ns", unchanged=False)
    assert r.returncode == 0 and (work / "spec.onnx").is_file(), r.stderr
    refused(netspec_cli(work, "chek", "spec.ns"), 2, "did you mean `check`?")


# ---- the API validates its arguments -------------------------------------------------

@pytest.mark.parametrize("call,error,message", [
    (lambda: netspec.same_padding(5, 3, 0), netspec.ShapeError, "s must be at least 1, not 0"),
    (lambda: netspec.same_padding(-5, 3), netspec.ShapeError, "n must be at least 1, not -5"),
    (lambda: netspec.same_padding(5.5, 3), netspec.ShapeError, "n must be an integer"),
    (lambda: netspec.same_padding(float("nan"), 3), netspec.ShapeError, "must be an integer"),
    (lambda: netspec.pool_output_size(8, 2, p=2), netspec.ShapeError, "more than half"),
    (lambda: netspec.parse(None), TypeError, "not NoneType"),
    (lambda: netspec.parse(123), TypeError, "not int"),
    (lambda: netspec.parse("input 2x2x1").numpy_model([]), TypeError, "not list"),
])
def test_api_arguments_are_validated(call, error, message):
    with pytest.raises(error, match=re.escape(message)):
        call()


def test_same_padding_matches_its_formula():
    # ceil(n/s) outputs; total (out−1)·s + d(f−1) + 1 − n, the odd pixel after
    for n, f, s, d in [(5, 3, 1, 1), (9, 4, 2, 1), (10, 3, 3, 2), (1, 7, 1, 1)]:
        out = -(-n // s)
        total = max((out - 1) * s + d * (f - 1) + 1 - n, 0)
        assert netspec.same_padding(n, f, s, d) == (total // 2, total - total // 2)
