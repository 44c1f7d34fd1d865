"""Shared helpers: parse a spec expecting errors, and the optional torch oracle."""

from __future__ import annotations

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
