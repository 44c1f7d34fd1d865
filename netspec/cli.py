"""The `netspec` command: a thin shell over the Python API.

Exit status: 0 = fine (warnings allowed), 1 = a spec (or its weights or input)
has errors, 2 = usage error (bad flag, missing file). Errors never surface as
tracebacks: they are rendered as `FILE:LINE:COL: error: ...` with the source
line and a caret. Only `run`, `init`, `export` and `bench` load NumPy/ONNX.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from . import __version__
from .errors import NetspecError
from .network import Library, Network, load, parse

if TYPE_CHECKING:
    import numpy as np

EXIT_OK, EXIT_SPEC, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A bad command line: exit status 2."""


def _read_spec(path: str, library: bool = False) -> Network:
    """Load a spec from a file or `-` (stdin); a missing file is a usage error.

    With `library`, a library file (blocks only) loads as a `Library`.
    """
    if path == "-":
        return parse(sys.stdin.read(), "<stdin>", library=library)
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"no such spec file: {path}")
    return load(p, library=library)


def _print_warnings(net: Network) -> None:
    for warning in net.warnings:
        print(warning.render(), file=sys.stderr)


def cmd_check(args: argparse.Namespace) -> int:
    """`netspec check`: every file's table (or JSON); 1 if any file has errors."""
    status = EXIT_OK
    for i, path in enumerate(args.files):
        try:
            net = _read_spec(path, library=True)
        except NetspecError as err:
            print(err.render(), file=sys.stderr)
            n = len(err.errors)
            print(f"{'<stdin>' if path == '-' else path}: {n} error{'s' if n > 1 else ''}",
                  file=sys.stderr)
            if args.json:
                print(json.dumps({"network": Path(path).stem, "file": path,
                                  "errors": [e.diagnostic.as_dict() for e in err.errors]}))
            status = EXIT_SPEC
            continue
        if not args.quiet or args.strict:
            _print_warnings(net)
        if args.strict and net.warnings:
            status = EXIT_SPEC
        if args.json:
            print(json.dumps(net.to_dict()))
        elif not args.quiet:
            print(("\n" if i else "") + (net.summary() if isinstance(net, Library)
                                          else net.summary(args.depth)))
    return status


def _weights(net: Network, args: argparse.Namespace) -> dict[str, np.ndarray]:
    from .weights import load_weights
    if getattr(args, "weights", None):
        if not Path(args.weights).is_file():
            raise UsageError(f"no such weights file: {args.weights}")
        return net.check_weights(load_weights(args.weights))
    return net.init_weights(args.seed)


def cmd_init(args: argparse.Namespace) -> int:
    """`netspec init`: write initial weights for a spec."""
    from .weights import save_weights
    net = _read_spec(args.spec)
    save_weights(args.output, net.init_weights(args.seed))
    print(f"wrote {args.output}: {len(net.weight_shapes())} arrays, "
          f"{net.total_params:,} parameters (seed {args.seed})")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    """`netspec run`: one batch through the NumPy model, onnxruntime, or an .onnx file."""
    import numpy as np

    from .files import atomic_write
    from .numpy_backend import load_input
    if not Path(args.input).is_file():
        raise UsageError(f"no such input file: {args.input}")
    x = load_input(args.input)
    if args.spec.endswith(".onnx"):
        if not Path(args.spec).is_file():
            raise UsageError(f"no such ONNX file: {args.spec}")
        from .onnx_export import run_onnx_file
        y = run_onnx_file(args.spec, x)
    else:
        net = _read_spec(args.spec)
        weights = _weights(net, args)
        if args.backend == "onnx":
            from .onnx_export import OnnxModel
            y = OnnxModel(net, weights)(x)
        else:
            y = net.numpy_model(weights)(x)
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


