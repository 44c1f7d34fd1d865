"""Reading a layer statement's words: shared by every kind's `read` and `torch` methods.

A kind reads its statement once into a layer (the builder: every number resolved
to an int in the scope of the block being expanded) and once into PyTorch code
(the code generator: every number an expression of the block's parameters). Both
go through a `Reading`, whose `numbers` gives a word's values in that world, so a
kind says once which word means what (`s2` the stride, `x64` the filters).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, NoReturn, Protocol, TypeVar

from ..source.diagnostics import Reporter, SpecError, SpecSyntaxError
from ..source.pos import Pos
from ..syntax.expr import Expr
from ..syntax.tree import LayerStmt
from ..syntax.words import Word

if TYPE_CHECKING:
    from .base import Layer

V = TypeVar("V")

#: Option words → the option they set (`same` and `valid` are both the padding).
OPTION_NAMES = {"STRIDE": "stride", "PADDING": "padding", "DILATION": "dilation",
                "GROUPS": "groups", "FILTERS": "filters", "SAME": "padding", "VALID": "padding",
                "CEIL": "ceil", "NOBIAS": "nobias", "COUNTPAD": "countpad",
                "OUTPUT_PADDING": "output_padding", "WS": "ws", "GAIN": "gain",
                "GAMMA": "gamma", "EPS": "eps"}
#: Option words that are flags (present or not).
FLAGS = {"CEIL", "NOBIAS", "COUNTPAD", "WS", "GAIN"}
#: Option words whose value is a decimal number (`eps1e-5`, `gamma1.7`).
DECIMALS = {"GAMMA", "EPS"}
#: Option words whose value is the word itself.
WORD_VALUES = {"SAME", "VALID"}


class Reading(Generic[V]):
    """One statement being read, its numbers of type V (int, or an expression).

    `rep` takes the errors of reading (a kernel of the wrong form, an option given
    twice); the code generator reads only statements that built without them.
    """

    def __init__(self, stmt: LayerStmt, rep: Reporter) -> None:
        self.stmt = stmt
        self.rep = rep

    # ---- what subclasses provide ------------------------------------------------------
    def numbers(self, word: Word) -> tuple[V, ...]:
        """The values of a numeric word's numbers (`3x3` → two)."""
        raise NotImplementedError

    def written(self, words: list[Word]) -> str:
        """The statement as written (its numbers filled in where it has `$params`)."""
        raise NotImplementedError

    def then(self, stmt: LayerStmt) -> list[Layer]:
        """The layers of a shorthand activation (`conv 3x3 x8 relu`)."""
        raise NotImplementedError

    # ---- helpers -----------------------------------------------------------------------
    @property
    def words(self) -> list[Word]:
        """The words after the keyword."""
        return self.stmt.words[1:]

    @property
    def keyword(self) -> Word:
        return self.stmt.words[0]

    def text(self) -> str:
        """The whole statement as written, without its shorthand activation."""
        return self.written(self.stmt.words)

    def span(self, last: Word | None = None) -> Pos:
        """From the keyword to `last` (default: the last word), on one line."""
        first = self.keyword
        last = last or self.stmt.words[-1]
        if first.pos is None or last.pos is None:
            return first.pos or Pos(1, 1)
        length = last.end - first.start if first.pos.line == last.pos.line and last.end >= 0 \
            else len(first.text)
        return Pos(first.pos.line, first.pos.column, max(1, length), first.pos.file)

    def number(self, word: Word) -> V:
        return self.numbers(word)[0]

    def size(self, word: Word, n_dims: tuple[int, ...], what: str) -> tuple[V, ...]:
        """A size's dimensions, reporting the wrong number of them (`a kernel must be FxF`)."""
        dims = self.numbers(word)
        if len(dims) not in n_dims:
            forms = " or ".join({1: "N", 2: "FxF", 3: "FxFxC"}.get(n, "HxWxC") for n in n_dims)
            self.rep.error(word.pos, f"{what} must be {forms}, not `{word.text}`", SpecSyntaxError)
            return tuple([1] * n_dims[0])  # type: ignore[list-item]
        return dims

    def kernel(self, word: Word) -> tuple[tuple[V, V], V | None]:
        """A kernel `F`, `FHxFW` or `FxFxC`: (FH, FW) and the depth, if written."""
        dims = self.size(word, (1, 2, 3), "a kernel")
        if len(dims) == 1:
            return (dims[0], dims[0]), None
        return (dims[0], dims[1]), (dims[2] if len(dims) == 3 else None)

    def options(self, words: list[Word]) -> dict[str, tuple[Word, Any]]:
        """Option words by option name, reporting an option given twice."""
        seen: dict[str, tuple[Word, Any]] = {}
        for w in words:
            name = OPTION_NAMES[w.type]
            value: Any = (w.text if w.type in WORD_VALUES else True if w.type in FLAGS
                          else w.number if w.type in DECIMALS else self.number(w))
            if name in seen:
                first = seen[name][0]
                where = f" at column {first.pos.column}" if first.pos else ""
                self.rep.error(w.pos, f"{name} given twice in `{self.keyword.text}` "
                                      f"(first as `{first.text}`{where})",
                               SpecError, hint=f"remove one of `{first.text}` and `{w.text}`")
                continue
            seen[name] = (w, value)
        return seen

    def split_activation(self) -> tuple[list[Word], LayerStmt | None]:
        """The words after the keyword, and the shorthand activation if any."""
        return self.words, self.stmt.act

    def finish(self, layer: Layer, opts: dict[str, tuple[Word, Any]],
               extra: dict[str, Pos | None]) -> list[Layer]:
        """`layer` with the positions of its options, and its shorthand activation after it."""
        layer.options = {k: w.pos for k, (w, _) in opts.items() if w.pos is not None} | \
            {k: p for k, p in extra.items() if p is not None}
        return [layer, *(self.then(self.stmt.act) if self.stmt.act is not None else [])]


