"""The layer base class: what every kind states about itself, and the network's input.

A kind is one class (a family of kinds, one module): how its statement is read
(`read`), its checks and shape rule (`check_options`, `infer`), its weights,
its costs and the facts the analyses ask for, and, next to those, how each
backend translates it. Everything that lists kinds (the parser's keywords, the
pictures' colours, the importer's operators) is derived from the registry
(registry.py), never written out again.
"""

from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING, ClassVar

from ..source.diagnostics import Reporter, ShapeError, SpecError
from ..source.pos import Pos

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from ..numerics.backward.steps import TrainStep
    from ..numerics.elementwise import Activation
    from ..numerics.windows import Step
    from ..syntax.tree import LayerStmt
    from .statement import OnnxGraph, OnnxReader, Reading, TorchWriter

Shape = tuple[int, ...]
#: How one output pixel reads its input along one axis: (span in input pixels,
#: stride, padding before). A 3×3 conv with dilation 2, stride 2, p2: (5, 2, 2).
AxisWindow = tuple[int, int, int]


def shape_str(shape: Shape | None) -> str:
    """`28×28×6` for a volume, `120` for a vector, `?` when unknown."""
    return "?" if shape is None else "×".join(str(d) for d in shape)


#: Every kind class, in the order their modules define them (see registry.py).
KINDS: list[type[Layer]] = []

#: What a kind can do, each with the members of Layer whose override (or a true value)
#: shows that a kind does it. (Every kind is drawn: the pictures need only its shapes and
#: weights, and its `draw_*` facts where it wants a look of its own.) A kind either has a capability or names it in its
#: `unsupported` with the reason a user reads (tests/test_kinds.py checks every pair).
CAPABILITIES: dict[str, tuple[str, ...]] = {
    "read": ("read",),                    # its statement becomes layers
    "infer": ("infer", "infer_from", "pointwise"),   # its shape rule
    "flops": ("flops",),                  # netspec.analysis.cost
    "explain": ("explain",),              # `netspec explain`
    "rf": ("window", "pointwise"),        # netspec.analysis.rf
    "memory": ("saves",),                 # what autograd keeps (training memory)
    "numpy": ("numpy",),                  # the NumPy model
    "backward": ("training_step",),       # training: netspec.gradients, `netspec train`
    "onnx": ("onnx",),                    # ONNX export
    "onnx_import": ("onnx_ops",),         # ONNX import (netspec.interop)
    "torch": ("torch",),                  # PyTorch code
}


