"""Regenerates everything the documentation shows that netspec computes.

    python docs/gen.py            rewrite the generated parts of docs/*.md, README.md
                                  and the pictures in docs/
    python docs/gen.py --check    change nothing; exit 1 naming each part that differs

A page (README.md is one too) marks each generated part as a region:

    <!-- gen: WHAT -->
    ...what WHAT makes, rewritten on every run...
    <!-- /gen -->

where WHAT is one of

    $ netspec ARGS              the command and what it prints (several `$` lines: all of
                                them, run in order in one folder); `| head -N` after
                                it shows the first N lines, `| python -m json.tool` the
                                JSON indented
    file LANG NAME $ netspec …  the command and what it prints, then the file NAME it wrote,
                                as a LANG code block
    spec PATH[:FIRST-LAST]      the spec file PATH (or its lines FIRST to LAST) as a
                                ```netspec block
    picture NAME SPEC [ARGS]    `netspec draw SPEC ARGS` into docs/NAME, and the image
                                (linked from the page's own folder)
    image NAME FILE $ netspec … the command and what it prints, then the image FILE it
                                wrote, kept as docs/NAME (a PNG compared by its pixels)
    error NAME                  `netspec check NAME` of the ```netspec-error block just
                                before the region, saved as NAME
    grammar RULE…               the rules (and the comments above them) quoted from
                                grammar/netspec.lark
    pycon                       the ```pycon block in the region with each `>>>` statement
                                run again and its output written after it
    cli                         the command-line reference, from netspec's argparse parser
    zoo                         the table of every spec under specs/, parameters from
                                `netspec.load`
    @NAME WHAT                  WHAT (one of those that run netspec) in the folder of the
                                page's regions named NAME: they run one after the other in
                                page order, each seeing the files the ones before it wrote
                                (a tutorial whose steps build on each other)

Commands run `netspec` as a fresh process (`python -m netspec`, this checkout's netspec
first on the path) in an empty temporary folder (one per region, or per `@NAME`) where `specs`, `docs` and `grammar` lead
to this checkout's, so that a page's paths are those of a checkout's root and nothing a
command writes lands in the checkout.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import io
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
GRAMMAR = ROOT / "grammar" / "netspec.lark"
SPECS = ROOT / "specs"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

REGION = re.compile(r"^(?P<indent>[ \t]*)<!-- gen: (?P<what>.*?) -->\n(?P<body>.*?)"
                    r"^(?P=indent)<!-- /gen -->$", re.MULTILINE | re.DOTALL)
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)(?P<attrs>[^\n`]*)\n(?P<body>.*?)"
                   r"^(?P=indent)```[ \t]*$", re.MULTILINE | re.DOTALL)
#: Columns argparse lays usage out in.
COLUMNS = 90
#: `pycon` regions change the working folder while they run: one at a time.
IN_ROOT = threading.Lock()
#: Environment for the `netspec` processes: bytecode cached in a temporary folder for the
#: run (`main` sets it), so that each process does not compile netspec's parser module
#: again, and the checkout gets no __pycache__.
CHILD_ENV: dict[str, str] = {}


class Fence:
    """A fenced code block of a page: its language, its text and its line in the page."""

    def __init__(self, page: Path, match: re.Match[str], text: str) -> None:
        self.page = page
        self.lang = match["lang"]
        self.attrs = match["attrs"].strip()
        indent = len(match["indent"])
        self.body = "".join(line[indent:] for line in match["body"].splitlines(keepends=True))
        self.start, self.end = match.start(), match.end()
        self.line = text.count("\n", 0, match.start()) + 1

    def __repr__(self) -> str:
        return f"{self.page.name}:{self.line}"


def fences(page: Path, text: str | None = None) -> list[Fence]:
    """Every fenced code block of `page`, in order."""
    text = page.read_text(encoding="utf-8") if text is None else text
    return [Fence(page, m, text) for m in FENCE.finditer(text)]


def pages() -> list[Path]:
    """The site's pages."""
    return sorted(DOCS.glob("**/*.md"))


def sources() -> list[Path]:
    """Every file with generated regions: README.md and the site's pages."""
    return [ROOT / "README.md", *pages()]


def link(page: Path, target: Path) -> str:
    """`target` as a relative link from `page` (docs/lenet5.svg from README.md)."""
    return Path(os.path.relpath(target, page.parent)).as_posix()


# ---- running netspec ------------------------------------------------------------------

