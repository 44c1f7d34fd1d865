"""The commands that draw a network: draw (SVG) and report (an HTML page); and
`draw --filters`, a layer's learnt filters.

Each writes the format its output's suffix names: `draw -o net.html` writes the report
page, `report -o net.svg` the picture; any other suffix (`.png`) is refused before
anything is written.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..source.files import atomic_write, refuse_overwriting_inputs
from .common import EXIT_OK, UsageError, output_format, read_spec, with_suffix

#: The suffixes draw and report write, and what they write there.
PICTURE_FORMATS = {".svg": "svg", ".html": "html", ".htm": "html"}
ADVICE = "name the output .svg and convert the picture (a browser, Inkscape or rsvg-convert)"


def picture_output(args: argparse.Namespace, suffix: str) -> tuple[str, str]:
    """Where `draw`/`report` write (`-o`, else the spec's name with `suffix`; never the
    spec), and the format its suffix names: svg or html (`-`: the command's own)."""
    out = args.output or with_suffix(args.spec, suffix)
    refuse_overwriting_inputs({"-o" if args.output else "the output": out}, {"SPEC": args.spec})
    if out == "-":
        return out, PICTURE_FORMATS[suffix]
    return out, output_format("-o", out, PICTURE_FORMATS, args.command, ADVICE)


def cmd_draw(args: argparse.Namespace) -> int:
    """`netspec draw`: the network as an SVG picture (volumes or graph), or with
    `--filters W.npz` the filters of one of its layers."""
    if args.filters:
        return _draw_filters(args)
    if args.layer:
        raise UsageError("--layer names the layer whose filters --filters draws: give "
                         "--filters W.npz too")
    out, form = picture_output(args, ".svg")
    return _write(args, out, form)


def _draw_filters(args: argparse.Namespace) -> int:
    """`netspec draw SPEC --filters W.npz [--layer NAME]`: a layer's filters (SVG)."""
    if args.style or args.depth:
        raise UsageError("--style and --depth draw the network; --filters draws a layer's "
                         "filters: give one or the other")
    out = args.output or with_suffix(args.spec, "-filters.svg")
    refuse_overwriting_inputs({"-o" if args.output else "the output": out},
                              {"SPEC": args.spec, "--filters": args.filters})
    if out != "-":
        output_format("-o", out, {".svg": "svg"}, "draw --filters", ADVICE)
    if not os.path.isfile(args.filters):
        raise UsageError(f"no such weights file: {args.filters}")
    from ..data.weights import load_weights
    from ..picture.filters import filters
    net = read_spec(args.spec)
    weights = load_weights(args.filters, net)
    try:
        svg = filters(net, weights, args.layer, source=args.filters)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if out == "-":
        sys.stdout.write(svg)
        return EXIT_OK
    atomic_write(out, lambda f: f.write(svg.encode("utf-8")))
    print(f"wrote {out}")
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    """`netspec report`: one self-contained HTML page with the picture and the table."""
    out, form = picture_output(args, ".html")
    return _write(args, out, form)


def _write(args: argparse.Namespace, out: str, form: str) -> int:
    """Draw the spec as `form` (svg: the picture; html: the report page) into `out`."""
    net = read_spec(args.spec)
    if form == "svg":
        from ..picture import draw
        text = draw(net, args.style, args.depth)
    else:
        from ..picture.report import report
        text = report(net, args.style, args.depth)
    if out == "-":
        sys.stdout.write(text)
        return EXIT_OK
    atomic_write(out, lambda f: f.write(text.encode("utf-8")))
    print(f"wrote {out}" + ("" if (form == "svg") == (args.command == "draw") else
                            f" ({'the report page' if form == 'html' else 'the picture'}, "
                            f"as its suffix says)"))
    return EXIT_OK
