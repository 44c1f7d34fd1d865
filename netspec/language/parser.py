"""From text to the spec tree (netspec.syntax.tree).

The grammar (grammar/netspec.lark) decides the form of each statement; the
transformer below turns each rule into a tree node as Lark parses (no parse tree
is built), every token into a `Word` that knows its file, line and column, so
Lark's objects never leave this module. A layer rule becomes a `LayerStmt`
whatever its kind: the kinds' registry says which rules are layers, so a new
kind needs its grammar rule and nothing here.

After parsing, `layout.attach` records what the printer keeps: which statements
share a line, blank lines, one-line groups, and every comment at the statement it
belongs to. A syntax error becomes a diagnostic (syntax_errors.py), and parsing
resumes after the broken statement, so that one run reports every error.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

from ..kinds import registry
from ..source.diagnostics import Reporter
from ..source.pos import Pos
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
from .grammar import Token, Transformer, Tree, UnexpectedInput, build_parser
from .layout import attach
from .syntax_errors import syntax_error


class _ToTree(Transformer):
    """One method per composition rule; every layer rule goes to `__default__`."""

    file: str | None = None   # the file being parsed (None: the spec), set per parse
    text = ""                 # the text being parsed, set per parse

    def word(self, tok: Token) -> Word:
        return Word(tok.type, str(tok), Pos(tok.line, tok.column, max(1, len(tok)), self.file),
                    tok.start_pos, tok.end_pos)

    def words(self, items: list) -> list:
        return [self.word(t) if isinstance(t, Token) else t for t in items]

    def span(self, first: Word, last: Word) -> Pos:
        """From the start of `first` to the end of `last` (on one line)."""
        length = last.end - first.start if first.pos.line == last.pos.line else len(first.text)
        return Pos(first.pos.line, first.pos.column, max(1, length), self.file)

    @staticmethod
    def _end(item: Any) -> Pos | None:
        return item.pos if isinstance(item, Word) else item.end

    def __default__(self, data: Any, children: list, meta: Any) -> LayerStmt | Tree:
        rule = str(data)
        if rule not in registry.RULES:   # an inlined rule (`_sep`): Lark expands its tree
            return Tree(data, children, meta)
        items = self.words(children)
        act = items.pop() if items and isinstance(items[-1], LayerStmt) else None
        return LayerStmt(items[0].pos, rule, items, act, end=self._end(act or items[-1]))

    def start(self, items: list) -> list[Node]:
        return items

    def statement(self, items: list) -> Node:
        *prefix, node = items
        if prefix and isinstance(prefix[-1], Token):
            label = self.word(prefix.pop())
            node = Labeled(label.pos, label, node, end=node.end)
        if prefix:   # `name = item`
            name = prefix[0]
            node = Assign(name.pos, name, node, end=node.end)
        return node

    def assign(self, items: list[Token]) -> Word:
        return self.word(items[0])

    def join(self, items: list) -> Join:
        """`concat(a, b)`: the keyword, then the names it reads."""
        kw, *refs = self.words(items)
        pos = self.span(kw, refs[-1])
        closing = self.text.find(")", refs[-1].end)   # the span takes in the `)`
        if pos.line == refs[-1].pos.line and "\n" not in self.text[refs[-1].end:closing]:
            pos = Pos(pos.line, pos.column, closing + 1 - kw.start, self.file)
        return Join(pos, kw.text, refs, end=refs[-1].pos)

    def _group(self, items: list, indexed: bool) -> Group:
        opening, *body, closing = self.words(items)
        return Group(opening.pos, body, indexed, inline=opening.pos.line == closing.pos.line,
                     end=closing.pos)

    def group(self, items: list) -> Group:
        return self._group(items, False)

    def seq(self, items: list) -> Group:
        return self._group(items, True)

    def repeat(self, items: list) -> Repeat:
        kw, count, *var, item = items
        kw, count = self.word(kw), self.word(count)
        return Repeat(self.span(kw, count), count, item, self.word(var[-1]) if var else None,
                      end=item.end)

    def residual(self, items: list) -> Residual:
        kw, *rest = items
        kw = self.word(kw)
        optional = bool(rest) and isinstance(rest[0], Token) and rest[0].type == "OPTIONAL"
        if optional:
            rest = rest[1:]
        body = rest[0]
        kind, shortcut = (str(rest[1]), rest[2]) if len(rest) == 3 else (None, None)
        return Residual(kw.pos, body, optional, kind, shortcut, end=(shortcut or body).end)

    def label(self, items: list[Token]) -> Token:
        return items[0]

    def shortcut_kind(self, items: list[Token]) -> Token:
        return items[0]

    def labeled_group(self, items: list) -> Node:
        if len(items) == 2:
            label = self.word(items[0])
            return Labeled(label.pos, label, items[1], end=items[1].end)
        return items[0]

    def merge(self, items: list) -> Merge:
        """`concat`, `split`, `add` or `mul { branch … }`: the keyword names the merge;
        `split N,N { … }`'s run sizes are a word."""
        kw, *rest, closing = self.words(items)
        runs = rest.pop(0) if isinstance(rest[0], Word) and rest[0].type == "RUNS" else None
        opening, *branches = rest
        return Merge(kw.pos, kw.text, branches, inline=opening.pos.line == closing.pos.line,
                     end=closing.pos, runs=runs)

    concat = split = add = mul = merge

    def branch(self, items: list) -> Node:
        return items[1]

    def from_(self, items: list[Token]) -> From:
        kw, ref = self.words(items)
        return From(self.span(kw, ref), ref, end=ref.pos)

    def gate(self, items: list) -> Gate:
        kw, body = items
        return Gate(self.word(kw).pos, body, end=body.end)

    def aux(self, items: list) -> Aux:
        kw, body = items
        return Aux(self.word(kw).pos, body, end=body.end)

    def block_def(self, items: list) -> BlockDef:
        kw, name, *params = items
        body = params.pop()
        kw, name = self.word(kw), self.word(name)
        return BlockDef(self.span(kw, name), name, params, body, end=body.end)

    def use(self, items: list[Token]) -> Use:
        kw, path = self.words(items)
        return Use(self.span(kw, path), path, end=path.pos)

    def param(self, items: list[Token]) -> tuple[Word, Word | None]:
        return self.word(items[0]), (self.word(items[1]) if len(items) > 1 else None)

    def call(self, items: list) -> Call:
        name, *args = items
        name = self.word(name)
        end = args[-1][1].pos if args else name.pos
        return Call(name.pos, name, args, end=end)

    def arg(self, items: list[Token]) -> tuple[Word | None, Word]:
        return (self.word(items[0]), self.word(items[1])) if len(items) == 2 \
            else (None, self.word(items[0]))

    def pool_mode(self, items: list[Token]) -> Token:
        return items[0]

    def resize_mode(self, items: list[Token]) -> Token:
        return items[0]

    def padmode(self, items: list[Token]) -> Token:
        return items[0]


