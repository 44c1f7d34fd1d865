"""From text to a syntax tree of netspec's own objects, and from layer statements to layers.

The grammar (grammar/netspec.lark) decides the form of each statement; the
transformer below turns each rule into a small node carrying its tokens (and so
their source positions), so Lark's parse tree never leaves this module. The
builder (builder.py) walks those nodes, expanding blocks and repeats; it asks
`make_layers` to turn one layer statement, its `$params` already substituted,
into layer objects.

A syntax error becomes a diagnostic that names the statement it broke, with a
`did you mean` hint, and parsing resumes after that statement, so that one run
reports every error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Union


from ._lark import Token, Transformer, UnexpectedInput, UnexpectedToken, build_parser
from .errors import SpecError, SpecSyntaxError, did_you_mean
from .layers import (LRN, Activation, BatchNorm, Conv, Dropout, FC, Flatten, Input, Layer, Pool,
                     Pos)

if TYPE_CHECKING:
    from .network import Reporter

#: Layer keywords, for `did you mean` on an unknown first word.
LAYER_KEYWORDS = ("input", "conv", "pool", "fc", "bn", "lrn", "dropout", "flatten",
                  "relu", "relu6", "tanh", "sigmoid", "softmax")
KEYWORDS = LAYER_KEYWORDS + ("repeat", "residual", "concat", "block")

#: Words from other frameworks, with the netspec spelling.
ALIASES = {
    "dense": "fc", "linear": "fc", "fully_connected": "fc", "conv2d": "conv",
    "convolution": "conv", "maxpool": "pool max", "max_pool": "pool max",
    "maxpool2d": "pool max", "avgpool": "pool avg", "avg_pool": "pool avg",
    "avgpool2d": "pool avg", "gap": "pool avg global", "globalavgpool": "pool avg global",
    "batchnorm": "bn", "batch_norm": "bn", "batchnorm2d": "bn", "drop": "dropout",
    "reshape": "flatten", "add": "residual { ... }", "cat": "concat { branch {...} ... }",
    "def": "block", "for": "repeat", "loop": "repeat",
}

#: Option words from other tools, with the netspec spelling of the option.
_OPTION_HINTS = (
    (re.compile(r"(?:stride|strides)=?(-?\d+)$"), "s{}", "the stride"),
    (re.compile(r"(?:pad|padding)=?(-?\d+)$"), "p{}", "the padding"),
    (re.compile(r"(?:dilation|dil)=?(-?\d+)$"), "d{}", "the dilation"),
    (re.compile(r"(?:groups|group)=?(-?\d+)$"), "g{}", "the groups"),
    (re.compile(r"(?:filters|k|out|channels)=?(-?\d+)$"), "x{}", "the filter count"),
    (re.compile(r"(-?\d+)$"), "x{}", "a filter count"),
)

#: How to name each terminal in "expected ..." notes.
_EXPECTED = {
    "SIZE": "a size such as `3x3`", "STRIDE": "`sN` (stride)", "PADDING": "`pN` (padding)",
    "DILATION": "`dN` (dilation)", "GROUPS": "`gN` (groups)", "FILTERS": "`xK` (filters)",
    "NUMBER": "a number", "VALUE": "a number", "NAME": "a name", "COLON": "`:`",
    "SAME": "`same`", "VALID": "`valid`", "MAX": "`max`", "AVG": "`avg`",
    "GLOBAL": "`global`", "CEIL": "`ceil`", "NOBIAS": "`nobias`", "LRN_OPTION": "an lrn option",
    "RELU": "an activation", "RELU6": "an activation", "TANH": "an activation",
    "SIGMOID": "an activation", "SOFTMAX": "an activation", "LBRACE": "`{`", "RBRACE": "`}`",
    "LSQB": "`[`", "RSQB": "`]`", "LPAR": "`(`", "RPAR": "`)`", "COMMA": "`,`",
    "EQUAL": "`=`", "PROJECT": "`project`", "SHORTCUT": "`shortcut`", "BRANCH": "`branch`",
    "OPTIONAL": "`?`",
    "_NEWLINE": "the end of the statement", "SEMICOLON": "the end of the statement",
    "$END": "the end of the statement",
}
_OPTION_NAMES = {"STRIDE": "stride", "PADDING": "padding", "DILATION": "dilation",
                 "GROUPS": "groups", "FILTERS": "filters", "SAME": "padding", "VALID": "padding",
                 "CEIL": "ceil", "NOBIAS": "nobias"}


def pos_of(tok: Token) -> Pos:
    """Where a token was written."""
    return Pos(tok.line, tok.column, max(1, len(tok)))


def span(first: Token, last: Token) -> Pos:
    """From the start of `first` to the end of `last` (on one line)."""
    length = last.end_pos - first.start_pos if first.line == last.line else len(first)
    return Pos(first.line, first.column, max(1, length))


# ---- the syntax tree ------------------------------------------------------------

@dataclass
class LayerStmt:
    """One layer statement as written: its grammar rule and tokens (params unresolved)."""

    rule: str
    items: list[Any]
    pos: Pos


@dataclass
class Group:
    """`{ ... }` (indexed=False) or `[ ... ]` (indexed=True)."""

    body: list[Any]
    indexed: bool
    pos: Pos


@dataclass
class Labeled:
    """`name: item`."""

    name: Token
    item: Any


@dataclass
class Repeat:
    """`repeat N item`."""

    count: Token
    item: Any
    pos: Pos


@dataclass
class Residual:
    """`residual[?] { body } [project|shortcut GROUP]`."""

    body: Group
    optional: bool
    shortcut_kind: str | None      # None (identity), "project" or "shortcut"
    shortcut: Any                  # Group or Labeled(Group), or None
    pos: Pos


@dataclass
class Concat:
    """`concat { branch GROUP ... }`."""

    branches: list[Any]            # Group or Labeled(Group)
    pos: Pos


@dataclass
class Call:
    """A block call, `basic(64, s=2)`: positional or named arguments."""

    name: Token
    args: list[tuple[Token | None, Token]]
    pos: Pos


@dataclass
class BlockDef:
    """`block NAME(params) GROUP`; `uses` counts its calls, for the unused-block warning."""

    name: Token
    params: list[tuple[Token, Token | None]]
    body: Group
    pos: Pos
    uses: int = field(default=0)


Node = Union[LayerStmt, Group, Labeled, Repeat, Residual, Concat, Call, BlockDef]


class _ToTree(Transformer):
    """One method per grammar rule, returning the nodes above."""

    def start(self, items: list) -> list[Node]:
        return items

    def statement(self, items: list) -> Node:
        return Labeled(items[0], items[1]) if len(items) == 2 else items[0]

    def group(self, items: list) -> Group:
        return Group(items, False, items[0].pos if items and hasattr(items[0], "pos") else Pos(0, 0))

    def seq(self, items: list) -> Group:
        return Group(items, True, items[0].pos if items and hasattr(items[0], "pos") else Pos(0, 0))

    def repeat(self, items: list) -> Repeat:
        kw, count, item = items
        return Repeat(count, item, span(kw, count))

    def residual(self, items: list) -> Residual:
        kw, *rest = items
        optional = bool(rest) and isinstance(rest[0], Token) and rest[0].type == "OPTIONAL"
        if optional:
            rest = rest[1:]
        body = rest[0]
        kind, shortcut = (str(rest[1]), rest[2]) if len(rest) == 3 else (None, None)
        return Residual(body, optional, kind, shortcut, pos_of(kw))

    def label(self, items: list[Token]) -> Token:
        return items[0]

    def shortcut_kind(self, items: list[Token]) -> Token:
        return items[0]

    def labeled_group(self, items: list) -> Node:
        return Labeled(items[0], items[1]) if len(items) == 2 else items[0]

    def concat(self, items: list) -> Concat:
        kw, *branches = items
        return Concat(branches, pos_of(kw))

    def branch(self, items: list) -> Node:
        return items[1]

    def block_def(self, items: list) -> BlockDef:
        kw, name, *params = items
        body = params.pop()
        return BlockDef(name, params, body, span(kw, name))

    def param(self, items: list[Token]) -> tuple[Token, Token | None]:
        return items[0], (items[1] if len(items) > 1 else None)

    def call(self, items: list) -> Call:
        name, *args = items
        return Call(name, args, pos_of(name))

    def arg(self, items: list[Token]) -> tuple[Token | None, Token]:
        return (items[0], items[1]) if len(items) == 2 else (None, items[0])

    def pool_mode(self, items: list[Token]) -> Token:
        return items[0]

    def padmode(self, items: list[Token]) -> Token:
        return items[0]

    def _layer(rule: str):  # noqa: N805 -- a method factory, used in the class body
        def method(self: _ToTree, items: list) -> LayerStmt:
            return LayerStmt(rule, items, pos_of(items[0]))
        return method

    input = _layer("input")
    conv = _layer("conv")
    pool = _layer("pool")
    fc = _layer("fc")
    lrn = _layer("lrn")
    activation = _layer("activation")
    bn = _layer("bn")
    dropout = _layer("dropout")
    flatten = _layer("flatten")


# ---- layer statements to layers ----------------------------------------------------

class LayerMaker:
    """Turns one layer statement (params substituted) into Layer objects."""

    def __init__(self, text: str, rep: Reporter) -> None:
        self.text = text
        self.rep = rep

    def make(self, stmt: LayerStmt) -> list[Layer]:
        """The layers of one statement: one, or two with an activation shorthand."""
        return getattr(self, stmt.rule)(stmt.items)

    def _written(self, items: list[Token]) -> str:
        """The layer as written, or with its `$params` filled in when it has any."""
        toks = [t for t in items if isinstance(t, Token)]
        source = self.text[toks[0].start_pos:toks[-1].end_pos]
        if all(self.text[t.start_pos:t.end_pos] == t for t in toks):
            return source
        return " ".join(toks)

    def _size(self, tok: Token, n_dims: tuple[int, ...], what: str) -> tuple[int, ...]:
        dims = tuple(int(d) for d in tok.split("x"))
        if len(dims) not in n_dims:
            forms = " or ".join({1: "N", 2: "FxF", 3: "FxFxC"}.get(n, "HxWxC") for n in n_dims)
            self.rep.error(pos_of(tok), f"{what} must be {forms}, not `{tok}`", SpecSyntaxError)
            return tuple([1] * n_dims[0])
        return dims

    def _options(self, keyword: Token, opts: list[Token]) -> dict[str, tuple[Token, Any]]:
        """Options by name, reporting any given twice."""
        seen: dict[str, tuple[Token, Any]] = {}
        for tok in opts:
            name = _OPTION_NAMES[tok.type]
            value: Any = (str(tok) if tok.type in ("SAME", "VALID") else True
                          if tok.type in ("CEIL", "NOBIAS") else int(tok[1:]))
            if name in seen:
                first = seen[name][0]
                self.rep.error(pos_of(tok), f"{name} given twice in `{keyword}` "
                                            f"(first as `{first}` at column {first.column})",
                               SpecError, hint=f"remove one of `{first}` and `{tok}`")
                continue
            seen[name] = (tok, value)
        return seen

    def _kernel(self, tok: Token) -> tuple[tuple[int, int], int | None]:
        dims = self._size(tok, (1, 2, 3), "a kernel")
        if len(dims) == 1:
            return (dims[0], dims[0]), None
        return (dims[0], dims[1]), (dims[2] if len(dims) == 3 else None)

    @staticmethod
    def _split_activation(items: list) -> tuple[list, list[Layer] | LayerStmt | None]:
        if items and isinstance(items[-1], LayerStmt):
            return items[:-1], items[-1]
        return items, None

    def _finish(self, layer: Layer, opts: dict[str, tuple[Token, Any]],
                act: LayerStmt | None, extra: dict[str, Pos]) -> list[Layer]:
        layer.options = {k: pos_of(t) for k, (t, _) in opts.items()} | extra
        return [layer, *(self.make(act) if act is not None else [])]

    def input(self, items: list[Token]) -> list[Layer]:
        kw, size = items
        layer = Input(span(kw, size), self._written(items),
                      self._size(size, (1, 2, 3, 4), "input"))
        layer.options = {"size": pos_of(size)}
        return [layer]

    def conv(self, items: list) -> list[Layer]:
        items, act = self._split_activation(items)
        kw, size, *rest = items
        opts = self._options(kw, rest)
        kernel, depth = self._kernel(size)
        get = lambda k, d: opts[k][1] if k in opts else d  # noqa: E731
        last = rest[-1] if rest else size
        layer = Conv(span(kw, last), self._written(items), kernel, depth,
                     get("filters", None), get("stride", None), get("padding", 0),
                     get("dilation", 1), get("groups", 1), bias=not get("nobias", False))
        return self._finish(layer, opts, act, {"kernel": pos_of(size)})

    def pool(self, items: list) -> list[Layer]:
        kw, *rest = items
        mode = str(rest.pop(0)) if rest[0].type in ("MAX", "AVG") else "max"
        if rest[0].type == "GLOBAL":
            layer = Pool(span(kw, rest[0]), self._written(items), mode, (1, 1), None, 0,
                         global_pool=True)
            return self._finish(layer, {}, None, {})
        size, *opts_toks = rest
        opts = self._options(kw, opts_toks)
        kernel, depth = self._kernel(size)
        if depth is not None:
            self.rep.error(pos_of(size), f"a pooling window has no depth: `{size}`",
                           SpecSyntaxError,
                           hint=f"write `{kernel[0]}x{kernel[1]}`; pooling keeps every channel")
        last = opts_toks[-1] if opts_toks else size
        layer = Pool(span(kw, last), self._written(items), mode, kernel,
                     opts["stride"][1] if "stride" in opts else None,
                     opts["padding"][1] if "padding" in opts else 0,
                     ceil_mode="ceil" in opts)
        return self._finish(layer, opts, None, {"kernel": pos_of(size)})

    def fc(self, items: list) -> list[Layer]:
        items, act = self._split_activation(items)
        kw, size = items
        units = self._size(size, (1,), "the unit count of `fc`")[0]
        layer = FC(span(kw, size), self._written(items), units)
        return self._finish(layer, {}, act, {"units": pos_of(size)})

    def lrn(self, items: list[Token]) -> list[Layer]:
        kw, size, *opts = items
        values: dict[str, float] = {}
        where: dict[str, Pos] = {"size": pos_of(size)}
        for tok in opts:
            key = {"a": "alpha", "b": "beta", "k": "k"}[tok[0]]
            if key in values:
                self.rep.error(pos_of(tok), f"{key} given twice in `lrn`", SpecError)
            values[key] = float(tok[1:])
            where[key] = pos_of(tok)
        layer = LRN(span(kw, opts[-1] if opts else size), self._written(items),
                    self._size(size, (1,), "the size of `lrn`")[0], **values)
        layer.options = where
        return [layer]

    def activation(self, items: list[Token]) -> list[Layer]:
        tok = items[0]
        return [Activation(pos_of(tok), str(tok), str(tok))]

    def bn(self, items: list[Token]) -> list[Layer]:
        return [BatchNorm(pos_of(items[0]), str(items[0]))]

    def flatten(self, items: list[Token]) -> list[Layer]:
        return [Flatten(pos_of(items[0]), str(items[0]))]

    def dropout(self, items: list[Token]) -> list[Layer]:
        kw, rate = items
        layer = Dropout(span(kw, rate), self._written(items), float(rate))
        layer.options = {"rate": pos_of(rate)}
        return [layer]


# ---- parsing and syntax errors -------------------------------------------------------

@lru_cache(maxsize=1)
def _parser() -> Lark:
    """The LALR parser, applying `_ToTree` as it parses (no parse tree is built)."""
    return build_parser(_ToTree())


_OPENERS, _CLOSERS = ";{[", ";}]"


def _statement_bounds(line: str, column: int) -> tuple[int, int]:
    """0-based [start, end) of the statement holding `column` (`;`, brackets delimit)."""
    code = line.split("#", 1)[0]
    col = min(column - 1, len(code))
    start = max(code.rfind(c, 0, col) for c in _OPENERS) + 1
    ends = [i for i in (code.find(c, col) for c in _CLOSERS) if i >= 0]
    return start, min(ends, default=len(code))


def _block_names(text: str) -> list[str]:
    return re.findall(r"^\s*block\s+([A-Za-z_]\w*)", text, re.MULTILINE)


def unknown_word_hint(word: str, blocks: list[str]) -> str:
    """A hint for a statement that starts with an unknown word."""
    if word.lower() in KEYWORDS:
        return f"keywords are lower case: `{word.lower()}`"
    if word.lower() in ALIASES:
        return f"netspec writes this as `{ALIASES[word.lower()]}`"
    return did_you_mean(word, [*LAYER_KEYWORDS, *blocks]) or \
        f"a layer is one of: {', '.join(LAYER_KEYWORDS)}" + \
        (f"; blocks defined here: {', '.join(blocks)}" if blocks else "")


def _syntax_error(err: UnexpectedInput, lines: list[str], text: str,
                  rep: Reporter) -> tuple[int, int, int]:
    """Report one syntax error; return (line, start, end) of the statement to skip."""
    line_no = err.line if err.line and err.line > 0 else len(lines)
    line = lines[line_no - 1] if line_no <= len(lines) else ""
    start, end = _statement_bounds(line, err.column if err.column and err.column > 0 else 1)
    words = [(m.start() + start + 1, m.group())
             for m in re.finditer(r"[A-Za-z_][\w.]*|[^\s:(]+|[:(]", line[start:end])]
    if len(words) >= 2 and words[1][1] == ":":
        words = words[2:]
    err_col = err.column if err.column and err.column > 0 else 1
    if not words:
        found = line[err_col - 1:err_col] or "end of line"
        rep.error(Pos(line_no, err_col), f"unexpected `{found}`", SpecSyntaxError,
                  hint="a label is followed by a layer: `stem: conv 3x3 x32`"
                  if found == ":" else None)
        return line_no, start, end
    col, keyword = words[0]
    blocks = _block_names(text)
    if keyword in blocks:
        rep.error(Pos(line_no, err_col), f"a call of block `{keyword}` takes its arguments in "
                                         f"parentheses", SpecSyntaxError,
                  hint=f"e.g. `{keyword}(64)` or `{keyword}(c=64)`")
        return line_no, start, end
    if keyword not in KEYWORDS:
        rep.error(Pos(line_no, col, len(keyword)), f"unknown layer `{keyword}`", SpecSyntaxError,
                  hint=unknown_word_hint(keyword, blocks))
        return line_no, start, end
    expected = sorted({_EXPECTED.get(t, f"`{t.lower()}`") for t in getattr(err, "expected", ())
                       if not t.startswith("__")})
    token = err.token if isinstance(err, UnexpectedToken) else None
    if token is not None and token.type in ("_NEWLINE", "SEMICOLON", "$END"):
        rep.error(Pos(line_no, col, len(line[start:end].rstrip()) - (col - start - 1)),
                  f"incomplete `{keyword}`: expected {' or '.join(expected) or 'more'}",
                  SpecSyntaxError, hint=_usage_hint(keyword))
        return line_no, start, end
    word = re.match(r"\S*", line[err_col - 1:]).group() or line[err_col - 1:err_col]
    hint = _option_hint(word, keyword) or _usage_hint(keyword)
    rep.error(Pos(line_no, err_col, len(word)), f"unexpected `{word}` in `{keyword}`",
              SpecSyntaxError, notes=(f"expected {', '.join(expected)}",) if expected else (),
              hint=hint)
    return line_no, start, end


_USAGE = {
    "input": "input HxWxC, e.g. `input 32x32x3`",
    "conv": "conv FxF [sN] [pN|same|valid] [dN] [gN] [nobias] xK [relu|relu6|tanh|sigmoid|softmax]",
    "pool": "pool [max|avg] F [sN] [pN|same|valid] [ceil]` or `pool [max|avg] global",
    "fc": "fc N [relu|relu6|tanh|sigmoid|softmax]",
    "lrn": "lrn N [aALPHA] [bBETA] [kK]",
    "dropout": "dropout P, with 0 ≤ P < 1",
    "repeat": "repeat N { ... }",
    "residual": "residual { ... } [project { ... } | shortcut { ... }]",
    "concat": "concat { branch { ... } branch { ... } }",
    "block": "block NAME(PARAM, PARAM=DEFAULT) { ... }",
}


def _usage_hint(keyword: str) -> str | None:
    return f"the form is `{_USAGE[keyword]}`" if keyword in _USAGE else \
        f"`{keyword}` takes no arguments; put the next layer on its own line or after `;`"


def _option_hint(word: str, keyword: str) -> str | None:
    """`stride=2` → `s2` and similar, or a near miss of an option keyword."""
    if keyword in ("conv", "pool"):
        for pattern, form, what in _OPTION_HINTS:
            m = pattern.match(word.lower())
            if m and (keyword == "conv" or form != "x{}"):
                return f"write {what} as `{form.format(m.group(1))}`"
    words = ["same", "valid", "nobias", "relu", "relu6", "tanh", "sigmoid", "softmax"] + (
        ["max", "avg", "ceil", "global"] if keyword == "pool" else [])
    return did_you_mean(word, words)


def parse_tree(text: str, rep: Reporter) -> list[Node]:
    """Parse `text` into nodes; syntax errors go to `rep`, skipping their statement."""
    lines = text.split("\n")
    original = text
    for _ in range(100):
        try:
            return _parser().parse(text)
        except UnexpectedInput as err:
            line_no, start, end = _syntax_error(err, lines, original, rep)
            line = lines[line_no - 1] if line_no <= len(lines) else ""
            # blank the statement but keep its brackets, so the structure still parses
            blanked = line[:start] + re.sub(r"[^{}\[\]]", " ", line[start:end]) + line[end:]
            if blanked == line:
                return []
            lines[line_no - 1] = blanked
            text = "\n".join(lines)
    return []
