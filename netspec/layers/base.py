"""The layer base class, positions and shapes, and the network's input."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import ClassVar

from ..errors import Reporter, ShapeError, SpecError

Shape = tuple[int, ...]


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


@dataclass(frozen=True)
class Pos:
    """Where something was written: 1-based line and column, its length, and the file.

    `file` is None for the spec itself, or the name of a library file it uses
    (`use "lib/resnet.ns"`); it defaults to the file being read (see `in_file`).
    """

    line: int
    column: int
    length: int = 1
    file: str | None = field(default_factory=lambda: _FILES[-1])


def shape_str(shape: Shape | None) -> str:
    """`28×28×6` for a volume, `120` for a vector, `?` when unknown."""
    return "?" if shape is None else "×".join(str(d) for d in shape)


class Layer:
    """A layer of the network: written once in the spec, checked, then run."""

    kind: ClassVar[str] = ""

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
