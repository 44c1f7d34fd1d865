"""How layers are named: by structure, as a PyTorch module tree names its modules.

Inside `{ ... }` (and at the top level, and in a block) a layer is named by its kind
and a running count (`conv1`, `bn2`); inside `[ ... ]` by position (`0`, `1`), as
`nn.Sequential` numbers its items; a labelled group or block instance is a prefix
(`layer1.0.conv1`). One `Names` is one such scope.

The counters are generic: the builder counts with ints; the PyTorch code generator
counts with linear forms of loop variables (`2·j + 1`), so that a layer inside a
`for j in range(n)` loop gets the name the builder gave it, as an f-string.
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar


class Counter(Protocol):
    """What a running count must do: add another count."""

    def __add__(self, other: object) -> Counter: ...


N = TypeVar("N")


class Names(Generic[N]):
    """One naming scope: a prefix, and naming by kind and count or by position."""

    def __init__(self, prefix: str, indexed: bool, zero: N, one: N) -> None:
        self.prefix = prefix
        self.indexed = indexed
        self.zero, self.one = zero, one
        self.counts: dict[str, N] = {}
        self.next_index: N = zero

    def full(self, local: str) -> str:
        """`local` under this scope's prefix: `layer1.0` + `conv1`."""
        return f"{self.prefix}.{local}" if self.prefix else local

    def take(self, kind: str) -> N:
        """The next default name's number: the count of `kind` (from 1), or the position."""
        if self.indexed:
            n = self.next_index
            self.next_index = n + self.one   # type: ignore[operator]
            return n
        n = self.counts.get(kind, self.zero) + self.one   # type: ignore[operator]
        self.counts[kind] = n
        return n

    def name(self, kind: str) -> str:
        """The next default name, in full: `conv3` by kind, or `4` by position."""
        n = self.take(kind)
        return self.full(str(n) if self.indexed else f"{kind}{n}")

    def child(self, label: str | None, kind: str, indexed: bool) -> Names[N]:
        """The scope of a labelled or anonymous sub-structure."""
        prefix = self.full(label) if label is not None else self.name(kind)
        return Names(prefix, indexed, self.zero, self.one)

    def at(self, number: int) -> None:
        """An item labelled with a number in `[ ... ]`: numbering continues after it."""
        self.next_index = self.zero + number + self.one   # type: ignore[operator]


def names(prefix: str = "", indexed: bool = False) -> Names[int]:
    """A scope counting with ints (the builder's)."""
    return Names(prefix, indexed, 0, 1)
