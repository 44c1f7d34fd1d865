"""The command line: every command and option, declared in one place (`build_parser`).

Each command names the function that runs it (`"inspect:cmd_check"`: netspec.cli.inspect),
imported only when it runs, so that `netspec check` loads none of the other commands'
modules. Exit status: 0 = fine (warnings allowed), 1 = a spec (or its weights or input)
has errors, 2 = usage error (bad flag, missing file).
"""

from __future__ import annotations

import argparse
import os
import sys

from .. import __version__
from ..source.diagnostics import did_you_mean


# ---- argument types ---------------------------------------------------------------------

def input_size(text: str) -> tuple[int, ...]:
    """`HxWxC`, the input size to use instead of the spec's."""
    parts = text.lower().replace("×", "x").split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) >= 1 for p in parts):
        raise argparse.ArgumentTypeError(f"expected HxWxC, e.g. 64x64x3, not {text!r}")
    return tuple(int(p) for p in parts)


def size_range(text: str) -> tuple[int, int]:
    """`A:B`, sizes A to B inclusive."""
    a, _, b = text.partition(":")
    if not (a.isdigit() and b.isdigit() and 1 <= int(a) <= int(b) <= 4096):
        raise argparse.ArgumentTypeError(f"expected A:B with 1 ≤ A ≤ B ≤ 4096, not {text!r}")
    return int(a), int(b)


def whole(least: int, most: int):
    """A whole number (ASCII digits) from `least` to `most`."""
    def parse_whole(text: str) -> int:
        shown = text if len(text) <= 30 else text[:27] + "..."
        if not (text.isascii() and text.isdigit()) or len(text) > len(str(most)) \
                or not least <= int(text) <= most:
            raise argparse.ArgumentTypeError(f"expected a whole number from {least} to "
                                             f"{most:,}, not {shown!r}")
        return int(text)
    return parse_whole


positive_int, seed, repeats, depth = whole(1, 10**6), whole(0, 2**63 - 1), whole(1, 1000), \
    whole(1, 100)


