"""The one printer: any spec tree as text, in netspec's one canonical layout.

`netspec fmt` prints what the parser read; the ONNX importer prints what it built.
The layout has no options (as gofmt and black):

- one space between the words of a statement, `; ` between statements that share a
  line, `: ` after a label, ` = ` after a value's name, `, ` between a call's arguments
  and a join's names (`concat(a, b)`), `=` without spaces in a call;
- numbers as written, and expressions spaced one way (`{c//4 + 7}`, `{s if j == 0 else 1}`);
- four spaces of indentation per bracket level; a group written on one line stays on
  one line (`{ conv 3x3 p1 x64; bn; relu }`), any other opens on the line of its
  statement, holds one statement line per line, and closes on a line of its own;
- the line breaks between statements are the author's, blank lines at most one at a
  time and none just inside a bracket;
- every comment where it was: a comment line before the statement it preceded, a
  comment after code after the same statement; the comments after code on
  consecutive lines start in one column, two spaces after the longest line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..syntax.tree import (
    Assign,
    Aux,
    BlockDef,
    Call,
    From,
    Gate,
    Group,
    Join,
    Labeled,
    LayerStmt,
    Merge,
    Node,
    Repeat,
    Residual,
    SpecFile,
    Use,
)
from ..syntax.words import Word

INDENT = "    "


@dataclass
class _Line:
    """One printed line: its indentation level, its code, the comments after it."""

    level: int
    text: str
    comments: list[str] = field(default_factory=list)


def _prefixed(prefix: str, lines: list[_Line]) -> list[_Line]:
    """`lines` with `prefix` before the first one's text."""
    lines[0].text = prefix + lines[0].text
    return lines


def _then(lines: list[_Line], suffix: list[_Line], sep: str = " ") -> list[_Line]:
    """`lines`, with the first of `suffix` continuing the last of them after `sep`."""
    last, (first, *rest) = lines[-1], suffix
    last.text += sep + first.text
    last.comments += first.comments
    return [*lines, *rest]


def words_text(words: list[Word]) -> str:
    """Words spelt canonically, one space apart."""
    return " ".join(w.canonical() for w in words)


def _layer(node: LayerStmt) -> str:
    text = words_text(node.words)
    return f"{text} {_layer(node.act)}" if node.act is not None else text


def _commented(node: Node) -> bool:
    """Whether `node` or anything inside it carries a comment (it cannot go on one line)."""
    if node.layout.leading or node.layout.trailing:
        return True
    if isinstance(node, (Group, Merge)) and (node.open_comment or node.closing):
        return True
    return any(_commented(c) for c in _inner(node))


def _inner(node: Node) -> list[Node]:
    if isinstance(node, (Labeled, Assign)):
        return [node.item]
    if isinstance(node, Group):
        return node.body
    if isinstance(node, Repeat):
        return [node.item]
    if isinstance(node, Residual):
        return [node.body] + ([node.shortcut] if node.shortcut is not None else [])
    if isinstance(node, Merge):
        return node.branches
    if isinstance(node, (Gate, Aux, BlockDef)):
        return [node.body]
    return []


