"""What `netspec check` loads at start-up: none of the backends' libraries."""

import os
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent

_LOADED = """
import sys
from netspec.cli import main
main(['check', '-q', 'specs/resnet18.ns'])
print(sorted(m for m in ('numpy', 'onnx', 'onnxruntime', 'torch', 'lark') if m in sys.modules))
"""


def test_check_loads_no_numpy_onnx_or_lark():
    """`check` needs none of them: the backends load them on use, the parser runs from its
    generated tables (when installed; from a bare checkout it builds them with lark)."""
    r = subprocess.run([sys.executable, "-c", _LOADED], capture_output=True, text=True, cwd=ROOT,
                       check=False)
    assert r.returncode == 0, r.stderr
    from netspec.language import grammar
    assert r.stdout.splitlines() == ["[]" if grammar.SOURCE == "generated" else "['lark']"]


def test_the_command_and_the_api_print_the_same(tmp_path):
    """`python -m netspec` is the API's `main`: the same output and status."""
    spec = tmp_path / "s.ns"
    spec.write_text("input 16x16x3\nconv 3x3 x8 relu\npool 2\nfc 10\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "netspec", "check", str(spec)],
                       capture_output=True, text=True, env=env, check=False)
    code = ("import sys; from netspec.cli import main; s = main(['check', sys.argv[1]]);"
            "print(s, file=sys.stderr)")
    api = subprocess.run([sys.executable, "-c", code, str(spec)], capture_output=True, text=True,
                         env=env, cwd=ROOT, check=False)
    assert r.returncode == 0 and r.stdout == api.stdout and "fc1" in r.stdout
    assert api.stderr.split() == ["0"]
