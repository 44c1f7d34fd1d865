"""Shared helpers: parse a spec expecting errors, and the optional torch oracle."""

from __future__ import annotations

import os
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


#: The timm zoo (specs/timm/): test_timm_zoo.py compares every member's parameters, names
#: and shapes with timm's, and the outputs of these, one small member per family; the
#: suites that take every shipped spec (analyses, gradients, ONNX import, PyTorch code,
#: pictures) take these too. NETSPEC_TIMM_ALL=1 (the slow suite) takes every member.
TIMM_CI = frozenset({
    "starnet_s050", "ghostnet_050", "hardcorenas_b", "cs3darknet_s", "cspnext_tiny",
    "legacy_xception", "xception41", "inception_v4", "legacy_seresnet18",
    "repghostnet_050", "convmixer_768_32", "resnetv2_18", "gernet_s",
})
TIMM_ALL = bool(os.environ.get("NETSPEC_TIMM_ALL"))


def routine(path: Path) -> bool:
    """Whether a shipped spec file runs in the routine suites: every file but the timm
    zoo's members outside TIMM_CI (all of them with NETSPEC_TIMM_ALL=1)."""
    rel = path.relative_to(ROOT / "specs").parts
    return TIMM_ALL or rel[0] != "timm" or "lib" in rel or path.stem in TIMM_CI


def network_specs() -> list[Path]:
    """Every shipped network spec under specs/, in any folder (the timm zoo's as `routine`
    says); block libraries (the `lib/` folders) are not networks and are left out."""
    specs = ROOT / "specs"
    return [p for p in sorted(specs.glob("**/*.ns"))
            if "lib" not in p.relative_to(specs).parts and routine(p)]


def small_network(path: str | Path, size: int = 64) -> netspec.Network:
    """The spec at `path` built for a `size`×`size` input when its weights (names and
    shapes) are the same as at the size it gives, else as written: comparing two backends'
    outputs takes a fraction of the time, and the weights they load are the same."""
    net = netspec.load(path)
    shape = net.input_shape
    if len(shape) != 3 or max(shape[:2]) <= size:
        return net
    try:
        small = netspec.load(path, input_shape=(size, size, shape[2]))
    except netspec.NetspecError:
        return net
    return small if small.weight_shapes() == net.weight_shapes() else net
