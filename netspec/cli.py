"""The `netspec` command: a thin shell over the Python API.

Exit status: 0 = fine (warnings allowed), 1 = a spec (or its weights or input)
has errors, 2 = usage error (bad flag, missing file). Errors never surface as
tracebacks: they are rendered as `FILE:LINE:COL: error: ...` with the source
line and a caret. Only `run`, `init`, `export` and `bench` load NumPy/ONNX.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import os
import sys
from math import prod
from typing import TYPE_CHECKING, Any, Sequence

from . import __version__
from .source.diagnostics import Diagnostic, InputError, NetspecError, SpecError, did_you_mean
from .source.files import OutputIsInputError, Terminated, die_of, read_limited, refuse_overwriting_inputs
from .network import Library, Network, load, parse
from .source.files import decode_spec

if TYPE_CHECKING:
    import numpy as np

EXIT_OK, EXIT_SPEC, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A bad command line: exit status 2."""


def _read_spec(path: str, library: bool = False,
               input_shape: tuple[int, ...] | None = None) -> Network:
    """Load a spec from a file, a pipe or `-` (stdin); a missing file is a usage error.

    With `library`, a library file (blocks only) loads as a `Library`. `input_shape`
    (from `--input HxWxC`) replaces the size the spec's `input` gives. An `.onnx`
    file is imported in memory (see netspec.importer), without reading its weights.
    """
    if path.endswith(".onnx"):
        return _import(path, weights=False).network
    if path == "-":
        if sys.stdin is None or getattr(sys.stdin, "buffer", None) is None:
            raise UsageError("standard input is closed: nothing to read for `-`")
        try:
            text = decode_spec(read_limited(sys.stdin.buffer))
        except (OSError, ValueError) as err:
            raise SpecError(Diagnostic("error", f"cannot read spec: "
                                       f"{getattr(err, 'strerror', None) or err}", "<stdin>")
                            ) from None
        return parse(text, "<stdin>", library=library, input_shape=input_shape)
    if not os.path.exists(path):
        raise UsageError(f"no such spec file: {path}")
    if os.path.isdir(path):
        raise UsageError(f"{path} is a directory, not a spec file")
    return load(path, library=library, input_shape=input_shape)   # a file, or a pipe


def _with_suffix(spec: str, suffix: str) -> str:
    """The spec's path with `suffix` for its extension (`network` + it for stdin)."""
    return os.path.splitext(spec if spec != "-" else "network")[0] + suffix


def _import(path: str, weights: bool = True):  # -> importer.ImportedSpec
    """Import an ONNX model (see netspec.importer); a missing file is a usage error."""
    from .importer import import_onnx
    if not os.path.isfile(path):
        raise UsageError(f"no such ONNX file: {path}")
    return import_onnx(path, weights=weights)


def _partial_table(err: NetspecError) -> str | None:
    """For an ONNX model netspec cannot import: the layers read before the failing node."""
    from .kinds import shape_str
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


def _print_warnings(net: Network) -> None:
    for warning in net.warnings:
        print(warning.render(), file=sys.stderr)