def cmd_export(args: argparse.Namespace) -> int:
    """`netspec export --onnx`: the network with its weights as an .onnx file."""
    from .onnx_export import MIN_OPSET, newest_opset, save_onnx
    if not args.onnx:
        raise UsageError("say which format to export: --onnx")
    if args.opset is not None and not MIN_OPSET <= args.opset <= newest_opset():
        raise UsageError(f"--opset {args.opset} is not supported: use {MIN_OPSET} to "
                         f"{newest_opset()}")
    net = _read_spec(args.spec)
    out = args.output or str(Path(args.spec if args.spec != "-" else "network").with_suffix(".onnx"))
    info = save_onnx(net, _weights(net, args), out, opset=args.opset)
    print(f"wrote {out}: {len(net.layers) - 1} layers, {net.total_params:,} parameters, "
          f"opset {info['opset']}" + (f", weights in {info['external']}" if info["external"] else ""))
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    """`netspec bench`: the NumPy model against onnxruntime (see bench.py)."""
    from .bench import run_bench
    net = _read_spec(args.spec)
    print(run_bench(net, batch=args.batch, repeat=args.repeat, seed=args.seed))
    return EXIT_OK


def _whole(least: int):
    """An argparse type: a whole number of at least `least`."""
    def parse(text: str) -> int:
        if not text.isdigit() or int(text) < least:
            raise argparse.ArgumentTypeError(f"expected a whole number ≥ {least}, not {text!r}")
        return int(text)
    return parse


_positive_int, _seed = _whole(1), _whole(0)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="netspec", description="Check, run and export "
                                "convolutional network specs.")
    p.add_argument("--version", action="version", version=f"netspec {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("check", help="check specs and print shapes and parameter counts")
    c.add_argument("files", nargs="+", metavar="FILE", help="spec files, or - for stdin")
    c.add_argument("--json", action="store_true", help="print one JSON object per file")
    c.add_argument("--strict", action="store_true", help="treat warnings as errors")
    c.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    c.add_argument("--depth", type=_positive_int, metavar="N",
                   help="one row per name prefix of N parts (layer1, layer1.0, ...)")
    c.set_defaults(func=cmd_check)

    def weights_options(q: argparse.ArgumentParser) -> None:
        g = q.add_mutually_exclusive_group()
        g.add_argument("--weights", metavar="W.npz", help="weights saved by `netspec init` "
                       "or from a PyTorch state_dict")
        g.add_argument("--seed", type=_seed, default=0, help="initialise weights from this seed "
                       "(default 0)")

    r = sub.add_parser("run", help="run a batch through the network")
    r.add_argument("spec", metavar="SPEC", help="a spec file, or an .onnx file exported by netspec")
    r.add_argument("--input", required=True, metavar="X.npy", help="input batch, N×C×H×W float32")
    weights_options(r)
    r.add_argument("--backend", choices=("numpy", "onnx"), default="numpy")
    r.add_argument("-o", "--output", metavar="Y.npy", help="write the output here")
    r.set_defaults(func=cmd_run)

    i = sub.add_parser("init", help="write initial weights")
    i.add_argument("spec", metavar="SPEC")
    i.add_argument("-o", "--output", required=True, metavar="W.npz")
    i.add_argument("--seed", type=_seed, default=0)
    i.set_defaults(func=cmd_init)

    e = sub.add_parser("export", help="export the network with its weights")
    e.add_argument("spec", metavar="SPEC")
    e.add_argument("--onnx", action="store_true", help="write an ONNX model")
    e.add_argument("-o", "--output", metavar="OUT.onnx")
    weights_options(e)
    e.add_argument("--opset", type=int, default=None, help="ONNX opset (13 or newer)")
    e.set_defaults(func=cmd_export)

    b = sub.add_parser("bench", help="time the NumPy model against onnxruntime")
    b.add_argument("spec", metavar="SPEC")
    b.add_argument("--batch", type=_positive_int, default=32)
    b.add_argument("--repeat", type=_positive_int, default=5)
    b.add_argument("--seed", type=_seed, default=0)
    b.set_defaults(func=cmd_bench)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `netspec` command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as err:
        print(f"netspec {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except NetspecError as err:
        print(err.render(), file=sys.stderr)
        return EXIT_SPEC
    except OSError as err:   # an output path that cannot be written, a full disk...
        where = f": {err.filename}" if err.filename else ""
        print(f"netspec {args.command}: error: {err.strerror or err}{where}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
