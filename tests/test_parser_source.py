"""Where the parser comes from: no pickle is ever read, and generated tables stay fresh."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# A pickle that, when loaded, creates the file named by its argument.
_EVIL = """
import os, pickle, sys
class Evil:
    def __reduce__(self):
        return (os.system, ("touch " + sys.argv[1],))
sys.stdout.buffer.write(b"0" * 64 + b"\\n" + pickle.dumps(Evil()))
"""

_LARK_CACHE_NAME = """
import glob, os, tempfile
from lark import Lark
Lark(open("grammar/netspec.lark").read(), parser="lalr", cache=True)
print(glob.glob(os.path.join(tempfile.gettempdir(), ".lark_cache_*"))[0])
"""

_CHECK = ("import sys\n{block}from netspec.cli import main\n"
          "sys.exit(main(['check', '-q', 'specs/lenet5.ns']))")


@pytest.fixture
def planted_cache(tmp_path):
    """A private TMPDIR holding a malicious pickle where Lark's cache=True would look."""
    env = {"TMPDIR": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    name = subprocess.run([sys.executable, "-c", _LARK_CACHE_NAME], capture_output=True,
                          text=True, cwd=ROOT, env=env, check=True).stdout.strip()
    marker = tmp_path / "pwned"
    evil = subprocess.run([sys.executable, "-c", _EVIL, str(marker)], capture_output=True,
                          check=True).stdout
    Path(name).write_bytes(evil)
    return env, marker


def test_the_planted_cache_would_run_code_in_lark_with_cache(planted_cache):
    """The control: Lark's own pickle cache does load the planted file."""
    env, marker = planted_cache
    subprocess.run([sys.executable, "-c", _LARK_CACHE_NAME], capture_output=True, cwd=ROOT,
                   env=env)
    assert marker.exists()


@pytest.mark.parametrize("block", ["", "sys.modules['netspec.language._lark_standalone'] = None\n"],
                         ids=["generated-tables", "built-from-grammar"])
def test_check_never_loads_a_planted_parser_cache(planted_cache, block):
    env, marker = planted_cache
    r = subprocess.run([sys.executable, "-c", _CHECK.format(block=block)], capture_output=True,
                       text=True, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stderr
    assert not marker.exists()


_TREES = """
import sys
{block}from pathlib import Path
from netspec.language.parser import _parser
for spec in sorted(Path("specs").glob("**/*.ns")):
    print(spec, repr(_parser()[0].parse(spec.read_text(encoding="utf-8"))))
"""


def test_generated_parser_tables_parse_like_the_grammar():
    """An installed build's tables parse every spec as the grammar itself does."""
    from netspec.language import grammar
    if grammar.SOURCE != "generated":
        pytest.skip("no generated parser: netspec is not installed from this checkout")
    trees = [subprocess.run([sys.executable, "-c", _TREES.format(block=block)], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.splitlines()
             for block in ("", "sys.modules['netspec.language._lark_standalone'] = None\n")]
    assert len(trees[0]) >= 13
    assert trees[0] == trees[1]


def test_a_stale_generated_parser_is_not_used(tmp_path):
    """With a grammar that differs from the generated tables', the grammar wins."""
    generated = ROOT / "netspec" / "language" / "_lark_standalone.py"
    if not generated.exists():
        pytest.skip("no generated parser: netspec is not installed from this checkout")
    shutil.copytree(ROOT / "netspec", tmp_path / "netspec")
    (tmp_path / "grammar").mkdir()
    (tmp_path / "grammar" / "netspec.lark").write_text(   # edited after generating
        (ROOT / "grammar" / "netspec.lark").read_text(encoding="utf-8") + "\n// edited\n",
        encoding="utf-8")
    r = subprocess.run([sys.executable, "-c", "import netspec.language.grammar as g; print(g.SOURCE)"],
                       capture_output=True, text=True, cwd=tmp_path,
                       env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert r.stdout.strip() == "grammar", r.stderr