class Printer:
    """Prints spec trees; `text` is the entry point."""

    def text(self, spec: SpecFile) -> str:
        """The whole file, ending in one newline (empty for an empty file)."""
        lines = self.body(spec.body, 0)
        lines += [_Line(0, c) for c in spec.closing]
        while lines and not lines[0].text and not lines[0].comments:
            lines.pop(0)
        return _assemble(lines)

    # ---- bodies and statements ----------------------------------------------------------
    def body(self, nodes: list[Node], level: int, sep: str = "; ") -> list[_Line]:
        """Statements one per line, or `sep`-joined where the author joined them."""
        out: list[_Line] = []
        for node in nodes:
            for entry in node.layout.leading:
                out.append(_Line(level, entry) if entry else _Line(0, ""))
            lines = self.statement(node, level)
            if node.layout.joined and out and out[-1].text and not out[-1].comments:
                out = _then(out, lines, sep)
            else:
                out += lines
        return out

    def statement(self, node: Node, level: int) -> list[_Line]:
        """One statement (with its trailing comment), as one or more lines."""
        lines = self._statement(node, level)
        if node.layout.trailing:
            lines[-1].comments.append(node.layout.trailing)
        return lines

    def _statement(self, node: Node, level: int) -> list[_Line]:
        if isinstance(node, LayerStmt):
            return [_Line(level, _layer(node))]
        if isinstance(node, Labeled):
            return _prefixed(f"{node.label.text}: ", self._statement(node.item, level))
        if isinstance(node, Assign):
            return _prefixed(f"{node.name.text} = ", self._statement(node.item, level))
        if isinstance(node, Join):
            return [_Line(level, f"{node.op}({', '.join(r.text for r in node.refs)})")]
        if isinstance(node, From):
            return [_Line(level, f"from {node.ref.text}")]
        if isinstance(node, Group):
            return self.group(node, level)
        if isinstance(node, Repeat):
            head = f"repeat {node.count.canonical()}" + \
                (f" as {node.var.text}" if node.var is not None else "")
            return _prefixed(head + " ", self.statement(node.item, level))
        if isinstance(node, Residual):
            lines = _prefixed("residual" + ("?" if node.optional else "") + " ",
                              self.group(node.body, level))
            if node.shortcut is not None:
                lines = _then(lines, _prefixed(f"{node.shortcut_kind} ",
                                               self.statement(node.shortcut, level)))
            return lines
        if isinstance(node, Merge):
            return self.merge(node, level)
        if isinstance(node, Gate):
            return _prefixed("gate ", self.group(node.body, level))
        if isinstance(node, Aux):
            return _prefixed("aux ", self.group(node.body, level))
        if isinstance(node, Call):
            return [_Line(level, call_text(node))]
        if isinstance(node, BlockDef):
            params = ", ".join(p.text + (f"={d.canonical()}" if d is not None else "")
                               for p, d in node.params)
            return _prefixed(f"block {node.name.text}({params}) ", self.group(node.body, level))
        if isinstance(node, Use):
            return [_Line(level, f"use {node.path.text}")]
        raise TypeError(f"not a statement: {node!r}")

    def group(self, node: Group, level: int) -> list[_Line]:
        """`{ a; b }` on one line, or over several lines as it was written."""
        opening, closing = ("[", "]") if node.indexed else ("{", "}")
        if not node.body and not node.closing and not node.open_comment:
            return [_Line(level, opening + closing)]
        if node.inline and not any(_commented(n) for n in node.body) and not node.closing:
            inner = [self.statement(n, level) for n in node.body]
            if all(len(lines) == 1 for lines in inner):
                return [_Line(level, f"{opening} " + "; ".join(x[0].text for x in inner)
                              + f" {closing}")]
        first = _Line(level, opening, [node.open_comment] if node.open_comment else [])
        body = self.body(node.body, level + 1)
        body += [_Line(level + 1, c) if c else _Line(0, "") for c in node.closing]
        return [first, *body, _Line(level, closing)]

    def merge(self, node: Merge, level: int) -> list[_Line]:
        """`concat { branch … branch … }` on one line, or a branch per line."""
        branches = [_prefixed("branch ", self.statement(b, level + 1)) for b in node.branches]
        head = node.op if node.runs is None else f"{node.op} {node.runs.canonical()}"
        if node.inline and not any(_commented(b) for b in node.branches) and \
                not node.closing and all(len(x) == 1 for x in branches):
            return [_Line(level, f"{head} {{ " + " ".join(x[0].text for x in branches)
                          + " }")]
        out = [_Line(level, f"{head} {{", [node.open_comment] if node.open_comment else [])]
        for branch, lines in zip(node.branches, branches):
            for entry in branch.layout.leading:
                out.append(_Line(level + 1, entry) if entry else _Line(0, ""))
            if branch.layout.joined and len(out) > 1 and not out[-1].comments:
                out = _then(out, lines)
            else:
                out += lines
        out += [_Line(level + 1, c) if c else _Line(0, "") for c in node.closing]
        return [*out, _Line(level, "}")]


def call_text(node: Call) -> str:
    """`basic(64, s=2)`; a call without arguments is its name alone."""
    if not node.args:
        return node.name.text
    args = ", ".join((f"{k.text}=" if k is not None else "") + v.canonical()
                     for k, v in node.args)
    return f"{node.name.text}({args})"


def _assemble(lines: list[_Line]) -> str:
    """The lines as text: comments after code aligned in runs of consecutive lines."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        if not (lines[i].comments and lines[i].text):
            line = lines[i]
            code = INDENT * line.level + line.text if line.text else ""
            comment = "  ".join(line.comments)
            out.append(INDENT * line.level + comment if not line.text and comment else code)
            i += 1
            continue
        j = i
        while j < len(lines) and lines[j].comments and lines[j].text:
            j += 1
        run = lines[i:j]
        width = max(len(INDENT * x.level + x.text) for x in run) + 2
        for x in run:
            code = INDENT * x.level + x.text
            out.append(code.ljust(width) + "  ".join(x.comments))
        i = j
    while out and not out[-1]:
        out.pop()
    text = "\n".join(line.rstrip() for line in out)
    return text + "\n" if text else ""


def print_spec(spec: SpecFile) -> str:
    """`spec` as text in the canonical layout."""
    return Printer().text(spec)