class TorchWriter(Protocol):
    """What a kind's `torch` method is given by the PyTorch code generator, which writes one
    class per block: numbers are expressions of the block's parameters (`r.numbers`), and
    `py` writes them as Python."""

    #: The channels the layer reads, an expression; `vector`: it reads a vector (N, F);
    #: `in_residual`: it is inside a residual body (whether it keeps H×W matters).
    c_in: Expr
    vector: bool
    in_residual: bool

    def py(self, value: Expr | tuple[Expr, ...]) -> str:
        """Python for a number, or for a pair (one number when both are the same)."""

    def out(self, channels: Expr) -> None:
        """The channels the layer writes (when they differ from those it reads)."""

    def keeps_size(self, condition: Expr) -> None:
        """Inside a residual body: H×W stays the same only where `condition` holds."""

    def fc_inputs(self) -> Expr | None:
        """An fc over a volume: its input count (C·H·W) as the builder computed it for every
        instance, or None where they differ."""

    def flatten(self) -> None:
        """Flatten a volume before this layer (fc's implicit flatten)."""

    def to_vector(self) -> None:
        """From here on the value is a vector."""

    def helper(self, name: str, source: str) -> None:
        """Define class `name` (its `source`) in the generated file, once."""

    def parameter(self, init: str) -> str:
        """A bare `nn.Parameter(init)` under the layer's name; how forward refers to it."""

    def forward(self, line: str) -> None:
        """A line of forward, `x = …` (for a layer that is not a module)."""

    def reference(self, target: str) -> str:
        """The forward variable whose size `to input` / `to branch` takes."""

    def unsupported(self, what: str) -> NoReturn:
        """Stop: --torch cannot write `what` (an error at the statement)."""


class OnnxGraph(Protocol):
    """What a kind's `onnx` method is given by the ONNX exporter (netspec.backends.onnx)."""

    #: The opset being written (a kind may lower differently before an operator exists).
    opset: int

    def node(self, layer: Layer, op: str, inputs: list[str], output: str | list[str],
             name: str | None = None, **attrs: Any) -> str:
        """Add a node (named after the layer unless `name`); return its (first) output."""

    def weight(self, layer: Layer, suffix: str, shape: tuple[int, ...] | None = None,
               name: str | None = None) -> str:
        """One of the layer's arrays as an initializer (reshaped to `shape`, renamed)."""

    def constant(self, name: str, value: Any) -> str:
        """A float32 initializer (a number, or nested lists, or an array)."""

    def int64s(self, layer: Layer, name: str, values: list[int]) -> str:
        """An int64 vector as a Constant node (shapes, sizes)."""

    def int64_initializer(self, name: str, values: list[int]) -> str:
        """An int64 vector as an initializer (Pad's pads)."""

    def record(self, name: str, shape: tuple[int, ...]) -> None:
        """The shape of a value (netspec's H×W×C order), for value_info."""


