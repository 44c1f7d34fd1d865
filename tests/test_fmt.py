"""`netspec fmt`: one layout, comments kept, idempotent, and the network never changes."""

import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

import netspec
from netspec.language.format import format_spec

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted(p for p in (ROOT / "specs").rglob("*.ns"))


def _network(path: Path, text: str) -> list:
    """What a spec builds: every layer's name, kind, shape and parameters, and the weights."""
    net = netspec.parse(text, str(path), library=True)
    if isinstance(net, netspec.network.Library):
        return ["library", sorted(net.blocks)]
    return [[(lay.name, lay.kind, lay.output_shape, lay.params) for lay in net.layers],
            net.weight_shapes()]


def _comments(text: str) -> list[str]:
    """Every comment's words, in order."""
    return [w for line in text.split("\n") if "#" in line for w in line.split("#", 1)[1].split()]


def scramble(text: str, rng: random.Random) -> tuple[str, list[str]]:
    """`text` with extra spaces between words, blank lines and comments of its own (returned),
    none of which changes what it says."""
    out, added = [], []
    for i, line in enumerate(text.split("\n")):
        code, hash_, comment = line.partition("#")
        if '"' not in code:   # a `use "path"` keeps its spaces
            code = re.sub(r"(?<=\S) (?=\S)", lambda m: " " * rng.randint(1, 3), code)
            code = re.sub(r";(?=\S)", "; ", code)
            code = code.replace(";", rng.choice([";", " ;", ";  "]))
        if rng.random() < 0.3:
            out.append("")
        if rng.random() < 0.2:
            added.append(f"scramble line {i}")
            out.append("  " * rng.randint(0, 3) + f"# {added[-1]}")
        tail = ""
        if code.strip() and not hash_ and rng.random() < 0.3:
            added.append(f"after line {i}")
            tail = f"   # {added[-1]}"
        out.append(code + hash_ + comment + tail + " " * rng.randint(0, 2))
    return "\n".join(out), added


@pytest.mark.parametrize("path", SPECS, ids=lambda p: str(p.relative_to(ROOT / "specs")))
def test_every_shipped_spec_is_formatted(path):
    text = path.read_text(encoding="utf-8")
    assert format_spec(text, str(path)) == text, "run `netspec fmt specs/`"


@pytest.mark.parametrize("path", SPECS, ids=lambda p: str(p.relative_to(ROOT / "specs")))
def test_fmt_keeps_the_network_and_every_comment_of_a_scrambled_copy(path, tmp_path):
    text = path.read_text(encoding="utf-8")
    scrambled, added = scramble(text, random.Random(str(path.name)))
    copy = path.parent / f".scrambled-{path.name}"   # beside it: its `use` paths still resolve
    try:
        copy.write_text(scrambled, encoding="utf-8")
        formatted = format_spec(scrambled, str(copy))
        assert format_spec(formatted, str(copy)) == formatted              # idempotent
        assert _network(copy, formatted) == _network(path, text)           # the same network
    finally:
        copy.unlink()
    assert _comments(formatted) == _comments(scrambled)                     # every comment, in order
    assert all(f"# {c}" in formatted for c in added)
    assert "\n\n\n" not in formatted and not formatted.startswith("\n")
    assert all(line == line.rstrip() for line in formatted.split("\n"))


# The layout, case by case: (as written, as netspec fmt writes it).
LAYOUT = [
    ("input  32x32x3\nconv   5x5  s1 x6 ;pool 2\n", "input 32x32x3\nconv 5x5 s1 x6; pool 2\n"),
    ("input 8x8x3\n\n\n\nfc 10\n", "input 8x8x3\n\nfc 10\n"),                 # one blank line
    ("\n\n# head\ninput 8x8x3\n", "# head\ninput 8x8x3\n"),                   # none before
    ("input 8x8x3  # in\nfc 10 # ten\n", "input 8x8x3  # in\nfc 10        # ten\n"),
    ("block b(c) {   conv 3x3 p1 x$c ;  relu }\ninput 8x8x3\nb(4)\n",
     "block b(c) { conv 3x3 p1 x$c; relu }\ninput 8x8x3\nb(4)\n"),
    ("block b(c) { conv 3x3 p1 x$c\n  relu }\ninput 8x8x3\nb(4)\n",           # over two lines
     "block b(c) {\n    conv 3x3 p1 x$c\n    relu\n}\ninput 8x8x3\nb(4)\n"),
    ("block b(c)  { conv 1x1 x{ 4 * c };relu }\ninput 8x8x3\nb( c = 2 )\n",
     "block b(c) { conv 1x1 x{4*c}; relu }\ninput 8x8x3\nb(c=2)\n"),
    ("input 8x8x8\nconv 1x1 x{C//4 + 1}\nconv 1x1 x{(C + 1)*2}\n",
     "input 8x8x8\nconv 1x1 x{C//4 + 1}\nconv 1x1 x{(C+1)*2}\n"),
    ("block f() { relu }\ninput 8x8x3\nf()\nx: f\n", "block f() { relu }\ninput 8x8x3\nf\nx: f\n"),
    ("input 8x8x4\nresidual {   # body\n  conv 3x3 p1 x4\n} project p: [ conv 1x1 x4 ]\n",
     "input 8x8x4\nresidual {  # body\n    conv 3x3 p1 x4\n} project p: [ conv 1x1 x4 ]\n"),
    ("input 8x8x4\nconcat { branch {}\n  branch [ conv 1x1 x4 ]\n  # last\n}\n",
     "input 8x8x4\nconcat {\n    branch {}\n    branch [ conv 1x1 x4 ]\n    # last\n}\n"),
    ("input 8x8x4\nrepeat 2 as j\n  conv 1x1 x4\n", "input 8x8x4\nrepeat 2 as j conv 1x1 x4\n"),
]


