"""The shape of the code base itself (issue 18): every kind has every capability or says
why not; a kind's keyword lives in its own module; packages depend only on earlier
phases (function-level imports count); no production module outgrows ~500 lines.

These read the source (ast), so they fail the moment a change breaks a rule, naming
the module and the line that did.
"""

from __future__ import annotations

import ast
import collections
from pathlib import Path

import pytest

from netspec.kinds import registry
from netspec.kinds.base import CAPABILITIES

PACKAGE = Path(__file__).resolve().parent.parent / "netspec"
GENERATED = {"_lark_standalone.py"}

#: The phases, earliest first: a module may import only from its own phase or an
#: earlier one. (`__init__`'s facade and `__main__` sit above everything.)
PHASES = ["source", "syntax", "numerics", "kinds", "ir", "language", "analysis", "tables",
          "data", "backends", "training", "picture", "interop", "network", "importer", "cli"]


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name not in GENERATED)


def _kinds() -> list[type]:
    return registry.kinds()


@pytest.mark.parametrize("capability", list(CAPABILITIES))
@pytest.mark.parametrize("kind", _kinds(), ids=lambda k: k.kind)
def test_every_kind_has_each_capability_or_says_why_not(kind: type, capability: str) -> None:
    has = kind.supports(capability)
    refused = capability in kind.unsupported
    delegated = capability in kind.delegated
    assert has or refused or delegated, (
        f"{kind.__name__} ({kind.kind}) neither implements {capability!r} "
        f"(one of {CAPABILITIES[capability]}) nor names it in `unsupported` or `delegated`")
    assert not (has and refused), f"{kind.__name__} implements {capability!r} yet refuses it"
    if refused:
        reason = kind.unsupported[capability]
        assert len(reason) > 10 and " " in reason, f"{kind.__name__}: a reason a user reads"


def test_a_refused_capability_is_what_a_user_reads() -> None:
    # flatten has no window of its own: its receptive field is refused with the reason
    from netspec.kinds import Flatten
    assert not Flatten.supports("rf")
    assert "rf" in Flatten.unsupported


def _string_constants(path: Path) -> set[str]:
    return {node.value for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)}


def test_a_kind_keyword_is_written_in_at_most_two_modules() -> None:
    words = {kw for k in _kinds() for kw in k.keywords} | {k.kind for k in _kinds()}
    words.discard("input")   # also an ordinary English word in messages and the CLI
    where: dict[str, list[str]] = collections.defaultdict(list)
    for path in _modules():
        for text in _string_constants(path) & words:
            where[text].append(str(path.relative_to(PACKAGE)))
    spread = {word: files for word, files in where.items() if len(files) > 2}
    assert not spread, f"keywords spelled out in more than 2 modules: {spread}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every netspec module `path` imports (at any level; not under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")[:len(package.split(".")) - node.level + 1]
            if node.module:
                out.append((node.lineno, ".".join(base + [node.module])))
            else:
                out += [(node.lineno, ".".join(base + [a.name])) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("netspec"):
            out.append((node.lineno, node.module))   # type: ignore[arg-type]
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("netspec")]
    return out


def _phase(module: str) -> int | None:
    parts = module.split(".")
    return PHASES.index(parts[1]) if len(parts) > 1 and parts[1] in PHASES else None


def test_packages_import_only_earlier_phases() -> None:
    wrong = []
    for path in _modules():
        mine = _phase(_module_name(path))
        if mine is None:
            continue
        for line, target in _imports(path):
            theirs = _phase(target)
            if theirs is not None and theirs > mine:
                wrong.append(f"{path.relative_to(PACKAGE)}:{line} imports {target}")
    assert not wrong, "imports against the phase order " + " < ".join(PHASES) + ":\n" + \
        "\n".join(wrong)


def test_no_import_circle_between_modules() -> None:
    graph: dict[str, set[str]] = {}
    names = {_module_name(p) for p in _modules()}
    for path in _modules():
        targets = set()
        for _, target in _imports(path):
            while target and target not in names:   # `from .x import name`
                target = target.rpartition(".")[0]
            if target and target != _module_name(path):
                targets.add(target)
        graph[_module_name(path)] = targets
    # a package's __init__ importing its own modules is how a package is assembled
    for name, targets in graph.items():
        graph[name] = {t for t in targets if not name.startswith(t + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            pytest.fail("import circle: " + " → ".join(cycle))


def test_every_relative_import_names_a_module() -> None:
    names = {_module_name(p) for p in _modules()} | {"netspec.language._lark_standalone"}
    missing = []
    for path in _modules():
        for line, target in _imports(path):
            if target not in names and target.rpartition(".")[0] not in names:
                missing.append(f"{path.relative_to(PACKAGE)}:{line} {target}")
    assert not missing, missing


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_over_500_lines(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= 500, f"{path.relative_to(PACKAGE)} has {lines} lines: split it by concept"