def cmd_check(args: argparse.Namespace) -> int:
    """`netspec check`: every file's table (or JSON); 1 if any file has errors."""
    status = EXIT_OK
    fmt = "json" if args.json else args.format
    columns = _columns(args.columns)
    for i, path in enumerate(args.files):
        try:
            net = _read_spec(path, library=True, input_shape=args.input_size)
        except UsageError as err:   # a missing file: say so, and check the others
            print(f"netspec check: error: {err}", file=sys.stderr)
            if args.json:
                import json  # here, not at the top: `check` starts faster without it
                print(json.dumps({"network": os.path.splitext(os.path.basename(path))[0],
                                  "file": path,
                                  "errors": [Diagnostic("error", str(err), path).as_dict()]}))
            status = EXIT_USAGE
            continue
        except NetspecError as err:
            print(err.render(), file=sys.stderr)
            partial = _partial_table(err)
            if partial and not args.json:
                print(partial)
            n = len(err.errors)
            count = f"{n} errors shown, more not" if err.dropped else \
                f"{n} error{'s' if n > 1 else ''}"
            print(f"{'<stdin>' if path == '-' else path}: {count}", file=sys.stderr)
            if fmt == "json":
                import json  # here, not at the top: `check` starts faster without it
                stem = os.path.splitext(os.path.basename(path))[0]
                print(json.dumps({"network": stem, "file": path,
                                  "errors": [e.diagnostic.as_dict() for e in err.errors]}))
            status = max(status, EXIT_SPEC)
            continue
        if not args.quiet or args.strict:
            _print_warnings(net)
        if args.strict and net.warnings:
            status = max(status, EXIT_SPEC)
        memory = {"batch": args.batch, "dtype": args.dtype}
        if fmt == "json":
            import json
        if isinstance(net, Library):
            if fmt == "json":
                print(json.dumps(net.to_dict()))
            elif not args.quiet:
                print(("\n" if i else "") + net.summary())
        elif fmt == "json":
            print(json.dumps(net.to_dict(**memory, optimizer=args.optimizer)))
        elif fmt == "csv":
            from .report import csv_table
            print(("\n" if i else "") + csv_table(net, args.depth, columns, **memory))
        elif fmt == "markdown" and not args.quiet:
            from .report import markdown
            print(("\n" if i else "") + markdown(net, args.depth, columns, **memory,
                                                optimizer=args.optimizer))
        elif not args.quiet:
            print(("\n" if i else "") + net.summary(args.depth, columns=columns, **memory,
                                                   optimizer=args.optimizer))
    return status


def _columns(text: str | None) -> tuple[str, ...]:
    """`--columns kernel,stride,rf` (or `+kernel,stride` to add to the default ones)."""
    from .report import COLUMNS, DEFAULT_COLUMNS
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
    from .analysis.explain import explain
    net = _read_spec(args.spec, input_shape=args.input_size)
    _print_warnings(net)
    try:
        print(explain(net, args.layers or None))
    except KeyError as err:
        from .source.diagnostics import did_you_mean
        hint = did_you_mean(str(err.args[0]), [lay.name for lay in net.layers])
        raise UsageError(f"no layer `{err.args[0]}` in {net.name}" +
                         (f" ({hint})" if hint else "")) from None
    return EXIT_OK


def cmd_sizes(args: argparse.Namespace) -> int:
    """`netspec sizes`: which square input sizes the spec accepts, and which lose no input."""
    from .analysis.sizes import accepted_sizes, pattern
    net = _read_spec(args.spec)
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
    from .analysis.diff import diff
    a, b = _read_spec(args.first), _read_spec(args.second)
    print(diff(a, b, args.depth))
    return EXIT_OK


def cmd_fmt(args: argparse.Namespace) -> int:
    """`netspec fmt`: rewrite specs in the canonical layout, or say which would change."""
    from .language.format import format_spec, spec_files
    status, changed, same = EXIT_OK, 0, 0
    for path in spec_files(args.files):
        shown = "<stdin>" if path == "-" else path
        try:
            if path == "-":
                if sys.stdin is None or getattr(sys.stdin, "buffer", None) is None:
                    raise UsageError("standard input is closed: nothing to read for `-`")
                text = decode_spec(read_limited(sys.stdin.buffer))
            elif not os.path.isfile(path):
                raise UsageError(f"no such spec file: {path}")
            else:
                text = decode_spec(read_limited(path))
            out = format_spec(text, shown)
        except UsageError as err:
            print(f"netspec fmt: error: {err}", file=sys.stderr)
            status = EXIT_USAGE
            continue
        except (OSError, ValueError) as err:
            print(f"{shown}: error: cannot read spec: {getattr(err, 'strerror', None) or err}",
                  file=sys.stderr)
            status = max(status, EXIT_SPEC)
            continue
        except NetspecError as err:
            print(err.render(), file=sys.stderr)
            status = max(status, EXIT_SPEC)
            continue
        if path == "-" and not (args.check or args.diff):
            sys.stdout.write(out)
            continue
        if out == text:
            same += 1
            continue
        changed += 1
        if args.diff:
            import difflib
            sys.stdout.writelines(difflib.unified_diff(text.splitlines(True), out.splitlines(True),
                                                       shown, shown))
        if args.check or args.diff:
            print(f"would reformat {shown}", file=sys.stderr)
            status = max(status, EXIT_SPEC) if args.check else status
            continue
        from .source.files import atomic_write
        atomic_write(path, lambda f, out=out: f.write(out.encode("utf-8")))
        print(f"reformatted {shown}", file=sys.stderr)
    if not (len(args.files) == 1 and args.files[0] == "-"):
        verb = "would be reformatted" if args.check or args.diff else "reformatted"
        print(f"{changed} file{'s' if changed != 1 else ''} {verb}, {same} left unchanged",
              file=sys.stderr)
    return status


