"""The documentation cannot drift from netspec: every spec it shows checks, every error it
shows is the one netspec prints, every output it shows is what `python docs/gen.py`
makes today; README.md is held to the same, and stays short. (tests/test_docs_site.py
builds the site and opens it in a browser.)
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import netspec

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _load_gen():
    """docs/gen.py as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("docs_gen", DOCS / "gen.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load_gen()
PAGES = gen.pages()
#: What docs/gen.py regenerates: README.md and the site's pages.
SOURCES = gen.sources()
README = ROOT / "README.md"


def blocks(lang: str) -> list:
    """Every ```LANG block of the documentation and README.md, with the region it stands in."""
    found = []
    for page in SOURCES:
        text = page.read_text(encoding="utf-8")
        regions = [(m.start(), m.end(), m["what"]) for m in gen.REGION.finditer(text)]
        for fence in gen.fences(page, text):
            if fence.lang == lang:
                fence.region = next((what for a, b, what in regions if a <= fence.start < b),
                                    None)
                found.append(fence)
    return found


def run_netspec(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "netspec", *args], cwd=cwd, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          check=False)


def test_the_site_has_at_least_ten_pages_all_in_the_navigation() -> None:
    config = (ROOT / "mkdocs.yml").read_text()
    nav = re.findall(r"^\s*- [^:\n]+: (\S+\.md)$", config, re.MULTILINE)
    assert len(nav) >= 10
    assert sorted(nav) == sorted(str(p.relative_to(DOCS)) for p in PAGES)


@pytest.mark.parametrize("fence", blocks("netspec"), ids=repr)
def test_every_netspec_block_checks(fence) -> None:
    """A block with an `input` is a network, one without a library; a block that shows a
    file (`<!-- gen: spec PATH -->`) is checked as that file, so its `use` resolves. A
    warning is allowed only where the page shows it, by its code."""
    filename = None
    if fence.region and fence.region.startswith("spec "):
        filename = str(ROOT / gen.spec_source(fence.region[5:])[0])
    network = any(line.split("#")[0].split()[:1] == ["input"]
                  for line in fence.body.splitlines())
    cwd = os.getcwd()
    os.chdir(ROOT)   # a block read as standard input would be: `use` from the checkout's root
    try:
        net = netspec.parse(fence.body, filename, library=not network)
    finally:
        os.chdir(cwd)
    page = fence.page.read_text(encoding="utf-8")
    for warning in getattr(net, "warnings", []):
        assert f"[{warning.code}]" in page, f"{fence}: the page does not show {warning}"


def test_the_language_reference_quotes_every_grammar_rule() -> None:
    """Every rule and terminal of grammar/netspec.lark (but the keywords, `CONV: "conv"`,
    which the rules quote) is quoted on the language reference, so a rule added to the
    grammar is a page to write."""
    grammar = (ROOT / "grammar" / "netspec.lark").read_text(encoding="utf-8")
    rules = {m[1] for m in re.finditer(r'^[?!]?(\w+)\s*:(?!\s*"[a-z0-9?]+"\s*$)', grammar,
                                       re.MULTILINE)}
    page = (DOCS / "language.md").read_text(encoding="utf-8")
    quoted = {rule for m in re.finditer(r"<!-- gen: grammar (.*?) -->", page)
              for rule in m[1].split()}
    assert "conv" in rules and "CONV" not in rules and "OPTIONAL" not in rules
    assert rules - quoted == set()


ERRORS = blocks("netspec-error")


@pytest.mark.parametrize("fence", ERRORS, ids=repr)
def test_every_error_shown_is_what_netspec_prints(fence, tmp_path: Path) -> None:
    """The block after a ```netspec-error block shows `$ netspec check NAME` and its
    output; netspec, given the block as NAME, prints exactly that and exits with 1."""
    page = fence.page.read_text(encoding="utf-8")
    shown = next(f for f in gen.fences(fence.page, page) if f.start > fence.end)
    command, _, output = shown.body.partition("\n")
    name = re.fullmatch(r"\$ netspec check (\S+\.ns)", command)
    assert name, f"{fence}: the next block shows {command!r}, not `$ netspec check NAME.ns`"
    (tmp_path / name[1]).write_text(fence.body, encoding="utf-8")
    run = run_netspec(["check", name[1]], tmp_path)
    assert run.returncode == 1
    assert run.stdout == output
    with pytest.raises(netspec.NetspecError):
        netspec.parse(fence.body, name[1])


def test_there_are_error_examples() -> None:
    assert len(ERRORS) >= 2


