"""ONNX → layers: the graph walked once, node by node, in topological order.

As onnx's shape inference and onnx-tool do, each node goes to the handlers of its
operator: first the plumbing (shape computations, constants, identities), then the
kinds that read that operator, in the registry's order (`Layer.onnx_ops`,
`Layer.from_onnx`). A handler reads the node (emitting a layer, folding it into
one made before, or recording a step of a pattern) or declines, saying what it
reads that operator as; when every handler declines, the import stops with an
error naming the node, its op type and its position, what netspec reads that
operator as, and the layers read up to there (`OnnxImportError.partial`): never a
guess.
"""

from __future__ import annotations

from math import prod
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ...kinds.registry import kinds
from ...source.diagnostics import Diagnostic
from .plumbing import PLUMBING
from .reader import Imported, OnnxImportError, Reader, module_path, netspec_shape

if TYPE_CHECKING:
    import onnx

#: Oldest opset read; the newest is whatever the installed onnx knows.
MIN_OPSET = 13
#: Initializers at least this large are left out of the copy given to shape inference.
_BIG = 1024

Handler = Callable[[Reader, Any], "str | None"]


def handlers() -> dict[str, list[Handler]]:
    """Every operator's handlers, in the order they are asked."""
    out: dict[str, list[Handler]] = {op: [h] for op, h in PLUMBING.items()}
    for kind in kinds():
        for op in kind.onnx_ops:
            out.setdefault(op, []).append(kind.from_onnx)
    return out


def _read_node(r: Reader, node: onnx.NodeProto, table: dict[str, list[Handler]]) -> None:
    if node.domain not in ("", "ai.onnx"):
        r.fail(f"operator domain `{node.domain}` is not standard ONNX")
    readers = table.get(node.op_type)
    if not readers:
        r.fail(f"netspec has no layer for the ONNX operator {node.op_type}",
               hint="netspec imports: " + ", ".join(sorted(table)))
    reasons = []
    for handler in readers:
        why = handler(r, node)
        if why is None:
            return
        reasons.append(why)
    shapes = [list(r.shapes[r.resolve(i)]) for i in node.input if i and
              r.resolve(i) in r.shapes and not r.const(i)]
    seen = f" (it reads {', '.join(map(str, shapes))})" if shapes else ""
    r.fail(f"netspec reads {node.op_type} only as {'; or as '.join(reasons)}{seen}")


#: Operators whose output has their first input's shape, which onnx's shape inference
#: gives only the element type of (GroupNormalization is defined by a function).
_SHAPE_KEEPING = ("GroupNormalization",)


def _infer_shapes(model: onnx.ModelProto, r: Reader) -> dict[str, tuple[Any, ...]]:
    """Every value's shape, from ONNX shape inference on a copy without the big weights,
    starting from the shapes the exporter recorded (value_info); where inference stops at
    a shape-keeping operator that it cannot see through, the operator's input shape is
    given to its output and inference runs again."""
    import onnx
    from onnx import helper
    graph = model.graph
    small = [t for t in graph.initializer if prod(t.dims) < _BIG and
             t.data_location != onnx.TensorProto.EXTERNAL]
    big = [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
           for t in graph.initializer if t not in small]
    inputs = [i for i in graph.input if i.name not in r.consts]
    known = list(graph.value_info)
    strict = not any(node.op_type in _SHAPE_KEEPING for node in graph.node)
    while True:   # lenient passes until no shape-keeping operator is left unseen, then strict
        light = helper.make_model(helper.make_graph(list(graph.node), graph.name, inputs + big,
                                                    list(graph.output), small,
                                                    value_info=known),
                                  opset_imports=list(model.opset_import))
        light.ir_version = model.ir_version
        try:
            light = onnx.shape_inference.infer_shapes(light, strict_mode=strict, data_prop=True)
        except Exception as err:  # noqa: BLE001 (onnx raises its own error types)
            r.fail(f"ONNX shape inference failed: {str(err).strip().splitlines()[-1]}")
        infos = {info.name: info for info in
                 [*light.graph.input, *light.graph.value_info, *light.graph.output]
                 if info.type.tensor_type.HasField("shape")}
        if strict:
            break
        kept = [helper.make_tensor_value_info(node.output[0], infos[node.input[0]].type
                                              .tensor_type.elem_type,
                                              [d.dim_value if d.HasField("dim_value") else
                                               d.dim_param or "N" for d in
                                               infos[node.input[0]].type.tensor_type.shape.dim])
                for node in graph.node if node.op_type in _SHAPE_KEEPING and
                node.input[0] in infos and node.output[0] not in infos]
        strict = not kept
        known = [*known, *kept]
    shapes = {}
    for name, info in infos.items():
        shapes[name] = tuple(d.dim_value if d.HasField("dim_value") else "N"
                             for d in info.type.tensor_type.shape.dim)
    return shapes