def _weights(net: Network, args: argparse.Namespace) -> dict[str, np.ndarray]:
    from .weights import load_weights
    if getattr(args, "weights", None):
        if not os.path.isfile(args.weights):
            raise UsageError(f"no such weights file: {args.weights}")
        return load_weights(args.weights, net)   # names and shapes checked before the data
    return net.init_weights(args.seed)


def cmd_init(args: argparse.Namespace) -> int:
    """`netspec init`: write initial weights for a spec."""
    from .weights import save_weights
    refuse_overwriting_inputs({"-o": args.output}, {"SPEC": args.spec})
    net = _read_spec(args.spec)
    save_weights(args.output, net.init_weights(args.seed))
    print(f"wrote {args.output}: {len(net.weight_shapes())} arrays, "
          f"{net.total_params:,} parameters (seed {args.seed})")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    """`netspec run`: one batch through the NumPy model, onnxruntime, or an .onnx file."""
    import numpy as np

    from .source.files import atomic_write
    from .images import is_image
    from .backends.numpy import load_input
    refuse_overwriting_inputs({"-o": args.output}, {"SPEC": args.spec, "--input": args.input,
                                                   "--weights": getattr(args, "weights", None)})
    if not os.path.isfile(args.input):
        raise UsageError(f"no such input file: {args.input}")
    x = None if is_image(args.input) else load_input(args.input)
    if x is not None and x.ndim and x.shape[0] == 0:
        raise InputError(Diagnostic("error", "the batch is empty (N = 0): nothing to run",
                                    args.input))
    if x is not None and x.dtype.kind in "fc" and not np.isfinite(x).all():
        bad = int(x.size - np.count_nonzero(np.isfinite(x)))
        print(f"{args.input}: warning: the batch holds {bad:,} NaN or infinite value"
              f"{'s' if bad > 1 else ''}; outputs that depend on them will be NaN",
              file=sys.stderr)
    try:
        with np.errstate(all="ignore"):   # reported above, not as NumPy's internal warnings
            y = _run_batch(args, x)
    except InputError as err:   # name the batch's file
        if err.filename is not None:
            raise
        raise InputError(Diagnostic("error", err.diagnostic.message, args.input,
                                    hint=err.diagnostic.hint)) from None
    print(f"output: {'×'.join(map(str, y.shape))} float32")
    if y.ndim == 2:
        for i, row in enumerate(np.argmax(y, axis=1)[:20]):
            print(f"  sample {i}: argmax {row} ({y[i, row]:.4g})")
        if y.shape[0] > 20:
            print(f"  ... {y.shape[0] - 20} more")
    if args.output:
        atomic_write(args.output, lambda f: np.save(f, y))
        print(f"wrote {args.output}")
    return EXIT_OK


