"""The training tutorial's claims (docs/tutorial/training.md): LeNet trained on the digits
as the page trains it reaches at least 97 % validation accuracy, and the page's table
of the two networks holds the numbers its commands print. (`test_docs` regenerates the
page's outputs; this checks what the page says about them.)
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import netspec
from netspec.cli import main

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "tutorial" / "training.md"
#: The accuracy the page promises.
CLAIM = 0.97


def _page() -> str:
    return PAGE.read_text(encoding="utf-8")


def _shown_accuracy(spec: str) -> float:
    """The validation accuracy the page's `netspec train SPEC` region printed."""
    text = _page()
    region = re.search(rf"^\$ netspec train {re.escape(spec)} .*?\n(.*?)```", text,
                       re.MULTILINE | re.DOTALL)
    assert region, f"no `netspec train {spec}` output on the page"
    return float(re.search(r"validation accuracy ([\d.]+)%", region[1])[1]) / 100


def test_lenet_trains_on_the_digits_to_the_accuracy_the_page_shows(tmp_path, capsys):
    """The page's command, run again: 30 epochs of Adam from seed 0, on scikit-learn's
    bundled digits (offline; a few seconds of CPU)."""
    pytest.importorskip("sklearn")
    log = tmp_path / "log.jsonl"
    assert main(["train", str(ROOT / "specs" / "lenet_digits.ns"), "--data", "digits",
                 "--epochs", "30", "-o", str(tmp_path / "w.npz"), "--log", str(log),
                 "-q"]) == 0
    assert "scikit-learn's digits: 1,797 images of 8×8" in capsys.readouterr().out
    last = json.loads(log.read_text().splitlines()[-1])
    assert last["epoch"] == 30
    assert last["val_accuracy"] >= CLAIM
    assert _shown_accuracy("specs/lenet_digits.ns") >= CLAIM


def test_the_side_by_side_table_holds_what_the_commands_print():
    rows = re.findall(r"^\| [^|]*`(specs/\w+\.ns)` \| ([\d,]+) \| ([\d,]+) \| ([\d.]+) % \|$",
                      _page(), re.MULTILINE)
    assert [r[0] for r in rows] == ["specs/lenet_digits.ns", "specs/fc_digits.ns"]
    for spec, params, macs, accuracy in rows:
        net = netspec.load(ROOT / spec)
        assert int(params.replace(",", "")) == net.total_params
        assert int(macs.replace(",", "")) == net.total_macs
        assert float(accuracy) / 100 == _shown_accuracy(spec)