def real(least: float, below: float, strict: bool = False):
    """A finite number from `least` (excluded with `strict`) to below `below`."""
    def parse_real(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not (least < value < below if strict else least <= value < below):
            raise argparse.ArgumentTypeError(
                f"expected a number {'>' if strict else '≥'} {least:g} and < {below:g}, "
                f"not {text!r}")
        return value
    return parse_real


def input_size_option(q: argparse.ArgumentParser, *, short: bool = True) -> None:
    names = ("--input", "--input-size") if short else ("--input-size",)
    q.add_argument(*names, dest="input_size", type=input_size, metavar="HxWxC",
                   help="use this input size instead of the spec's")


def weights_options(q: argparse.ArgumentParser) -> None:
    g = q.add_mutually_exclusive_group()
    g.add_argument("--weights", metavar="W.npz", help="weights saved by `netspec init` "
                   "or from a PyTorch state_dict")
    g.add_argument("--seed", type=seed, default=0, help="initialise weights from this seed, "
                   "a whole number ≥ 0 (default 0)")


def picture_options(q: argparse.ArgumentParser) -> None:
    """--style and --depth, shared by draw and report."""
    q.add_argument("--style", choices=("volumes", "graph"), default=None,
                   help="3-D volumes in a row (default for plain sequences) or a "
                        "top-down graph (default where paths fork)")
    q.add_argument("--depth", type=depth, metavar="N",
                   help="draw layers whose names share their first N parts as one box")


# ---- the commands ---------------------------------------------------------------------------

def _check(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("check", help="check specs and print shapes and parameter counts")
    c.add_argument("files", nargs="+", metavar="FILE", help="spec files, or - for stdin")
    c.add_argument("--json", action="store_true", help="print one JSON object per file")
    c.add_argument("--strict", action="store_true", help="treat warnings as errors")
    c.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    c.add_argument("--depth", type=depth, metavar="N",
                   help="one row per name prefix of N parts (layer1, layer1.0, ...), 1 to 100")
    c.add_argument("--format", choices=("table", "json", "markdown", "csv"), default="table",
                   help="how to print each table (--json is --format json)")
    c.add_argument("--columns", metavar="A,B,...",
                   help="the table's columns (or +A,B to add to the default ones): "
                        "text, output, activations, params, params%%, non-trainable, macs, "
                        "flops, rf, jump, centre, kernel, stride, padding, dilation, groups, "
                        "memory")
    c.add_argument("--batch", type=positive_int, default=1, metavar="N",
                   help="batch size for the memory figures (default 1)")
    c.add_argument("--dtype", choices=("float32", "float16", "bfloat16", "int8"),
                   default="float32", help="bytes per value of weights and activations")
    c.add_argument("--optimizer", choices=("sgd", "momentum", "adam"), default="adam",
                   help="optimizer state in the training memory (default adam)")
    input_size_option(c)
    c.set_defaults(func="inspect:cmd_check")


def _explain(sub: argparse._SubParsersAction) -> None:
    x = sub.add_parser("explain", help="show each layer's arithmetic with its numbers")
    x.add_argument("spec", metavar="SPEC", help="a spec file, or - for stdin")
    x.add_argument("layers", nargs="*", metavar="LAYER", help="layers (or name prefixes) to "
                   "explain; default all")
    input_size_option(x)
    x.set_defaults(func="inspect:cmd_explain")


def _sizes(sub: argparse._SubParsersAction) -> None:
    z = sub.add_parser("sizes", help="which input sizes a spec accepts")
    z.add_argument("spec", metavar="SPEC", help="a spec file, or - for stdin")
    z.add_argument("--range", type=size_range, metavar="A:B", help="sizes to try (default 1 "
                   "to twice the written size)")
    z.set_defaults(func="inspect:cmd_sizes")


def _diff(sub: argparse._SubParsersAction) -> None:
    df = sub.add_parser("diff", help="compare two specs layer by layer")
    df.add_argument("first", metavar="A", help="a spec file")
    df.add_argument("second", metavar="B", help="a spec file")
    df.add_argument("--depth", type=depth, metavar="N",
                    help="compare groups of N name parts")
    df.set_defaults(func="inspect:cmd_diff")


def _fmt(sub: argparse._SubParsersAction) -> None:
    f = sub.add_parser("fmt", help="format specs in netspec's one layout (in place)")
    f.add_argument("files", nargs="+", metavar="FILE", help="spec files or folders of them, "
                   "or - to format stdin to stdout")
    f.add_argument("--check", action="store_true", help="change nothing; list the files that "
                   "would change and exit 1 if any would")
    f.add_argument("--diff", action="store_true", help="change nothing; print what would "
                   "change as a unified diff")
    f.set_defaults(func="fmt:cmd_fmt")


def _run(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("run", help="run a batch through the network")
    r.add_argument("spec", metavar="SPEC", help="a spec file, or an .onnx file exported by netspec")
    r.add_argument("--input", required=True, metavar="X.npy", help="input batch, N×C×H×W or "
                   "N×H×W×C float32 (or one sample of either), or a PNG/JPEG image (resized "
                   "to the spec's input; needs netspec[images])")
    weights_options(r)
    input_size_option(r, short=False)
    r.add_argument("--backend", choices=("numpy", "onnx"), default="numpy",
                   help="run the NumPy model or the exported model on onnxruntime "
                        "(default numpy)")
    r.add_argument("-o", "--output", metavar="Y.npy", help="also write the output batch here "
                   "(never over an input)")
    r.add_argument("--maps", metavar="DIR|FILE.svg", help="write each layer's output for one "
                   "sample as a PNG grid per layer (one tile per channel) and DIR/maps.svg, "
                   "a page of them all enlarged and labelled; FILE.svg writes only the page")
    r.add_argument("--sample", type=whole(0, 10**9), default=0, metavar="N",
                   help="the sample whose maps --maps draws (default 0, the first)")
    r.set_defaults(func="run:cmd_run")


def _init(sub: argparse._SubParsersAction) -> None:
    i = sub.add_parser("init", help="write initial weights")
    i.add_argument("spec", metavar="SPEC", help="a spec file, or - for stdin")
    i.add_argument("-o", "--output", required=True, metavar="W.npz",
                   help="the weights file to write (never over an input)")
    i.add_argument("--seed", type=seed, default=0, help="random seed, a whole number ≥ 0 "
                   "(default 0): He-normal weights, zero biases")
    i.set_defaults(func="run:cmd_init")


def _bench(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("bench", help="time the NumPy model against onnxruntime")
    b.add_argument("spec", metavar="SPEC", nargs="?", help="a spec file")
    b.add_argument("--batch", type=positive_int, default=32, metavar="N",
                   help="samples per batch, 1 to 1,000,000 (default 32)")
    b.add_argument("--repeat", type=repeats, default=None, metavar="N",
                   help="timed runs per backend, the best is reported, 1 to 1,000 "
                        "(default 5)")
    b.add_argument("--seed", type=seed, default=0, metavar="N",
                   help="seed of the random weights and batch, a whole number ≥ 0 "
                        "(default 0)")
    b.set_defaults(func="run:cmd_bench")


def _export(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("export", help="export the network with its weights (ONNX), or as "
                       "PyTorch code")
    e.add_argument("spec", metavar="SPEC", help="a spec file, or - for stdin")
    e.add_argument("--onnx", action="store_true", help="write an ONNX model (the default)")
    e.add_argument("--torch", action="store_true", help="write a PyTorch module (.py) instead")
    e.add_argument("-o", "--output", metavar="OUT.onnx|OUT.py", help="the file to write, "
                   "in the format its suffix names (.onnx or .py, whichever flag is given); "
                   "default: SPEC with the suffix .onnx or .py; - prints PyTorch code; "
                   "never over an input")
    weights_options(e)
    input_size_option(e)
    e.add_argument("--opset", type=whole(1, 1000), default=None, metavar="N",
                   help="ONNX opset, from 13 to the newest the installed onnx knows "
                        "(default 21)")
    e.set_defaults(func="convert:cmd_export")


def _import(sub: argparse._SubParsersAction) -> None:
    m = sub.add_parser("import", help="write an ONNX model as a spec (and its weights)")
    m.add_argument("model", metavar="MODEL.onnx", help="an ONNX model (opset 13 or newer), "
                   "e.g. from torch.onnx.export")
    m.add_argument("-o", "--output", metavar="SPEC.ns", help="write the spec here (default: "
                   "print it)")
    m.add_argument("--weights-out", metavar="W.npz", help="write the weights, keyed by the "
                   "spec's layer names")
    m.set_defaults(func="convert:cmd_import")


def _train(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("train", help="train the network on data (NumPy), writing its weights")
    t.add_argument("spec", metavar="SPEC", help="a spec file, or - for stdin")
    t.add_argument("--data", required=True, metavar="DATA", help="an .npz of `x` (N×C×H×W or "
                   "N×H×W×C) and `y` (class indices), a folder with a subfolder of images per "
                   "class (netspec[images]), or `digits`: scikit-learn's 8×8 digits, offline "
                   "(netspec[train])")
    t.add_argument("--epochs", type=positive_int, default=10, metavar="N",
                   help="epochs in all (default 10)")
    t.add_argument("--batch", type=positive_int, default=32, metavar="B",
                   help="samples per step (default 32)")
    t.add_argument("--optimizer", choices=("sgd", "adam", "adamw"), default="adam",
                   help="the update rule, each as torch.optim's (default adam)")
    t.add_argument("--lr", type=real(0, 1e6, strict=True), metavar="LR",
                   help="learning rate (default 0.01 for sgd, 0.001 for adam and adamw)")
    t.add_argument("--momentum", type=real(0, 1), default=0.9, metavar="M",
                   help="sgd's momentum (default 0.9; 0 for none)")
    t.add_argument("--nesterov", action="store_true", help="sgd with Nesterov momentum")
    t.add_argument("--weight-decay", type=real(0, 1e6), metavar="WD",
                   help="weight decay (default 0; adamw 0.01, decoupled as torch's AdamW)")
    t.add_argument("--loss", choices=("cross-entropy", "mse"), default="cross-entropy",
                   help="mean cross-entropy from the logits (default), or mean squared "
                        "error against one-hot targets")
    t.add_argument("--aux-weight", type=real(0, 1e6), default=0.3, metavar="W",
                   help="each aux head's loss weight (default 0.3, GoogLeNet's)")
    start = t.add_mutually_exclusive_group()
    start.add_argument("--weights", metavar="W.npz", help="start from these weights (default: "
                       "`netspec init`'s from --seed)")
    start.add_argument("--resume", action="store_true", help="continue the run that wrote "
                       "-o OUT.npz (from OUT.state.npz beside it) up to --epochs")
    t.add_argument("--seed", type=seed, default=0, help="seed of the initial weights, the "
                   "validation split, the batch order and dropout (default 0)")
    t.add_argument("--no-shuffle", action="store_true", help="batches in file order, the last "
                   "one smaller (as torch's DataLoader without shuffle)")
    t.add_argument("--val-split", type=real(0, 1), default=0.2, metavar="F",
                   help="fraction of DATA held out for validation, a seeded random choice "
                        "(default 0.2; 0 for none)")
    t.add_argument("-o", "--output", metavar="OUT.npz", help="the weights, written after "
                   "every epoch (default: SPEC with .trained.npz; never over an input)")
    t.add_argument("--log", metavar="LOG.jsonl", help="one JSON object per epoch: epoch, "
                   "loss, accuracy, val_loss, val_accuracy, seconds")
    t.add_argument("--plot", metavar="CURVE.svg", help="loss and accuracy per epoch, training "
                   "and validation, as an SVG")
    t.add_argument("-q", "--quiet", action="store_true", help="no line per epoch (nor bar): "
                   "what was read, then the result")
    t.set_defaults(func="train:cmd_train")


def _draw(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("draw", help="draw the network as an SVG picture")
    d.add_argument("spec", metavar="SPEC", help="a spec file, or - for stdin")
    d.add_argument("-o", "--output", metavar="FILE.svg",
                   help="default: the spec's name with .svg (-filters.svg with --filters); - "
                        "for stdout (FILE.html writes the report page instead)")
    picture_options(d)
    d.add_argument("--filters", metavar="W.npz", help="draw a layer's filters with these "
                   "weights instead: each filter enlarged, on one colour scale")
    d.add_argument("--layer", metavar="NAME", help="the layer whose filters --filters draws "
                   "(default: the first conv)")
    d.set_defaults(func="pictures:cmd_draw")


def _report(sub: argparse._SubParsersAction) -> None:
    rp = sub.add_parser("report", help="write an HTML page: picture, table, warnings")
    rp.add_argument("spec", metavar="SPEC", help="a spec file, or - for stdin")
    rp.add_argument("-o", "--output", required=True, metavar="FILE.html", help="- for stdout "
                    "(FILE.svg writes the picture alone)")
    picture_options(rp)
    rp.set_defaults(func="pictures:cmd_report")

def _terminal_width() -> int:
    """argparse's width for help: COLUMNS, else the terminal's, else 80 (as shutil says, which
    argparse would import for it, and the compression modules with it)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return (columns if columns > 0 else 80) - 2


class _ArgumentParser(argparse.ArgumentParser):
    """argparse, with `did you mean` for a misspelt command (`netspec chek`)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class",
                          lambda prog: argparse.HelpFormatter(prog, width=_terminal_width()))
        super().__init__(*args, **kwargs)   # type: ignore[arg-type]

    def error(self, message: str) -> None:  # type: ignore[override]
        if "invalid choice:" in message and self._subparsers is not None:
            choices = [c for a in self._subparsers._group_actions
                       for c in (getattr(a, "choices", None) or {})]
            word = message.split("invalid choice:", 1)[1].split("'")[1:2]
            hint = did_you_mean(word[0], choices) if word else None
            if hint:
                message = f"{message}; {hint}"
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser, every command declared (the docs' CLI reference reads it)."""
    p = _ArgumentParser(prog="netspec", description="Check, run and export "
                        "convolutional network specs.")
    p.add_argument("--version", action="version", version=f"netspec {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND",
                           parser_class=_ArgumentParser)
    for declare in (_check, _explain, _sizes, _diff, _fmt, _run, _init, _bench, _train,
                    _export, _import, _draw, _report):
        declare(sub)
    return p
