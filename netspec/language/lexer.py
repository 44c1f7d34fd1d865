"""A Pygments lexer for netspec, so that specs are highlighted wherever Pygments runs.

Registered under the entry point group `pygments.lexers` (see pyproject.toml), so
``pygments.lexers.get_lexer_by_name("netspec")`` finds it once netspec is installed:
MkDocs and Sphinx sites, Jupyter, GitLab and `pygmentize -l netspec` highlight
```netspec code with it.

The keywords are not listed here a second time: they are read from the grammar's
quoted terminals (``CONV: "conv"``) when this module is imported, so a keyword added
to the grammar is highlighted without editing the lexer. Pygments imports this module
only when a netspec lexer is asked for, never on `netspec check`'s path.

Token classes (the CSS class Pygments gives each in brackets):

- keywords, layer and composition alike (``conv``, ``residual``, ``same``): Keyword [k];
- sizes and numbers (``5x5``, ``32x32x3``, ``0.5``; ``5×5`` too): Number [m, mi, mf];
- options (``s2``, ``p1``, ``x64`` or ``×64``, ``d2``, ``g4``, ``op1``, ``eps1e-3``, ``gamma1.7``,
  ``a0.0001``):
  Name.Attribute [na];
- labels (``stem:``) and the names of values (``y1 = …``, ``concat(y1, x2)``,
  ``from x``): Name.Label [nl];
- ``$params``: Name.Variable [nv]; ``{expressions}``: String.Interpol braces [si] around
  numbers, names and operators; block names where defined or called: Name.Function [nf];
- comments: Comment.Single [c1], and ``# netspec: ignore[...]``: Comment.Special [cs];
- strings (``use "../lib/resnet.ns"``): String.Double [s2].
"""

from __future__ import annotations

import re
from typing import ClassVar

from pygments.lexer import RegexLexer, bygroups, include, words
from pygments.token import (
    Comment,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Text,
    Whitespace,
)

from ..kinds import registry
from .grammar import grammar_keywords

__all__ = ["NetspecLexer", "grammar_keywords"]

_NAME = r"[A-Za-z_](?:\w|-(?=[\w$])|\$(?=[A-Za-z_]))*"   # the grammar's NAME
_PARAM = r"\$[A-Za-z_]\w*"
_FLOAT = r"(?:\d+\.\d*|\.\d+)(?:[eE]-?\d+)?|\d+[eE]-?\d+"
_REAL = r"-?(?:\d+\.?\d*|\.\d+)(?:[eE]-?\d+)?"
#: An expression: braces around one line without braces (the grammar's `{[^{}\n]*}`).
#: The grammar tells `{4*C}` from a group `{ relu }` by where it stands; the lexer by its
#: look: an expression starts right after its brace, a group (written `{ ... }`, or over
#: several lines) after a space or a newline, and only a group holds a `;`.
_EXPRESSION = r"\{(?=[^\s{}][^{};\n]*\})"
#: A merge's keyword before `(`: a join of named values, `concat(a, b)` (not `scale (C,)`).
_JOIN = "|".join(re.escape(k.statement) for k in registry.kinds()
                 if isinstance(getattr(k, "statement", None), str) and k.statement)


