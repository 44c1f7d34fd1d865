"""Imported layers → a short, readable spec tree: structure (dag.py, structure.py), names
(naming.py), the names of values read by name (values.py), blocks and repeats, layout."""

from .naming import NameClash
from .writer import write_spec

__all__ = ["NameClash", "write_spec"]