def _run_batch(args: argparse.Namespace, x: np.ndarray | None) -> np.ndarray:
    """The output of `netspec run`'s model on the batch x (None: the image `--input`)."""
    if args.spec.endswith(".onnx"):
        if not os.path.isfile(args.spec):
            raise UsageError(f"no such ONNX file: {args.spec}")
        if x is None or args.maps:
            raise UsageError("images and --maps need a spec, not an .onnx file")
        from .backends.onnx import run_onnx_file
        return run_onnx_file(args.spec, x)
    net = _read_spec(args.spec, input_shape=args.input_size)
    if args.input_size:
        _print_warnings(net)
    if x is None:
        from .images import load_image
        x, note = load_image(args.input, net.input_shape)
        if note:
            print(note)
    if args.maps:
        from .images import map_paths
        if os.path.exists(args.maps) and not os.path.isdir(args.maps):
            raise UsageError(f"--maps {args.maps} is a file, not a folder")
        for path in map_paths(net, args.maps).values():
            refuse_overwriting_inputs({"--maps": path}, {
                "SPEC": args.spec, "--input": args.input,
                "--weights": getattr(args, "weights", None)})
    weights = _weights(net, args)
    if args.maps:
        from .images import write_maps
        written = write_maps(net, net.numpy_model(weights).activations(x), args.maps)
        print(f"wrote {len(written)} feature map grids to {args.maps}")
    if args.backend == "onnx":
        from .backends.onnx import OnnxModel
        return OnnxModel(net, weights)(x)
    return net.numpy_model(weights)(x)


def cmd_export(args: argparse.Namespace) -> int:
    """`netspec export [--onnx | --torch]`: the network with its weights as an .onnx file
    (the default), or as PyTorch code."""
    if args.torch:
        return _export_torch(args)
    from .backends.onnx import MIN_OPSET, newest_opset, save_onnx
    if args.opset is not None and not MIN_OPSET <= args.opset <= newest_opset():
        raise UsageError(f"--opset {args.opset} is not supported: use {MIN_OPSET} to "
                         f"{newest_opset()}")
    out = args.output or _with_suffix(args.spec, ".onnx")
    refuse_overwriting_inputs({"-o" if args.output else "the output": out},
                              {"SPEC": args.spec, "--weights": getattr(args, "weights", None)})
    net = _read_spec(args.spec, input_shape=args.input_size)
    if args.input_size:
        _print_warnings(net)
    info = save_onnx(net, _weights(net, args), out, opset=args.opset)
    print(f"wrote {out}: {len(net.layers) - 1} layers, {net.total_params:,} parameters, "
          f"opset {info['opset']}" + (f", weights in {info['external']}" if info["external"] else ""))
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    """`netspec import`: an ONNX model as a spec (and its weights)."""
    from .source.files import atomic_write
    from .weights import save_weights
    refuse_overwriting_inputs({"-o": args.output, "--weights-out": args.weights_out},
                              {"MODEL": args.model})
    if args.output and args.weights_out and os.path.realpath(args.output) == \
            os.path.realpath(args.weights_out):
        raise UsageError("the spec and the weights need two different files")
    imported = _import(args.model, weights=bool(args.weights_out))
    if not imported.names_kept:
        print(f"netspec import: note: {args.model}: the layer names could not be kept; the "
              f"spec uses netspec's default names (the weights are saved under them)",
              file=sys.stderr)
    if args.weights_out:
        save_weights(args.weights_out, imported.weights())
    if args.output:
        atomic_write(args.output, lambda f: f.write(imported.text.encode()))
        net = imported.network
        print(f"wrote {args.output}: {len(net.layers) - 1} layers, {net.total_params:,} "
              f"parameters" + (f"; weights in {args.weights_out}" if args.weights_out else ""))
    else:
        sys.stdout.write(imported.text)
    return EXIT_OK


