"""Blocks: their definitions (checked once), and calls (arguments bound to parameters,
the body built under the call's name with those values).

A mixin of the Builder (builder.py); a block call becomes an `Instance` of the IR tree
that keeps its parameters, so code generators write the block once and call it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..ir import tree as ir
from ..source.diagnostics import SpecError, did_you_mean
from ..syntax import tree as st
from ..syntax.words import Word
from .names import Names
from .syntax_errors import unknown_word_hint
from .values import Unresolved, resolve

if TYPE_CHECKING:
    from .builder import Builder

MAX_DEPTH = 32            # block calls within block calls
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")


class Calls:
    """Block definitions and calls (see the module's docstring)."""

    def define(self: Builder, nodes: list[st.Node]) -> list[tuple[str, str | None]]:
        """Check a library's block definitions only; return (name, file) of each block."""
        for node in nodes:
            self._define(node)   # type: ignore[arg-type]
        return [(name, block.pos.file) for name, block in self.blocks.items()]

    def _define(self: Builder, block: st.BlockDef) -> None:
        name = block.name.text
        if name in self.blocks:
            first = self.blocks[name].pos
            where = f"line {first.line}" if first.file == block.pos.file else \
                f"{first.file or self.rep.filename or 'the spec'}, line {first.line}"
            self.rep.error(block.name.pos, f"block `{name}` is defined twice (first in "
                                           f"{where})", SpecError,
                           hint="rename one of them" if first.file == block.pos.file else
                           "a spec and the libraries it uses share one set of block names")
            return
        seen: set[str] = set()
        for param, _ in block.params:
            if param.text in seen:
                self.rep.error(param.pos, f"parameter `{param.text}` of `{name}` is named twice",
                               SpecError)
            else:
                self._parameter_name(param, "a parameter", {})
            seen.add(param.text)
        self.blocks[name] = block

    def _parameter_name(self: Builder, word: Word, what: str, env: dict[str, int]) -> bool:
        """Whether `word` can name a parameter (or a repeat's counter); report why not."""
        if word.text in ("C", "H", "W"):
            self.rep.error(word.pos, f"`{word.text}` cannot name {what}: C, H and W "
                                     f"are the incoming shape", SpecError)
        elif not _IDENTIFIER.fullmatch(word.text):
            self.rep.error(word.pos, f"`{word.text}` cannot name {what}: use letters, digits "
                                     f"and `_` (no `-` or `$`)", SpecError)
        elif word.text in env:
            self.rep.error(word.pos, f"`{word.text}` cannot name {what}: it is already a "
                                     f"parameter here", SpecError, hint="choose another name")
        else:
            return True
        return False

    def _call(self: Builder, node: st.Call, scope: Names[int], env: dict[str, int],
              label: str | None) -> None:
        name = node.name.text
        block = self.blocks.get(name)
        if block is None:
            self.rep.error(node.name.pos, f"unknown layer or block `{name}`", SpecError,
                           hint=unknown_word_hint(name, list(self.blocks)))
            self.current = None
            return
        block.uses += 1
        if len(self.context) >= MAX_DEPTH:
            self.rep.error(node.pos, f"blocks call each other more than {MAX_DEPTH} deep "
                                     f"(is `{name}` recursive?)", SpecError)
            self.current = None
            return
        params = self._bind(block, node, env)
        if params is None:
            self.current = None
            return
        self._afford(block.body, 1, params, f"the call `{name}(...)`", node.pos)
        inner = scope.child(label, name, block.body.indexed)
        built = ir.Instance(name, params, inner.prefix,
                            ir.Seq(prefix=inner.prefix, indexed=block.body.indexed,
                                   syntax=block.body, env=params),
                            self.current, syntax=node, env=env)
        self._seq.items.append(built)
        where = f"{node.pos.file}, " if node.pos.file else ""
        self.context.append(f"in `{inner.prefix}` = {built.call}, {where}line {node.pos.line}")
        if block.pos.file not in self.rep.texts and block.source is not None:
            self.rep.add_source(block.pos.file, block.source)   # a reporter made after `use`
        shape = self.current.output_shape if self.current is not None else None
        self._block_inputs.append(shape[-1] if shape else None)
        self._open_values(block.body.body, f"the block instance `{inner.prefix}` = {built.call}")
        try:
            with self._inside(built.body):
                for child in block.body.body:
                    self.statement(child, inner, params)
        finally:
            self.context.pop()
            self._block_inputs.pop()
            self._close_values()

    def _bind(self: Builder, block: st.BlockDef, call: st.Call,
              env: dict[str, int]) -> dict[str, int] | None:
        """The call's parameters by name, or None after reporting why not."""
        names_ = [p.text for p, _ in block.params]
        values: dict[str, int | None] = {}
        ok = True
        for i, (key, value) in enumerate(call.args):
            target = key.text if key is not None else (names_[i] if i < len(names_) else None)
            where = (key or value).pos
            if target is None or target not in names_:
                hint = did_you_mean(key.text, names_) if key is not None else None
                count = f"{len(names_)} parameter{'s' if len(names_) != 1 else ''}"
                self.rep.error(where, f"`{block.name.text}` takes {count} ({', '.join(names_)})"
                               + (f", not `{key.text}`" if key is not None else
                                  f", not {len(call.args)}"), SpecError, hint=hint)
                ok = False
                continue
            if target in values:
                self.rep.error(where, f"parameter `{target}` given twice", SpecError)
                ok = False
            values[target] = self._int(value, env)
        for param, default in block.params if ok else ():
            if param.text not in values:
                if default is None:
                    self.rep.error(call.pos, f"`{block.name.text}` needs a value for "
                                             f"`{param.text}`", SpecError,
                                   hint=f"e.g. `{block.name.text}({param.text}=64)`")
                    ok = False
                else:
                    values[param.text] = self._int(default, {})
        if not ok or None in values.values():
            return None
        return values  # type: ignore[return-value]

    def _int(self: Builder, word: Word, env: dict[str, int]) -> int | None:
        try:
            return resolve(word, self._values(env), self.rep)[0]
        except Unresolved:
            return None
