"""The warnings that need the whole built network, run as one pass after building.

A kind warns about itself while it is built (`lost-input`, `large-fc`); what only the
finished graph shows is checked here: merged paths whose receptive fields are not aligned
(analysis.rf), and, for a spec built at a size other than its own, the fc layers that fix
its input size (analysis.sizes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..network import Network
    from ..source.diagnostics import Reporter
    from ..syntax.tree import Node


def lint(net: Network, nodes: list[Node], rep: Reporter, resized: bool) -> None:
    """Add the whole-network warnings of `net` (built from `nodes`) to `rep`."""
    from .rf import receptive_fields
    try:
        receptive_fields(net, rep)   # warns where merged windows are not aligned
    except NotImplementedError:
        pass   # a kind without a declared window: the receptive field column says so
    if resized:
        from .sizes import warn_fixed_size
        warn_fixed_size(net, nodes, rep)
