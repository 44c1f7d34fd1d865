"""Imported layers → a short, readable spec tree: structure, names, blocks and repeats, layout."""

from .naming import NameClash
from .writer import write_spec

__all__ = ["NameClash", "write_spec"]