def test_every_output_shown_is_regenerated_and_current() -> None:
    """`python docs/gen.py --check` makes every generated region and picture again and
    fails on any difference (run `python docs/gen.py` to update them)."""
    run = subprocess.run([sys.executable, str(DOCS / "gen.py"), "--check"], cwd=ROOT,
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr[-5000:]


def test_every_command_shown_is_in_a_generated_region() -> None:
    """A block that shows a `$ netspec` command and its output was made by docs/gen.py,
    not typed: outside the generated regions no block starts with a `$ ` prompt."""
    typed = [f for lang in ("text", "") for f in blocks(lang)
             if f.body.startswith("$ ") and f.region is None]
    assert not typed, typed


def test_gen_check_fails_on_a_stale_region(tmp_path: Path) -> None:
    """The check can fail: a page whose output was edited by hand is reported."""
    page = tmp_path / "page.md"
    page.write_text("<!-- gen: $ netspec check specs/lenet5.ns -->\n```text\nedited\n```\n"
                    "<!-- /gen -->\n", encoding="utf-8")
    made: dict = {}
    text = gen.regenerate(page, made)()
    assert "edited" not in text and "62,006 parameters" in text


def test_regions_of_one_session_share_their_folder(tmp_path: Path) -> None:
    """`@NAME` regions run in order in one folder: the second reads the weights the first
    wrote; a region of its own does not see them."""
    run = "netspec run docs/tutorial/edge.ns --weights w.npz --input docs/tutorial/edge.png"
    page = tmp_path / "page.md"
    page.write_text(f"<!-- gen: @s $ netspec init docs/tutorial/edge.ns -o w.npz -->\n"
                    f"<!-- /gen -->\n<!-- gen: @s $ {run} -->\n<!-- /gen -->\n"
                    f"<!-- gen: $ {run} -->\n<!-- /gen -->\n", encoding="utf-8")
    text = gen.regenerate(page, {})()
    together, alone = text.split(f"$ {run}\n")[1:]
    assert "wrote w.npz" in text
    assert "output: 1×1×4×4 float32" in together and "error" not in together
    assert "no such weights file: w.npz" in alone


def test_onnx_operator_table_lists_what_the_importer_reads(tmp_path: Path) -> None:
    """The coverage table's operators are those `netspec import` names in its hint for an
    operator it does not read."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])
    graph = helper.make_graph([helper.make_node("Selu", ["x"], ["y"], name="act")], "g", [x],
                              [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              tmp_path / "selu.onnx")
    run = run_netspec(["import", "selu.onnx"], tmp_path)
    assert run.returncode == 1 and 'node "act" (Selu, node 1 of 1)' in run.stdout
    reads = set(re.search(r"hint: netspec imports: (.*)", run.stdout)[1].split(", "))
    text = (DOCS / "onnx.md").read_text(encoding="utf-8")
    table = text[text.index("|---", text.index("| ONNX operator |")):]
    rows = re.findall(r"^\| ([A-Z][^|]*?) \|", table, re.MULTILINE)
    listed = {op.strip() for row in rows for op in row.split(",")}
    assert listed == reads


WORK_LOG = [r"\bthis stop\b", r"\bstop's\b", r"\bissue #?\d+", r"\bissues? \d+",
            r"\bPR #?\d+", r"\bthe lead\b"]


@pytest.mark.parametrize("page", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_work_log_language(page: Path) -> None:
    """User-facing pages speak of netspec, not of how it was made: no "this stop", no
    issue numbers, and a commit hash only to say which code a measurement is of."""
    text = re.sub(r"<!--.*?-->", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
    for pattern in WORK_LOG:
        assert not re.search(pattern, text, re.IGNORECASE), (page.name, pattern)
    for m in re.finditer(r"`?\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{7,40}\b`?", text):
        before = text[max(0, m.start() - 7):m.start()]
        assert before == "commit ", f"{page.name}: {m[0]!r} is not `commit HASH`"


# ---- README.md -----------------------------------------------------------------------

def readme_block(marker: str) -> str:
    """The command .ci/run reads from README.md after the line matching `marker`, found by
    .ci/run's own `readme_block` function."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    function = re.search(r"^readme_block\(\) \{.*?^\}$", ci, re.MULTILINE | re.DOTALL)
    assert function, ".ci/run no longer defines readme_block"
    run = subprocess.run(["bash", "-c", f'{function[0]}\nreadme_block "$1"', "_", marker],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    return run.stdout.strip()


def test_readme_is_short_and_keeps_the_set_up_commands_ci_runs() -> None:
    """At most 200 lines, and the two commands .ci/run extracts are there: installing
    netspec and checking a spec, then installing the test extras and running the tests."""
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 200
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    markers = re.findall(r'readme_block "([^"]+)"', ci)
    assert len(markers) == 2
    main_job, test_job = (readme_block(m) for m in markers)
    assert main_job == "python -m pip install . && netspec check specs/lenet5.ns"
    assert "pip install -e '.[test,docs]'" in test_job and "pytest" in test_job


def test_readme_lists_every_command() -> None:
    """The commands table names each command the argument parser declares, once."""
    import argparse
    parser = gen.cli_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    text = README.read_text(encoding="utf-8")
    table = text[text.index("## Commands"):text.index("\n## ", text.index("## Commands"))]
    listed = re.findall(r"^\| `netspec (\w+)", table, re.MULTILINE)
    assert sorted(listed) == sorted(sub.choices)


def test_readme_links_lead_to_the_pages() -> None:
    """Every relative link of README.md leads to a file, and every page of the site's
    navigation but the tutorial's own steps is linked."""
    text = README.read_text(encoding="utf-8")
    links = [m[1].split("#")[0] for m in re.finditer(r"\]\(([^)\s]+)\)", text)
             if "://" not in m[1]]
    assert links and all((ROOT / link).is_file() for link in links), links
    config = (ROOT / "mkdocs.yml").read_text()
    nav = re.findall(r"^  - [^:\n]+: (\S+\.md)$", config, re.MULTILINE)   # top level
    assert len(nav) >= 10
    assert {f"docs/{page}" for page in nav} <= set(links)