def _export_torch(args: argparse.Namespace) -> int:
    """`netspec export --torch`: the network as a PyTorch module (no weights, no torch needed)."""
    from .source.files import atomic_write
    from .backends.torch import torch_source
    if args.onnx:
        raise UsageError("choose one format: --onnx or --torch")
    net = _read_spec(args.spec)
    source = torch_source(net)
    out = args.output or _with_suffix(args.spec, ".py")
    refuse_overwriting_inputs({"-o" if args.output else "the output": out}, {"SPEC": args.spec})
    atomic_write(out, lambda f: f.write(source.encode()))
    print(f"wrote {out}: {source.count(chr(10) + 'class ')} classes, {net.total_params:,} "
          f"parameters (load netspec's weights with load_state_dict, see its docstring)")
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    """`netspec bench`: the NumPy model against onnxruntime (see bench.py, bench_suite.py)."""
    if args.suite:
        from .bench_suite import run_suite
        run_suite(quick=args.quick, repeat=args.repeat, loaded=args.loaded)
        return EXIT_OK
    if args.spec is None:
        raise UsageError("say which spec to time, or --suite for every benchmark workload")
    from .bench import run_bench
    from .backends.numpy import sample_shape
    from .weights import available_memory, weight_bytes
    net = _read_spec(args.spec)
    need = 4 * args.batch * prod(sample_shape(net)) + weight_bytes(net)
    have = available_memory()
    if have is not None and 2 * need > have:   # the input, weights and at least one output
        raise InputError(Diagnostic("error", f"a batch of {args.batch:,} and the weights need "
                                    f"at least {need / 2**30:,.1f} GiB twice over, but "
                                    f"{have / 2**30:,.1f} GiB of memory are available",
                                    net.filename, hint="use a smaller --batch"))
    print(run_bench(net, batch=args.batch, repeat=args.repeat or 5, seed=args.seed))
    return EXIT_OK


def _picture_output(args: argparse.Namespace, suffix: str) -> str:
    """Where `draw`/`report` write: `-o`, else the spec's name with `suffix`; never the spec."""
    out = args.output or _with_suffix(args.spec, suffix)
    refuse_overwriting_inputs({"-o" if args.output else "the output": out}, {"SPEC": args.spec})
    return out


def cmd_draw(args: argparse.Namespace) -> int:
    """`netspec draw`: the network as an SVG picture (volumes or graph)."""
    from .source.files import atomic_write
    from .picture import draw
    net = _read_spec(args.spec)
    out = _picture_output(args, ".svg")
    svg = draw(net, args.style, args.depth)
    if out == "-":
        sys.stdout.write(svg)
        return EXIT_OK
    atomic_write(out, lambda f: f.write(svg.encode("utf-8")))
    print(f"wrote {out}")
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    """`netspec report`: one self-contained HTML page with the picture and the table."""
    from .source.files import atomic_write
    from .picture.html import report
    net = _read_spec(args.spec)
    out = _picture_output(args, ".html")
    page = report(net, args.style, args.depth)
    if out == "-":
        sys.stdout.write(page)
        return EXIT_OK
    atomic_write(out, lambda f: f.write(page.encode("utf-8")))
    print(f"wrote {out}")
    return EXIT_OK


def _input_size(text: str) -> tuple[int, ...]:
    """An argparse type: `HxWxC`, the input size to use instead of the spec's."""
    parts = text.lower().replace("×", "x").split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) >= 1 for p in parts):
        raise argparse.ArgumentTypeError(f"expected HxWxC, e.g. 64x64x3, not {text!r}")
    return tuple(int(p) for p in parts)


def _range(text: str) -> tuple[int, int]:
    """An argparse type: `A:B`, sizes A to B inclusive."""
    a, _, b = text.partition(":")
    if not (a.isdigit() and b.isdigit() and 1 <= int(a) <= int(b) <= 4096):
        raise argparse.ArgumentTypeError(f"expected A:B with 1 ≤ A ≤ B ≤ 4096, not {text!r}")
    return int(a), int(b)


def _whole(least: int, most: int):
    """An argparse type: a whole number (ASCII digits) from `least` to `most`."""
    def parse(text: str) -> int:
        shown = text if len(text) <= 30 else text[:27] + "..."
        if not (text.isascii() and text.isdigit()) or len(text) > len(str(most)) \
                or not least <= int(text) <= most:
            raise argparse.ArgumentTypeError(f"expected a whole number from {least} to "
                                             f"{most:,}, not {shown!r}")
        return int(text)
    return parse


_positive_int, _seed = _whole(1, 10**6), _whole(0, 2**63 - 1)
_repeats, _depth, _busy = _whole(1, 1000), _whole(1, 100), _whole(0, 64)


