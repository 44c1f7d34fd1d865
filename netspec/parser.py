"""From text to a syntax tree of netspec's own objects (syntax.py).

The grammar (grammar/netspec.lark) decides the form of each statement; the
transformer below turns each rule into a small node carrying its tokens (and so
their source positions), so Lark's parse tree never leaves this module. The
builder (builder.py) walks those nodes, expanding blocks and repeats; the maker
(maker.py) turns each layer statement into layer objects.

A syntax error becomes a diagnostic that names the statement it broke, with a
`did you mean` hint, and parsing resumes after that statement, so that one run
reports every error.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from ._lark import Token, Transformer, UnexpectedInput, UnexpectedToken, build_parser
from .errors import Reporter, SpecSyntaxError, did_you_mean
from .layers import Pos
from .syntax import (
    BlockDef,
    Call,
    Aux,
    Concat,
    Gate,
    Group,
    Labeled,
    LayerStmt,
    Node,
    Repeat,
    Residual,
    Use,
    pos_of,
    span,
)

#: Layer keywords, for `did you mean` on an unknown first word.
LAYER_KEYWORDS = ("input", "conv", "pool", "fc", "bn", "lrn", "dropout", "flatten",
                  "relu", "relu6", "tanh", "sigmoid", "softmax", "silu", "gelu", "hswish",
                  "hsigmoid", "leaky")
KEYWORDS = LAYER_KEYWORDS + ("repeat", "residual", "concat", "block", "use", "gate", "aux")
LAYER_KEYWORDS += ("layernorm", "scale", "linear", "shuffle", "deconv", "upsample")
KEYWORDS += ("layernorm", "scale", "linear", "shuffle", "deconv", "upsample", "split")
KEYWORDS += ("add", "mul")

#: Words from other frameworks, with the netspec spelling.
ALIASES = {
    "dense": "fc", "fully_connected": "fc", "conv2d": "conv",
    "convolution": "conv", "maxpool": "pool max", "max_pool": "pool max",
    "maxpool2d": "pool max", "avgpool": "pool avg", "avg_pool": "pool avg",
    "avgpool2d": "pool avg",
    "adaptiveavgpool2d": "pool avg to HxW", "adaptive_avg_pool": "pool avg to HxW", "gap": "pool avg global", "globalavgpool": "pool avg global",
    "batchnorm": "bn", "batch_norm": "bn", "batchnorm2d": "bn", "drop": "dropout",
    "reshape": "flatten", "cat": "concat { branch {...} ... }",
    "def": "block", "for": "repeat", "loop": "repeat",
    "layer_norm": "layernorm", "layernorm2d": "layernorm", "ln": "layernorm",
    "convtranspose2d": "deconv", "conv_transpose": "deconv", "convtranspose": "deconv",
    "interpolate": "upsample bilinear to HxW", "resize": "upsample bilinear to HxW",
    "channel_shuffle": "shuffle 2", "chunk": "split { branch {...} branch {...} }",
    "swish": "silu", "hardswish": "hswish", "hard_swish": "hswish", "hardsigmoid": "hsigmoid",
    "hard_sigmoid": "hsigmoid", "leakyrelu": "leaky", "leaky_relu": "leaky",
    "se": "gate { pool avg global; conv 1x1 xS relu; conv 1x1 x{C} sigmoid }",
    "multiply": "mul { branch {...} branch {...} }", "sum": "add { branch {...} branch {...} }",
}

#: Option words from other tools, with the netspec spelling of the option (patterns
#: compiled on first use, by `re`'s cache: only a spec with errors needs them).
_OPTION_HINTS = (
    (r"(?:stride|strides)=?(-?\d+)$", "s{}", "the stride"),
    (r"(?:pad|padding)=?(-?\d+)$", "p{}", "the padding"),
    (r"(?:dilation|dil)=?(-?\d+)$", "d{}", "the dilation"),
    (r"(?:groups|group)=?(-?\d+)$", "g{}", "the groups"),
    (r"(?:filters|k|out|channels)=?(-?\d+)$", "x{}", "the filter count"),
    (r"(-?\d+)$", "x{}", "a filter count"),
)

#: How to name each terminal in "expected ..." notes.
_EXPECTED = {
    "SIZE": "a size such as `3x3`", "STRIDE": "`sN` (stride)", "PADDING": "`pN` (padding)",
    "DILATION": "`dN` (dilation)", "GROUPS": "`gN` (groups)", "FILTERS": "`xK` (filters)",
    "NUMBER": "a number", "VALUE": "a number", "NAME": "a name", "COLON": "`:`",
    "SAME": "`same`", "VALID": "`valid`", "MAX": "`max`", "AVG": "`avg`",
    "GLOBAL": "`global`", "TO": "`to`", "CEIL": "`ceil`", "NOBIAS": "`nobias`", "LRN_OPTION": "an lrn option",
    "RELU": "an activation", "RELU6": "an activation", "TANH": "an activation",
    "SIGMOID": "an activation", "SOFTMAX": "an activation", "LBRACE": "`{`", "RBRACE": "`}`",
    "LSQB": "`[`", "RSQB": "`]`", "LPAR": "`(`", "RPAR": "`)`", "COMMA": "`,`",
    "EQUAL": "`=`", "PROJECT": "`project`", "SHORTCUT": "`shortcut`", "BRANCH": "`branch`",
    "OPTIONAL": "`?`", "SILU": "an activation", "GELU": "an activation",
    "HSWISH": "an activation", "HSIGMOID": "an activation", "LEAKY": "an activation",
    "EPS": "`epsE` (epsilon, e.g. `eps1e-3`)", "COUNTPAD": "`countpad`", "GATE": "`gate`",
    "AUX": "`aux`",
    "AS": "`as`", "INDEX": "a sequence number",
    "STRING": "a file name in quotes, `\"lib/resnet.ns\"`",
    "OUTPUT_PADDING": "`opN` (output padding)", "EPSILON": "`epsE` (epsilon)",
    "NEAREST": "`nearest`", "BILINEAR": "`bilinear`", "INPUT": "`input`",
    "_NEWLINE": "the end of the statement", "SEMICOLON": "the end of the statement",
    "$END": "the end of the statement",
}


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
        kw, count, *var, item = items
        return Repeat(count, item, span(kw, count), var[-1] if var else None)

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

    def split(self, items: list) -> Concat:
        kw, *branches = items
        return Concat(branches, pos_of(kw), split=True)

    def add(self, items: list) -> Concat:
        kw, *branches = items
        return Concat(branches, pos_of(kw), op="add")

    def mul(self, items: list) -> Concat:
        kw, *branches = items
        return Concat(branches, pos_of(kw), op="mul")

    def resize_mode(self, items: list[Token]) -> Token:
        return items[0]
    def gate(self, items: list) -> Gate:
        kw, body = items
        return Gate(body, pos_of(kw))

    def aux(self, items: list) -> Aux:
        kw, body = items
        return Aux(body, pos_of(kw))

    def branch(self, items: list) -> Node:
        return items[1]

    def block_def(self, items: list) -> BlockDef:
        kw, name, *params = items
        body = params.pop()
        return BlockDef(name, params, body, span(kw, name))

    def use(self, items: list[Token]) -> Use:
        kw, path = items
        return Use(path, span(kw, path))

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
    layernorm = _layer("layernorm")
    scale = _layer("scale")
    linear = _layer("linear")
    shuffle = _layer("shuffle")
    deconv = _layer("deconv")
    upsample = _layer("upsample")


# ---- parsing and syntax errors -------------------------------------------------------

@lru_cache(maxsize=1)
def _parser() -> Any:
    """The LALR parser, applying `_ToTree` as it parses (no parse tree is built)."""
    return build_parser(_ToTree())


_OPENERS, _CLOSERS = ";{[", ";}]"


def _statement_bounds(line: str, column: int) -> tuple[int, int]:
    """0-based [start, end) of the statement holding `column` (`;`, brackets delimit).

    A bracket closed before `column` belongs to the statement that opened it:
    in `residual { conv 3x3 x8 } project` the `project` is the residual's. A
    closer opened on an earlier line starts the statement after it (`} project`).
    """
    code = line.split("#", 1)[0]
    col = min(column - 1, len(code))
    starts: list[int] = []
    start = 0
    for i, ch in enumerate(code[:col]):
        if ch in "{[":
            starts.append(start)
            start = i + 1
        elif ch == ";":
            start = i + 1
        elif ch in "}]":
            start = starts.pop() if starts else i + 1
    ends = [i for i in (code.find(c, col) for c in _CLOSERS) if i >= 0]
    return start, min(ends, default=len(code))


def _blank_keeping_open_brackets(statement: str) -> str:
    """The statement as spaces, but for brackets it opens or closes without their pair."""
    keep, opened = set(), []
    for i, ch in enumerate(statement):
        if ch in "{[":
            opened.append(i)
        elif ch in "}]":
            if opened:
                opened.pop()
            else:
                keep.add(i)
    keep.update(opened)
    return "".join(ch if i in keep else " " for i, ch in enumerate(statement))


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
             for m in re.finditer(r"[A-Za-z_](?:[\w.$]|-(?=[\w$]))*|[^\s:(]+|[:(]", line[start:end])]
    if len(words) >= 2 and words[1][1] == ":":
        words = words[2:]
    err_col = err.column if err.column and err.column > 0 else 1
    if not words:
        found = line[err_col - 1:err_col] or "end of line"
        rep.error(Pos(line_no, err_col), f"unexpected `{found}`", SpecSyntaxError,
                  hint="a label is followed by a layer: `stem: conv 3x3 x32`"
                  if found == ":" else None)
        return line_no, start, end
    if _label_error(line, line_no, start, end, rep):
        return line_no, start, end
    col, keyword = words[0]
    blocks = _block_names(text)
    if keyword in blocks:
        rep.error(Pos(line_no, err_col), f"a call of block `{keyword}` takes its arguments in "
                                         f"parentheses", SpecSyntaxError,
                  hint=f"e.g. `{keyword}(64)` or `{keyword}(c=64)`")
        return line_no, start, end
    if keyword not in KEYWORDS and keyword not in _CONTINUING:
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


#: What the grammar accepts as a label: a NAME (`block$i-0`) or a sequence number.
_LABEL = re.compile(r"[A-Za-z_](\w|-(?=[\w$])|\$(?=[A-Za-z_]))*|\d+")


def _label_error(line: str, line_no: int, start: int, end: int, rep: Reporter) -> bool:
    """Report a statement whose label is the problem (`my.conv:`, `input:`); False if it is not."""
    m = re.match(r"\s*([^\s:;{}\[\]()]+)\s*:(?!\S*:)", line[start:end])
    if m is None:
        return False
    label, col = m.group(1), start + m.start(1) + 1
    rest = line[start + m.end():end].split()
    if not _LABEL.fullmatch(label):
        fixed = re.sub(r"^(?=[0-9])", "_", re.sub(r"[^\w-]|^-|-$", "_", label))
        rep.error(Pos(line_no, col, len(label)), f"`{label}` is not a valid label",
                  SpecSyntaxError, hint=f"a label is ASCII letters, digits and `_` (not starting "
                                        f"with a digit), `-` between parts, `$param` parts, or "
                                        f"a number: e.g. `{fixed}`")
    elif label == "input":
        rep.error(Pos(line_no, col, len(label)), "`input` is a keyword, not a label",
                  SpecSyntaxError, hint="choose another name for this layer")
    elif rest and rest[0] == "input":
        rep.error(Pos(line_no, col, len(label)), "the input takes no label: it is always "
                                                 "named `input`", SpecSyntaxError,
                  hint=f"write `{' '.join(rest)}`")
    else:
        return False
    return True


#: Words that go on a statement begun on an earlier line (`} project { … }`).
_CONTINUING = ("project", "shortcut", "branch")

_USAGE = {
    "input": "input HxWxC",
    "project": "residual { ... } project { ... }` or `project NAME: [ ... ]",
    "shortcut": "residual { ... } shortcut { ... }` or `shortcut NAME: [ ... ]",
    "branch": "branch { ... }`, `branch [ ... ]` or `branch NAME: [ ... ]",
    "conv": "conv FxF [sN] [pN|same|valid] [dN] [gN] [nobias] xK [ACTIVATION]",
    "pool": "pool [max|avg] F [sN] [pN|same|valid] [ceil] [countpad]` or "
            "`pool [max|avg] global` or `pool avg to HxW",
    "fc": "fc N [ACTIVATION]",
    "bn": "bn [epsE], e.g. `bn eps1e-3`",
    "leaky": "leaky [SLOPE], e.g. `leaky 0.1` (default 0.01)",
    "gate": "gate { ... }",
    "aux": "aux { ... }",
    "lrn": "lrn N [aALPHA] [bBETA] [kK]",
    "dropout": "dropout P, with 0 ≤ P < 1",
    "repeat": "repeat N { ... }` or `repeat N as j { ... }",
    "residual": "residual { ... } [project { ... } | shortcut { ... }]",
    "concat": "concat { branch { ... } branch { ... } }",
    "block": "block NAME(PARAM, PARAM=DEFAULT) { ... }",
    "use": "use \"PATH.ns\"",
    "layernorm": "layernorm [epsE], e.g. `layernorm eps1e-6`",
    "linear": "linear N [nobias] [relu|relu6|tanh|sigmoid|softmax]",
    "shuffle": "shuffle G, e.g. `shuffle 2`",
    "deconv": "deconv FxF [sN] [pN] [dN] [gN] [opN] [nobias] xK",
    "upsample": "upsample [nearest|bilinear] F` or `upsample [nearest|bilinear] to HxW|input|branch",
    "split": "split { branch { ... } branch { ... } }",
    "add": "add { branch { ... } branch { ... } }",
    "mul": "mul { branch { ... } branch { ... } }",
}


def _usage_hint(keyword: str) -> str | None:
    if keyword == "input":
        return f"the form is `{_USAGE[keyword]}`, e.g. `input 32x32x3`"
    return f"the form is `{_USAGE[keyword]}`" if keyword in _USAGE else \
        f"`{keyword}` takes no arguments; put the next layer on its own line or after `;`"


def _option_hint(word: str, keyword: str) -> str | None:
    """`stride=2` → `s2` and similar, or a near miss of an option keyword."""
    if keyword in ("conv", "pool"):
        for pattern, form, what in _OPTION_HINTS:
            m = re.match(pattern, word.lower())
            if m and (keyword == "conv" or form != "x{}"):
                return f"write {what} as `{form.format(m.group(1))}`"
    words = ["same", "valid", "nobias", "relu", "relu6", "tanh", "sigmoid", "softmax", "silu",
             "gelu", "hswish", "hsigmoid", "leaky"] + (
        ["max", "avg", "ceil", "global", "countpad", "to"] if keyword == "pool" else [])
    return did_you_mean(word, words)


#: After a syntax error the text is parsed again past it, to find the next one;
#: past this many characters parsed in all, the search stops.
PARSE_BUDGET = 4_000_000


def parse_tree(text: str, rep: Reporter) -> list[Node]:
    """Parse `text` into nodes; syntax errors go to `rep`, skipping their statement."""
    lines = text.split("\n")
    original = text
    parsed = 0   # characters parsed so far, over every retry
    reported: set[tuple[int, int]] = set()
    for _ in range(100):
        try:
            return _parser().parse(text)
        except UnexpectedInput as err:
            if (err.line, err.column) in reported:   # what blanking left there: a cascade
                return []
            reported.add((err.line, err.column))
            line_no, start, end = _syntax_error(err, lines, original, rep)
            parsed += getattr(err, "pos_in_stream", None) or len(text)
            if rep.full or parsed > PARSE_BUDGET:   # enough to act on: stop re-parsing
                rep.dropped += 1
                return []
            line = lines[line_no - 1] if line_no <= len(lines) else ""
            # blank the statement but keep the brackets it does not close itself, so that
            # the structure around it still parses
            blanked = line[:start] + _blank_keeping_open_brackets(line[start:end]) + line[end:]
            if blanked == line:
                return []
            lines[line_no - 1] = blanked
            text = "\n".join(lines)
    return []
