"""`netspec fmt`: a spec in the canonical layout, checked to say exactly what it said.

`format_spec` parses the text (a spec with a syntax error is refused, as black
refuses invalid Python), prints it (printer.py), and, before anything is written,
parses what it printed and checks it against the original: the same statements and
words (the network cannot change), the same comments in the same order, and the
printer's own output printed again unchanged (idempotent).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..source.diagnostics import Diagnostic, NetspecError, Reporter, SpecSyntaxError
from ..source.limits import check_text
from ..syntax import tree as st
from .budget import MAX_NESTING
from .layout import children, comment_start
from .parser import parse_tree
from .printer import print_spec


class FormatError(NetspecError):
    """The formatter's output would not say what the spec says (a bug in netspec: the file is
    left as it is)."""


def _depth(node: st.Node) -> int:
    """How deeply brackets nest in `node` (without recursion)."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        n, d = stack.pop()
        deepest = max(deepest, d)
        stack.extend((c, d + 1) for c in children(n))
    return deepest


def _comments(text: str) -> str:
    """Every comment's words, in order (spacing aside: the printer moves comments, never
    edits them)."""
    out = []
    for line in text.split("\n"):
        i = comment_start(line)
        if i is not None:
            out.extend(line[i:].split())
    return " ".join(out)


def shape(node: st.Node | st.SpecFile) -> tuple:
    """What a statement says, without where or how it was laid out: its kind, its words
    (spelt canonically) and what it holds, recursively."""
    out: list = [type(node).__name__]
    if isinstance(node, st.SpecFile):
        out += [shape(n) for n in node.body]
        return tuple(out)
    if isinstance(node, st.LayerStmt):
        out += [(w.type, w.canonical()) for w in node.words]
        out.append(shape(node.act) if node.act is not None else None)
    elif isinstance(node, st.Labeled):
        out.append(node.label.text)
    elif isinstance(node, st.Assign):
        out.append(node.name.text)
    elif isinstance(node, st.Join):
        out += [node.op, [r.text for r in node.refs]]
    elif isinstance(node, st.From):
        out.append(node.ref.text)
    elif isinstance(node, st.Group):
        out.append(node.indexed)
    elif isinstance(node, st.Repeat):
        out += [node.count.canonical(), node.var.text if node.var else None]
    elif isinstance(node, st.Residual):
        out += [node.optional, node.shortcut_kind]
    elif isinstance(node, st.Merge):
        out += [node.op, node.runs.canonical() if node.runs is not None else None]
    elif isinstance(node, st.Call):
        out += [node.name.text, [(k.text if k else None, v.canonical()) for k, v in node.args]]
    elif isinstance(node, st.BlockDef):
        out += [node.name.text, [(p.text, d.canonical() if d else None) for p, d in node.params]]
    elif isinstance(node, st.Use):
        out.append(node.path.text)
    out += [shape(c) for c in children(node)]
    return tuple(out)


def _parse(text: str, filename: str | None) -> st.SpecFile:
    rep = Reporter(text, filename)
    check_text(text, rep)
    spec = parse_tree(text, rep) if not rep.errors else st.SpecFile([])
    rep.raise_errors()
    for node in spec.body:
        if _depth(node) > MAX_NESTING:
            rep.error(node.pos, f"groups, repeats and block calls are nested more than "
                                f"{MAX_NESTING} deep", SpecSyntaxError)
    rep.raise_errors()
    return spec


def format_spec(text: str, filename: str | None = None) -> str:
    """`text` in the canonical layout; NetspecError if it has a syntax error, FormatError if
    the result would not say the same (then nothing should be written)."""
    spec = _parse(text, filename)
    out = print_spec(spec)
    try:
        again = _parse(out, filename)
    except NetspecError:
        again = None
    problem = ("does not parse" if again is None else
               "says something else" if shape(again) != shape(spec) else
               "loses or reorders a comment" if _comments(out) != _comments(text) else
               "changes when formatted again" if print_spec(again) != out else None)
    if problem is not None:
        raise FormatError(Diagnostic("error", f"netspec's formatted text {problem}; the file "
                                              f"is left as it is (please report this)",
                                     filename))
    return out


def spec_files(paths: list[str]) -> Iterator[str]:
    """The `.ns` files named, and those inside named folders (sorted, links not followed)."""
    import os
    for path in paths:
        if path != "-" and os.path.isdir(path):
            for folder, dirs, files in os.walk(path):
                dirs.sort()
                yield from (os.path.join(folder, f) for f in sorted(files) if f.endswith(".ns"))
        else:
            yield path