class Layer:
    """A layer of the network: written once in the spec, checked, then run.

    Besides its shape rule, a kind states the facts the analyses (netspec.analysis)
    ask for; the defaults below are those of no kind in particular, and an analysis
    that needs an undeclared fact refuses with the kind's name rather than guess.
    """

    kind: ClassVar[str] = ""

    # ---- the language: how a statement of this kind is written --------------------
    #: The grammar rule whose statements this class reads (`conv`), if any; kinds that
    #: share a rule (the activations) tell themselves apart by `keywords`.
    rule: ClassVar[str | None] = None
    #: The words that start its statement (`conv`; `relu`, `relu6`...).
    keywords: ClassVar[tuple[str, ...]] = ()
    #: The form of its statement, for a hint after a syntax error.
    usage: ClassVar[str | None] = None
    #: Words other frameworks use for it, with netspec's spelling (`dense` → `fc`).
    foreign: ClassVar[dict[str, str]] = {}
    #: Words that may follow its keyword, for a near miss after a syntax error.
    option_words: ClassVar[tuple[str, ...]] = ()
    #: May follow a `conv`, `fc`, `linear` or `deconv` in the same statement
    #: (`conv 3x3 x16 relu`): the elementwise activations.
    shorthand: ClassVar[bool] = False

    #: Read as part of the statement before it, so written on its line where a spec is
    #: written for the user (an imported model): `conv 3x3 x64; bn; relu`.
    joins_line: ClassVar[bool] = False

    #: Output pixel (i, j) reads only pixel (i, j) of each input (activations, batch
    #: norm, merges): the receptive field passes through unchanged.
    pointwise: ClassVar[bool] = False
    #: Suffixes of `weight_shapes` that are buffers, not trained (batch norm's
    #: running statistics); the rest are trainable.
    buffers: ClassVar[tuple[str, ...]] = ()
    #: Suffixes of `weight_shapes` that start at 1 (a scale named `scale`), besides those
    #: netspec.data.weights starts at 1 for every kind (a one-dimensional `weight`,
    #: `running_var`, and "": a bare layer scale).
    starts_at_one: ClassVar[tuple[str, ...]] = ()
    #: Runs over its input's memory instead of allocating an output (relu), when
    #: no other layer still reads that input.
    in_place: ClassVar[bool] = False
    #: Its output is its input, unchanged (dropout at inference): allocates nothing.
    alias: ClassVar[bool] = False
    #: Capabilities (CAPABILITIES) it does not have, each with the reason the user reads
    #: when asking for it: `{"onnx_import": "no ONNX operator computes it"}`.
    unsupported: ClassVar[dict[str, str]] = {}
    #: Capabilities another part of netspec provides for it, each with which: a kind made
    #: by another kind's statement, or by composition (`{"read": "Pool (`pool avg to`)"}`).
    delegated: ClassVar[dict[str, str]] = {}
    #: Which of its values PyTorch's autograd keeps for this kind's backward pass:
    #: "input" (every input) and/or "output". None = not declared: the training
    #: memory analysis refuses the layer.
    saves: ClassVar[tuple[str, ...] | None] = None

    # ---- the NumPy model (netspec.backends.numpy): its speed-ups ------------------
    #: Its step takes `act=`, an elementwise activation applied to its output while it
    #: is in cache: a following activation (its output's only reader) is fused into it.
    fuses_activation: ClassVar[bool] = False
    #: A following per-channel affine layer (its output's only reader, see `affine`) is
    #: folded into its `weight` (output channels on the first axis) and `bias`.
    folds_affine: ClassVar[bool] = False
    #: It is a per-channel x·scale + shift (see `affine`): foldable into the layer before.
    per_channel_affine: ClassVar[bool] = False
    #: Its step overwrites its first input (the model copies one another layer reads).
    numpy_in_place: ClassVar[bool] = False
    #: Its weights are large enough that the model's threads share its features rather
    #: than each running it on a part of the batch (fc: AlexNet's, VGG's classifiers).
    shares_features: ClassVar[bool] = False
    #: Temporaries the size of the array an elementwise function overwrites.
    temporaries: ClassVar[int] = 0

    # ---- pictures (netspec.picture) ---------------------------------------------
    #: How it is drawn (netspec.picture.look.role): "volume", "vector", "inplace" or
    #: "merge"; None: decided from its shapes and weights.
    draw_as: ClassVar[str | None] = None
    #: Its fill colour; None: the picture's neutral colour.
    draw_colour: ClassVar[str | None] = None
    #: A merge's sign in its circle; None: the first letters of its kind.
    draw_sign: ClassVar[str | None] = None
    #: The style class of the kernel drawn on the volume it reads ("kern pool": dashed).
    draw_kernel: ClassVar[str] = "kern"

    @classmethod
    def supports(cls, capability: str) -> bool:
        """Whether this kind has `capability` (a key of CAPABILITIES): it overrides one of
        the capability's members of Layer, or sets it to a true value."""
        for member in CAPABILITIES[capability]:
            mine, base = getattr(cls, member, None), getattr(Layer, member, None)
            if callable(mine) and getattr(mine, "__func__", mine) is not \
                    getattr(base, "__func__", base):
                return True
            if not callable(mine) and mine is not None and mine != base:
                return True
        return False

    def picture_label(self) -> str | None:
        """Its one-line label in a graph picture, when the generic one does not suit it."""
        return None

    def filter_bank(self, weights: dict[str, np.ndarray]) -> np.ndarray | None:
        """Its weights (`weights`: its arrays by suffix) as filters over its input, an array
        K×C×FH×FW (filter, input channel it reads, window), for `netspec draw --filters`;
        None for a kind whose weights are not filters over an H×W×C input."""
        return None

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            KINDS.append(cls)

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
        #: the spec-tree statement it was read from, and the block parameters it was read
        #: with (set by the builder; what a code generator asks of every instance)
        self.syntax: object = None
        self.env: dict[str, int] = {}

    @classmethod
    def read(cls, r: Reading) -> list[Layer]:
        """The layers of one statement of this kind (its numbers resolved by `r`)."""
        raise NotImplementedError(f"`{cls.kind}` has no statement")

    @classmethod
    def torch(cls, r: Reading, t: TorchWriter) -> str | None:
        """The statement as a PyTorch module's constructor (`nn.Conv2d(…)`), or None when
        it wrote itself into forward through `t`; its numbers are expressions (`r`)."""
        raise NotImplementedError(f"`{cls.kind}` has no PyTorch module")

    @classmethod
    def made_kind(cls, stmt: LayerStmt) -> str:
        """The kind of layer a statement of this class makes (what its default name counts)."""
        return cls.kind

    @classmethod
    def writes_forward(cls, stmt: LayerStmt) -> bool:
        """Whether its PyTorch code is a line of forward rather than a module (a layer scale,
        an upsampling to another value's size)."""
        return False

    # ---- the NumPy model (netspec.backends.numpy) -----------------------------------
    def numpy(self, w: dict[str, np.ndarray]) -> Step | None:
        """A function of NHWC (or N×F) float32 arrays, one per input, computing the layer
        with its weights `w` (by suffix; a folded batch norm's shift arrives as "bias"),
        or None where its output is its input (dropout at inference)."""
        raise NotImplementedError(f"the NumPy model has no `{self.kind}` layer")

    def numpy_scratch(self, batch: int) -> int:
        """Bytes its NumPy step allocates while it runs, beyond its output (for the memory
        model, netspec.backends.numpy.memory: within tracemalloc's 10 %)."""
        return 0

    def training_step(self, w: dict[str, np.ndarray], training: bool = False,
                      rng: np.random.Generator | None = None) -> TrainStep | None:
        """Its forward keeping what its backward needs, and that backward (giving dx per
        input and a gradient per trainable weight), on NHWC (or N×F) float32 arrays with its
        weights `w` by suffix: see netspec.numerics.backward.steps. `training` selects the
        training forward (batch statistics, dropout's mask drawn from `rng`); None for a
        layer whose output is the batch itself (the input)."""
        raise NotImplementedError(f"netspec cannot train a `{self.kind}` layer")

    def numpy_alias(self) -> bool:
        """Whether the NumPy model's step for it allocates nothing (its output is its input)."""
        return self.aliases(False)

    def affine(self, w: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
        """This layer as a per-channel x·scale + shift, for folding into the layer before
        it (batch norm, layer scale); None for any other kind."""
        return None

    def elementwise(self) -> Activation | None:
        """An elementwise activation's function, overwriting its argument (fusable into the
        step before it, and in place); None for any other kind."""
        return None

    def absorbs(self, after: Layer) -> bool:
        """Whether its NumPy step can also compute `after`, its output's only reader (a
        concat writing straight into a channel shuffle's order)."""
        return False

    def numpy_absorbing(self, w: dict[str, np.ndarray], after: Layer) -> Step:
        """Its step computing `after` too (see `absorbs`)."""
        raise NotImplementedError(f"`{self.kind}` absorbs no layer")

    # ---- ONNX (netspec.backends.onnx) ---------------------------------------------
    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        """Add the nodes that compute it to `g`, reading the values `inputs`; return the
        value holding its output (named after the layer)."""
        raise NotImplementedError(f"the ONNX exporter has no `{self.kind}` layer")

    # ---- ONNX import (netspec.interop.onnx) ----------------------------------------
    #: The ONNX operators whose nodes this kind may read (`from_onnx`).
    onnx_ops: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        """Read `node`, one of `onnx_ops`, through `r`: emit a layer of this kind, fold the
        node into a layer read before, or record a step of a pattern of several nodes, and
        return None; or decline, returning what this kind reads that operator as (for the
        error when no kind reads the node)."""
        raise NotImplementedError(f"`{cls.kind}` reads no ONNX operator")

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

    def input_reads(self) -> list[tuple[Layer, tuple[AxisWindow, AxisWindow] | None]]:
        """Each value the layer reads, with the window it reads it through: its inputs with
        `input_windows()`. A layer may read an input twice: group norm reads each pixel,
        and the whole H×W of its input for its statistics (a broadcast window, stride 0)."""
        return list(zip(self.inputs, self.input_windows()))

    @property
    def non_trainable(self) -> int:
        """Values in this layer's buffers (running statistics); `params` are the trainable."""
        return sum(prod(shape) for key, shape in self.weight_shapes().items()
                   if key in self.buffers)

    def saved_extra_bytes(self) -> int:
        """Bytes per sample autograd keeps beyond the values in `saves` (indices, masks)."""
        return 0

    def saved_pass_bytes(self) -> int:
        """Bytes autograd keeps once per pass, whatever the batch (a weight-standardised
        conv's standardised weights, blur's filter)."""
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

    delegated = {"onnx": "the exported graph's input (netspec.backends.onnx)",
                 "onnx_import": "the model's input (netspec.interop.onnx)"}
    kind = "input"
    draw_colour = "#e8e8e8"
    rule = "input"
    keywords = ("input",)
    usage = "input HxWxC`, e.g. `input 32x32x3"
    pointwise = True
    saves = ()

    @classmethod
    def torch(cls, r: Reading, t: TorchWriter) -> str | None:
        return None   # the forward's argument

    def numpy(self, w: dict[str, np.ndarray]) -> Step | None:
        return None   # the batch itself

    def numpy_scratch(self, batch: int) -> int:
        """The model copies the batch twice (to float32 NCHW, then to NHWC)."""
        return 4 * batch * prod(self.output_shape)

    def training_step(self, w: dict[str, np.ndarray], training: bool = False,
                      rng: np.random.Generator | None = None) -> TrainStep | None:
        return None   # the batch itself

    @classmethod
    def read(cls, r: Reading) -> list[Layer]:
        size = r.words[0]
        layer = cls(r.span(size), r.text(), r.size(size, (1, 2, 3, 4), "input"))
        layer.options = {"size": size.pos}
        return [layer]

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
