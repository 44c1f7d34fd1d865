"""The commands that run a network: run, init, bench."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from math import prod
from typing import TYPE_CHECKING

from ..source.diagnostics import Diagnostic, InputError
from ..source.files import refuse_overwriting_inputs
from .common import (
    EXIT_OK,
    UsageError,
    output_format,
    print_warnings,
    read_spec,
    weights_of,
)

if TYPE_CHECKING:
    import numpy as np

    from ..backends.numpy import NumpyModel
    from ..network import Network


def cmd_init(args: argparse.Namespace) -> int:
    """`netspec init`: write initial weights for a spec."""
    from ..data.weights import save_weights
    refuse_overwriting_inputs({"-o": args.output}, {"SPEC": args.spec})
    output_format("-o", args.output, {".npz": "npz"}, "init")
    net = read_spec(args.spec)
    save_weights(args.output, net.init_weights(args.seed))
    print(f"wrote {args.output}: {len(net.weight_shapes())} arrays, "
          f"{net.total_params:,} parameters (seed {args.seed})")
    return EXIT_OK


#: Outputs of at most this many numbers are printed whole.
SHOW_VALUES = 64


def cmd_run(args: argparse.Namespace) -> int:
    """`netspec run`: one batch through the NumPy model, onnxruntime, or an .onnx file."""
    import numpy as np

    from ..source.files import atomic_write
    from ..data.images import is_image
    from ..backends.numpy import load_input
    refuse_overwriting_inputs({"-o": args.output}, {"SPEC": args.spec, "--input": args.input,
                                                   "--weights": getattr(args, "weights", None)})
    if args.output:
        output_format("-o", args.output, {".npy": "npy"}, "run")
    if not os.path.isfile(args.input):
        raise UsageError(f"no such input file: {args.input}")
    x = None if is_image(args.input) else load_input(args.input)
    if x is not None and x.ndim and x.shape[0] == 0:
        raise InputError(Diagnostic("error", "the batch is empty (N = 0): nothing to run",
                                    args.input))
    if x is not None and x.dtype.kind in ("f", "c") and not np.isfinite(x).all():
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
    _print_output(y)
    if args.output:
        atomic_write(args.output, lambda f: np.save(f, y))
        print(f"wrote {args.output}")
    return EXIT_OK


def _arrange(args: argparse.Namespace, x: np.ndarray, sample: tuple[int, ...] | None,
             name: str) -> np.ndarray:
    """The `--input` array as the model's N×C×H×W (or N×F) batch, saying which layout was
    read (N×C×H×W, N×H×W×C or one sample), with a warning when another fits as well."""
    from ..backends.numpy import arrange_batch
    if sample is not None:
        x, layout = arrange_batch(x, sample, name)
        if layout.doubt:
            print(f"{args.input}: warning: {layout.doubt}", file=sys.stderr)
        given = "N×C×H×W" if x.ndim == 4 else "N×F"
        print(f"input: {args.input} read as {layout.name}"
              + (f", given to the network as {given}" if layout.name != given else ""))
    if x.ndim and x.shape[0] == 0:
        raise InputError(Diagnostic("error", "the batch is empty (N = 0): nothing to run",
                                    args.input))
    return x


def _run_batch(args: argparse.Namespace, x: np.ndarray | None) -> np.ndarray:
    """The output of `netspec run`'s model on the array x (None: the image `--input`)."""
    if args.spec.endswith(".onnx"):
        if not os.path.isfile(args.spec):
            raise UsageError(f"no such ONNX file: {args.spec}")
        if x is None or args.maps:
            raise UsageError("images and --maps need a spec, not an .onnx file")
        from ..backends.onnx import OnnxFile
        model = OnnxFile(args.spec)
        dims = model.dims
        sample = tuple(dims[1:]) if dims is not None and len(dims) in (2, 4) and \
            None not in dims[1:] else None
        return model(_arrange(args, x, sample, args.spec))   # type: ignore[arg-type]
    net = read_spec(args.spec, input_shape=args.input_size)
    if args.input_size:
        print_warnings(net)
    if x is None:
        from ..data.images import load_image
        x, note = load_image(args.input, net.input_shape)
        if note:
            print(note)
    else:
        from ..backends.numpy import sample_shape
        x = _arrange(args, x, sample_shape(net), net.name)
    maps = _maps_paths(args, net) if args.maps else None
    if args.sample and not args.maps:
        raise UsageError("--sample chooses the sample whose maps --maps draws: give --maps too")
    weights = weights_of(net, args)
    if not getattr(args, "weights", None):
        print(f"weights: random (seed {args.seed}, as `netspec init` makes them), as no "
              f"--weights were given: the output is not a prediction")
    if maps is not None:
        _write_maps(args, net, net.numpy_model(weights), x, maps)
    if args.backend == "onnx":
        from ..backends.onnx import OnnxModel
        return OnnxModel(net, weights)(x)
    return net.numpy_model(weights)(x)


