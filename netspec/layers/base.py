"""The layer base class, positions and shapes, and the network's input."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from math import prod
from types import EllipsisType
from typing import ClassVar

from ..errors import Reporter, ShapeError, SpecError
from ..values import Value

Shape = tuple[int, ...]
#: How one output pixel reads its input along one axis: (span in input pixels,
#: stride, padding before). A 3×3 conv with dilation 2, stride 2, p2: (5, 2, 2).
AxisWindow = tuple[int, int, int]


#: The library file whose text is being parsed or expanded (innermost last);
#: None is the spec itself. Positions made meanwhile point into that file.
_FILES: list[str | None] = [None]


@contextmanager
def in_file(name: str | None) -> Iterator[None]:
    """Positions made inside this `with` are in library file `name` (None: the spec)."""
    _FILES.append(name)
    try:
        yield
    finally:
        _FILES.pop()


class Pos(Value):
    """Where something was written: 1-based line and column, its length, and the file.

    `file` is None for the spec itself, or the name of a library file it uses
    (`use "lib/resnet.ns"`); it defaults to the file being read (see `in_file`).
    A position is a value: never changed once made, compared and hashed by its fields.
    """

    __slots__ = ("line", "column", "length", "file")

    def __init__(self, line: int, column: int, length: int = 1,
                 file: str | None | EllipsisType = ...) -> None:
        self.line = line
        self.column = column
        self.length = length
        self.file = _FILES[-1] if file is ... else file



def shape_str(shape: Shape | None) -> str:
    """`28×28×6` for a volume, `120` for a vector, `?` when unknown."""
    return "?" if shape is None else "×".join(str(d) for d in shape)


class Layer:
    """A layer of the network: written once in the spec, checked, then run.

    Besides its shape rule, a kind states the facts the analyses (netspec.analysis)
    ask for; the defaults below are those of no kind in particular, and an analysis
    that needs an undeclared fact refuses with the kind's name rather than guess.
    """

    kind: ClassVar[str] = ""
    #: Output pixel (i, j) reads only pixel (i, j) of each input (activations, batch
    #: norm, merges): the receptive field passes through unchanged.
    pointwise: ClassVar[bool] = False
    #: Suffixes of `weight_shapes` that are buffers, not trained (batch norm's
    #: running statistics); the rest are trainable.
    buffers: ClassVar[tuple[str, ...]] = ()
    #: Runs over its input's memory instead of allocating an output (relu), when
    #: no other layer still reads that input.
    in_place: ClassVar[bool] = False
    #: Its output is its input, unchanged (dropout at inference): allocates nothing.
    alias: ClassVar[bool] = False
    #: Which of its values PyTorch's autograd keeps for this kind's backward pass:
    #: "input" (every input) and/or "output". None = not declared: the training
    #: memory analysis refuses the layer.
    saves: ClassVar[tuple[str, ...] | None] = None

    def __init__(self, pos: Pos, text: str) -> None:
        self.pos = pos
        self.text = text
        self.name = ""
        self.name_pos: Pos | None = None
        self.options: dict[str, Pos] = {}
        self.input_shape: Shape | None = None
        self.output_shape: Shape | None = None
        self.inputs: list[Layer] = []
        self.params = 0
        self.macs = 0
        self.aux = False   # part of an `aux` head: weights kept, not computed at inference

    @property
    def op(self) -> str:
        """The operation, as in `netspec check --json` (`conv`, `pool`, `relu`...)."""
        return self.kind

    @property
    def line(self) -> int:
        return self.pos.line

    def check_options(self, rep: Reporter) -> None:
        """Checks that need no input shape (positive sizes, ranges)."""

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        """Set output shape, params and MACs from the input shape; None on error."""
        self.input_shape = self.output_shape = shape
        return shape

    def infer_from(self, shapes: list[Shape], rep: Reporter) -> Shape | None:
        """Like `infer`, for all inputs; layers with several inputs override this."""
        return self.infer(shapes[0], rep)

    def weight_shapes(self) -> dict[str, Shape]:
        """Shapes of this layer's arrays, keyed by suffix (`weight`, `bias`...)."""
        return {}

    # ---- facts for the analyses ----------------------------------------------------
    def window(self) -> tuple[AxisWindow, AxisWindow] | None:
        """The input window one output pixel reads, per axis (H, W): (span, stride, pad before).

        Pointwise kinds read (1, 1, 0); windowed kinds override this. Any other kind
        with a spatial output must say how it reads its input, or return None where no
        one window describes it (adaptive pooling whose windows differ in size): then no
        receptive field is reported from that layer on.
        """
        if self.pointwise:
            return (1, 1, 0), (1, 1, 0)
        raise NotImplementedError(f"`{self.kind}` does not declare the window an output pixel "
                                  f"reads (Layer.window or Layer.pointwise)")

    def aliases(self, training: bool) -> bool:
        """Whether the output is the input itself (at inference, or in training)."""
        return self.alias

    def input_windows(self) -> list[tuple[AxisWindow, AxisWindow] | None]:
        """The window read from each input, in order: `window()` for all of them.

        A layer whose inputs are read differently overrides this; a stride of 0 means
        the input is broadcast (a 1×1 gate read by every output pixel, as in
        squeeze-and-excitation's multiply).
        """
        return [self.window()] * len(self.inputs)

    @property
    def non_trainable(self) -> int:
        """Values in this layer's buffers (running statistics); `params` are the trainable."""
        return sum(prod(shape) for key, shape in self.weight_shapes().items()
                   if key in self.buffers)

    def saved_extra_bytes(self) -> int:
        """Bytes per sample autograd keeps beyond the values in `saves` (indices, masks)."""
        return 0

    def flops(self) -> int:
        """Floating-point operations per sample, by the convention in netspec.analysis.cost.

        Layers that compute nothing (input, dropout at inference, flatten, concat) count 0;
        every computing kind must override this.
        """
        raise NotImplementedError(f"`{self.kind}` does not declare its FLOPs (Layer.flops)")

    def explain(self) -> list[str]:
        """This layer's arithmetic with its numbers filled in (`netspec explain`)."""
        if self.output_shape == self.input_shape:
            return [f"out = in = {shape_str(self.output_shape)}"]
        raise NotImplementedError(f"`{self.kind}` does not explain its arithmetic (Layer.explain)")

    def attrs(self) -> dict:
        """The resolved options, for JSON output and the backends."""
        return {}

    def weight_key(self, suffix: str) -> str:
        """The state_dict key of one array: `conv1.weight`, or the layer's own name for
        the suffix "" (a bare torch Parameter, as ConvNeXt's `layer_scale`)."""
        return f"{self.name}.{suffix}" if suffix else self.name

    def where(self, option: str) -> Pos:
        """Position of an option as written, else of the whole layer."""
        return self.options.get(option, self.pos)

    def _positive(self, rep: Reporter, option: str, label: str, value: int) -> bool:
        if value < 1:
            rep.error(self.where(option), f"{label} must be at least 1, not {value}", ShapeError)
            return False
        return True

    def _volume(self, shape: Shape, rep: Reporter) -> bool:
        """Report a spatial layer applied to a vector."""
        if len(shape) == 3:
            return True
        rep.error(self.pos, f"`{self.kind}` needs an H×W×C volume, but its input is a vector of "
                            f"{shape[0]} values", ShapeError,
                  hint="put convolutions and pooling before the first `fc` or `flatten`")
        return False


class Input(Layer):
    """`input HxWxC` (or `input N` for a vector): the network's input."""

    kind = "input"
    pointwise = True
    saves = ()

    def flops(self) -> int:
        return 0

    def explain(self) -> list[str]:
        return [f"out = {shape_str(self.output_shape)} (as written)"]

    def __init__(self, pos: Pos, text: str, dims: tuple[int, ...]) -> None:
        super().__init__(pos, text)
        self.dims = dims

    def check_options(self, rep: Reporter) -> None:
        if len(self.dims) not in (1, 3):
            rep.error(self.where("size"), f"input must be HxWxC (or N for a vector), "
                                          f"not {len(self.dims)} numbers", SpecError,
                      hint="write e.g. `input 32x32x3`")
        for label, v in zip(("height", "width", "channels") if len(self.dims) == 3 else ("size",),
                            self.dims):
            self._positive(rep, "size", f"input {label}", v)

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        if len(self.dims) not in (1, 3) or min(self.dims) < 1:
            return None
        self.output_shape = self.dims
        return self.dims

    def attrs(self) -> dict:
        return {"shape": list(self.dims)}
