"""Layers grouped by name: `check --depth 2` shows `layer1.0` for `layer1.0.conv1` …
`layer1.0.bn2`, and `diff` compares those groups.

Names follow the spec's structure (a block call or labelled group is a prefix), so a
group is a unit the user wrote.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..kinds import Layer
    from ..network import Network


def groups(net: Network, depth: int | None) -> list[tuple[str, list[Layer]]]:
    """Consecutive layers whose names share their first `depth` parts, with that prefix."""
    out: list[tuple[str, list[Layer]]] = []
    for layer in net.layers:
        key = layer.name if depth is None else ".".join(layer.name.split(".")[:depth])
        if out and out[-1][0] == key and depth is not None:
            out[-1][1].append(layer)
        else:
            out.append((key, [layer]))
    return out
