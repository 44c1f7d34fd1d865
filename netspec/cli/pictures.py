"""The commands that draw a network: draw (SVG) and report (an HTML page)."""

from __future__ import annotations

import argparse
import sys

from ..source.files import atomic_write, refuse_overwriting_inputs
from .common import EXIT_OK, read_spec, with_suffix


def picture_output(args: argparse.Namespace, suffix: str) -> str:
    """Where `draw`/`report` write: `-o`, else the spec's name with `suffix`; never the spec."""
    out = args.output or with_suffix(args.spec, suffix)
    refuse_overwriting_inputs({"-o" if args.output else "the output": out}, {"SPEC": args.spec})
    return out


def cmd_draw(args: argparse.Namespace) -> int:
    """`netspec draw`: the network as an SVG picture (volumes or graph)."""
    from ..picture import draw
    net = read_spec(args.spec)
    out = picture_output(args, ".svg")
    svg = draw(net, args.style, args.depth)
    if out == "-":
        sys.stdout.write(svg)
        return EXIT_OK
    atomic_write(out, lambda f: f.write(svg.encode("utf-8")))
    print(f"wrote {out}")
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    """`netspec report`: one self-contained HTML page with the picture and the table."""
    from ..picture.report import report
    net = read_spec(args.spec)
    out = picture_output(args, ".html")
    page = report(net, args.style, args.depth)
    if out == "-":
        sys.stdout.write(page)
        return EXIT_OK
    atomic_write(out, lambda f: f.write(page.encode("utf-8")))
    print(f"wrote {out}")
    return EXIT_OK
