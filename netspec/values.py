"""Plain classes shown and compared by their fields, as dataclasses would be.

Written out rather than made with `dataclasses`, because making a dataclass
costs every start-up of `netspec check` (see tests/test_startup.py). A subclass
lists its fields in `__slots__`.
"""

from __future__ import annotations


class Record:
    """Shown and compared by the fields in its `__slots__`; mutable, so never hashed."""

    __slots__: tuple[str, ...] = ()
    __hash__ = None   # type: ignore[assignment]

    def _key(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        return self._key() == other._key() if type(other) is type(self) else NotImplemented


class Value(Record):
    """A Record never changed once made: hashed by its fields too."""

    __slots__ = ()

    def __hash__(self) -> int:
        return hash(self._key())
