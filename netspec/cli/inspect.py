"""The commands that read a spec and show what it computes: check, explain, sizes, diff."""

from __future__ import annotations

import argparse
import os
import sys

from ..network import Library
from ..source.diagnostics import Diagnostic, NetspecError
from .common import (
    EXIT_OK,
    EXIT_SPEC,
    EXIT_USAGE,
    UsageError,
    print_warnings,
    read_spec,
)


def partial_table(err: NetspecError) -> str | None:
    """For an ONNX model netspec cannot import: the layers read before the failing node."""
    from ..kinds.base import shape_str
    layers = getattr(err, "partial", None)
    if not layers:
        return None
    rows = [("layer", "as written", "output")]
    rows += [(layer.name or layer.node or f"({layer.kind})", layer.statement(),
              shape_str(layer.shape)) for layer in layers]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("─" * w for w in widths))
    return "imported up to there:\n" + "\n".join(lines)


def _json(value: object) -> str:
    """One JSON line. json is imported here, not at the top: the table, check's usual
    output, is printed faster without it (5 M instructions, 2 % of a small check)."""
    import json
    return json.dumps(value)


def cmd_check(args: argparse.Namespace) -> int:
    """`netspec check`: every file's table (or JSON); 1 if any file has errors."""
    status = EXIT_OK
    fmt = "json" if args.json else args.format
    columns = _columns(args.columns)
    for i, path in enumerate(args.files):
        try:
            net = read_spec(path, library=True, input_shape=args.input_size)
        except UsageError as err:   # a missing file: say so, and check the others
            print(f"netspec check: error: {err}", file=sys.stderr)
            if args.json:
                print(_json({"network": os.path.splitext(os.path.basename(path))[0],
                                  "file": path,
                                  "errors": [Diagnostic("error", str(err), path).as_dict()]}))
            status = EXIT_USAGE
            continue
        except NetspecError as err:
            print(err.render(), file=sys.stderr)
            partial = partial_table(err)
            if partial and not args.json:
                print(partial)
            n = len(err.errors)
            count = f"{n} errors shown, more not" if err.dropped else \
                f"{n} error{'s' if n > 1 else ''}"
            print(f"{'<stdin>' if path == '-' else path}: {count}", file=sys.stderr)
            if fmt == "json":
                stem = os.path.splitext(os.path.basename(path))[0]
                print(_json({"network": stem, "file": path,
                                  "errors": [e.diagnostic.as_dict() for e in err.errors]}))
            status = max(status, EXIT_SPEC)
            continue
        if not args.quiet or args.strict:
            print_warnings(net)
        if args.strict and net.warnings:
            status = max(status, EXIT_SPEC)
        memory = {"batch": args.batch, "dtype": args.dtype}
        if isinstance(net, Library):
            if fmt == "json":
                print(_json(net.to_dict()))
            elif not args.quiet:
                print(("\n" if i else "") + net.summary())
        elif fmt == "json":
            print(_json(net.to_dict(**memory, optimizer=args.optimizer)))
        elif fmt == "csv":
            from ..tables import csv_table
            print(("\n" if i else "") + csv_table(net, args.depth, columns, **memory))
        elif fmt == "markdown" and not args.quiet:
            from ..tables import markdown
            print(("\n" if i else "") + markdown(net, args.depth, columns, **memory,
                                                optimizer=args.optimizer))
        elif not args.quiet:
            print(("\n" if i else "") + net.summary(args.depth, columns=columns, **memory,
                                                   optimizer=args.optimizer))
    return status


def _columns(text: str | None) -> tuple[str, ...]:
    """`--columns kernel,stride,rf` (or `+kernel,stride` to add to the default ones)."""
    from ..tables import COLUMNS, DEFAULT_COLUMNS
    if not text:
        return DEFAULT_COLUMNS
    extra = text.startswith("+")
    names = [c.strip().lower() for c in text.lstrip("+").split(",") if c.strip()]
    aliases = {"as-written": "text", "params %": "params%", "params-%": "params%",
               "mac": "macs", "flop": "flops", "receptive-field": "rf"}
    names = [aliases.get(c, c) for c in names]
    unknown = [c for c in names if c not in COLUMNS]
    if unknown:
        raise UsageError(f"unknown column `{unknown[0]}` in --columns: choose from "
                         f"{', '.join(COLUMNS)}")
    if extra:
        return (*DEFAULT_COLUMNS, *(c for c in names if c not in DEFAULT_COLUMNS))
    return tuple(names) if "layer" in names else ("layer", *names)


def cmd_explain(args: argparse.Namespace) -> int:
    """`netspec explain`: each layer's arithmetic with the numbers filled in."""
    from ..analysis.explain import explain
    net = read_spec(args.spec, input_shape=args.input_size)
    print_warnings(net)
    try:
        print(explain(net, args.layers or None))
    except KeyError as err:
        from ..source.diagnostics import did_you_mean
        hint = did_you_mean(str(err.args[0]), [lay.name for lay in net.layers])
        raise UsageError(f"no layer `{err.args[0]}` in {net.name}" +
                         (f" ({hint})" if hint else "")) from None
    return EXIT_OK


def cmd_sizes(args: argparse.Namespace) -> int:
    """`netspec sizes`: which square input sizes the spec accepts, and which lose no input."""
    from ..analysis.sizes import accepted_sizes, pattern
    net = read_spec(args.spec)
    if len(net.input_shape) != 3:
        raise UsageError(f"{net.name} takes a vector of {net.input_shape[0]} values: "
                         f"it has no spatial input size")
    lo, hi = args.range or (1, max(2 * max(net.input_shape[:2]), 64))
    s = accepted_sizes(net, lo, hi)
    c = s.channels
    print(f"{net.name}: input sizes n×n×{c} for n = {lo}…{hi} (written: "
          f"{'×'.join(map(str, net.input_shape))})")
    print(f"  accepted:        {pattern(s.accepted, hi)}")
    print(f"  lose no input:   {pattern(s.lossless, hi)}")
    if s.accepted:
        print(f"  smallest:        {s.accepted[0]}×{s.accepted[0]}×{c}"
              + (f" (without losing input: {s.lossless[0]}×{s.lossless[0]}×{c})"
                 if s.lossless and s.lossless[0] != s.accepted[0] else ""))
    for name, written in s.fc_fixed.items():
        print(f"  note: `{name}` is fully connected over a volume ({written}), so it fixes the "
              f"input size: only {pattern(s.same_fc, hi)} keep the network as written; other "
              f"sizes change its parameters")
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    """`netspec diff A B`: what changed per layer (or group) between two specs."""
    from ..analysis.diff import diff
    a, b = read_spec(args.first), read_spec(args.second)
    print(diff(a, b, args.depth))
    return EXIT_OK