@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    """An empty folder whose `specs`, `docs` and `grammar` are this checkout's."""
    with tempfile.TemporaryDirectory(prefix="netspec-docs-") as tmp:
        for name in ("specs", "docs", "grammar"):
            os.symlink(ROOT / name, Path(tmp) / name)
        yield Path(tmp)


def _head(text: str, args: list[str]) -> str:
    """`| head -N`: the first N lines."""
    if len(args) != 1 or not re.fullmatch(r"-\d+", args[0]):
        raise ValueError(f"head {' '.join(args)}: only `head -N`")
    return "".join(text.splitlines(keepends=True)[:int(args[0][1:])])


def _json_tool(text: str, args: list[str]) -> str:
    """`| python -m json.tool`: the JSON document indented by 4, as json.tool writes it."""
    if args != ["-m", "json.tool"]:
        raise ValueError(f"python {' '.join(args)}: only `python -m json.tool`")
    return json.dumps(json.loads(text), indent=4) + "\n"


#: What a command's output may be piped through on a page.
PIPES: dict[str, Callable[[str, list[str]], str]] = {"head": _head, "python": _json_tool}


def netspec(command: str, cwd: Path) -> str:
    """`$ COMMAND` and what it printed, stdout and stderr as a terminal shows them.

    `COMMAND | head -N` shows the first N lines of that, `COMMAND | python -m json.tool`
    its JSON indented."""
    words, *pipes = (shlex.split(part) for part in command.split("|"))
    if not words or words[0] != "netspec" or any(not p or p[0] not in PIPES for p in pipes):
        raise ValueError(f"not a netspec command: {command!r}")
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, **CHILD_ENV, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1",
           "COLUMNS": str(COLUMNS)}
    if "PYTHONPYCACHEPREFIX" in CHILD_ENV:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    # piped, only stdout goes through the pipe: what the command writes to stderr (its
    # warnings, written as it checks, before its output) is shown as it is, first
    run = subprocess.run([sys.executable, "-m", "netspec", *words[1:]], check=False, cwd=cwd,
                         env=env, stdout=subprocess.PIPE, text=True, timeout=600,
                         stderr=subprocess.PIPE if pipes else subprocess.STDOUT)
    shown = run.stdout
    for pipe in pipes:
        shown = PIPES[pipe[0]](shown, pipe[1:])
    if pipes:
        shown = run.stderr + shown
    return f"$ {command}\n{shown}"


def commands(what: str) -> list[str]:
    """The `$ ...` commands of a directive, one per `$`."""
    return [c.strip() for c in what.split("$")[1:] if c.strip()]


def block(lang: str, body: str, attrs: str = "") -> str:
    body = body if body.endswith("\n") else body + "\n"
    return f"```{lang}{' ' + attrs if attrs else ''}\n{body}```\n"


def gen_commands(what: str, cwd: Path) -> str:
    return block("text", "".join(netspec(c, cwd) for c in commands(what)))


def gen_file(what: str, cwd: Path) -> str:
    lang, name, _ = what.split(None, 2)
    shown = "".join(netspec(c, cwd) for c in commands(what))
    written = (cwd / name).read_text(encoding="utf-8")
    return block("text", shown) + "\n" + block(lang, written, f'title="{name}"')


def spec_source(what: str) -> tuple[str, str, str]:
    """A `spec` directive's file, title and text: the whole file, or lines FIRST to LAST."""
    path, _, lines = what.strip().partition(":")
    text = (ROOT / path).read_text(encoding="utf-8")
    if not lines:
        return path, path, text
    first, last = map(int, lines.split("-"))
    shown = text.splitlines(keepends=True)[first - 1:last]
    return path, f"{path}, lines {first}–{last}", "".join(shown)


def gen_spec(what: str) -> str:
    _, title, text = spec_source(what)
    return block("netspec", text, f'title="{title}"')


def gen_error(what: str, before: str, cwd: Path) -> str:
    name = what.strip()
    shown = [f for f in FENCE.finditer(before)]
    if not shown or shown[-1]["lang"] != "netspec-error":
        raise ValueError(f"`error {name}` must follow a ```netspec-error block")
    (cwd / name).write_text(shown[-1]["body"], encoding="utf-8")
    return block("text", netspec(f"netspec check {name}", cwd))


