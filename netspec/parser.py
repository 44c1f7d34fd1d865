"""From text to IR layers: the Lark parser, one transformer, and syntax diagnostics.

The grammar (grammar/netspec.lark) decides the form of each statement; the
transformer below turns each rule into layer objects carrying their source
positions, so the parse tree never leaves this module. A syntax error is turned
into a diagnostic that names the statement it broke, with a `did you mean` hint,
and parsing resumes after that statement so that one run reports every error.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lark import Lark, Token, Transformer, UnexpectedInput, UnexpectedToken

from .errors import SpecError, SpecSyntaxError, did_you_mean
from .layers import (Activation, BatchNorm, Conv, Dropout, FC, Flatten, Input, Layer, Pool, Pos)

if TYPE_CHECKING:
    from .network import Reporter

GRAMMAR = Path(__file__).resolve().parent.parent / "grammar" / "netspec.lark"
if not GRAMMAR.exists():  # installed as a wheel: the grammar ships inside the package
    GRAMMAR = Path(__file__).resolve().parent / "grammar" / "netspec.lark"

#: Statement keywords, for `did you mean` on an unknown first word.
KEYWORDS = ("input", "conv", "pool", "fc", "bn", "dropout", "flatten",
            "relu", "tanh", "sigmoid", "softmax")

#: Words from other frameworks, with the netspec spelling.
ALIASES = {
    "dense": "fc", "linear": "fc", "fully_connected": "fc", "conv2d": "conv",
    "convolution": "conv", "maxpool": "pool max", "max_pool": "pool max",
    "maxpool2d": "pool max", "avgpool": "pool avg", "avg_pool": "pool avg",
    "avgpool2d": "pool avg", "batchnorm": "bn", "batch_norm": "bn", "batchnorm2d": "bn",
    "drop": "dropout", "reshape": "flatten",
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
    "NUMBER": "a number", "NAME": "a layer", "COLON": "`:`", "SAME": "`same`",
    "VALID": "`valid`", "MAX": "`max`", "AVG": "`avg`", "RELU": "an activation",
    "TANH": "an activation", "SIGMOID": "an activation", "SOFTMAX": "an activation",
    "_NEWLINE": "the end of the statement", "SEMICOLON": "the end of the statement",
    "$END": "the end of the statement",
}
_OPTION_NAMES = {"STRIDE": "stride", "PADDING": "padding", "DILATION": "dilation",
                 "GROUPS": "groups", "FILTERS": "filters", "SAME": "padding", "VALID": "padding"}


def _pos(tok: Token) -> Pos:
    return Pos(tok.line, tok.column, max(1, len(tok)))


def _span(first: Token, last: Token) -> Pos:
    length = last.end_pos - first.start_pos if first.line == last.line else len(first)
    return Pos(first.line, first.column, max(1, length))


class _ToLayers(Transformer):
    """One method per grammar rule; returns lists of Layer objects."""

    def __init__(self, text: str, rep: Reporter) -> None:
        super().__init__()
        self.text = text
        self.rep = rep

    def _written(self, first: Token, last: Token) -> str:
        return self.text[first.start_pos:last.end_pos]

    def _size(self, tok: Token, n_dims: tuple[int, ...], what: str) -> tuple[int, ...]:
        dims = tuple(int(d) for d in tok.split("x"))
        if len(dims) not in n_dims:
            forms = " or ".join({1: "N", 2: "FxF", 3: "FxFxC"}[n] for n in n_dims)
            self.rep.error(_pos(tok), f"{what} must be {forms}, not `{tok}`", SpecSyntaxError)
            return tuple([1] * n_dims[0])
        return dims

    def _options(self, keyword: Token, opts: list[Token]) -> dict[str, tuple[Token, Any]]:
        """Options by name, reporting any given twice."""
        seen: dict[str, tuple[Token, Any]] = {}
        for tok in opts:
            name = _OPTION_NAMES[tok.type]
            value: Any = str(tok) if tok.type in ("SAME", "VALID") else int(tok[1:])
            if name in seen:
                first = seen[name][0]
                self.rep.error(_pos(tok), f"{name} given twice in `{keyword}` "
                                          f"(first as `{first}` at column {first.column})",
                               SpecError, hint=f"remove one of `{first}` and `{tok}`")
                continue
            seen[name] = (tok, value)
        return seen

    def _finish(self, layer: Layer, opts: dict[str, tuple[Token, Any]], act: list[Layer],
                extra: dict[str, Pos]) -> list[Layer]:
        layer.options = {k: _pos(t) for k, (t, _) in opts.items()} | extra
        return [layer, *act]

    def start(self, items: list) -> list[Layer]:
        return [layer for stmt in items for layer in stmt]

    def input(self, items: list[Token]) -> list[Layer]:
        kw, size = items
        layer = Input(_span(kw, size), self._written(kw, size), self._size(size, (1, 2, 3, 4), "input"))
        layer.options = {"size": _pos(size)}
        return [layer]

    def named_layer(self, items: list) -> list[Layer]:
        if len(items) == 2:
            name, layers = items
            layers[0].name = str(name)
            layers[0].name_pos = _pos(name)
            return layers
        return items[0]

    def _kernel(self, tok: Token) -> tuple[tuple[int, int], int | None]:
        dims = self._size(tok, (1, 2, 3), "a kernel")
        if len(dims) == 1:
            return (dims[0], dims[0]), None
        return (dims[0], dims[1]), (dims[2] if len(dims) == 3 else None)

    def conv(self, items: list) -> list[Layer]:
        kw, size, *rest = items
        act = rest.pop() if rest and isinstance(rest[-1], list) else []
        opts = self._options(kw, rest)
        kernel, depth = self._kernel(size)
        get = lambda k, d: opts[k][1] if k in opts else d  # noqa: E731
        last = rest[-1] if rest else size
        layer = Conv(_span(kw, last), self._written(kw, last), kernel, depth,
                     get("filters", None), get("stride", None), get("padding", 0),
                     get("dilation", 1), get("groups", 1))
        return self._finish(layer, opts, act, {"kernel": _pos(size)})

    def pool(self, items: list) -> list[Layer]:
        kw, *rest = items
        mode = str(rest.pop(0)) if rest[0].type in ("MAX", "AVG") else "max"
        size, *opts_toks = rest
        opts = self._options(kw, opts_toks)
        kernel, depth = self._kernel(size)
        if depth is not None:
            self.rep.error(_pos(size), f"a pooling window has no depth: `{size}`", SpecSyntaxError,
                           hint=f"write `{kernel[0]}x{kernel[1]}`; pooling keeps every channel")
        last = opts_toks[-1] if opts_toks else size
        layer = Pool(_span(kw, last), self._written(kw, last), mode, kernel,
                     opts["stride"][1] if "stride" in opts else None,
                     opts["padding"][1] if "padding" in opts else 0)
        return self._finish(layer, opts, [], {"kernel": _pos(size)})

    def pool_mode(self, items: list[Token]) -> Token:
        return items[0]

    def padmode(self, items: list[Token]) -> Token:
        return items[0]

    def fc(self, items: list) -> list[Layer]:
        kw, size, *act = items
        units = self._size(size, (1,), "the unit count of `fc`")[0]
        layer = FC(_span(kw, size), self._written(kw, size), units)
        return self._finish(layer, {}, act[0] if act else [], {"units": _pos(size)})

    def activation(self, items: list[Token]) -> list[Layer]:
        tok = items[0]
        return [Activation(_pos(tok), str(tok), str(tok))]

    def bn(self, items: list[Token]) -> list[Layer]:
        return [BatchNorm(_pos(items[0]), str(items[0]))]

    def flatten(self, items: list[Token]) -> list[Layer]:
        return [Flatten(_pos(items[0]), str(items[0]))]

    def dropout(self, items: list[Token]) -> list[Layer]:
        kw, rate = items
        layer = Dropout(_span(kw, rate), self._written(kw, rate), float(rate))
        layer.options = {"rate": _pos(rate)}
        return [layer]


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(GRAMMAR.read_text(encoding="utf-8"), parser="lalr", propagate_positions=False,
                maybe_placeholders=False, cache=True)


def _statement_bounds(line: str, column: int) -> tuple[int, int]:
    """0-based [start, end) of the `;`-separated statement holding `column`."""
    code = line.split("#", 1)[0]
    col = min(column - 1, len(code))
    start = code.rfind(";", 0, col) + 1
    end = code.find(";", col)
    return start, len(code) if end < 0 else end


def _syntax_error(err: UnexpectedInput, lines: list[str], rep: Reporter) -> tuple[int, int, int]:
    """Report one syntax error; return (line, start, end) of the statement to skip."""
    line_no = err.line if err.line and err.line > 0 else len(lines)
    line = lines[line_no - 1] if line_no <= len(lines) else ""
    start, end = _statement_bounds(line, err.column if err.column and err.column > 0 else 1)
    words = [(m.start() + start + 1, m.group()) for m in re.finditer(r"[^\s:]+|:", line[start:end])]
    if len(words) >= 2 and words[1][1] == ":":
        words = words[2:]
    if not words:
        rep.error(Pos(line_no, (err.column or 1)), "unexpected `:`", SpecSyntaxError,
                  hint="a name is followed by a layer: `stem: conv 3x3 x32`")
        return line_no, start, end
    col, keyword = words[0]
    if keyword not in KEYWORDS:
        hint = (f"keywords are lower case: `{keyword.lower()}`" if keyword.lower() in KEYWORDS
                else f"netspec writes this as `{ALIASES[keyword.lower()]}`"
                if keyword.lower() in ALIASES else did_you_mean(keyword, KEYWORDS))
        rep.error(Pos(line_no, col, len(keyword)), f"unknown layer `{keyword}`", SpecSyntaxError,
                  hint=hint or f"a statement starts with one of: {', '.join(KEYWORDS)}")
        return line_no, start, end
    expected = sorted({_EXPECTED.get(t, f"`{t.lower()}`") for t in getattr(err, "expected", ())
                       if not t.startswith("__")})
    token = err.token if isinstance(err, UnexpectedToken) else None
    if token is not None and token.type in ("_NEWLINE", "SEMICOLON", "$END"):
        rep.error(Pos(line_no, col, len(line[start:end].rstrip()) - (col - start - 1)),
                  f"incomplete `{keyword}`: expected {' or '.join(expected) or 'more'}",
                  SpecSyntaxError, hint=_usage_hint(keyword))
        return line_no, start, end
    err_col = err.column if err.column and err.column > 0 else col
    word = re.match(r"\S*", line[err_col - 1:]).group() or line[err_col - 1:err_col]
    hint = _option_hint(word, keyword) or _usage_hint(keyword)
    rep.error(Pos(line_no, err_col, len(word)), f"unexpected `{word}` in `{keyword}`",
              SpecSyntaxError, notes=(f"expected {', '.join(expected)}",) if expected else (),
              hint=hint)
    return line_no, start, end


_USAGE = {
    "input": "input HxWxC, e.g. `input 32x32x3`",
    "conv": "conv FxF [sN] [pN|same|valid] [dN] [gN] xK [relu|tanh|sigmoid|softmax]",
    "pool": "pool [max|avg] F [sN] [pN|same|valid]",
    "fc": "fc N [relu|tanh|sigmoid|softmax]",
    "dropout": "dropout P, with 0 ≤ P < 1",
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
    words = ["same", "valid", "relu", "tanh", "sigmoid", "softmax"] + (["max", "avg"] if keyword == "pool" else [])
    return did_you_mean(word, words)


def parse_layers(text: str, rep: Reporter) -> list[Layer]:
    """Parse `text` into layers; syntax errors go to `rep`, skipping their statement."""
    lines = text.split("\n")
    for _ in range(100):
        try:
            tree = _parser().parse(text)
        except UnexpectedInput as err:
            line_no, start, end = _syntax_error(err, lines, rep)
            line = lines[line_no - 1] if line_no <= len(lines) else ""
            blanked = line[:start] + " " * (end - start) + line[end:]
            if blanked == line:
                return []
            lines[line_no - 1] = blanked
            text = "\n".join(lines)
            continue
        return _ToLayers(text, rep).transform(tree)
    return []