@pytest.mark.parametrize("written, formatted", LAYOUT)
def test_the_canonical_layout(written, formatted):
    assert format_spec(written) == formatted
    assert format_spec(formatted) == formatted


def _fmt(*args: str, stdin: str | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netspec", "fmt", *args], input=stdin,
                          capture_output=True, text=True, cwd=cwd)


def test_the_command_in_place_check_diff_and_stdin(tmp_path):
    messy, tidy = tmp_path / "messy.ns", tmp_path / "tidy.ns"
    messy.write_text("input 8x8x3 ;fc  10\n", encoding="utf-8")
    tidy.write_text("input 8x8x3\nfc 10\n", encoding="utf-8")
    r = _fmt("--check", str(tmp_path))
    assert r.returncode == 1 and f"would reformat {messy}" in r.stderr and str(tidy) not in r.stderr
    assert messy.read_text(encoding="utf-8") == "input 8x8x3 ;fc  10\n"   # --check writes nothing
    r = _fmt("--diff", str(messy))
    assert r.returncode == 0 and "-input 8x8x3 ;fc  10\n+input 8x8x3; fc 10" in r.stdout
    r = _fmt("-", stdin="input 8x8x3 ;fc  10\n")
    assert r.returncode == 0 and r.stdout == "input 8x8x3; fc 10\n"
    r = _fmt(str(messy), str(tidy))
    assert r.returncode == 0 and "1 file reformatted, 1 left unchanged" in r.stderr
    assert messy.read_text(encoding="utf-8") == "input 8x8x3; fc 10\n"
    assert _fmt("--check", str(tmp_path)).returncode == 0


def test_a_spec_with_a_syntax_error_is_left_alone(tmp_path):
    bad = tmp_path / "bad.ns"
    bad.write_text("input 8x8x3\ncnov 3x3 x4\n", encoding="utf-8")
    r = _fmt(str(bad))
    assert r.returncode == 1 and f"{bad}:2:1: error: unknown layer `cnov`" in r.stderr
    assert "Traceback" not in r.stderr
    assert bad.read_text(encoding="utf-8") == "input 8x8x3\ncnov 3x3 x4\n"
    r = _fmt(str(tmp_path / "missing.ns"))
    assert r.returncode == 2 and "no such spec file" in r.stderr


def test_nesting_too_deep_to_build_is_an_error_not_a_crash():
    r = _fmt("-", stdin="input 8x8x3\n" + "{ " * 150 + "relu" + " }" * 150 + "\n")
    assert r.returncode == 1 and "nested more than 100 deep" in r.stderr
    assert "Traceback" not in r.stderr


def test_the_times_sign_builds_the_same_network_and_fmt_writes_x():
    """`×` is accepted wherever `x` is (sizes, kernels, filter counts, inside blocks), builds
    the same network, and `netspec fmt` writes the one canonical `x`."""
    times = ("input 32×32×3\nblock b(c) { conv 3×3 p1 ×$c; conv 1×1 x{2*c} }\n"
             "conv 5×5 s1 ×6 relu\nb(8)\npool avg to 2×2\nfc 10\n")
    plain = times.replace("×", "x")
    assert _network(Path("t.ns"), times) == _network(Path("t.ns"), plain)
    assert format_spec(times) == plain and format_spec(plain) == plain
    r = _fmt("--check", "-", stdin=times)
    assert r.returncode == 1
    # an error after a `×` still points at its column (characters, not bytes)
    r = subprocess.run([sys.executable, "-m", "netspec", "check", "-"], capture_output=True,
                       text=True, input="input 8×8×3\nconv 3×3 ×0\n")
    assert r.returncode == 1 and "<stdin>:2:10: error" in r.stderr, r.stderr
