"""Where netspec's Lark parser comes from: generated tables, or the grammar itself.

An installed netspec carries `_lark_standalone.py`, generated from the grammar
at build time by Lark's standalone generator (see hatch_build.py): the parse
tables are Python literals, so starting `netspec check` neither imports Lark nor
rebuilds the tables, and nothing is ever unpickled. That module records the
text of the grammar it came from; in a source checkout without it, or when
the grammar has changed since, the parser is built from grammar/netspec.lark
with the `lark` package, without Lark's pickle cache (a cache file in a shared
temporary folder could be planted by another user).

Everything parser-related is imported from here, so that tokens and errors are
of the same classes as the parser that made them.
"""

from __future__ import annotations

import os
import re
from typing import Any

_PACKAGE = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))   # netspec/
GRAMMAR = os.path.join(os.path.dirname(_PACKAGE), "grammar", "netspec.lark")
if not os.path.exists(GRAMMAR):  # installed as a wheel: the grammar ships inside the package
    GRAMMAR = os.path.join(_PACKAGE, "grammar", "netspec.lark")

#: The options both ways of building use (hatch_build.OPTIONS says the same).
OPTIONS: dict[str, Any] = dict(parser="lalr", propagate_positions=False, maybe_placeholders=False)


#: A terminal defined as one quoted lower-case word: `CONV: "conv"`.
_KEYWORD_TERMINAL = re.compile(r'^[A-Z][A-Z0-9_]*\s*:\s*"([a-z][a-z0-9]*)"\s*$', re.MULTILINE)


def grammar_keywords(text: str | None = None) -> tuple[str, ...]:
    """The language's keywords: every terminal of the grammar (`text`, else netspec's)
    that is one quoted word, longest first (so that `relu6` is not read as `relu` then `6`)."""
    found = set(_KEYWORD_TERMINAL.findall(_grammar_text() if text is None else text))
    return tuple(sorted(found, key=lambda w: (-len(w), w)))


def _grammar_text() -> str:
    with open(GRAMMAR, encoding="utf-8") as f:
        return f.read()


def _standalone_is_fresh() -> bool:
    try:
        from . import _lark_standalone
    except ImportError:
        return False
    # the text itself, not its hash: hashlib would cost start-up time (~3 ms)
    return getattr(_lark_standalone, "GRAMMAR_TEXT", None) == _grammar_text()


if _standalone_is_fresh():
    from ._lark_standalone import (  # noqa: F401
        Lark_StandAlone,
        Token,
        Transformer,
        Tree,
        UnexpectedInput,
        UnexpectedToken,
    )

    def build_parser(transformer: Transformer) -> Any:
        """The LALR parser from the generated tables, applying `transformer` as it parses."""
        return Lark_StandAlone(transformer=transformer)

    SOURCE = "generated"
else:
    from lark import Lark, Token, Transformer, Tree, UnexpectedInput, UnexpectedToken  # noqa: F401

    def build_parser(transformer: Transformer) -> Any:
        """The LALR parser built from the grammar, applying `transformer` as it parses."""
        return Lark(_grammar_text(), transformer=transformer, **OPTIONS)

    SOURCE = "grammar"
