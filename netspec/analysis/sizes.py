"""Which input sizes a spec accepts, and where an fc layer fixes the size.

The spec is parsed once and built again at every size (square H = W, the
written channels), so `{H}`-expressions and `residual?` decide afresh. A size is
accepted when the build has no error; it loses no input when no layer gets a
`lost-input` warning (comments that silence the warning do not count here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..source.diagnostics import Reporter

if TYPE_CHECKING:
    from ..network import Network
    from ..syntax.tree import Node


@dataclass
class Sizes:
    """The sizes tried (lo … hi) and what each gave."""

    lo: int
    hi: int
    channels: int
    accepted: list[int] = field(default_factory=list)
    lossless: list[int] = field(default_factory=list)
    fc_fixed: dict[str, str] = field(default_factory=dict)   # fc layer → what fixes it
    same_fc: list[int] = field(default_factory=list)          # sizes giving the written fc inputs


class _EveryWarning(Reporter):
    """A reporter that keeps every warning, whatever the spec's `ignore` comments say."""

    def warning(self, pos, code: str, message: str, *, hint: str | None = None,  # type: ignore[no-untyped-def]
                notes: tuple[str, ...] = ()) -> None:
        self.warnings.append(self._diag("warning", pos, message, hint, notes, code))


def _build(text: str, filename: str | None, nodes: list[Node],
           dims: tuple[int, ...] | None) -> tuple[list, Reporter]:
    from ..language.builder import Builder
    rep = _EveryWarning(text, filename)
    layers = Builder(rep, dims).build(nodes)
    return layers, rep


def accepted_sizes(net: Network, lo: int, hi: int) -> Sizes:
    """Build `net`'s spec at every square size lo … hi (its own channels)."""
    from ..kinds import FC
    from ..language.library import Libraries
    from ..language.parser import parse_tree
    text = net.source
    rep = Reporter(text, net.filename)
    nodes = Libraries(rep, net.filename).expand(parse_tree(text, rep).body)
    channels = net.input_shape[-1]
    written = {lay.name: lay.in_features for lay in net.layers if isinstance(lay, FC)}
    out = Sizes(lo, hi, channels)
    for n in range(lo, hi + 1):
        layers, rep = _build(text, net.filename, nodes, (n, n, channels))
        if rep.errors:
            continue
        out.accepted.append(n)
        if not any(w.code == "lost-input" for w in rep.warnings):
            out.lossless.append(n)
        fcs = {lay.name: lay.in_features for lay in layers if isinstance(lay, FC)}
        changed = [name for name, k in fcs.items() if k != written.get(name)]
        for name in changed:
            out.fc_fixed.setdefault(name, f"{written[name]:,} inputs as written")
        if not changed:
            out.same_fc.append(n)
    return out


def pattern(sizes: list[int], hi: int) -> str:
    """`every 32k + 1 from 33`, `every size from 7`, `every 32k + 29 … 32k + 32 from 29`,
    or the sizes themselves when they repeat with no period shorter than half the range."""
    if not sizes:
        return "none"
    if len(sizes) == 1:
        return str(sizes[0])
    first, members = sizes[0], set(sizes)
    span = hi - first + 1
    for period in range(1, span // 2 + 1):
        if all((n in members) == (n + period in members) for n in range(first, hi - period + 1)):
            break
    else:
        shown = ", ".join(map(str, sizes[:12]))
        return shown + (f", … ({len(sizes)} sizes)" if len(sizes) > 12 else "")
    if period == 1:
        return f"every size from {first}"
    window = [n for n in sizes if n < first + period]
    offsets = [n - period * ((first - 1) // period) for n in window]   # first one in 1…period

    if len(offsets) == 1:
        return f"every {_form(period, offsets[0])} from {first}"
    if offsets == list(range(offsets[0], offsets[-1] + 1)):
        return f"every {period}k + {offsets[0]} … {period}k + {offsets[-1]} from {first}"
    return f"every {period}k + {{{', '.join(str(r) for r in offsets)}}} from {first}"


def _form(period: int, r: int) -> str:
    """`32k + 1` for the residue 1, `32k` for 0 or the period itself."""
    r %= period
    return f"{period}k + {r}" if r else f"{period}k"


def warn_fixed_size(net: Network, nodes: list[Node], rep: Reporter) -> None:
    """Warn (`input-size-fixed`) where the given input size changes an fc layer's inputs."""
    from ..kinds import FC, shape_str
    written, wrep = _build(net.source, net.filename, nodes, None)
    if wrep.errors:
        return
    before = {lay.name: lay for lay in written if isinstance(lay, FC)}
    for lay in net.layers:
        old = before.get(lay.name)
        if isinstance(lay, FC) and old is not None and old.in_features != lay.in_features:
            rep.warning(lay.pos, "input-size-fixed",
                        f"`{lay.name}` was written for {shape_str(old.input_shape)} = "
                        f"{old.in_features:,} inputs; at input {shape_str(net.input_shape)} it "
                        f"reads {shape_str(lay.input_shape)} = {lay.in_features:,}: an fc layer "
                        f"after a volume fixes the input size, so weights for the spec as "
                        f"written do not fit",
                        hint="put `pool avg global` before the first fc layer to accept any size")