def gen_picture(what: str, made: dict[Path, bytes], page: Path, cwd: Path) -> str:
    """`netspec draw` into docs/NAME (recorded in `made`), and the image."""
    name, spec, *args = shlex.split(what)
    words = ["netspec", "draw", spec, "-o", "picture.svg", *args]
    shown = netspec(shlex.join(words), cwd)
    if not (cwd / "picture.svg").is_file():
        raise RuntimeError(shown)
    made[DOCS / name] = (cwd / "picture.svg").read_bytes()
    return f"![{shlex.join(words[:3] + words[5:])}]({link(page, DOCS / name)})\n"


def gen_image(what: str, made: dict[Path, bytes], page: Path, cwd: Path) -> str:
    """The commands and what they print, then the image FILE they wrote, as docs/NAME."""
    name, written, _ = what.split(None, 2)
    shown = "".join(netspec(c, cwd) for c in commands(what))
    if not (cwd / written).is_file():
        raise RuntimeError(f"{written} was not written:\n{shown}")
    made[DOCS / name] = (cwd / written).read_bytes()
    return block("text", shown) + f"\n![{written}]({link(page, DOCS / name)})\n"


def gen_grammar(what: str) -> str:
    """Each named rule or terminal of the grammar with the comment lines just above it."""
    lines = GRAMMAR.read_text(encoding="utf-8").splitlines()
    quoted = []
    for rule in what.split():
        starts = [i for i, line in enumerate(lines)
                  if re.match(rf"[?!]?{re.escape(rule)}\s*:", line)]
        if len(starts) != 1:
            raise ValueError(f"grammar/netspec.lark has {len(starts)} rules named {rule!r}")
        first = last = starts[0]
        while first > 0 and lines[first - 1].startswith("//"):
            first -= 1
        while last + 1 < len(lines) and re.match(r"\s+\S", lines[last + 1]) \
                and not lines[last + 1].lstrip().startswith("//"):
            last += 1
        quoted.append("\n".join(lines[first:last + 1]))
    return block("text", "\n\n".join(quoted), 'title="grammar/netspec.lark"')


def gen_pycon(body: str, namespace: dict[str, object]) -> str:
    """The region's ```pycon block, each statement run again (in this checkout's root) in
    `namespace`, which the page's `pycon` regions share, as doctest runs a file."""
    found = list(FENCE.finditer(body))
    if len(found) != 1 or found[0]["lang"] != "pycon":
        raise ValueError("a `pycon` region holds exactly one ```pycon block")
    statements: list[list[str]] = []
    for line in found[0]["body"].splitlines():
        if line.startswith(">>> "):
            statements.append([line[4:]])
        elif line.startswith("... ") or line == "...":
            statements[-1].append(line[4:])
    out: list[str] = []
    with IN_ROOT:
        here = os.getcwd()
        os.chdir(ROOT)   # (contextlib.chdir is Python 3.11's; netspec runs on 3.10)
        try:
            run_statements(statements, namespace, out)
        finally:
            os.chdir(here)
    return block("pycon", "\n".join(out))


def run_statements(statements: list[list[str]], namespace: dict[str, object],
                   out: list[str]) -> None:
    """Run each statement as the interactive interpreter would, adding it and what it
    printed (or the exception it raised, as doctest shows one) to `out`."""
    for lines in statements:
        out += [">>> " + lines[0], *("... " + line for line in lines[1:])]
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            try:
                exec(compile("\n".join(lines) + "\n", "<doc>", "single"), namespace)  # noqa: S102
            except Exception as err:  # noqa: BLE001 (shown as doctest shows one)
                print("Traceback (most recent call last):\n  ...")
                print("".join(traceback.format_exception_only(type(err), err)), end="")
        out += printed.getvalue().splitlines()


# ---- the command-line reference ------------------------------------------------------

def cli_parser() -> argparse.ArgumentParser:
    """The `netspec` command's argparse parser, with every command declared."""
    from netspec.cli import build_parser
    return build_parser()


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def gen_cli(what: str) -> str:
    """One section per command: what it does, its usage line and a table of its arguments."""
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(COLUMNS)
    try:
        parser = cli_parser()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        helps = {a.dest: a.help for a in sub._choices_actions}
        out = [f"`netspec`: {parser.description}\n\n", block("text", parser.format_usage())]
        for name, command in sub.choices.items():
            out.append(f"\n## netspec {name}\n\n{helps[name][0].upper()}{helps[name][1:]}.\n\n")
            out.append(block("text", command.format_usage()))
            rows = ["| argument | meaning | default |", "|---|---|---|"]
            for action in command._actions:
                if isinstance(action, argparse._HelpAction):
                    continue
                rows.append(f"| {_cell(_argument(action))} | {_cell(_meaning(action))} | "
                            f"{_cell(_default(action))} |")
            out.append("\n" + "\n".join(rows) + "\n")
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old
    return "".join(out)


