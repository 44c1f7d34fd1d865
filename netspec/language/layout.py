"""What the printer keeps of how a spec was written: line breaks, blank lines, comments.

The grammar ignores comments; this module finds them in the text and gives each to
the statement it belongs to, as `netspec fmt` must keep every one where it was:

- a comment on a line of its own goes before the next statement of the same
  body (`Layout.leading`, with the blank lines around it), or, after the last
  statement of a bracketed body, before its closing bracket (`closing`);
- a comment after code belongs to what ends last on its line (the outermost
  statement, when several end there) — or, when a group written over several
  lines opens on that line after it, to that group's opening bracket
  (`open_comment`), as `residual {   # the body` — else to the statement that
  starts on the line.

It also records which statements share a line with the one before (`joined`).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..syntax.tree import (
    Assign,
    Aux,
    BlockDef,
    Gate,
    Group,
    Labeled,
    Merge,
    Node,
    Repeat,
    Residual,
    SpecFile,
)


def comment_start(line: str) -> int | None:
    """The index of the `#` that starts the line's comment (outside a "string"), or None."""
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"':
            quoted = not quoted
        elif ch == "#" and not quoted:
            return i
    return None


class _Lines:
    """The text's lines: which hold only a comment (or nothing), and the comments' text."""

    def __init__(self, text: str) -> None:
        self.lines = text.split("\n")
        self.comment: dict[int, str] = {}      # line → its comment, `# …`
        self.code_end: dict[int, int] = {}     # line → columns of code before the comment
        for n, line in enumerate(self.lines, 1):
            i = comment_start(line)
            code = line if i is None else line[:i]
            if i is not None:
                self.comment[n] = line[i:].rstrip()
            self.code_end[n] = len(code.rstrip())
        self.used: set[int] = set()

    def empty(self, n: int) -> bool:
        """No code on line n (a blank line, or only a comment, or only `;`)."""
        line = self.lines[n - 1]
        i = comment_start(line)
        return not (line if i is None else line[:i]).replace(";", "").strip()

    def between(self, after: int, before: int) -> list[str]:
        """The comment-only and blank lines strictly between two lines: each comment, and ""
        for a run of blank lines."""
        out: list[str] = []
        for n in range(after + 1, before):
            if not self.empty(n):
                continue
            if n in self.comment:
                self.used.add(n)
                out.append(self.comment[n])
            elif not out or out[-1] != "":
                out.append("")
        return out


def children(node: Node) -> Iterator[Node]:
    """The nodes directly inside `node`, in order."""
    if isinstance(node, (Labeled, Assign)):
        yield node.item
    elif isinstance(node, Group):
        yield from node.body
    elif isinstance(node, (Repeat,)):
        yield node.item
    elif isinstance(node, Residual):
        yield node.body
        if node.shortcut is not None:
            yield node.shortcut
    elif isinstance(node, Merge):
        yield from node.branches
    elif isinstance(node, (Gate, Aux, BlockDef)):
        yield node.body


def _walk(node: Node) -> Iterator[Node]:
    """`node` and everything inside it, outermost first (without recursion: a spec may
    nest deeper than Python recurses, and is refused for it only later, by the builder)."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(list(children(n))))


def _bodies(node: Node) -> Iterator[tuple[Node, list[Node]]]:
    """Every bracketed list of statements (group bodies, merge branches) inside `node`."""
    for n in _walk(node):
        if isinstance(n, Group):
            yield n, n.body
        elif isinstance(n, Merge):
            yield n, n.branches


def _opening(node: Node) -> tuple[int, int] | None:
    """(line, column) of the opening bracket of a group or merge written over several lines."""
    if isinstance(node, Group) and not node.inline:
        return node.pos.line, node.pos.column
    if isinstance(node, Merge) and not node.inline:
        return node.pos.line, node.pos.column + len(node.op)
    return None


def _lay_out(lines: _Lines, body: list[Node], start: int, stop: int | None,
             container: Group | Merge | SpecFile) -> None:
    """Layout of one body: statements between line `start` (its opening bracket, or 0) and
    line `stop` (its closing bracket; None for the file's end)."""
    prev_end = start
    for i, node in enumerate(body):
        node.layout.joined = i > 0 and node.pos.line == prev_end
        node.layout.leading = lines.between(prev_end, node.pos.line) if node.pos.line > prev_end \
            else []
        if i == 0:
            while node.layout.leading and node.layout.leading[0] == "":
                node.layout.leading.pop(0)   # no blank line opens a body
        prev_end = node.end.line
    last = stop if stop is not None else len(lines.lines) + 1
    if last > prev_end:
        closing = lines.between(prev_end, last)
        while closing and closing[0] == "":
            closing.pop(0)
        while closing and closing[-1] == "" and stop is not None:
            closing.pop()   # no blank line before a closing bracket
        container.closing = closing


def attach(nodes: list[Node], text: str) -> SpecFile:
    """The file's tree, with every statement's layout and every comment attached."""
    lines = _Lines(text)
    spec = SpecFile(nodes)
    _lay_out(lines, nodes, 0, None, spec)
    for node in nodes:
        for container, body in _bodies(node):
            closing = container.end.line
            _lay_out(lines, body, container.pos.line, closing, container)
    _trailing(lines, nodes, spec)
    return spec


def _trailing(lines: _Lines, nodes: list[Node], spec: SpecFile) -> None:
    """Give each comment after code to what ends (or opens) last on its line."""
    ends: dict[int, tuple[int, Node]] = {}     # line → (column, outermost node ending last)
    opens: dict[int, tuple[int, Node]] = {}    # line → (column, group opening last)
    starts: dict[int, Node] = {}               # line → outermost node starting there
    for top in nodes:
        for node in _walk(top):
            end = node.end
            if end is not None and (end.line not in ends or end.column > ends[end.line][0]):
                ends[end.line] = (end.column, node)
            opening = _opening(node)
            if opening is not None and (opening[0] not in opens or
                                        opening[1] > opens[opening[0]][0]):
                opens[opening[0]] = (opening[1], node)
            if node.pos is not None:
                starts.setdefault(node.pos.line, node)
    for n, comment in lines.comment.items():
        if n in lines.used or lines.empty(n):
            continue
        end, opened = ends.get(n), opens.get(n)
        if opened is not None and (end is None or opened[0] > end[0]):
            target = opened[1]
            target.open_comment = _join(target.open_comment, comment)   # type: ignore[union-attr]
            continue
        node = end[1] if end is not None else starts.get(n)
        if node is None:
            spec.closing.append(comment)
            continue
        node.layout.trailing = _join(node.layout.trailing, comment)


def _join(first: str | None, comment: str) -> str:
    """Two comments that land on one line (a repeat's item moved up to it): one comment."""
    return comment if first is None else f"{first}  {comment}"