class NetspecLexer(RegexLexer):
    """Highlights netspec specs (``*.ns``): keywords from the grammar, sizes, options,
    labels, ``$params`` and ``{expressions}``, comments and strings."""

    name = "netspec"
    aliases: ClassVar[list[str]] = ["netspec"]
    filenames: ClassVar[list[str]] = ["*.ns"]
    mimetypes: ClassVar[list[str]] = ["text/x-netspec"]

    tokens: ClassVar[dict[str, list]] = {
        "root": [
            (r"\n", Whitespace),
            (r"[ \t\f\r]+", Whitespace),
            (r"#\s*netspec:\s*ignore(?:\[[^\]\n]*\])?[^\n]*", Comment.Special),
            (r"#[^\n]*", Comment.Single),
            (r'"[^"\n]*"', String.Double),
            # a label, which may be a keyword (`fc: fc 1000`) or a number (`2: bn`); not a
            # slice's run of channels (`16:48`, `:16`, `16:` at the end of its statement)
            (rf"({_NAME}|\d+)(\s*)(:)(?![-\d$])(?![ \t]*(?:[;#]|$))",
             bygroups(Name.Label, Whitespace, Punctuation)),
            (rf"(-?\d+|{_PARAM})?(:)(-?\d+|{_PARAM})?(?=[\s;#]|$)",
             bygroups(Number.Integer, Punctuation, Number.Integer)),
            # `block NAME(`: the definition's name
            (rf"(block)(\s+)({_NAME})(\s*)(\()",
             bygroups(Keyword, Whitespace, Name.Function, Whitespace, Punctuation), "arguments"),
            (rf"(block)(\s+)({_NAME})", bygroups(Keyword, Whitespace, Name.Function)),
            # named values: `y1 = …`, `concat(y1, x2)`, `from x`
            (rf"({_NAME})(\s*)(=)(?!=)", bygroups(Name.Label, Whitespace, Operator)),
            (rf"({_JOIN})(\s*)(\()", bygroups(Keyword, Whitespace, Punctuation), "names"),
            (rf"(from)(\s+)({_NAME})", bygroups(Keyword, Whitespace, Name.Label)),
            (words(grammar_keywords(), suffix=r"\b"), Keyword),
            # options: the letter or letters, then a number, $param or {expression}
            (rf"(?:op|eps|gamma|[spdgx×])(?=(?:{_REAL}|{_PARAM}|\{{[^{{}}\n]*\}})(?![\w$]))",
             Name.Attribute, "option"),
            (rf"([abk])({_REAL})\b", bygroups(Name.Attribute, Number.Float)),   # lrn's α, β, k
            include("value"),
            (rf"({_NAME})(\s*)(\()", bygroups(Name.Function, Whitespace, Punctuation),
             "arguments"),
            (_EXPRESSION, String.Interpol, "expression-body"),
            (_NAME, Name),
            (r"\?", Operator),
            (r"[{}\[\]();,]", Punctuation),
            (r".", Text),
        ],
        # a call's arguments or a definition's parameters: `(64, s={s if j == 0 else 1})`
        "arguments": [
            (r"\)", Punctuation, "#pop"),
            (r"\s+", Whitespace),
            (rf"({_NAME})(\s*)(=)", bygroups(Name, Whitespace, Operator)),
            include("value"),
            (_EXPRESSION, String.Interpol, "expression-body"),
            (_NAME, Name),
            (r",", Punctuation),
            (r"[^)\n]", Text),
            (r"\n", Whitespace, "#pop"),
        ],
        # the values a join reads: `(y1, x2)`
        "names": [
            (r"\)", Punctuation, "#pop"),
            (r"\s+", Whitespace),
            (_NAME, Name.Label),
            (r",", Punctuation),
            (r"[^)\n]", Text),
            (r"\n", Whitespace, "#pop"),
        ],
        # what follows an option's letters: exactly one number, $param or expression
        "option": [
            (_FLOAT, Number.Float, "#pop"),
            (r"-?\d+", Number.Integer, "#pop"),
            (_PARAM, Name.Variable, "#pop"),
            (_EXPRESSION, String.Interpol, ("#pop", "expression-body")),
        ],
        # a size or a number: `5x5`, `32x32x3`, `{k}x{k}`, `0.5`, `-1`
        "value": [
            (r"-?\d+(?:[x×]\d+)+\b", Number),
            (_FLOAT, Number.Float),
            (r"-?\d+(?:\b|(?=[x×][{$]))", Number.Integer),   # `3x{k}`: the x{k} is read next
            (_PARAM, Name.Variable),
        ],
        "expression-body": [
            (r"\}", String.Interpol, "#pop"),
            (r"[ \t]+", Whitespace),
            (r"\b(?:if|else)\b", Keyword),
            (r"\b[CHW]\b", Name.Builtin),
            (r"\d+", Number.Integer),
            (_PARAM, Name.Variable),
            (r"[A-Za-z_]\w*", Name.Variable),
            (r"//|==|!=|<=|>=|[-+*/%<>()]", Operator),
            (r"[^}\n]", Text),
        ],
    }
