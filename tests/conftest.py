"""Shared helpers: parse a spec expecting errors, and the optional torch oracle."""

from __future__ import annotations

from pathlib import Path

import pytest

import netspec


def errors_of(text: str) -> list[netspec.NetspecError]:
    """All errors `netspec.parse` reports for `text` (failing if it reports none)."""
    with pytest.raises(netspec.NetspecError) as info:
        netspec.parse(text, "t.ns")
    return info.value.errors


def one_error(text: str) -> netspec.NetspecError:
    """The single error reported for `text`."""
    errs = errors_of(text)
    assert len(errs) == 1, [str(e) for e in errs]
    return errs[0]


#: A spec using the naming rules torchvision's zoo needs: labels with `$params` and `-`,
#: `repeat N as j`, a number label that skips a position in `[ ... ]` (import and
#: PyTorch code generation both keep these names).
NAMING = """
block xblock(w, s=1) {
    residual { a: [ conv 1x1 x$w nobias; bn; relu ]; b: [ conv 3x3 s$s p1 x$w nobias; bn ] } \
project proj: [ conv 1x1 s$s x$w nobias; bn ]
    relu
}
block stage(n, w, k) {
    block$k-first: xblock($w, s=2)
    repeat $n as j { block$k-$j: xblock($w) }
}
input 16x16x3
stem: [ conv 3x3 s2 p1 x8 nobias; bn; relu ]
trunk_output: { block1: stage(2, 8, 1); block2: stage(3, 16, 2) }
head: [ pool avg global; 2: fc 10 ]
"""

ROOT = Path(__file__).resolve().parent.parent


def network_specs() -> list[Path]:
    """Every shipped network spec under specs/, in any folder; block libraries
    (specs/lib/) are not networks and are left out."""
    specs = ROOT / "specs"
    return [p for p in sorted(specs.glob("**/*.ns")) if "lib" not in p.relative_to(specs).parts]
