"""The commands that move a network between formats: export (ONNX, PyTorch) and import."""

from __future__ import annotations

import argparse
import os
import sys

from ..source.files import atomic_write, refuse_overwriting_inputs
from .common import (
    EXIT_OK,
    UsageError,
    import_model,
    output_format,
    print_warnings,
    read_spec,
    weights_of,
    with_suffix,
)


#: The suffixes export writes, and what it writes there.
EXPORT_FORMATS = {".onnx": "onnx", ".py": "torch"}


def cmd_export(args: argparse.Namespace) -> int:
    """`netspec export [--onnx | --torch]`: the network with its weights as an .onnx file
    (the default), or as PyTorch code. The output's suffix names the format: `-o x.onnx`
    is ONNX and `-o x.py` PyTorch code, whichever flag was given (a note says so when
    they disagree); any other suffix is refused before anything is written."""
    if args.torch and args.onnx:
        raise UsageError("choose one format: --onnx or --torch")
    flag = "torch" if args.torch else "onnx" if args.onnx else None
    out = args.output or with_suffix(args.spec, ".py" if flag == "torch" else ".onnx")
    if out == "-":
        if flag == "onnx":
            raise UsageError("-o - prints PyTorch code; an ONNX model is binary: name a file "
                             ".onnx")
        return _export_torch(args, out)
    refuse_overwriting_inputs({"-o" if args.output else "the output": out},
                              {"SPEC": args.spec, "--weights": getattr(args, "weights", None)})
    form = output_format("-o", out, EXPORT_FORMATS, "export")
    if flag is not None and flag != form:
        named, written, other = ("an ONNX model", "an ONNX model", "PyTorch code") \
            if form == "onnx" else ("Python code", "PyTorch code", "an ONNX model")
        print(f"netspec export: note: {out} names {named}, so {written} is written, not "
              f"{other} as --{flag} asks (name the output {'.py' if flag == 'torch' else '.onnx'}"
              f" for that)", file=sys.stderr)
    if form == "torch":
        return _export_torch(args, out)
    from ..backends.onnx import MIN_OPSET, newest_opset, save_onnx
    if args.opset is not None and not MIN_OPSET <= args.opset <= newest_opset():
        raise UsageError(f"--opset {args.opset} is not supported: use {MIN_OPSET} to "
                         f"{newest_opset()}")
    net = read_spec(args.spec, input_shape=args.input_size)
    if args.input_size:
        print_warnings(net)
    info = save_onnx(net, weights_of(net, args), out, opset=args.opset)
    print(f"wrote {out}: {len(net.layers) - 1} layers, {net.total_params:,} parameters, "
          f"opset {info['opset']}" + (f", weights in {info['external']}" if info["external"] else ""))
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    """`netspec import`: an ONNX model as a spec (and its weights)."""
    from ..data.weights import save_weights
    refuse_overwriting_inputs({"-o": args.output, "--weights-out": args.weights_out},
                              {"MODEL": args.model})
    if args.output and args.weights_out and os.path.realpath(args.output) == \
            os.path.realpath(args.weights_out):
        raise UsageError("the spec and the weights need two different files")
    if args.output:
        output_format("-o", args.output, {".ns": "spec"}, "import")
    if args.weights_out:
        output_format("--weights-out", args.weights_out, {".npz": "npz"}, "import")
    imported = import_model(args.model, weights=bool(args.weights_out))
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


def _export_torch(args: argparse.Namespace, out: str) -> int:
    """`netspec export --torch`: the network as a PyTorch module (no weights, no torch
    needed), written to `out` (checked by cmd_export) or printed (`-`)."""
    from ..backends.torch import torch_source
    net = read_spec(args.spec)
    source = torch_source(net)
    if out == "-":
        sys.stdout.write(source)
        return EXIT_OK
    atomic_write(out, lambda f: f.write(source.encode()))
    classes = source.count("\nclass ")
    print(f"wrote {out}: {classes} class{'es' if classes != 1 else ''}, {net.total_params:,} "
          f"parameters (load netspec's weights with load_state_dict, see its docstring)")
    return EXIT_OK
