"""Every layer kind, found once: the lists the rest of netspec needs, derived from them.

Each kind class registers itself when its module is imported (`Layer.__init_subclass__`);
this module imports every kind module, so that asking it is asking all of them.
"""

from __future__ import annotations

# every kind module, in the order their kinds are listed (in hints, in `--help`)
# (radix's ONNX patterns end in a Softmax or a Sigmoid: it reads them before the activations)
from . import (base, conv, pool, blur, dense, norm, groupnorm, attention, radix,  # noqa: F401, I001
               activations, gating, merges, channels, resample, slicing, scaling)
from .base import KINDS, Layer

#: The grammar rules that are layer statements (`conv`, `activation`...).
RULES: frozenset[str] = frozenset(k.rule for k in KINDS if k.rule)
#: The kind of each statement keyword (`conv` → Conv, `relu` → Relu).
BY_KEYWORD: dict[str, type[Layer]] = {kw: k for k in KINDS for kw in k.keywords}


#: The layer that merges each composition statement's branches (`concat`, `split`, `add`,
#: `mul`): a split's branches are concatenated.
BY_MERGE_STATEMENT: dict[str, type[Layer]] = {
    **{k.statement: k for k in KINDS if isinstance(getattr(k, "statement", None), str)
       and k.statement},
    channels.Chunk.MADE_BY: merges.Concat}
#: Each kind by its name (`conv`, `adaptive_pool`).
BY_KIND: dict[str, type[Layer]] = {k.kind: k for k in KINDS}


def by_kind(kind: str) -> type[Layer]:
    """The class of the kind named `kind` (Layer.kind)."""
    return BY_KIND[kind]


def kinds() -> list[type[Layer]]:
    """Every kind, in the order their modules define them."""
    return list(KINDS)


def keywords() -> list[str]:
    """Every layer statement's first word, in the kinds' order."""
    return list(BY_KEYWORD)


def shorthand_keywords() -> list[str]:
    """The words that may end a conv, fc, linear or deconv statement (`relu`...)."""
    return [kw for kw, k in BY_KEYWORD.items() if k.shorthand]


def reader(keyword: str) -> type[Layer] | None:
    """The kind whose statement starts with `keyword`."""
    return BY_KEYWORD.get(keyword)


def merge_usages() -> dict[str, str]:
    """The merging composition statements (`concat`, `split`, `add`, `mul`), with their forms."""
    usages = {k.statement: k.statement_usage for k in KINDS if getattr(k, "statement", "")}
    return {**usages, channels.Chunk.MADE_BY: channels.Chunk.MADE_BY_USAGE}


def foreign_words() -> dict[str, str]:
    """Words of other frameworks, each with netspec's spelling (`dense` → `fc`)."""
    return {word: spelling for k in KINDS for word, spelling in k.foreign.items()}


def usage(keyword: str) -> str | None:
    """The form of a layer statement, for hints; None for one that takes no arguments."""
    kind = BY_KEYWORD.get(keyword)
    return kind.usage if kind is not None else None
