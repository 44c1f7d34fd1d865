"""Step 4 of writing a spec: the statement tree as a spec tree, laid out to be read.

The named statement tree (naming.py), its blocks and repeats (blocks.py) become the
spec tree the parser would make (netspec.syntax.tree), which the one printer writes
(`netspec fmt`'s). Only the layout is decided here, as a person would write it: a
group stays on one line when it fits in `WIDTH` columns, and a layer that reads as
part of the statement before it (`bn`, an activation: `Layer.joins_line`) shares
its line where that line stays short.
"""

from __future__ import annotations

from typing import Any, Callable

from ...kinds import Chunk, Input
from ...kinds.registry import BY_KEYWORD
from ...language.printer import INDENT, Printer
from ...syntax.tree import (
    Assign, BlockDef, Call, From, Gate, Group, Join, Labeled, LayerStmt, Layout, Merge, Node,
    Repeat, Residual, SpecFile,
)
from ...syntax.words import Word
from ..onnx.reader import Imported, Num
from .blocks import joins_line, make_blocks, param_values, repeats
from .naming import (
    BlockS, CallS, CatS, FromS, GateS, GroupS, JoinS, LayerS, Namer, RepeatS, ResS, TapS,
    build_order,
)
from .dag import structure
from .values import name_values

#: The columns a group written on one line may take (its indentation included).
WIDTH = 76
#: A layer joins the line before it while that line stays shorter than this.
JOINED_WIDTH = 72

#: How a number of the statement tree is written: its text, or None to leave it out.
Numbers = Callable[[Num], "str | None"]


def _word(text: str) -> Word:
    return Word("WORD", text)


def _as_written(n: Num) -> str | None:
    """A number outside blocks: written unless it is its default."""
    return None if n.value == n.default else n.text()


def _one_line(node: Node) -> str | None:
    """The node printed on one line, or None when it takes several."""
    lines = Printer().statement(node, 0)
    return lines[0].text if len(lines) == 1 else None


class _Writer:
    """Converts statements, deciding each group's layout bottom-up at its indentation."""

    def __init__(self, numbers: Numbers, in_block: bool = False) -> None:
        self.numbers = numbers
        self.in_block = in_block

    # ---- statements --------------------------------------------------------------
    def statement(self, node: Any, level: int) -> Node:
        if isinstance(node, LayerS):
            return self._labelled(node.label, self.layer(node.layer))
        if isinstance(node, GroupS):
            if node.call is not None:
                return self._labelled(node.call.label, self.call(node.call))
            return self._labelled(node.label, self.group(node.body, node.indexed, level,
                                                         _prefix(node.label)))
        if isinstance(node, CallS):
            return self._labelled(node.label, self.call(node))
        if isinstance(node, RepeatS):
            count = self.numbers(Num("", node.count, None, "n")) or str(node.count)
            head = f"repeat {count} "
            item = self.statement(node.item, level)
            self._fit(item, level, len(head))
            return Repeat(None, _word(count), item)
        if isinstance(node, ResS):
            return self.residual(node, level)
        if isinstance(node, GateS):
            body = self.group(node.body.body, False, level, _prefix(node.body.label) + "gate ")
            return self._labelled(node.body.label, Gate(None, body))
        if isinstance(node, CatS):
            return self._labelled(node.label, self.merge(node, level))
        if isinstance(node, JoinS):
            return self._labelled(node.label, Join(None, node.layer.kind,
                                                   [_word(n) for n in node.names]))
        if isinstance(node, FromS):
            return From(None, _word(node.name))
        if isinstance(node, TapS):
            return Assign(None, _word(node.name), Group(None, [], False))
        raise TypeError(node)

    def layer(self, layer: Imported) -> LayerStmt:
        words = []
        for w in layer.words:
            text = self.numbers(w) if isinstance(w, Num) else w
            if text:
                words.append(_word(text))
        return LayerStmt(None, BY_KEYWORD[layer.words[0]].rule or "", words)

    def call(self, call: CallS) -> Call:
        """`basic(128, s=2)`: outside blocks, parameters without a default by position and
        the others by name where not the default; inside, every argument by name."""
        args: list[tuple[Word | None, Word]] = []
        for (name, default), value in zip(call.block.params, param_values(call)):
            text = self.numbers(Num("", value, default, name))
            if text is None:
                continue
            positional = default is None and not self.in_block
            args.append((None if positional else _word(name), _word(text)))
        return Call(None, _word(call.block.name), args)

    def group(self, body: list[Any], indexed: bool, level: int, prefix: str) -> Group:
        """`{ … }` or `[ … ]`: its statements, on one line when that fits after `prefix`."""
        nodes: list[Node] = []
        line = 0   # the length of the current line of the group written over lines
        for stmt in repeats(body):
            node = self.statement(stmt, level + 1)
            text = _one_line(node)
            joined = bool(nodes) and joins_line(stmt) and text is not None and line and \
                line + len(text) + len(INDENT) * level < JOINED_WIDTH
            node.layout = Layout(joined=joined)
            line = (line + 2 + len(text) if joined else len(text)) if text is not None else 0
            nodes.append(node)
        group = Group(None, nodes, indexed)
        self._fit(group, level, len(prefix))
        return group

    def residual(self, node: ResS, level: int) -> Residual:
        head = "residual? " if node.optional else "residual "
        body = self.group(node.body, False, level, head)
        shortcut = None
        if node.shortcut is not None:
            label = node.shortcut.label
            after = f"{node.kind} {_prefix(label)}"
            before = f"{head}{_one_line(body)} " if body.inline else "} "
            group = self.group(node.shortcut.body, node.shortcut.indexed, level, before + after)
            if body.inline and not group.inline and \
                    len(INDENT) * level + len(before + after) + 1 > WIDTH:
                # `residual { … } project NAME: {` would overflow: the body over lines
                body.inline = False
                self._fit(group, level, len("} " + after))
            shortcut = self._labelled(label, group)
        return Residual(None, body, node.optional, node.kind, shortcut)

    def merge(self, node: CatS, level: int) -> Merge:
        op = Chunk.MADE_BY if node.chunks else node.concat.kind
        branches = [self._labelled(b.label, self.group(b.body, b.indexed, level + 1,
                                                       "branch " + _prefix(b.label)))
                    for b in node.branches]
        runs = node.chunks[0].runs if node.chunks else ()
        merge = Merge(None, op, branches,
                      runs=Word("RUNS", ",".join(map(str, runs))) if runs else None)
        self._fit(merge, level, len(_prefix(node.label)))
        return merge

    # ---- layout ----------------------------------------------------------------------
    @staticmethod
    def _labelled(label: str | None, node: Node) -> Node:
        return Labeled(None, _word(label), node) if label else node

    @staticmethod
    def _fit(node: Node, level: int, prefix: int) -> None:
        """Keep `node`'s own brackets on one line only if the line fits in WIDTH."""
        target = node.item if isinstance(node, Labeled) else node
        if not isinstance(target, (Group, Merge)):
            return
        target.inline = True
        text = _one_line(node)
        target.inline = text is not None and len(INDENT) * level + prefix + len(text) <= WIDTH