def _terminal_columns() -> int:
    """The terminal's width, as shutil.get_terminal_size gives it (COLUMNS, else the
    terminal's, else 80), without importing shutil and the compression modules it loads."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's layout of help, at the terminal's width.

    argparse makes one of these for every option declared; its own asks shutil
    for the width, and importing shutil costs `netspec check` ~4% of its start-up.
    """

    def __init__(self, prog: str, **kwargs: Any) -> None:
        if kwargs.get("width") is None:
            kwargs["width"] = _terminal_columns() - 2
        super().__init__(prog, **kwargs)


class _ArgumentParser(argparse.ArgumentParser):
    """argparse, with `did you mean` for a misspelt command (`netspec chek`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        if "invalid choice:" in message and self._subparsers is not None:
            choices = [c for a in self._subparsers._group_actions
                       for c in (getattr(a, "choices", None) or {})]
            word = message.split("invalid choice:", 1)[1].split("'")[1:2]
            hint = did_you_mean(word[0], choices) if word else None
            if hint:
                message = f"{message}; {hint}"
        super().error(message)


class _NotRun:
    """The parser of a command that is not being run: takes every declaration, keeps none."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: self


class _OnlyCommand:
    """`add_subparsers()`, declaring only `command`'s parser (every one when it is None).

    Each argparse parser costs start-up time, so `netspec check` declares only
    check's options; help and a misspelt command need them all.
    """

    def __init__(self, subparsers: Any, command: str | None) -> None:
        self.subparsers = subparsers
        self.command = command
        self.found = command is None

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        if self.command is not None and name != self.command:
            return _NotRun()
        self.found = True
        return self.subparsers.add_parser(name, **kwargs)


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser; with `command`, only that command's options are declared
    (every command's when it names none of them)."""
    p = _ArgumentParser(prog="netspec", description="Check, run and export "
                        "convolutional network specs.")
    p.add_argument("--version", action="version", version=f"netspec {__version__}")
    sub = _OnlyCommand(p.add_subparsers(dest="command", required=True, metavar="COMMAND"),
                       command)

    def input_size_option(q: argparse.ArgumentParser, *, short: bool = True) -> None:
        names = ("--input", "--input-size") if short else ("--input-size",)
        q.add_argument(*names, dest="input_size", type=_input_size, metavar="HxWxC",
                       help="use this input size instead of the spec's")

    c = sub.add_parser("check", help="check specs and print shapes and parameter counts")
    c.add_argument("files", nargs="+", metavar="FILE", help="spec files, or - for stdin")
    c.add_argument("--json", action="store_true", help="print one JSON object per file")
    c.add_argument("--strict", action="store_true", help="treat warnings as errors")
    c.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    c.add_argument("--depth", type=_depth, metavar="N",
                   help="one row per name prefix of N parts (layer1, layer1.0, ...), 1 to 100")
    c.add_argument("--format", choices=("table", "json", "markdown", "csv"), default="table",
                   help="how to print each table (--json is --format json)")
    c.add_argument("--columns", metavar="A,B,...",
                   help="the table's columns (or +A,B to add to the default ones): "
                        "text, output, activations, params, params%%, non-trainable, macs, "
                        "flops, rf, jump, centre, kernel, stride, padding, dilation, groups, "
                        "memory")
    c.add_argument("--batch", type=_positive_int, default=1, metavar="N",
                   help="batch size for the memory figures (default 1)")
    c.add_argument("--dtype", choices=("float32", "float16", "bfloat16", "int8"),
                   default="float32", help="bytes per value of weights and activations")
    c.add_argument("--optimizer", choices=("sgd", "momentum", "adam"), default="adam",
                   help="optimizer state in the training memory (default adam)")
    input_size_option(c)
    c.set_defaults(func=cmd_check)

    x = sub.add_parser("explain", help="show each layer's arithmetic with its numbers")
    x.add_argument("spec", metavar="SPEC", help="a spec file, or - for stdin")
    x.add_argument("layers", nargs="*", metavar="LAYER", help="layers (or name prefixes) to "
                   "explain; default all")
    input_size_option(x)
    x.set_defaults(func=cmd_explain)

    z = sub.add_parser("sizes", help="which input sizes a spec accepts")
    z.add_argument("spec", metavar="SPEC", help="a spec file, or - for stdin")
    z.add_argument("--range", type=_range, metavar="A:B", help="sizes to try (default 1 to "
                   "twice the written size)")
    z.set_defaults(func=cmd_sizes)

    f = sub.add_parser("fmt", help="format specs in netspec's one layout (in place)")
    f.add_argument("files", nargs="+", metavar="FILE", help="spec files or folders of them, "
                   "or - to format stdin to stdout")
    f.add_argument("--check", action="store_true", help="change nothing; list the files that "
                   "would change and exit 1 if any would")
    f.add_argument("--diff", action="store_true", help="change nothing; print what would "
                   "change as a unified diff")
    f.set_defaults(func=cmd_fmt)

    df = sub.add_parser("diff", help="compare two specs layer by layer")
    df.add_argument("first", metavar="A", help="a spec file")
    df.add_argument("second", metavar="B", help="a spec file")
    df.add_argument("--depth", type=_depth, metavar="N",
                    help="compare groups of N name parts")
    df.set_defaults(func=cmd_diff)

    def weights_options(q: argparse.ArgumentParser) -> None:
        g = q.add_mutually_exclusive_group()
        g.add_argument("--weights", metavar="W.npz", help="weights saved by `netspec init` "
                       "or from a PyTorch state_dict")
        g.add_argument("--seed", type=_seed, default=0, help="initialise weights from this seed, "
                       "a whole number ≥ 0 (default 0)")

    r = sub.add_parser("run", help="run a batch through the network")
    r.add_argument("spec", metavar="SPEC", help="a spec file, or an .onnx file exported by netspec")
    r.add_argument("--input", required=True, metavar="X.npy", help="input batch, N×C×H×W float32, "
                   "or a PNG/JPEG image (resized to the spec's input; needs netspec[images])")
    weights_options(r)
    input_size_option(r, short=False)
    r.add_argument("--backend", choices=("numpy", "onnx"), default="numpy",
                   help="run the NumPy model or the exported model on onnxruntime "
                        "(default numpy)")
    r.add_argument("-o", "--output", metavar="Y.npy", help="also write the output batch here "
                   "(never over an input)")
    r.add_argument("--maps", metavar="DIR", help="write each layer's output for the first sample "
                   "as a PNG grid, one tile per channel")
    r.set_defaults(func=cmd_run)

    i = sub.add_parser("init", help="write initial weights")
    i.add_argument("spec", metavar="SPEC", help="a spec file, or - for stdin")
    i.add_argument("-o", "--output", required=True, metavar="W.npz",
                   help="the weights file to write (never over an input)")
    i.add_argument("--seed", type=_seed, default=0, help="random seed, a whole number ≥ 0 "
                   "(default 0): He-normal weights, zero biases")
    i.set_defaults(func=cmd_init)

    e = sub.add_parser("export", help="export the network with its weights (ONNX), or as "
                       "PyTorch code")
    e.add_argument("spec", metavar="SPEC", help="a spec file, or - for stdin")
    e.add_argument("--onnx", action="store_true", help="write an ONNX model (the default)")
    e.add_argument("--torch", action="store_true", help="write a PyTorch module (.py) instead")
    e.add_argument("-o", "--output", metavar="OUT.onnx|OUT.py", help="the file to write "
                   "(default: SPEC with the suffix .onnx or .py; never over an input)")
    weights_options(e)
    input_size_option(e)
    e.add_argument("--opset", type=_whole(1, 1000), default=None, metavar="N",
                   help="ONNX opset, from 13 to the newest the installed onnx knows "
                        "(default 21)")
    e.set_defaults(func=cmd_export)

    m = sub.add_parser("import", help="write an ONNX model as a spec (and its weights)")
    m.add_argument("model", metavar="MODEL.onnx", help="an ONNX model (opset 13 or newer), "
                   "e.g. from torch.onnx.export")
    m.add_argument("-o", "--output", metavar="SPEC.ns", help="write the spec here (default: "
                   "print it)")
    m.add_argument("--weights-out", metavar="W.npz", help="write the weights, keyed by the "
                   "spec's layer names")
    m.set_defaults(func=cmd_import)

    b = sub.add_parser("bench", help="time the NumPy model against onnxruntime")
    b.add_argument("spec", metavar="SPEC", nargs="?", help="a spec file")
    b.add_argument("--batch", type=_positive_int, default=32, metavar="N",
                   help="samples per batch, 1 to 1,000,000 (default 32)")
    b.add_argument("--repeat", type=_repeats, default=None, metavar="N",
                   help="timed runs per backend, the best is reported, 1 to 1,000 (default 5; "
                        "with --suite 7, or 3 with --quick)")
    b.add_argument("--suite", action="store_true",
                   help="every benchmark workload against its peers, and start-up")
    b.add_argument("--quick", action="store_true", help="with --suite: 3 repeats")
    b.add_argument("--loaded", type=_busy, default=0, metavar="N",
                   help="with --suite: run the workloads beside N busy processes, 0 to 64 "
                        "(a loaded machine; default 0)")
    b.add_argument("--seed", type=_seed, default=0, metavar="N",
                   help="seed of the random weights and batch, a whole number ≥ 0 "
                        "(default 0)")
    b.set_defaults(func=cmd_bench)

    def picture_options(q: argparse.ArgumentParser) -> None:
        q.add_argument("--style", choices=("volumes", "graph"), default=None,
                       help="3-D volumes in a row (default for plain sequences) or a "
                            "top-down graph (default where paths fork)")
        q.add_argument("--depth", type=_depth, metavar="N",
                       help="draw layers whose names share their first N parts as one box")

    d = sub.add_parser("draw", help="draw the network as an SVG picture")
    d.add_argument("spec", metavar="SPEC", help="a spec file, or - for stdin")
    d.add_argument("-o", "--output", metavar="FILE.svg",
                   help="default: the spec's name with .svg; - for stdout")
    picture_options(d)
    d.set_defaults(func=cmd_draw)

    rp = sub.add_parser("report", help="write an HTML page: picture, table, warnings")
    rp.add_argument("spec", metavar="SPEC", help="a spec file, or - for stdin")
    rp.add_argument("-o", "--output", required=True, metavar="FILE.html", help="- for stdout")
    picture_options(rp)
    rp.set_defaults(func=cmd_report)
    return p if sub.found else _parser()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `netspec` command; returns the exit status.

    Run as the command itself (no `argv`), it leaves what it made to the end of
    the process: Python's last collection of all those objects would cost as
    much as a small check, so they are frozen out of it (gc.freeze) at exit; and
    `check`, whose work is bounded by its files, runs without the cyclic collector
    throughout, as `parse` does.
    """
    if argv is None:
        atexit.register(gc.freeze)
    words = sys.argv[1:] if argv is None else argv
    # the first word that is not an option names the command (the top level has no values)
    parser = _parser(next((w for w in words if not w.startswith("-")), None))
    args = parser.parse_args(argv)
    if argv is None and args.command == "check":
        gc.disable()
    try:
        return args.func(args)
    except UsageError as err:
        print(f"netspec {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except NetspecError as err:
        print(err.render(), file=sys.stderr)
        return EXIT_SPEC
    except OutputIsInputError as err:
        print(f"netspec {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as err:   # an output path that cannot be written, a full disk...
        where = f": {err.filename}" if err.filename else ""
        print(f"netspec {args.command}: error: {err.strerror or err}{where}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError:
        print(f"netspec {args.command}: error: out of memory", file=sys.stderr)
        return EXIT_SPEC
    except KeyboardInterrupt:
        return 130
    except Terminated as signal:   # its temporary files are gone: now end as the signal asks
        die_of(signal.signum)
        return 128 + signal.signum
