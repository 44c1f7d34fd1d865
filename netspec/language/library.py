"""`use "lib/resnet.ns"`: blocks that specs share, read from library files.

A library is a spec file that holds only `block` definitions and `use`
statements. `use` names it by a path relative to the file that says `use`
(for a spec read from stdin, relative to the working directory); the path must
be relative and end in `.ns`, so a spec can only pull in other specs, never
show lines of an arbitrary file in its error messages. Each file is read once
however often it is used; a file that uses itself, directly or through others,
is an error that shows the chain.

Errors inside a library are reported at that file's own name, line and source
line: the parser gives its positions the file's name, and the reporter keeps
its text.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..source.diagnostics import Reporter, SpecError
from ..source.files import TooLargeError, decode_spec, read_limited
from ..source.limits import check_text
from ..source.pos import Pos
from ..syntax.tree import BlockDef, Node, Use
from .parser import parse_tree

#: A library larger than this is refused before it is read (a spec is a few KB).
MAX_LIBRARY_BYTES = 1 << 20
#: At most this many library files per spec (a guard, not a design limit).
MAX_LIBRARIES = 256


class Libraries:
    """Reads the libraries a spec uses, reporting to the spec's reporter."""

    def __init__(self, rep: Reporter, filename: str | None) -> None:
        self.rep = rep
        spec = filename if filename and filename != "<stdin>" else None
        self.spec_dir = Path(spec).parent if spec else Path(".")
        self.loaded: set[Path] = {Path(spec).resolve()} if spec else set()
        self.chain: list[tuple[Path, str]] = [(Path(spec).resolve(), spec)] if spec else []

    def expand(self, nodes: list[Node]) -> list[Node]:
        """`nodes` (the spec's) preceded by the blocks of every library they use."""
        return [*self._expand(nodes, self.spec_dir), *(n for n in nodes if not isinstance(n, Use))]

    def _expand(self, nodes: list[Node], folder: Path) -> list[BlockDef]:
        blocks: list[BlockDef] = []
        for node in nodes:
            if isinstance(node, Use):
                blocks.extend(self._use(node, folder))
        return blocks

    def _use(self, node: Use, folder: Path) -> list[BlockDef]:
        text = node.path.text[1:-1]
        where = node.path.pos
        if not text.endswith(".ns") or text.startswith(("/", "\\")) or ":" in text:
            self.rep.error(where, f"`use` takes a relative path to a `.ns` file, not `{text}`",
                           SpecError, hint="e.g. `use \"lib/resnet.ns\"`, relative to this file")
            return []
        path = folder / text
        shown = os.path.normpath(path)
        resolved = path.resolve()
        if any(resolved == p for p, _ in self.chain):
            names = [name for _, name in self.chain] + [shown]
            start = next(i for i, (p, _) in enumerate(self.chain) if p == resolved)
            self.rep.error(where, f"`use` goes round in a circle: {' → '.join(names[start:])}",
                           SpecError, hint="a library cannot use itself, directly or through "
                                           "others")
            return []
        if resolved in self.loaded:
            return []   # read once already
        source = self._read(path, shown, where, folder)
        if source is None:
            return []
        self.loaded.add(resolved)
        self.rep.add_source(shown, source)
        errors = len(self.rep.errors)
        check_text(source, self.rep, shown)   # the limits on numbers hold in libraries too
        nodes = parse_tree(source, self.rep, shown).body \
            if len(self.rep.errors) == errors else []
        for item in nodes:
            if not isinstance(item, (BlockDef, Use)):
                self.rep.error(item.pos, f"{shown} is used as a library, so it holds "
                               f"only `block` definitions and `use`", SpecError,
                               hint="move the network's statements into the spec that "
                                    "uses it")
        self.chain.append((resolved, shown))
        try:
            used = self._expand(nodes, path.parent)
        finally:
            self.chain.pop()
        blocks = [n for n in nodes if isinstance(n, BlockDef)]
        for block in blocks:
            block.source = source
        return used + blocks

    def _read(self, path: Path, shown: str, where: Pos, folder: Path) -> str | None:
        """The library's text, or None after reporting why it cannot be read."""
        def fail(why: str, hint: str | None = None) -> None:
            self.rep.error(where, f"cannot use {shown}: {why}", SpecError, hint=hint)

        if len(self.loaded) >= MAX_LIBRARIES:
            fail(f"a spec may use at most {MAX_LIBRARIES} library files")
            return None
        try:
            if not path.exists():
                fail("no such file", hint=f"the path is relative to the folder of the file "
                                          f"that says `use`, here `{os.path.normpath(folder)}`")
                return None
            if not path.is_file():   # a folder, a pipe (which could block), a device
                fail("not a file")
                return None
            text = decode_spec(read_limited(path, MAX_LIBRARY_BYTES))
        except OSError as err:
            fail(err.strerror or str(err))
            return None
        except TooLargeError:
            fail(f"larger than {MAX_LIBRARY_BYTES // 1024} KiB, so not a library of blocks")
            return None
        except ValueError as err:   # not UTF-8
            fail(str(err))
            return None
        if "\0" in text:
            fail("not a text file (it holds NUL bytes)")
            return None
        return text
