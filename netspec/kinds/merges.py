"""Where paths meet: one family of merges, each combining the values of several paths.

A merge layer reads two or more values and says, in `combine`, what shape their
combination has (or why they cannot be combined). The builder makes them all the
same way (`Builder._merge`), and each backend lowers each to one operator:

    add     residual { ... }   the body plus the shortcut, shapes equal
    concat  concat { ... }     the branches side by side along the channels
    mul     gate { ... }       the input times a gate: one value per channel
                               (1×1×C, squeeze-and-excitation) or the input's shape

and, for any of them, `add { branch ... branch ... }`, `mul { ... }` and
`concat { ... }` merge branches that read the same input (`text` is then the
merge's keyword; add takes two or more branches, mul exactly two), and `add(a, b)`,
`mul(a, b)`, `concat(a, b, c)` merge named values (`reads` names them; `text` is
the join as written).
"""

from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING, ClassVar

from ..source.diagnostics import Reporter, ShapeError
from ..source.pos import Pos
from .base import Layer, Shape, shape_str
from .channels import Shuffle
from .statement import OnnxGraph, OnnxReader

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from ..numerics.backward.steps import TrainStep
    from ..numerics.windows import Step


def _origin(layer: Layer) -> str:
    return f"`{layer.name}`, line {layer.line}"


class Merge(Layer):
    """A layer that combines the values of several paths into one; no weights."""

    #: The composition statement whose branches it merges (`concat { branch … }`), the
    #: statement's form, and how many branches it takes: (at least, at most), None for
    #: no upper bound.
    statement: ClassVar[str] = ""
    statement_usage: ClassVar[str] = ""
    branch_counts: ClassVar[tuple[int, int | None]] = (1, None)
    #: The names of the values a join statement reads (`concat(a, b)`: ("a", "b")); empty
    #: for the merge of a composition statement.
    reads: tuple[str, ...] = ()
    #: Made by composition statements (builder), written by the code generator's joins.
    delegated = {"read": "composition statements (`residual`, `gate`, `concat`, `split`, "
                         "`add`, `mul`: netspec.language.builder)",
                 "torch": "the composition it ends (netspec.backends.torch.joins)"}

    @classmethod
    def of_branches(cls, pos: Pos, op: str) -> Merge:
        """The layer that merges the branches of `op { branch … }`."""
        return cls(pos, op)

    def infer_from(self, shapes: list[Shape], rep: Reporter) -> Shape | None:
        self.input_shape = shapes[0]
        self.output_shape = self.combine(shapes, rep)
        return self.output_shape

    def combine(self, shapes: list[Shape], rep: Reporter) -> Shape | None:
        """The shape of the combination, or None after reporting why there is none."""
        raise NotImplementedError

    def values_differ(self, shapes: list[Shape], rep: Reporter, how: str, hint: str) -> None:
        """Report a join of named values (`add(a, b)`) whose shapes do not combine: each
        value's name and shape, and the layer that made it."""
        listed = ", ".join(f"`{n}` is {shape_str(s)}" for n, s in zip(self.reads, shapes))
        rep.error(self.pos, f"`{self.text}` reads values that {how}: {listed}", ShapeError,
                  notes=tuple(f"`{n}`: {shape_str(s)} from {_origin(layer)}"
                              for n, s, layer in zip(self.reads, shapes, self.inputs)),
                  hint=hint)

    #: Its ONNX operator (with `onnx_attrs`), reading every input.
    onnx_op = ""
    onnx_attrs: dict = {}

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        return g.node(self, self.onnx_op, list(inputs), self.name, **self.onnx_attrs)

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        """Its operator over computed values (never a constant: that is another kind's)."""
        if any(r.const(i) for i in node.input):
            return f"`{cls.kind}` of computed values (never of a constant)"
        r.emit(node, cls, [cls.kind], list(node.input))
        return None