setattr(_ToTree, "from", _ToTree.from_)   # the rule `from`, a Python keyword


@lru_cache(maxsize=1)
def _parser() -> tuple[Any, _ToTree]:
    """The LALR parser, applying its `_ToTree` as it parses (no parse tree is built)."""
    to_tree = _ToTree()
    return build_parser(to_tree), to_tree


_LOCK = threading.Lock()   # the transformer knows the file being parsed


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


#: After a syntax error the text is parsed again past it, to find the next one;
#: past this many characters parsed in all, the search stops.
PARSE_BUDGET = 4_000_000


def parse_tree(text: str, rep: Reporter, file: str | None = None) -> SpecFile:
    """Parse `text` (the spec, or library `file`) into its tree; syntax errors go to `rep`,
    each skipping its statement. With errors, the tree is empty."""
    lines = text.split("\n")
    original = text
    parsed = 0   # characters parsed so far, over every retry
    reported: set[tuple[int, int]] = set()
    parser, to_tree = _parser()
    for _ in range(100):
        try:
            with _LOCK:
                to_tree.file, to_tree.text = file, text
                nodes = parser.parse(text)
            return attach(nodes, original)
        except UnexpectedInput as err:
            if (err.line, err.column) in reported:   # what blanking left there: a cascade
                return SpecFile([])
            reported.add((err.line, err.column))
            line_no, start, end = syntax_error(err, lines, original, rep, file)
            parsed += getattr(err, "pos_in_stream", None) or len(text)
            if rep.full or parsed > PARSE_BUDGET:   # enough to act on: stop re-parsing
                rep.dropped += 1
                return SpecFile([])
            line = lines[line_no - 1] if line_no <= len(lines) else ""
            # blank the statement but keep the brackets it does not close itself, so that
            # the structure around it still parses
            blanked = line[:start] + _blank_keeping_open_brackets(line[start:end]) + line[end:]
            if blanked == line:
                return SpecFile([])
            lines[line_no - 1] = blanked
            text = "\n".join(lines)
    return SpecFile([])
