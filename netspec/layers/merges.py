"""Where paths meet: the residual add and the channel concatenation."""

from __future__ import annotations

from math import prod

from ..errors import Reporter, ShapeError
from .base import Layer, Pos, Shape, shape_str


def _origin(layer: Layer) -> str:
    return f"`{layer.name}`, line {layer.line}"


class Add(Layer):
    """The end of a residual connection: the sum of the body and the shortcut."""

    kind = "add"
    pointwise = True
    saves = ()

    def flops(self) -> int:
        return prod(self.output_shape)

    def explain(self) -> list[str]:
        n = prod(self.output_shape)
        return [f"out = {' + '.join(shape_str(i.output_shape) for i in self.inputs)} "
                f"= {shape_str(self.output_shape)}", f"FLOPs = {n:,} (one add per value)"]

    def __init__(self, pos: Pos, text: str, projected: bool) -> None:
        super().__init__(pos, text)
        self.projected = projected   # the shortcut is a projection, not the identity

    def infer_from(self, shapes: list[Shape], rep: Reporter) -> Shape | None:
        self.input_shape = shapes[0]
        if len(set(shapes)) > 1:
            body, shortcut = self.inputs
            rep.error(self.pos, f"residual shapes differ: the body gives {shape_str(shapes[0])} "
                                f"but the shortcut gives {shape_str(shapes[1])}", ShapeError,
                      notes=(f"body: {shape_str(shapes[0])} from {_origin(body)}",
                             f"shortcut: {shape_str(shapes[1])} from {_origin(shortcut)}"),
                      hint=f"make the projection give {shape_str(shapes[0])} too"
                      if self.projected else
                      "add a projection: `residual { ... } project { conv 1x1 sN xK; bn }`")
            return None
        self.output_shape = shapes[0]
        return self.output_shape


class Concat(Layer):
    """The end of parallel branches: their outputs concatenated along the channels."""

    kind = "concat"
    pointwise = True
    saves = ()

    def flops(self) -> int:
        return 0

    def explain(self) -> list[str]:
        chans = " + ".join(str(i.output_shape[-1]) for i in self.inputs)
        return [f"channels = {chans} = {self.output_shape[-1]}, "
                f"out = {shape_str(self.output_shape)}"]

    def infer_from(self, shapes: list[Shape], rep: Reporter) -> Shape | None:
        self.input_shape = shapes[0]
        if len({s[:-1] for s in shapes}) > 1 or len({len(s) for s in shapes}) > 1:
            rep.error(self.pos, "branches of `concat` differ in height and width: "
                      + ", ".join(shape_str(s) for s in shapes), ShapeError,
                      notes=tuple(f"branch {i + 1}: {shape_str(s)} from {_origin(layer)}"
                                  for i, (s, layer) in enumerate(zip(shapes, self.inputs))),
                      hint="branches are concatenated along the channels, so each must keep "
                           "the same H×W (pad with `same`, or use the same stride)")
            return None
        self.output_shape = (*shapes[0][:-1], sum(s[-1] for s in shapes))
        return self.output_shape