class Add(Merge):
    """The end of a residual connection: the sum of the body and the shortcut; or the sum of
    two or more branches (`add { branch … branch … branch … }`: RepVGG, MobileOne), added
    left to right in the order written, as timm's `a + b + c`."""

    kind = "add"
    statement = "add"
    statement_usage = "add { branch { ... } branch { ... } ... }"
    branch_counts = (2, None)
    foreign = {"sum": "add { branch {...} branch {...} }"}
    draw_sign = "+"
    draw_colour = "#ffffff"
    pointwise = True
    saves = ()

    def flops(self) -> int:
        """One add per value for each input after the first."""
        return (len(self.inputs) - 1) * prod(self.output_shape)

    def explain(self) -> list[str]:
        n, adds = prod(self.output_shape), len(self.inputs) - 1
        count = f"{n:,} (one add per value)" if adds == 1 else \
            f"{adds}·{n:,} = {self.flops():,} ({adds} adds per value)"
        return [f"out = {' + '.join(shape_str(i.output_shape) for i in self.inputs)} "
                f"= {shape_str(self.output_shape)}", f"FLOPs = {count}"]

    def __init__(self, pos: Pos, text: str, projected: bool) -> None:
        super().__init__(pos, text)
        self.projected = projected   # the shortcut is a projection, not the identity

    @classmethod
    def of_branches(cls, pos: Pos, op: str) -> Merge:
        return cls(pos, op, False)

    fuses_activation = True
    numpy_in_place = True
    onnx_op = "Add"
    onnx_ops = ("Add", "Sum")

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        """Add, or Sum of any number of values (a Sum of one is that value)."""
        if len(node.input) == 1:
            r.alias(node.output[0], node.input[0])
            return None
        return super().from_onnx(r, node)

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        """Add for two inputs; Sum for more (one node, so that import reads one layer;
        onnxruntime adds them in order, as the chain torch writes)."""
        return g.node(self, "Add" if len(inputs) == 2 else "Sum", list(inputs), self.name)

    def numpy(self, w: dict[str, np.ndarray]) -> Step | None:
        import numpy as np

        def add(*xs: np.ndarray, act: object = None) -> np.ndarray:
            """The sum, written over the first input (in place, like bn)."""
            out = xs[0]
            for x in xs[1:]:
                np.add(out, x, out=out)
            return out if act is None else act(out)
        return add

    def training_step(self, w: dict[str, np.ndarray], training: bool = False,
                      rng: np.random.Generator | None = None) -> TrainStep | None:
        from ..numerics.backward import channels, steps
        return steps.merge(channels.add_forward, channels.add_backward)

    def combine(self, shapes: list[Shape], rep: Reporter) -> Shape | None:
        if len(set(shapes)) > 1 and self.reads:
            self.values_differ(shapes, rep, "differ", "add sums value by value: both values "
                                                      "must have the same shape")
            return None
        if len(set(shapes)) > 1 and self.text == "add":
            listed = [shape_str(s) for s in shapes]
            rep.error(self.pos, "branches of `add` differ: " + ", ".join(listed[:-1])
                      + f" and {listed[-1]}", ShapeError,
                      notes=tuple(f"branch {i + 1}: {shape_str(s)} from {_origin(layer)}"
                                  for i, (s, layer) in enumerate(zip(shapes, self.inputs))),
                      hint=f"make every branch give {shape_str(shapes[0])} (add sums "
                           f"value by value)")
            return None
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
        return shapes[0]


class Concat(Merge):
    """The end of parallel branches: their outputs concatenated along the channels."""

    kind = "concat"
    statement = "concat"
    statement_usage = "concat { branch { ... } branch { ... } }"
    foreign = {"cat": "concat { branch {...} ... }"}
    draw_sign = "‖"
    draw_colour = "#ffffff"
    pointwise = True
    saves = ()

    def flops(self) -> int:
        return 0

    onnx_op = "Concat"
    onnx_attrs = {"axis": 1}
    onnx_ops = ("Concat",)

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        rank = len(r.shape(node.output[0]))
        if r.attrs(node).get("axis") % rank != 1:
            r.fail("Concat along an axis other than the channels (axis 1)")
        if len(node.input) == 1:
            r.alias(node.output[0], node.input[0])
            return None
        return super().from_onnx(r, node)

    def numpy(self, w: dict[str, np.ndarray]) -> Step | None:
        import numpy as np
        return lambda *xs: np.concatenate(xs, axis=-1)   # NHWC's channels, or vectors' values

    def training_step(self, w: dict[str, np.ndarray], training: bool = False,
                      rng: np.random.Generator | None = None) -> TrainStep | None:
        from ..numerics.backward import channels, steps
        return steps.merge(channels.concat_forward, channels.concat_backward)

    def absorbs(self, after: Layer) -> bool:
        """A channel shuffle reading it alone: it writes its inputs straight into the
        shuffled order (ShuffleNetV2: one copy per unit instead of two)."""
        return isinstance(after, Shuffle)

    def numpy_absorbing(self, w: dict[str, np.ndarray], after: Layer) -> Step:
        from .channels_numpy import shuffled_concat
        return shuffled_concat(self, after)

    def explain(self) -> list[str]:
        chans = " + ".join(str(i.output_shape[-1]) for i in self.inputs)
        return [f"channels = {chans} = {self.output_shape[-1]}, "
                f"out = {shape_str(self.output_shape)}"]

    def combine(self, shapes: list[Shape], rep: Reporter) -> Shape | None:
        if (len({s[:-1] for s in shapes}) > 1 or len({len(s) for s in shapes}) > 1) and \
                self.reads:
            self.values_differ(shapes, rep, "differ in height and width",
                               "values are concatenated along the channels, so each must have "
                               "the same H×W (pad with `same`, or use the same stride)")
            return None
        if len({s[:-1] for s in shapes}) > 1 or len({len(s) for s in shapes}) > 1:
            rep.error(self.pos, "branches of `concat` differ in height and width: "
                      + ", ".join(shape_str(s) for s in shapes), ShapeError,
                      notes=tuple(f"branch {i + 1}: {shape_str(s)} from {_origin(layer)}"
                                  for i, (s, layer) in enumerate(zip(shapes, self.inputs))),
                      hint="branches are concatenated along the channels, so each must keep "
                           "the same H×W (pad with `same`, or use the same stride)")
            return None
        return (*shapes[0][:-1], sum(s[-1] for s in shapes))


