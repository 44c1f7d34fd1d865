"""Syntax errors that teach: the statement that broke, and a hint for the usual mistakes.

A syntax error names the statement it is in (`unexpected `stride=2` in `conv``),
with the statement's form, and `did you mean` for a near miss of a keyword, a
block or an option; words from other frameworks (`Dense`, `maxpool`) get their
netspec spelling. The layer keywords, their forms and their foreign names come
from the kinds' registry; the composition keywords are the language's own.
"""

from __future__ import annotations

import re

from ..kinds import registry
from ..source.diagnostics import Reporter, SpecSyntaxError, did_you_mean
from ..source.pos import Pos
from .grammar import UnexpectedInput, UnexpectedToken

#: The composition keywords, each with its form (the merging ones are the merge kinds':
#: registry.merge_usages).
COMPOSITION = {
    "repeat": "repeat N { ... }` or `repeat N as j { ... }",
    "residual": "residual { ... } [project { ... } | shortcut { ... }]",
    "block": "block NAME(PARAM, PARAM=DEFAULT) { ... }",
    "use": "use \"PATH.ns\"",
    "gate": "gate { ... }",
    "aux": "aux { ... }",
    "from": "from NAME",
}
#: Words that go on a statement begun on an earlier line (`} project { … }`), with their forms.
CONTINUING = {
    "project": "residual { ... } project { ... }` or `project NAME: [ ... ]",
    "shortcut": "residual { ... } shortcut { ... }` or `shortcut NAME: [ ... ]",
    "branch": "branch { ... }`, `branch [ ... ]` or `branch NAME: [ ... ]",
}
#: Composition in other frameworks' words, with netspec's spelling (the layer kinds say
#: their own: registry.foreign_words).
FOREIGN = {
    "def": "block", "for": "repeat", "loop": "repeat",
    "se": "gate { pool avg global; conv 1x1 xS relu; conv 1x1 x{C} sigmoid }",
}
#: Option words any layer statement may hold, for near misses (`sme` → `same`).
OPTION_WORDS = ("same", "valid", "nobias")

#: How to name each terminal in "expected ..." notes.
_EXPECTED = {
    "SIZE": "a size such as `3x3`", "STRIDE": "`sN` (stride)", "PADDING": "`pN` (padding)",
    "DILATION": "`dN` (dilation)", "GROUPS": "`gN` (groups)", "FILTERS": "`xK` (filters)",
    "NUMBER": "a number", "VALUE": "a number", "NAME": "a name", "COLON": "`:`",
    "SAME": "`same`", "VALID": "`valid`", "MAX": "`max`", "AVG": "`avg`",
    "GLOBAL": "`global`", "TO": "`to`", "CEIL": "`ceil`", "NOBIAS": "`nobias`",
    "LRN_OPTION": "an lrn option", "LBRACE": "`{`", "RBRACE": "`}`",
    "LSQB": "`[`", "RSQB": "`]`", "LPAR": "`(`", "RPAR": "`)`", "COMMA": "`,`",
    "EQUAL": "`=`", "PROJECT": "`project`", "SHORTCUT": "`shortcut`", "BRANCH": "`branch`",
    "OPTIONAL": "`?`", "EPS": "`epsE` (epsilon, e.g. `eps1e-3`)", "COUNTPAD": "`countpad`",
    "GATE": "`gate`", "AUX": "`aux`", "AS": "`as`", "INDEX": "a sequence number",
    "STRING": "a file name in quotes, `\"lib/resnet.ns\"`",
    "OUTPUT_PADDING": "`opN` (output padding)", "EPSILON": "`epsE` (epsilon)",
    "NEAREST": "`nearest`", "BILINEAR": "`bilinear`", "INPUT": "`input`",
    "WS": "`ws` (weight standardisation)", "GAIN": "`gain` (after `ws`)",
    "GAMMA": "`gammaG` (the gain's γ, e.g. `gamma1.7`)",
    "_NEWLINE": "the end of the statement", "SEMICOLON": "the end of the statement",
    "$END": "the end of the statement",
}
_CLOSERS = ";}]"


def _expected(terminal: str) -> str:
    """How an "expected ..." note names a terminal (an activation's keyword: an activation)."""
    kind = registry.reader(terminal.lower())
    if terminal not in _EXPECTED and kind is not None and kind.shorthand:
        return "an activation"
    return _EXPECTED.get(terminal, f"`{terminal.lower()}`")


def keywords() -> list[str]:
    """Every word that may start a statement."""
    return [*registry.keywords(), *COMPOSITION, *registry.merge_usages()]


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


def _block_names(text: str) -> list[str]:
    return re.findall(r"^\s*block\s+([A-Za-z_]\w*)", text, re.MULTILINE)


def unknown_word_hint(word: str, blocks: list[str]) -> str:
    """A hint for a statement that starts with an unknown word."""
    lower = word.lower()
    foreign = {**registry.foreign_words(), **FOREIGN}
    if lower in keywords():
        return f"keywords are lower case: `{lower}`"
    if lower in foreign:
        return f"netspec writes this as `{foreign[lower]}`"
    layers = registry.keywords()
    return did_you_mean(word, [*layers, *blocks]) or \
        f"a layer is one of: {', '.join(layers)}" + \
        (f"; blocks defined here: {', '.join(blocks)}" if blocks else "")


