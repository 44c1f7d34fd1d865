"""The IR: one class per layer kind, each owning its rules.

A layer knows, in one place (as a Keras layer does): the options it was written
with and where (for carets), its static checks, how its output shape and parameter
count follow from its input shape (`infer`), and the shapes of its weights. The
checker and the backends ask the layer; they never re-derive its arithmetic.

Shapes are tuples: (H, W, C) for a volume, (N,) for a vector.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import TYPE_CHECKING, ClassVar

from .arith import effective_kernel, resolve_padding, window_output_size
from .errors import ShapeError, SpecError

if TYPE_CHECKING:
    from .network import Reporter

Shape = tuple[int, ...]

#: An fc layer over at least this many input values gets a warning (the course's
#: 1000×1000×3 image into 1000 units is 3 billion weights).
LARGE_FC_INPUTS = 1_000_000


@dataclass(frozen=True)
class Pos:
    """Where something was written: 1-based line and column, and its length."""

    line: int
    column: int
    length: int = 1


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


class _Windowed(Layer):
    """Shared by conv and pool: a kernel slid with stride, padding and dilation."""

    def __init__(self, pos: Pos, text: str, kernel: tuple[int, int], stride: int | None,
                 padding: int | str, dilation: int = 1, ceil_mode: bool = False) -> None:
        super().__init__(pos, text)
        self.kernel = kernel
        self.stride_opt = stride
        self.padding = padding
        self.dilation = dilation
        self.ceil_mode = ceil_mode
        self.pads: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0))

    @property
    def strides(self) -> tuple[int, int]:
        return (self.stride_opt,) * 2 if self.stride_opt is not None else self.default_strides()

    def default_strides(self) -> tuple[int, int]:
        return 1, 1

    def check_options(self, rep: Reporter) -> None:
        for f in self.kernel:
            self._positive(rep, "kernel", "kernel size", f)
        if self.stride_opt is not None:
            self._positive(rep, "stride", "stride", self.stride_opt)
        self._positive(rep, "dilation", "dilation", self.dilation)
        if isinstance(self.padding, int) and self.padding < 0:
            rep.error(self.where("padding"), f"padding must not be negative, not {self.padding}",
                      ShapeError)

    def _valid_numbers(self) -> bool:
        return (min(self.kernel) >= 1 and min(self.strides) >= 1 and self.dilation >= 1
                and not (isinstance(self.padding, int) and self.padding < 0))

    def _spatial(self, shape: Shape, rep: Reporter) -> tuple[int, int] | None:
        """Output H and W, with errors for sizes below 1 and warnings for lost input.

        An axis whose message would repeat the other's (a square kernel on a
        square input) is reported once, as "height and width".
        """
        axes: dict[tuple, list[str]] = {}
        out, pads = [], []
        for axis, n, f, s in zip(("height", "width"), shape[:2], self.kernel, self.strides):
            p = resolve_padding(self.padding, n, f, s, self.dilation)
            e = effective_kernel(f, self.dilation)
            o = window_output_size(n, f, p, s, self.dilation, self.ceil_mode)
            lost = (p[0] + n - 1) - ((o - 1) * s + e - 1)
            pads.append(p)
            out.append(o)
            axes.setdefault((n, f, s, e, p, o, lost), []).append(axis)
        for (n, f, s, e, p, o, lost), names in axes.items():
            which = " and ".join(names)
            if o < 1:
                kern = f"{e}" if self.dilation == 1 else f"{self.dilation}·({f}−1)+1 = {e}"
                rep.error(self.pos, f"`{self.name}` output {which} {'are' if len(names) > 1 else 'is'} {o}: "
                                    f"floor(({n} + {p[0] + p[1]} − {kern})/{s}) + 1 = {o} < 1",
                          ShapeError,
                          notes=(f"the {e}-wide {'dilated ' if self.dilation > 1 else ''}kernel "
                                 f"does not fit in the {n + p[0] + p[1]}-wide padded input",),
                          hint="use a smaller kernel or stride, add padding, or remove a "
                               "downsampling layer before it")
            elif lost > 0 and e >= s and not self.ceil_mode:
                # Only input that a kernel at least as wide as its stride would cover
                # counts as lost: a 1×1 stride-2 conv skips every other row by design.
                unit = {"height": "row", "width": "column"}
                rows = " and ".join(f"{unit[a]}{'s' if lost > 1 else ''}" for a in names)
                rep.warning(self.pos, "lost-input", f"`{self.name}` ignores the last {lost} input {rows}: "
                                      f"stride {s} does not divide {n} + {p[0] + p[1]} − {e} = "
                                      f"{n + p[0] + p[1] - e}",
                            hint="adjust padding or input size so the windows cover the input")
            if self.padding == "same" and (p[0] + p[1]) % 2:
                rep.warning(self.where("padding"), "asymmetric-same",
                            f"`same` padding of `{self.name}` is asymmetric along the {which}: "
                            f"{p[0]} before, {p[1]} after, as in TensorFlow and ONNX SAME_UPPER",
                            hint="an odd kernel at stride 1 pads evenly")
        self.pads = (pads[0], pads[1])
        if min(out) < 1:
            return None
        return out[0], out[1]

    def attrs(self) -> dict:
        return {"kernel": list(self.kernel), "stride": list(self.strides),
                "pads": [self.pads[0][0], self.pads[1][0], self.pads[0][1], self.pads[1][1]],
                "padding": self.padding, "dilation": self.dilation}


class Conv(_Windowed):
    """`conv FxF [sN] [pN|same|valid] [dN] [gN] xK`: K filters of depth C_in/groups."""

    kind = "conv"
    GROUPS_HINT: ClassVar[str] = "groups must divide both the input channels and the filters"

    def __init__(self, pos: Pos, text: str, kernel: tuple[int, int], depth: int | None,
                 filters: int | None, stride: int | None, padding: int | str,
                 dilation: int, groups: int, bias: bool = True) -> None:
        super().__init__(pos, text, kernel, stride, padding, dilation)
        self.depth = depth
        self.filters = filters
        self.groups = groups
        self.bias = bias
        self.in_channels = 0

    def check_options(self, rep: Reporter) -> None:
        super().check_options(rep)
        if self.filters is None:
            rep.error(self.pos, "`conv` needs a filter count", SpecError,
                      hint=f"add `xK` for K filters, e.g. `{self.text} x16`")
        else:
            self._positive(rep, "filters", "filter count", self.filters)
        if self.depth is not None:
            self._positive(rep, "kernel", "filter depth", self.depth)
        if self._positive(rep, "groups", "groups", self.groups) and self.filters and \
                self.filters % self.groups:
            rep.error(self.where("groups"), f"groups {self.groups} does not divide the "
                                            f"{self.filters} filters", ShapeError,
                      hint=self.GROUPS_HINT)

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        self.input_shape = shape
        if not self._volume(shape, rep) or not self._valid_numbers():
            return None
        if self.filters is None or self.filters < 1 or self.groups < 1 or self.filters % self.groups:
            return None
        c_in, g, k = shape[2], self.groups, self.filters
        ok = True
        if self.depth is not None and self.depth != c_in // g:
            expected = c_in // g
            rep.error(self.where("kernel"),
                      f"filter depth {self.depth} does not match the input depth {c_in}"
                      + (f" / {g} groups = {expected}" if g > 1 else ""), ShapeError,
                      notes=(f"the input to `{self.name}` is {shape_str(shape)}",),
                      hint=f"write the kernel as {self.kernel[0]}x{self.kernel[1]}x{expected}, "
                           f"or leave the depth out")
            ok = False
        if c_in % g:
            rep.error(self.where("groups"), f"groups {g} does not divide the {c_in} input "
                                            f"channels", ShapeError, hint=self.GROUPS_HINT)
            ok = False
        spatial = self._spatial(shape, rep)
        if spatial is None or not ok:
            return None
        self.in_channels = c_in
        fan_in = self.kernel[0] * self.kernel[1] * (c_in // g)
        self.params = (fan_in + self.bias) * k
        self.macs = spatial[0] * spatial[1] * k * fan_in
        self.output_shape = (*spatial, k)
        return self.output_shape

    def weight_shapes(self) -> dict[str, Shape]:
        weight = {"weight": (self.filters, self.in_channels // self.groups, *self.kernel)}
        return weight | {"bias": (self.filters,)} if self.bias else weight

    def attrs(self) -> dict:
        return {**super().attrs(), "filters": self.filters, "groups": self.groups,
                "bias": self.bias}


class Pool(_Windowed):
    """`pool [max|avg] F [sN] [pN|same|valid]`: stride defaults to the window."""

    kind = "pool"

    def __init__(self, pos: Pos, text: str, mode: str, kernel: tuple[int, int],
                 stride: int | None, padding: int | str, ceil_mode: bool = False,
                 global_pool: bool = False) -> None:
        super().__init__(pos, text, kernel, stride, padding, 1, ceil_mode)
        self.mode = mode
        self.global_pool = global_pool

    def default_strides(self) -> tuple[int, int]:
        return self.kernel

    def _overpadded(self) -> bool:
        return isinstance(self.padding, int) and self.padding > min(self.kernel) // 2

    def check_options(self, rep: Reporter) -> None:
        super().check_options(rep)
        if self._overpadded() and min(self.kernel) >= 1:
            f = min(self.kernel)
            rep.error(self.where("padding"), f"padding {self.padding} is more than half the "
                                             f"{f}-wide window: some windows would see only "
                                             f"padding", ShapeError,
                      hint=f"use padding at most {f // 2}")

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        self.input_shape = shape
        if not self._volume(shape, rep) or not self._valid_numbers():
            return None
        if self.global_pool:   # one window over the whole input
            self.kernel = shape[:2]   # and so the stride, by default
            self.output_shape = (1, 1, shape[2])
            return self.output_shape
        spatial = self._spatial(shape, rep)
        if spatial is None or self._overpadded():
            return None
        self.output_shape = (*spatial, shape[2])
        return self.output_shape

    def floor_pads(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """Padding under which floor rounding gives exactly this layer's windows.

        `ceil` rounding lets the last window run past the padded input; padding the
        end up to that window's end (with cells that max and average both ignore)
        gives the same windows with plain floor rounding, which every runtime
        computes alike (ONNX shape inference and runtimes differ on `ceil_mode`).
        """
        pads = []
        for o, s, f, n, (before, after) in zip(self.output_shape, self.strides, self.kernel,
                                               self.input_shape, self.pads):
            end = max(0, (o - 1) * s + f - n - before)
            pads.append((before, end if self.ceil_mode else after))
        return pads[0], pads[1]

    def attrs(self) -> dict:
        return {**super().attrs(), "mode": self.mode, "ceil": self.ceil_mode,
                "global": self.global_pool}


class FC(Layer):
    """`fc N`: every input value connected to each of N units; flattens a volume."""

    kind = "fc"

    def __init__(self, pos: Pos, text: str, units: int) -> None:
        super().__init__(pos, text)
        self.units = units
        self.in_features = 0

    def check_options(self, rep: Reporter) -> None:
        self._positive(rep, "units", "unit count", self.units)

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        self.input_shape = shape
        if self.units < 1:
            return None
        n = prod(shape)
        self.in_features = n
        self.params = (n + 1) * self.units
        self.macs = n * self.units
        if n >= LARGE_FC_INPUTS:
            rep.warning(self.pos, "large-fc",
                        f"`{self.name}` connects all {n:,} input values ({shape_str(shape)}) to "
                        f"{self.units:,} units: {self.params:,} parameters",
                        hint="convolutions and pooling first share weights across the image "
                             "and shrink it before the fully connected layers")
        self.output_shape = (self.units,)
        return self.output_shape

    def weight_shapes(self) -> dict[str, Shape]:
        return {"weight": (self.units, self.in_features), "bias": (self.units,)}

    def attrs(self) -> dict:
        return {"units": self.units}


class Activation(Layer):
    """`relu`, `relu6` (min(max(x, 0), 6)), `tanh`, `sigmoid`, `softmax` (over channels)."""

    FUNCTIONS: ClassVar[tuple[str, ...]] = ("relu", "relu6", "tanh", "sigmoid", "softmax")

    def __init__(self, pos: Pos, text: str, function: str) -> None:
        super().__init__(pos, text)
        self.function = function

    @property
    def kind(self) -> str:  # type: ignore[override]
        return self.function


class BatchNorm(Layer):
    """`bn`: per-channel scale and shift (2·C trainable), plus running statistics."""

    kind = "bn"
    EPSILON: ClassVar[float] = 1e-5

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        self.input_shape = self.output_shape = shape
        self.params = 2 * shape[-1]
        return shape

    def weight_shapes(self) -> dict[str, Shape]:
        c = (self.output_shape[-1],)
        return {"weight": c, "bias": c, "running_mean": c, "running_var": c}


class Dropout(Layer):
    """`dropout P`: identity at inference, so no parameters and no shape change."""

    kind = "dropout"

    def __init__(self, pos: Pos, text: str, rate: float) -> None:
        super().__init__(pos, text)
        self.rate = rate

    def check_options(self, rep: Reporter) -> None:
        if not 0 <= self.rate < 1:
            rep.error(self.where("rate"), f"dropout rate must be in [0, 1), not {self.rate:g}",
                      ShapeError, hint="the rate is the fraction of units dropped, e.g. 0.5")

    def attrs(self) -> dict:
        return {"rate": self.rate}


class Flatten(Layer):
    """`flatten`: H×W×C becomes a vector of H·W·C values in C-major (NCHW) order."""

    kind = "flatten"

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        self.input_shape = shape
        self.output_shape = (prod(shape),)
        return self.output_shape


class LRN(Layer):
    """`lrn N`: x / (k + α/N · Σ x²)^β over N neighbouring channels (AlexNet, 2012)."""

    kind = "lrn"

    def __init__(self, pos: Pos, text: str, size: int, alpha: float = 1e-4, beta: float = 0.75,
                 k: float = 1.0) -> None:
        super().__init__(pos, text)
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def check_options(self, rep: Reporter) -> None:
        self._positive(rep, "size", "lrn size", self.size)

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        self.input_shape = shape
        if not self._volume(shape, rep) or self.size < 1:
            return None
        self.output_shape = shape
        return shape

    def attrs(self) -> dict:
        return {"size": self.size, "alpha": self.alpha, "beta": self.beta, "k": self.k}


def _origin(layer: Layer) -> str:
    return f"`{layer.name}`, line {layer.line}"


class Add(Layer):
    """The end of a residual connection: the sum of the body and the shortcut."""

    kind = "add"

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
