"""`netspec import`: an ONNX model as a spec plus its weights, checked before it is returned.

netspec.interop reads the graph into layers (interop.onnx) and writes them as a spec
tree (interop.spec), which the one printer writes as text; here that text is parsed
back and compared with the model layer by layer (kind, name, output shape), so that
an import is either the same network or an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .interop.onnx import Imported, OnnxImportError, load_onnx, read_onnx
from .kinds import Add, Layer, Multiply
from .interop.spec import NameClash, write_spec
from .language.printer import print_spec
from .network import Network, parse
from .source.diagnostics import Diagnostic, NetspecError

if TYPE_CHECKING:
    import numpy as np
    import onnx


@dataclass
class ImportedSpec:
    """The spec text, its checked network, and where each weight array comes from."""

    text: str
    network: Network
    arrays: dict[str, Callable[[], np.ndarray]]
    names_kept: bool

    def weights(self) -> dict[str, np.ndarray]:
        """Every weight array, keyed by the spec's layer names (read from the model now)."""
        return self.network.check_weights({k: get() for k, get in self.arrays.items()})


def _spec_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in name) or "network"


def import_onnx(model: onnx.ModelProto | str | Path, name: str | None = None,
                weights: bool = True) -> ImportedSpec:
    """Import an ONNX model (a ModelProto or a path) as a checked spec.

    Raises OnnxImportError naming the node that netspec cannot express. With
    `weights=False` a file's weights are not read (enough for `netspec check`).
    """
    filename = None
    if not hasattr(model, "graph"):
        filename = str(model)
        model = load_onnx(model, weights)
    name = _spec_name(name or (Path(filename).stem if filename else model.graph.name or "network"))
    input_shape, layers, output = read_onnx(model, filename)
    source = Path(filename).name if filename else "an ONNX model"
    for keep in (True, False):
        written = _write(name, input_shape, layers, output, source, keep)
        if written is None:
            continue
        text, order = written
        try:
            net = parse(text, f"{name}.ns")
        except NetspecError:   # names netspec reads differently (a keyword as a label...)
            continue
        if _same(net, order, keep):
            arrays = {f"{built.name}.{suffix}" if suffix else built.name: get
                      for layer, built in zip(order, net.layers[1:])
                      for suffix, get in layer.weights.items()}
            return ImportedSpec(text, net, arrays, keep)
    raise OnnxImportError(Diagnostic("error", "netspec could not write this model as a spec "
                                     "that computes the same", filename))


def _write(name: str, input_shape: tuple[int, ...], layers: list[Imported], output: str,
           source: str, keep: bool) -> tuple[str, list[Imported]] | None:
    """The spec text and the layers in the order it builds them; None where the layers'
    names cannot be written (`keep`) or a block cannot be written from one member."""
    try:
        tree, order = write_spec(name, input_shape, layers, output, source, keep)
    except (NameClash, ValueError):
        return None
    return print_spec(tree), order


def _same(net: Network, order: list[Imported], keep: bool) -> bool:
    """The spec builds the imported layers: same kinds and shapes in order, names kept,
    each reading the layers that the imported one reads (a join of named values reads
    what its names say)."""
    built = net.layers[1:]
    if len(built) != len(order):
        return False
    made = {"input": net.layers[0]} | {x.output: b for b, x in zip(built, order)}

    def reads(b: Layer, x: Imported) -> bool:
        got, want = [i.name for i in b.inputs], [made[i].name for i in x.inputs if i in made]
        return got == want or b.kind in _COMMUTE and sorted(got) == sorted(want)
    return all(
        b.kind == x.kind and b.output_shape == x.shape and (b.name == x.name or not keep
                                                            or not x.required)
        and reads(b, x) for b, x in zip(built, order))


#: Joins whose inputs may come in either order (netspec's mul takes its per-channel
#: factor second, a torch model may multiply it first).
_COMMUTE = (Add.kind, Multiply.kind)


__all__ = ["ImportedSpec", "OnnxImportError", "import_onnx"]