def syntax_error(err: UnexpectedInput, lines: list[str], text: str, rep: Reporter,
                 file: str | None) -> tuple[int, int, int]:
    """Report one syntax error; return (line, start, end) of the statement to skip."""
    line_no = err.line if err.line and err.line > 0 else len(lines)
    line = lines[line_no - 1] if line_no <= len(lines) else ""
    start, end = _statement_bounds(line, err.column if err.column and err.column > 0 else 1)
    words = [(m.start() + start + 1, m.group())
             for m in re.finditer(r"[A-Za-z_](?:[\w.$]|-(?=[\w$]))*|[^\s:(]+|[:(]", line[start:end])]
    if len(words) >= 2 and words[1][1] == ":":
        words = words[2:]
    if len(words) >= 2 and words[1][1] == "=":   # `name = statement`
        words = words[2:]
        if len(words) >= 2 and words[1][1] == ":":
            words = words[2:]
    err_col = err.column if err.column and err.column > 0 else 1
    if not words:
        found = line[err_col - 1:err_col] or "end of line"
        rep.error(Pos(line_no, err_col, 1, file), f"unexpected `{found}`", SpecSyntaxError,
                  hint="a label is followed by a layer: `stem: conv 3x3 x32`"
                  if found == ":" else None)
        return line_no, start, end
    if _label_error(line, line_no, start, end, rep, file):
        return line_no, start, end
    col, keyword = words[0]
    blocks = _block_names(text)
    if keyword in blocks:
        rep.error(Pos(line_no, err_col, 1, file), f"a call of block `{keyword}` takes its "
                                                  f"arguments in parentheses", SpecSyntaxError,
                  hint=f"e.g. `{keyword}(64)` or `{keyword}(c=64)`")
        return line_no, start, end
    if keyword not in keywords() and keyword not in CONTINUING:
        rep.error(Pos(line_no, col, len(keyword), file), f"unknown layer `{keyword}`",
                  SpecSyntaxError, hint=unknown_word_hint(keyword, blocks))
        return line_no, start, end
    expected = sorted({_expected(t) for t in getattr(err, "expected", ())
                       if not t.startswith("__")})
    token = err.token if isinstance(err, UnexpectedToken) else None
    if token is not None and token.type in ("_NEWLINE", "SEMICOLON", "$END"):
        if keyword == "from":
            expected = ["a name"]
        rep.error(Pos(line_no, col, len(line[start:end].rstrip()) - (col - start - 1), file),
                  f"incomplete `{keyword}`: expected {' or '.join(expected) or 'more'}",
                  SpecSyntaxError, hint=_usage_hint(keyword))
        return line_no, start, end
    word = re.match(r"\S*", line[err_col - 1:]).group() or line[err_col - 1:err_col]
    hint = _option_hint(word, keyword) or _usage_hint(keyword)
    if keyword in registry.merge_usages() and line[col - 1 + len(keyword):].lstrip()[:1] == "(":
        kind = registry.BY_MERGE_STATEMENT[keyword]
        names = "NAME, NAME" if kind.branch_counts[1] == 2 else "NAME, NAME, ..."
        hint = f"a join of named values is `{keyword}({names})`; a name is letters, digits, " \
               f"`_`, `-` between parts and `$param` parts"
    elif keyword == "from":
        hint = "the form is `from NAME`; a name is letters, digits, `_`, `-` between parts " \
               "and `$param` parts"
    rep.error(Pos(line_no, err_col, len(word), file), f"unexpected `{word}` in `{keyword}`",
              SpecSyntaxError, notes=(f"expected {', '.join(expected)}",) if expected else (),
              hint=hint)
    return line_no, start, end


#: What the grammar accepts as a label: a NAME (`block$i-0`) or a sequence number.
_LABEL = re.compile(r"[A-Za-z_](\w|-(?=[\w$])|\$(?=[A-Za-z_]))*|\d+")


def _label_error(line: str, line_no: int, start: int, end: int, rep: Reporter,
                 file: str | None) -> bool:
    """Report a statement whose label is the problem (`my.conv:`, `input:`); False if it is not."""
    m = re.match(r"\s*([^\s:;{}\[\]()]+)\s*:(?!\S*:)", line[start:end])
    if m is None:
        return False
    label, col = m.group(1), start + m.start(1) + 1
    rest = line[start + m.end():end].split()
    where = Pos(line_no, col, len(label), file)
    if not _LABEL.fullmatch(label):
        fixed = re.sub(r"^(?=[0-9])", "_", re.sub(r"[^\w-]|^-|-$", "_", label))
        rep.error(where, f"`{label}` is not a valid label", SpecSyntaxError,
                  hint=f"a label is ASCII letters, digits and `_` (not starting with a digit), "
                       f"`-` between parts, `$param` parts, or a number: e.g. `{fixed}`")
    elif label == "input":
        rep.error(where, "`input` is a keyword, not a label", SpecSyntaxError,
                  hint="choose another name for this layer")
    elif rest and rest[0] == "input":
        rep.error(where, "the input takes no label: it is always named `input`",
                  SpecSyntaxError, hint=f"write `{' '.join(rest)}`")
    else:
        return False
    return True


def _usage_hint(keyword: str) -> str | None:
    form = COMPOSITION.get(keyword) or registry.merge_usages().get(keyword) or \
        CONTINUING.get(keyword) or registry.usage(keyword)
    return f"the form is `{form}`" if form else \
        f"`{keyword}` takes no arguments; put the next layer on its own line or after `;`"


def _option_hint(word: str, keyword: str) -> str | None:
    """`stride=2` → `s2` and similar, or a near miss of an option keyword."""
    kind = registry.reader(keyword)
    for pattern, form, what in getattr(kind, "option_spellings", ()):
        m = re.match(pattern, word.lower())
        if m:
            return f"write {what} as `{form.format(m.group(1))}`"
    words = [*OPTION_WORDS, *registry.shorthand_keywords(), *getattr(kind, "option_words", ())]
    return did_you_mean(word, words)