def _maps_paths(args: argparse.Namespace, net: Network) -> dict[str, str]:
    """Where `--maps` writes: DIR's PNG grids (by layer name) and its labelled page
    `maps.svg` (key ""), or only the page when --maps names an .svg; none over an input."""
    from ..data.images import map_paths
    if args.maps.lower().endswith(".svg"):
        paths = {"": args.maps}
    else:
        if os.path.exists(args.maps) and not os.path.isdir(args.maps):
            raise UsageError(f"--maps {args.maps} is a file, not a folder (or name an .svg "
                             f"file for the page of maps alone)")
        paths = {**{k: str(v) for k, v in map_paths(net, args.maps).items()},
                 "": os.path.join(args.maps, "maps.svg")}
    for path in paths.values():
        refuse_overwriting_inputs({"--maps": path}, {
            "SPEC": args.spec, "--input": args.input,
            "--weights": getattr(args, "weights", None)})
    return paths


def _write_maps(args: argparse.Namespace, net: Network, model: NumpyModel, x: np.ndarray,
                paths: dict[str, str]) -> None:
    """Sample `--sample` of the batch x, layer by layer: the PNG grids and the page."""
    from ..data.images import write_maps
    from ..picture.maps import feature_maps
    from ..source.files import atomic_write
    if args.sample >= x.shape[0]:
        raise UsageError(f"--sample {args.sample} is past the end of the batch of "
                         f"{x.shape[0]} sample{'s' * (x.shape[0] > 1)} (they count from 0)")
    activations = model.activations(x[args.sample:args.sample + 1])
    if len(paths) > 1:
        written = write_maps(net, activations, args.maps)
        print(f"wrote {len(written)} feature map grids to {args.maps}")
    page = feature_maps(net, activations, 0, f"sample {args.sample} of {args.input}")
    atomic_write(paths[""], lambda f: f.write(page.encode("utf-8")))
    print(f"wrote {paths['']}: the maps of sample {args.sample}, layer by layer, labelled")


def _print_output(y: np.ndarray) -> None:
    """Each sample's argmax (N×K outputs, 20 samples at most), and the values themselves when
    there are at most `SHOW_VALUES` of them: a row per sample, or each channel's H×W map."""
    import numpy as np
    small = y.size <= SHOW_VALUES
    cells = [_number(v) for v in y.reshape(-1)] if small else []
    width = max(map(len, cells), default=0)
    values = np.array(cells, dtype=object).reshape(y.shape) if small else None
    if y.ndim == 2:
        for i, row in enumerate(np.argmax(y, axis=1)[:20]):
            print(f"  sample {i}: argmax {row} ({y[i, row]:.4g})")
            if values is not None:
                _print_row(values[i], width)
        if y.shape[0] > 20:
            print(f"  ... {y.shape[0] - 20} more")
    elif y.ndim == 4 and values is not None:
        for i, sample in enumerate(values):
            for c, plane in enumerate(sample):
                print(f"  sample {i}, channel {c}:")
                for row in plane:
                    _print_row(row, width)
    elif values is not None:
        _print_row(values.reshape(-1), width)


def _print_row(cells: Sequence[str], width: int) -> None:
    """Numbers right-aligned in columns of `width`, indented, in lines of at most 88."""
    per_line = max(1, (88 - 4) // (width + 2))
    for start in range(0, len(cells), per_line):
        print("    " + "  ".join(c.rjust(width) for c in cells[start:start + per_line]))


def _number(v: float) -> str:
    """A value as the output prints it: 4 significant digits, no `-0`."""
    text = f"{v:.4g}"
    return "0" if text == "-0" else text


def cmd_bench(args: argparse.Namespace) -> int:
    """`netspec bench`: the NumPy model against onnxruntime (netspec.backends.bench)."""
    if args.spec is None:
        raise UsageError("say which spec to time (the whole benchmark suite is "
                         "`python bench/suite.py` in a checkout of netspec)")
    from ..backends.bench import run_bench
    from ..backends.numpy import sample_shape
    from ..data.weights import weight_bytes
    from ..source.limits import available_memory
    net = read_spec(args.spec)
    need = 4 * args.batch * prod(sample_shape(net)) + weight_bytes(net)
    have = available_memory()
    if have is not None and 2 * need > have:   # the input, weights and at least one output
        raise InputError(Diagnostic("error", f"a batch of {args.batch:,} and the weights need "
                                    f"at least {need / 2**30:,.1f} GiB twice over, but "
                                    f"{have / 2**30:,.1f} GiB of memory are available",
                                    net.filename, hint="use a smaller --batch"))
    print(run_bench(net, batch=args.batch, repeat=args.repeat or 5, seed=args.seed))
    return EXIT_OK