def _prefix(label: str | None) -> str:
    return f"{label}: " if label else ""


def _block(block: BlockS) -> BlockDef:
    """`block NAME(params) { … }`: written from its model member, each number of the
    template either a parameter (`$c`) or the one value all members have."""
    if block.model is None:
        raise ValueError(f"block {block.name}: no member has every part of it")
    slots = iter(block.slots)

    def numbers(n: Num) -> str | None:
        slot = next(slots)
        if isinstance(slot, str):
            return f"{n.prefix}${slot}"
        return None if slot.value == slot.default else f"{n.prefix}{slot.value}"

    params = ", ".join(f"{p}={d}" if d is not None else p for p, d in block.params)
    writer = _Writer(numbers, in_block=True)
    body = writer.group(block.model.body, block.indexed, 0, f"block {block.name}({params}) ")
    return BlockDef(None, _word(block.name),
                    [(_word(p), _word(str(d)) if d is not None else None)
                     for p, d in block.params], body)


def write_spec(name: str, input_shape: tuple[int, ...], layers: list[Imported], output: str,
               source: str, keep_names: bool = True) -> tuple[SpecFile, list[Imported]]:
    """The spec tree for the imported layers, and the layers in the order it builds them.

    The tree is not checked here; `netspec.importer.import_onnx` prints and parses it,
    and compares. Raises NameClash where the layers' names cannot be kept.
    """
    items = structure(layers, output, input_shape)
    top = Namer(keep_names, layers).scope(items, [], False)
    values = name_values(top, layers)
    blocks = [_block(b) for b in make_blocks(top, values)]
    keyword = Input.keywords[0]
    first = LayerStmt(None, Input.rule or "", [_word(keyword),
                                               _word("x".join(map(str, input_shape)))])
    writer = _Writer(_as_written)
    body: list[Node] = [*blocks, first]
    line = len(_one_line(first) or "")
    previous: Any = None
    for stmt in repeats(top):
        node = writer.statement(stmt, 0)
        text = _one_line(node)
        joined = joins_line(stmt) and isinstance(previous, LayerS) and text is not None and \
            line + len(text) < JOINED_WIDTH - 2
        node.layout = Layout(joined=joined)
        line = (line + 2 + len(text) if joined else len(text)) if text is not None else 0
        body.append(node)
        previous = stmt
    body[0].layout.leading = [f"# {name}: imported by netspec from {source}"]
    return SpecFile(body), build_order(top)