def _argument(action: argparse.Action) -> str:
    metavar = action.metavar or (action.dest.upper() if action.option_strings else action.dest)
    if action.choices is not None and action.metavar is None:
        metavar = "{" + ",".join(map(str, action.choices)) + "}"
    if not action.option_strings:
        return f"`{metavar} …`" if action.nargs in ("+", "*") else f"`{metavar}`"
    takes = action.nargs != 0
    return ", ".join(f"`{o} {metavar}`" if takes else f"`{o}`" for o in action.option_strings)


def _meaning(action: argparse.Action) -> str:
    text = (action.help or "") % {**vars(action), "prog": "netspec"}
    if action.required and action.option_strings:
        text += " (required)"
    if action.nargs == "+":
        text += " (one or more)"
    elif action.nargs in ("*", "?") and not action.option_strings:
        text += " (optional)"
    return text


def _default(action: argparse.Action) -> str:
    if action.default in (None, False, argparse.SUPPRESS) or action.nargs == 0:
        return ""
    return f"`{action.default}`"


# ---- the zoo -------------------------------------------------------------------------

def spec_lines(text: str) -> int:
    """Lines that hold a statement: neither blank nor only a comment."""
    return sum(1 for line in text.splitlines() if line.strip() and not line.strip().startswith("#"))


def family(path: Path, text: str) -> str:
    """The spec's folder under specs/; for a spec at the top, the library it uses, else
    its own name."""
    rel = path.relative_to(SPECS)
    if len(rel.parts) > 1:
        return rel.parts[0]
    uses = re.search(r'^use\s+"(?:[^"]*/)?([^"/]+)\.ns"', text, re.MULTILINE)
    return uses[1] if uses else path.stem


def gen_zoo(what: str) -> str:
    import netspec
    rows = []
    for path in sorted(SPECS.glob("**/*.ns")):
        if "lib" in path.relative_to(SPECS).parts:
            continue
        text = path.read_text(encoding="utf-8")
        net = netspec.load(path)
        size = "×".join(map(str, net.input_shape))
        rows.append((family(path, text), str(path.relative_to(ROOT)), spec_lines(text), size,
                     net.total_params))
    rows.sort(key=lambda r: (r[0], r[4], r[1]))
    out = ["| family | spec | lines | input | parameters |", "|---|---|--:|---|--:|"]
    previous = None
    for fam, spec, lines, size, params in rows:
        out.append(f"| {fam if fam != previous else ''} | `{spec}` | {lines} | {size} | "
                   f"{params:,} |")
        previous = fam
    libraries = sorted(str(p.relative_to(ROOT)) for p in (SPECS / "lib").glob("*.ns"))
    return ("\n".join(out) + f"\n\n{len(rows)} networks; their blocks come from "
            f"{len(libraries)} libraries: " + ", ".join(f"`{p}`" for p in libraries) + ".\n")


# ---- pages ---------------------------------------------------------------------------

#: The directives that run netspec in a folder.
IN_A_FOLDER = ("$", "file", "picture", "image", "error")


def session_of(what: str) -> tuple[str | None, str]:
    """(NAME, the directive) for `@NAME WHAT`, (None, WHAT) otherwise."""
    if what.startswith("@"):
        name, _, rest = what.partition(" ")
        return name[1:], rest.strip()
    return None, what


def generate(what: str, before: str, made: dict[Path, bytes],
             page: Path = DOCS / "page.md", cwd: Path | None = None) -> str:
    """What a region's directive makes (`before`: the page up to the region, `page` the
    file it is in); the files it makes go into `made`. Commands run in `cwd`, or in a
    folder of their own if None."""
    kind = what.split(None, 1)[0]
    rest = what[len(kind):].strip()
    if cwd is None and kind in IN_A_FOLDER:
        with workdir() as tmp:
            return generate(what, before, made, page, tmp)
    makers: dict[str, Callable[[], str]] = {
        "$": lambda: gen_commands(what, cwd), "file": lambda: gen_file(rest, cwd),
        "spec": lambda: gen_spec(rest), "picture": lambda: gen_picture(rest, made, page, cwd),
        "image": lambda: gen_image(rest, made, page, cwd),
        "error": lambda: gen_error(rest, before, cwd), "grammar": lambda: gen_grammar(rest),
        "cli": lambda: gen_cli(rest), "zoo": lambda: gen_zoo(rest)}
    if kind not in makers:
        raise ValueError(f"unknown generated region {what!r}")
    return makers[kind]()


