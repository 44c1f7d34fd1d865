"""The nodes that compute no layer: shape computations, constants, identities.

torch's exporters write `x.view(x.size(0), -1)` as Shape, Gather, Unsqueeze and
Concat nodes, and `F.interpolate(x, size=y.shape[-2:])` as Shape and Slice: the
values they compute are sizes, which the reader follows (`Reader.sizes`, and where
each size comes from, `Reader.origins`) so that the Reshape or Resize reading them
knows what they mean. Each handler has the signature of a kind's `from_onnx`:
None when it read the node, else what it reads that operator as.
"""

from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import onnx

    from .reader import Reader


def _sizes(r: Reader, name: str) -> list[Any]:
    """A shape computation's value: sizes, "N" for the batch."""
    name = r.resolve(name)
    if name in r.sizes:
        return r.sizes[name]
    return [int(v) for v in r.array(name).reshape(-1)]


def _origins(r: Reader, name: str) -> list[tuple[str, int] | None]:
    """Where each of a shape computation's sizes comes from (None: a constant)."""
    name = r.resolve(name)
    return r.origins.get(name) or [None] * len(_sizes(r, name))


def _set_sizes(r: Reader, out: str, sizes: list[Any],
               origins: list[tuple[str, int] | None]) -> None:
    r.sizes[out] = sizes
    r.origins[out] = origins


def _is_sizes(r: Reader, name: str) -> bool:
    return r.resolve(name) in r.sizes


def shape(r: Reader, node: onnx.NodeProto) -> str | None:
    """x.shape (from attribute `start` to `end`, opset 15), each size known by its axis."""
    a = r.attrs(node)
    x = r.resolve(node.input[0])
    dims = list(r.shape(x))
    axes = list(range(len(dims)))[a.get("start", 0):a.get("end", len(dims))]
    _set_sizes(r, node.output[0], [dims[i] for i in axes], [(x, i) for i in axes])
    return None


def gather(r: Reader, node: onnx.NodeProto) -> str | None:
    if not _is_sizes(r, node.input[0]) or not r.const(node.input[1]):
        return "a size picked from a shape computation (`x.size(0)`)"
    sizes, origins = r.sizes[r.resolve(node.input[0])], _origins(r, node.input[0])
    picked = [int(i) for i in r.array(node.input[1]).reshape(-1)]
    if any(not -len(sizes) <= i < len(sizes) for i in picked):
        r.fail(f"Gather of sizes {picked} from a shape of {len(sizes)}")
    _set_sizes(r, node.output[0], [sizes[i] for i in picked], [origins[i] for i in picked])
    return None


def pass_sizes(r: Reader, node: onnx.NodeProto) -> str | None:
    """Unsqueeze, Squeeze, Cast of a shape computation: the same sizes."""
    if not _is_sizes(r, node.input[0]):
        return "a step of a shape computation (`x.view(x.size(0), -1)`)"
    _set_sizes(r, node.output[0], r.sizes[r.resolve(node.input[0])], _origins(r, node.input[0]))
    return None


def slice_sizes(r: Reader, node: onnx.NodeProto) -> str | None:
    """Slice of a shape computation (`x.shape[:2]`): the sizes it keeps."""
    if not _is_sizes(r, node.input[0]) or len(node.input) > 3 and node.input[3] and \
            [int(v) for v in r.array(node.input[3]).reshape(-1)] != [0]:
        return "sizes cut from a shape computation (`x.shape[:2]`)"
    start, stop = (int(r.array(node.input[i]).reshape(-1)[0]) for i in (1, 2))
    steps = node.input[4] if len(node.input) > 4 and node.input[4] else None
    if steps is not None and [int(v) for v in r.array(steps).reshape(-1)] != [1]:
        r.fail("Slice with a step is read only as x.shape[a:b]")
    _set_sizes(r, node.output[0], r.sizes[r.resolve(node.input[0])][start:stop],
               _origins(r, node.input[0])[start:stop])
    return None


def concat_sizes(r: Reader, node: onnx.NodeProto) -> str | None:
    """[x.size(0), -1]: the sizes of a shape computation joined."""
    if not any(_is_sizes(r, i) for i in node.input):
        return "sizes joined in a shape computation (`[x.size(0), -1]`)"
    _set_sizes(r, node.output[0], [v for i in node.input for v in _sizes(r, i)],
               [o for i in node.input for o in _origins(r, i)])
    return None


def reshape(r: Reader, node: onnx.NodeProto) -> str | None:
    """A reshape to the same shape computes nothing. A reshape to `[x.size(0), -1]` keeps
    the batch: its shape is known here, for the kind that reads it (`flatten`). A reshape of
    a constant is a kind's (a weight standardised in the graph: conv's `ws`)."""
    if r.const(node.input[0]):
        return "a reshape of a value computed from the input"
    x = r.shape(node.input[0])
    target = r.sizes.get(r.resolve(node.input[1]))
    if target is None and r.const(node.input[1]):
        target = [int(v) for v in r.array(node.input[1]).reshape(-1)]
    if target is not None and len(target) == 2 and target[0] in (x[0], 0, "N") and \
            target[1] in (-1, prod(x[1:])):   # x.view(x.size(0), -1): a flatten
        r.shapes[node.output[0]] = (x[0], prod(x[1:]))
    if tuple(r.shapes.get(node.output[0], ())) == tuple(x):
        r.alias(node.output[0], node.input[0])
        return None
    return "a reshape to the same shape"


def identity(r: Reader, node: onnx.NodeProto) -> str | None:
    r.alias(node.output[0], node.input[0])
    return None


def constant(r: Reader, node: onnx.NodeProto) -> str | None:
    from onnx import numpy_helper
    a = {x.name: x for x in node.attribute}
    if "value" not in a:
        r.fail("a Constant given other than as a tensor `value`")
    r.values[node.output[0]] = numpy_helper.to_array(a["value"].t)
    return None


#: The handlers of the nodes that compute no layer, by operator; they run before the
#: kinds' (a Concat of sizes is not a `concat`).
PLUMBING: dict[str, Callable[[Reader, Any], str | None]] = {
    "Shape": shape, "Gather": gather, "Unsqueeze": pass_sizes, "Squeeze": pass_sizes,
    "Cast": pass_sizes, "Slice": slice_sizes, "Concat": concat_sizes, "Reshape": reshape,
    "Identity": identity, "Constant": constant,
}