class OnnxReader(Protocol):
    """What a kind's `from_onnx` is given by the ONNX importer (netspec.interop.onnx): the
    graph being walked node by node, its values' shapes (ONNX's N×C×H×W, "N" for the batch)
    and constants, and the layers read so far."""

    #: The model was exported by netspec: its nodes' doc_strings hold the statements.
    all_names: bool
    #: The shapes ONNX shape inference gave, by value (a value missing is unknown).
    shapes: dict[str, tuple[Any, ...]]
    #: The graph's input value.
    input_name: str
    #: The model's opset (of the standard domain).
    opset: int

    def attrs(self, node: Any) -> dict[str, Any]:
        """The node's attributes by name (strings decoded)."""

    def fail(self, message: str, hint: str | None = None) -> NoReturn:
        """Stop the import at the current node (its name, op and position are prefixed)."""

    def const(self, name: str) -> bool:
        """Whether the value is a constant (an initializer or a Constant's output)."""

    def array(self, name: str) -> Any:
        """A constant's value as a NumPy array."""

    def dims(self, name: str) -> tuple[int, ...]:
        """A constant's shape, without reading its data."""

    def scalar(self, name: str, what: str) -> float:
        """A constant holding one number (`what` names it in the error otherwise)."""

    def shape(self, name: str) -> tuple[Any, ...]:
        """A value's shape as ONNX shape inference gave it."""

    def lazy(self, name: str, transform: Any = None) -> Any:
        """A weight, read only when the weights are asked for (`transform` applied)."""

    def resolve(self, name: str) -> str:
        """The value a name stands for (through Identity and the like)."""

    def alias(self, name: str, value: str) -> None:
        """`name` is `value` itself (a node that computes nothing netspec keeps)."""

    def producer(self, value: str) -> Any:
        """The layer read so far whose output is `value`, or None."""

    def uses(self, value: str) -> int:
        """How many node inputs read `value`."""

    def drop(self, layer: Any) -> None:
        """Forget a layer read before (folded into the one being read)."""

    def emit(self, node: Any, kind: type[Layer], words: list[Any], inputs: list[str],
             weights: dict[str, Any] | None = None, output: int = 0,
             out: str | None = None) -> Any:
        """A layer of `kind` read from `node`: its statement's words (strings, and numbers
        made by `num`), the values it reads, its arrays by suffix; it writes the node's
        output `output` (or the value `out`)."""

    def num(self, prefix: str, value: int, default: int | None = None, key: str = "n") -> Any:
        """A number of a statement (`s2`, `x64`), left out when it is `default`; `key` names
        the block parameter it becomes where it varies between calls (`s$s`)."""

    def padding(self, attrs: dict[str, Any], x: str, kernel: list[int], strides: list[int],
                dilation: int, pool: bool, out: str) -> list[Any]:
        """The words (`pN`, `same`, `valid`, `ceil`) that give the same windows as the
        node's padding, from input `x` to output `out`."""

    def square(self, values: list[int], what: str) -> int:
        """The one number of a pair equal along H and W (an error otherwise)."""

    def short(self, value: float) -> str:
        """A float attribute as people write it (`1e-3`, not 0.0010000000474974513)."""

    def computed(self, value: str) -> bool:
        """Whether `value` is the graph's input or a layer's output (not a step of a pattern
        still being read, such as group norm's reshape back before its Mul and Add)."""

    def consumers(self, value: str) -> list[Any]:
        """The nodes that read `value` (for a pattern that must see the node after it before
        it claims a node another kind may read)."""

    def pending(self, pattern: str) -> dict[str, Any]:
        """The partial matches of a pattern of several nodes (`gelu`), by the value each
        stopped at: the steps seen so far, for the next node to continue."""

    def statement(self, node: Any) -> str:
        """The netspec statement that made `node` (a model netspec exported), else ""."""

    def size_of(self, name: str) -> str | None:
        """For a shape computation giving an H×W: the value whose H×W it is, else None."""