def read_onnx(model: onnx.ModelProto, filename: str | None = None
              ) -> tuple[tuple[int, ...], list[Imported], str]:
    """The network input (H, W, C) or (N,), its layers in order, and the output value."""
    from onnx import defs
    r = Reader(model, filename)
    opsets = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    opset = opsets.get("ai.onnx")
    if opset is None or not MIN_OPSET <= opset <= defs.onnx_opset_version():
        r.fail(f"the model uses opset {opset}: netspec reads opsets {MIN_OPSET} to "
               f"{defs.onnx_opset_version()}", hint="re-export it with opset_version=17")
    graph = model.graph
    inputs = [i for i in graph.input if i.name not in r.consts]
    if len(inputs) != 1 or len(graph.output) != 1:
        r.fail(f"netspec reads models with one input and one output; this one has "
               f"{len(inputs)} and {len(graph.output)}")
    r.shapes = _infer_shapes(model, r)
    x = r.shapes.get(inputs[0].name, ())
    if len(x) not in (2, 4) or any(not isinstance(d, int) or d < 1 for d in x[1:]):
        r.fail(f"the input `{inputs[0].name}` has shape {list(x)}: netspec needs N×C×H×W or "
               f"N×F with fixed sizes", hint="export with a fixed H and W")
    r.input_shape = netspec_shape(x)
    r.input_name = inputs[0].name
    table = handlers()
    for r.index, node in enumerate(graph.node):
        r.node = node
        _read_node(r, node, table)
    r.node = None
    out = r.resolve(graph.output[0].name)
    if out == inputs[0].name:
        r.fail("the model has no layers")
    r.layers = _reachable(r.layers, out, inputs[0].name, r)
    if not r.all_names:
        _owned_by_containers(r.layers)
    return r.input_shape, r.layers, out


def _owned_by_containers(layers: list[Imported]) -> None:
    """An op torch named by a module that holds other layers was made in that module's
    forward (`F.interpolate` in DeepLab's `convs.4`): it belongs to the module, it is not
    the module. (Joins keep their module as `local`: the spec writer lifts them to it.)"""
    from ...kinds import Merge
    joins = {k.kind for k in kinds() if issubclass(k, Merge)}
    modules = {tuple(x.path[:n]) for x in layers for n in range(len(x.path) + 1)}
    for layer in layers:
        path, local = module_path(layer.node)
        if layer.node.startswith("/") and not layer.weights and local and \
                layer.kind not in joins and (*path, local) in modules:
            layer.path, layer.local = [*path, local], ""


def _reachable(layers: list[Imported], out: str, source: str, r: Reader) -> list[Imported]:
    """The layers the output depends on, renaming the graph input to `input`."""
    by_out = {layer.output: layer for layer in layers}
    needed: set[str] = set()
    stack = [out]
    while stack:
        v = stack.pop()
        if v in needed or v not in by_out:
            continue
        needed.add(v)
        stack.extend(by_out[v].inputs)
    kept = [layer for layer in layers if layer.output in needed]
    for layer in kept:
        layer.inputs = ["input" if i == source else i for i in layer.inputs]
        for i in layer.inputs:
            if i != "input" and i not in by_out:
                maker = next((n for n in r.model.graph.node if i in n.output), None)
                why = "" if maker is None else \
                    f" (node \"{maker.name}\" ({maker.op_type}) makes it, and netspec reads " \
                    f"{maker.op_type} only as part of a larger pattern, which does not follow)"
                r.fail(f"`{layer.where}` reads `{i}`, which no layer computes{why}")
    return kept


def load_onnx(path: str | Path, weights: bool = True) -> onnx.ModelProto:
    """Read an .onnx file (its external weights too if `weights`); errors are NetspecErrors."""
    import onnx
    try:
        return onnx.load(str(path), load_external_data=weights)
    except Exception as err:  # noqa: BLE001 (protobuf and onnx raise many kinds)
        raise OnnxImportError(Diagnostic("error", f"cannot read ONNX model: {err}",
                                         str(path))) from None
