"""What `netspec check` loads and builds at start-up, and that the shortcuts taken for it
change nothing a user sees."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from netspec.cli import _parser, _terminal_columns

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


@pytest.mark.parametrize("columns", [None, "50", "0", "-3", "wide"])
def test_help_is_as_wide_as_shutil_says(monkeypatch, columns):
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert _terminal_columns() == shutil.get_terminal_size().columns


def test_a_command_declares_only_its_own_options_and_help_lists_every_command():
    every = _parser()._subparsers._group_actions[0].choices
    assert {"check", "run", "export", "bench"} <= set(every)
    only = _parser("check")._subparsers._group_actions[0].choices
    assert list(only) == ["check"]
    assert only["check"].format_help() == every["check"].format_help()
    assert list(_parser("chek")._subparsers._group_actions[0].choices) == list(every)


def test_the_command_and_the_api_print_the_same(tmp_path):
    """The command runs without the cyclic collector; output and status are as in-process."""
    spec = tmp_path / "s.ns"
    spec.write_text("input 16x16x3\nconv 3x3 x8 relu\npool 2\nfc 10\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "netspec", "check", str(spec)],
                       capture_output=True, text=True, env=env, check=False)
    code = ("import gc, sys; from netspec.cli import main; s = main(['check', sys.argv[1]]);"
            "print(gc.isenabled(), s, file=sys.stderr)")
    api = subprocess.run([sys.executable, "-c", code, str(spec)], capture_output=True, text=True,
                         env=env, cwd=ROOT, check=False)
    assert r.returncode == 0 and r.stdout == api.stdout and "fc1" in r.stdout
    assert api.stderr.split() == ["True", "0"]   # in-process, the collector is left as it was