def generate_session(regions: list[tuple[str, str]], made: dict[Path, bytes],
                     page: Path) -> list[str]:
    """The regions (directive, page before it) of one `@NAME`, in order in one folder."""
    with workdir() as cwd:
        return [generate(what, before, made, page, cwd) for what, before in regions]


def regenerate(page: Path, made: dict[Path, bytes],
               pool: ThreadPoolExecutor | None = None) -> Callable[[], str]:
    """Start making the page's regions again (in `pool`, a pool of its own if None); the
    function returned waits for them and gives the page. The pictures and images it makes
    go into `made`. The `pycon` regions run when it is called, one after the other in
    one namespace, in this thread."""
    text = page.read_text(encoding="utf-8")
    regions = list(REGION.finditer(text))
    own = pool is None
    pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2) if own else pool
    sessions: dict[str, list[int]] = {}
    running: list[Future | tuple[Future, int] | None] = [None] * len(regions)
    for i, m in enumerate(regions):
        name, _ = session_of(m["what"])
        if name is not None:
            sessions.setdefault(name, []).append(i)
        elif m["what"] != "pycon":
            running[i] = pool.submit(generate, m["what"], text[:m.start()], made, page)
    for members in sessions.values():
        job = pool.submit(generate_session, [(session_of(regions[i]["what"])[1],
                                              text[:regions[i].start()]) for i in members],
                          made, page)
        for n, i in enumerate(members):
            running[i] = (job, n)

    def result(job: Future | tuple[Future, int]) -> str:
        return job[0].result()[job[1]] if isinstance(job, tuple) else job.result()

    def finish() -> str:
        namespace: dict[str, object] = {}
        try:
            new = [gen_pycon(m["body"], namespace) if job is None else result(job)
                   for m, job in zip(regions, running)]
        finally:
            if own:
                pool.shutdown()
        out, at = [], 0
        for m, region in zip(regions, new):
            indent = m["indent"]
            region = "".join(indent + line if line.strip() else line
                             for line in region.splitlines(keepends=True))
            out += [text[at:m.start("body")], region]
            at = m.end("body")
        out.append(text[at:])
        return "".join(out)
    return finish


def same_file(path: Path, data: bytes) -> bool:
    """Whether `path` holds `data`: byte for byte, or for a PNG, pixel for pixel (PNG
    encoders of different versions compress the same pixels differently)."""
    if not path.is_file():
        return False
    old = path.read_bytes()
    if old == data or path.suffix != ".png":
        return old == data
    from PIL import Image
    a, b = Image.open(io.BytesIO(old)), Image.open(io.BytesIO(data))
    return a.size == b.size and a.mode == b.mode and a.tobytes() == b.tobytes()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="change nothing; exit 1 if anything shown differs from what it shows")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="netspec-docs-pycache-") as cache:
        CHILD_ENV["PYTHONPYCACHEPREFIX"] = cache
        try:
            return run(args.check)
        finally:
            CHILD_ENV.clear()


def run(check: bool) -> int:
    """Regenerate every page (or, with `check`, only compare); the exit status."""
    stale = []
    made: dict[Path, bytes] = {}
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        started = [(page, regenerate(page, made, pool)) for page in sources()]
        for page, finish in started:
            text = finish()
            old = page.read_text(encoding="utf-8")
            if text == old:
                continue
            stale.append(str(page.relative_to(ROOT)))
            if check:
                diff = difflib.unified_diff(old.splitlines(), text.splitlines(), str(page),
                                            "regenerated", n=1, lineterm="")
                print("\n".join(list(diff)[:40]), file=sys.stderr)
            else:
                page.write_text(text, encoding="utf-8")
    for path, data in sorted(made.items()):
        if same_file(path, data):
            continue
        stale.append(str(path.relative_to(ROOT)))
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    if stale and check:
        print("out of date (run `python docs/gen.py`): " + ", ".join(stale), file=sys.stderr)
        return 1
    if stale:
        print("rewrote " + ", ".join(stale))
    return 0


if __name__ == "__main__":
    sys.exit(main())
