"""`use "lib.ns"`: blocks shared through library files, and errors inside them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import netspec

ROOT = Path(__file__).resolve().parent.parent

BASIC = """# a library
block basic(c, s=1) {
    residual {
        conv1: conv 3x3 s$s p1 x$c nobias; bn1: bn; relu
        conv2: conv 3x3 p1 x$c nobias;     bn2: bn
    } project downsample: [ conv 1x1 s$s x$c nobias; bn ]
    relu
}
"""


def write(folder: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())


def errors(path: Path) -> list[netspec.NetspecError]:
    with pytest.raises(netspec.NetspecError) as info:
        netspec.load(path)
    return info.value.errors


def test_a_library_relative_to_the_using_file_gives_the_same_network(tmp_path):
    write(tmp_path, {"lib/res.ns": 'use "stem.ns"\n' + BASIC,
                     "lib/stem.ns": "block stem() { conv1: conv 7x7 s2 p3 x8 nobias; bn1: bn }",
                     "nets/a.ns": 'use "../lib/res.ns"\ninput 32x32x3\nstem()\n'
                                  'layer1: [ basic(8); basic(16, s=2) ]'})
    used = netspec.load(tmp_path / "nets/a.ns")
    inline = netspec.parse(BASIC + "block stem() { conv1: conv 7x7 s2 p3 x8 nobias; bn1: bn }\n"
                           "input 32x32x3\nstem()\nlayer1: [ basic(8); basic(16, s=2) ]", "a.ns")
    assert [(lay.name, lay.output_shape, lay.params) for lay in used.layers] == \
        [(lay.name, lay.output_shape, lay.params) for lay in inline.layers]
    assert used.warnings == []     # library blocks a spec does not call are not "unused"
    assert used.layers[1].pos.file == str(Path(tmp_path / "lib/stem.ns"))


def test_a_library_used_twice_is_read_once(tmp_path):
    write(tmp_path, {"a.ns": BASIC, "b.ns": 'use "a.ns"\nblock two(c) { basic($c); basic($c) }',
                     "n.ns": 'use "a.ns"\nuse "b.ns"\ninput 8x8x4\ntwo(4)'})
    assert len(netspec.load(tmp_path / "n.ns").layers) == 1 + 2 * 7


def test_an_error_inside_a_library_shows_that_files_line_and_the_call(tmp_path):
    write(tmp_path, {"lib.ns": "block big() {\n    conv 9x9 x4\n}\n",
                     "n.ns": 'use "lib.ns"\ninput 4x4x3\nbig()\n'})
    (err,) = errors(tmp_path / "n.ns")
    text = err.render()
    assert err.filename == str(tmp_path / "lib.ns") and err.line == 2 and err.column == 5
    assert "    2 |     conv 9x9 x4\n      |     ^~~~~~~~~~~" in text
    assert "in `big1` = big(), line 3" in text


def test_syntax_errors_and_statements_in_a_library_are_reported_there(tmp_path):
    write(tmp_path, {"lib.ns": "block b() { cnov 3x3 }\ninput 3x3x3\n",
                     "n.ns": 'use "lib.ns"\ninput 4x4x3\n'})
    errs = errors(tmp_path / "n.ns")
    assert [(Path(e.filename).name, e.line, e.column) for e in errs] == \
        [("lib.ns", 1, 13), ("lib.ns", 2, 1)]
    assert "unknown layer `cnov`" in str(errs[0])
    assert "holds only `block` definitions and `use`" in str(errs[1])
    assert "    1 | block b() { cnov 3x3 }" in errs[0].render()


def test_a_cycle_is_an_error_that_shows_the_chain(tmp_path):
    write(tmp_path, {"a.ns": 'use "b.ns"\nblock a() { relu }',
                     "b.ns": 'use "a.ns"\nblock b() { relu }',
                     "n.ns": 'use "a.ns"\ninput 4x4x3\na()'})
    (err,) = errors(tmp_path / "n.ns")
    assert Path(err.filename).name == "b.ns" and err.line == 1 and err.column == 5
    assert "goes round in a circle" in str(err) and str(err).endswith("a.ns")


def test_a_file_using_itself_is_a_cycle(tmp_path):
    write(tmp_path, {"n.ns": 'use "n.ns"\ninput 4x4x3\nrelu'})
    assert "goes round in a circle" in str(errors(tmp_path / "n.ns")[0])


def test_blocks_defined_in_two_files_name_both(tmp_path):
    write(tmp_path, {"lib.ns": "block a() { relu }", "n.ns": 'use "lib.ns"\nblock a() { bn }\n'
                                                              'input 4x4x3\na()'})
    (err,) = errors(tmp_path / "n.ns")
    assert err.line == 2 and err.column == 7
    assert f"defined twice (first in {tmp_path / 'lib.ns'}, line 1)" in str(err)


@pytest.mark.parametrize("path, message", [
    ("missing.ns", "no such file"),
    ("folder.ns", "not a file"),
    ("binary.ns", "not UTF-8 text"),
    ("nul.ns", "NUL bytes"),
    ("huge.ns", "larger than 1024 KiB"),
    ("/etc/passwd", "a relative path to a `.ns` file"),
    ("notes.txt", "a relative path to a `.ns` file"),
])
def test_files_that_cannot_be_libraries_are_errors_at_the_use(tmp_path, path, message):
    (tmp_path / "folder.ns").mkdir()
    write(tmp_path, {"binary.ns": bytes(range(128, 256)) * 8, "nul.ns": b"block a() {\0}",
                     "huge.ns": b"# " + b"x" * (1 << 20), "notes.txt": "block a() { relu }",
                     "n.ns": f'use "{path}"\ninput 4x4x3\n'})
    (err,) = errors(tmp_path / "n.ns")
    assert message in str(err) and err.line == 1 and err.column == 5


def test_use_inside_a_group_is_an_error(tmp_path):
    write(tmp_path, {"lib.ns": "block a() { relu }", "n.ns": 'input 4x4x3\n{ use "lib.ns" }'})
    assert "`use` belongs at the top level" in str(errors(tmp_path / "n.ns")[0])


def test_a_library_loads_only_as_a_library(tmp_path):
    write(tmp_path, {"lib.ns": BASIC + "block two(c) { basic($c); basic($c) }"})
    lib = netspec.load(tmp_path / "lib.ns", library=True)
    assert lib.blocks == ["basic", "two"]
    (err,) = errors(tmp_path / "lib.ns")
    assert "is a library of blocks, not a network" in str(err)


def _check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netspec", "check", *args], cwd=ROOT,
                          capture_output=True, text=True, env={"PYTHONPATH": str(ROOT)})


def test_check_accepts_a_library_strictly_and_reports_its_errors(tmp_path):
    write(tmp_path, {"lib.ns": BASIC, "bad.ns": "block a(C) { relu }"})
    r = _check("--strict", str(tmp_path / "lib.ns"))
    assert r.returncode == 0, r.stderr
    assert "library of 1 block, all parse: basic" in r.stdout
    r = _check("--json", str(tmp_path / "lib.ns"))
    assert json.loads(r.stdout)["blocks"] == ["basic"]
    r = _check(str(tmp_path / "bad.ns"))
    assert r.returncode == 1 and "`C` cannot name a parameter" in r.stderr


def test_onnx_doc_strings_point_into_the_library(tmp_path):
    pytest.importorskip("onnx")
    write(tmp_path, {"lib.ns": "block b() {\n    conv 1x1 x2\n}", "n.ns": 'use "lib.ns"\ninput 4x4x3\nb()'})
    nodes = netspec.load(tmp_path / "n.ns").to_onnx().graph.node
    assert nodes[0].doc_string == f"{tmp_path / 'lib.ns'}:2: conv 1x1 x2"


def test_a_spec_on_stdin_uses_libraries_relative_to_the_working_directory(tmp_path):
    write(tmp_path, {"lib/res.ns": BASIC})
    r = subprocess.run([sys.executable, "-m", "netspec", "check", "-q", "-"], cwd=tmp_path,
                       input='use "lib/res.ns"\ninput 8x8x4\nbasic(4)\n', capture_output=True,
                       text=True, env={"PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr


def test_json_names_the_library_a_layer_was_written_in(tmp_path):
    write(tmp_path, {"lib.ns": "block b() {\n    conv 1x1 x2\n}", "n.ns": 'use "lib.ns"\ninput 4x4x3\nb()'})
    r = _check("--json", str(tmp_path / "n.ns"))
    layers = json.loads(r.stdout)["layers"]
    assert "file" not in layers[0]
    assert (layers[1]["file"], layers[1]["line"]) == (str(tmp_path / "lib.ns"), 2)


def test_a_spec_using_a_library_checks_at_another_input_size(tmp_path):
    # the size analysis rebuilds the spec with reporters of its own
    write(tmp_path, {"lib.ns": BASIC, "n.ns": 'use "lib.ns"\ninput 32x32x4\nbasic(8, s=2)\nfc 10'})
    net = netspec.load(tmp_path / "n.ns", input_shape=(16, 16, 4))
    assert net.layers[1].output_shape == (8, 8, 8)
    assert any(w.code == "input-size-fixed" for w in net.warnings)