class Multiply(Merge):
    """The end of a gate: the input times the gate's output, element by element.

    The gate gives either one value per channel (1×1×C for an H×W×C input, or
    C for a vector of C), broadcast over H×W as squeeze-and-excitation does, or
    exactly the input's shape. Inputs: [the input, the gate's output].
    """

    kind = "mul"
    statement = "mul"
    statement_usage = "mul { branch { ... } branch { ... } }"
    branch_counts = (2, 2)
    foreign = {"multiply": "mul { branch {...} branch {...} }"}
    draw_sign = "×"
    draw_colour = "#ffffff"
    pointwise = True
    saves = ("input",)   # the product's backward needs both factors

    numpy_in_place = True
    onnx_op = "Mul"
    onnx_ops = ("Mul",)

    def numpy(self, w: dict[str, np.ndarray]) -> Step | None:
        """The product, written over the first input (in place, like add); the second may be
        one value per channel (a gate's 1×1×C), broadcast over H×W."""
        import numpy as np
        return lambda x, y: np.multiply(x, y, out=x)

    def training_step(self, w: dict[str, np.ndarray], training: bool = False,
                      rng: np.random.Generator | None = None) -> TrainStep | None:
        """x·gate, a 1×1×C gate broadcast over H×W (its gradient summed back over H×W)."""
        from ..numerics.backward import channels, steps
        return steps.merge(channels.mul_forward, channels.mul_backward)

    def input_windows(self) -> list:
        """The input pixel by pixel; a 1×1×C gate broadcast to every pixel (stride 0)."""
        x, gate = (i.output_shape for i in self.inputs)
        broadcast = len(gate) == 3 and gate[:2] == (1, 1) and x[:2] != (1, 1)
        return [self.window(), ((1, 0, 0), (1, 0, 0)) if broadcast else self.window()]

    def flops(self) -> int:
        return prod(self.output_shape)

    def explain(self) -> list[str]:
        x, gate = (shape_str(i.output_shape) for i in self.inputs)
        return [f"out = {x} × {gate}" + (" (one value per channel, broadcast over H×W)"
                                          if x != gate else "") + f" = {x}",
                f"FLOPs = {prod(self.output_shape):,} (one multiply per value)"]

    def combine(self, shapes: list[Shape], rep: Reporter) -> Shape | None:
        x, gate = shapes
        per_channel = (1, 1, x[-1]) if len(x) == 3 else x
        if gate in (x, per_channel):
            return x
        what = (f"{shape_str(per_channel)} (one value per channel) or {shape_str(x)}"
                if len(x) == 3 else shape_str(x))
        if self.reads:
            self.values_differ(shapes, rep, "cannot be multiplied",
                               f"mul multiplies value by value: the second must be {what}")
            return None
        if self.text == "mul":
            rep.error(self.pos, f"branches of `mul` differ: {shape_str(x)} and "
                                f"{shape_str(gate)}", ShapeError,
                      notes=(f"branch 1: {shape_str(x)} from {_origin(self.inputs[0])}",
                             f"branch 2: {shape_str(gate)} from {_origin(self.inputs[1])}"),
                      hint=f"make the second branch give {shape_str(x)}"
                      + (f" or {shape_str(per_channel)} (one value per channel)"
                         if len(x) == 3 else ""))
            return None
        rep.error(self.pos, f"the gate gives {shape_str(gate)}, but it multiplies an input of "
                            f"{shape_str(x)}: a gate must give {what}", ShapeError,
                  notes=(f"input: {shape_str(x)} from {_origin(self.inputs[0])}",
                         f"gate: {shape_str(gate)} from {_origin(self.inputs[1])}"),
                  hint=f"end the gate with `x{x[-1]}` channels" +
                  (", after `pool avg global` for one value per channel" if len(x) == 3 else ""))
        return None
