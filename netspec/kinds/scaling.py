"""Layers that multiply by a factor: a learnable scale of a stored shape, with or without a
bias (`scale`), and a constant (`mul F`).

The shapes torch models keep their scales in: (C, 1, 1) for torchvision's ConvNeXt, (C,)
for timm's ConvNeXt and InceptionNeXt (`gamma`, reshaped where used), (1,) for HGNetV2's
LearnableAffineBlock (a scale and a bias), () for NFNet's `skipinit_gain`. A scale
without a bias is a bare parameter of the module that holds it, so its one array is keyed
by the layer's own name; with a bias it is a module of its own, `NAME.scale` and
`NAME.bias`. Inception-ResNet scales each residual body by a constant (0.17, 0.1, 0.2),
NFNet by α and β: `mul 0.17`, no weights.
"""

from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING

from ..source.diagnostics import Reporter
from ..source.pos import Pos
from ..syntax.tree import LayerStmt
from .base import Layer, Shape, shape_str
from .statement import OnnxGraph, OnnxReader, Reading, TorchWriter

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from ..numerics.backward.steps import TrainStep
    from ..numerics.windows import Step

#: The generated PyTorch code's module for a scale with a bias (as timm's
#: LearnableAffineBlock: parameters `scale` and `bias`).
AFFINE = '''class Affine(nn.Module):
    """x · scale + bias, both learnable, of the shape given; `per_channel`: one value per
    channel of a volume (viewed as C×1×1)."""

    def __init__(self, shape: tuple[int, ...], per_channel: bool) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(shape))
        self.bias = nn.Parameter(torch.zeros(shape))
        self.view = [-1, 1, 1] if per_channel else [-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale.view(self.view) + self.bias.view(self.view)'''

#: ... and for a constant factor (a module, so that it can sit in an `nn.Sequential`).
CONSTANT_MUL = '''class ConstantMul(nn.Module):
    """x times a constant."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor'''

#: The stored shapes a scale may be written with, C the channels (C×1×1 unless written).
STORED = ("(C,1,1)", "(C,)", "(1,)", "()")


class LayerScale(Layer):
    """`scale [(C,1,1)|(C,)|(1,)|()] [bias]`: x times a learnable scale stored in that
    shape (one factor per channel, or one for all), plus a learnable bias of the same
    shape where `bias` is written."""

    kind = "scale"
    rule = "scale"
    keywords = ("scale",)
    usage = "scale [(C,1,1)|(C,)|(1,)|()] [bias]`, e.g. `scale (C,)` or `scale (1,) bias"
    option_words = ("bias",)
    pointwise = True
    saves = ("input",)   # and its scale
    per_channel_affine = True
    numpy_in_place = True
    starts_at_one = ("scale",)

    def __init__(self, pos: Pos, text: str, stored: str = STORED[0], bias: bool = False) -> None:
        super().__init__(pos, text)
        self.stored, self.bias = stored, bias

    @classmethod
    def _words(cls, r: Reading) -> tuple[str, bool]:
        """(the stored shape as written, with a bias)."""
        texts = [w.text for w in r.words]
        stored = next((t for t in texts if t.startswith("(")), STORED[0])
        return stored, "bias" in texts

    @classmethod
    def read(cls, r: Reading) -> list[Layer]:
        return [cls(r.span(), r.text(), *cls._words(r))]

    @classmethod
    def writes_forward(cls, stmt: LayerStmt) -> bool:
        return not any(w.text == "bias" for w in stmt.words)

    @classmethod
    def torch(cls, r: Reading, t: TorchWriter) -> str | None:
        """A bare parameter of the module, multiplied in forward (as torch's CNBlock, timm's
        ConvNeXtBlock); with a bias, an `Affine` module."""
        stored, bias = cls._words(r)
        c = t.py(t.c_in)
        dims = {"(C,1,1)": [c, "1", "1"], "(C,)": [c], "(1,)": ["1"], "()": []}[stored]
        shape = f"({', '.join(dims)}{',' if len(dims) == 1 else ''})"
        if bias:
            t.helper("Affine", AFFINE)
            return f"Affine({shape}, {'C' in stored and not t.vector})"
        ref = t.parameter(f"torch.ones({shape})")
        t.forward(f"x = x * {ref}.view(-1, 1, 1)" if stored == "(C,)" and not t.vector
                  else f"x = x * {ref}")
        return None

    def flops(self) -> int:
        """One multiply per value, and one add for the bias."""
        return (2 if self.bias else 1) * prod(self.output_shape)

    def explain(self) -> list[str]:
        which = "each channel times its own factor" if "C" in self.stored else \
            "every value times one factor"
        return [f"out = in = {shape_str(self.output_shape)}, {which}"
                + (", plus its bias" if self.bias else ""),
                f"params = {self.params:,} ({self.stored.replace('C', str(self.channels))}"
                + (" scale and bias)" if self.bias else ")"),
                f"FLOPs = {self.flops():,} ({'a multiply and an add' if self.bias else 'one multiply'}"
                f" per value)"]

    @property
    def channels(self) -> int:
        return self.output_shape[-1]

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        self.input_shape = shape
        if self.stored == STORED[0] and not self._volume(shape, rep):
            return None
        self.output_shape = shape
        self.params = sum(prod(s) for s in self.weight_shapes().values())
        return shape

    def weight_shapes(self) -> dict[str, Shape]:
        c = self.channels
        shape = {"(C,1,1)": (c, 1, 1), "(C,)": (c,), "(1,)": (1,), "()": ()}[self.stored]
        return {"scale": shape, "bias": shape} if self.bias else {"": shape}

    def attrs(self) -> dict:
        return {"stored": self.stored, "bias": self.bias}

    def _factors(self, w: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """The scale (and bias) as arrays that broadcast over NHWC channels or a vector."""
        scale, bias = (w["scale"], w["bias"]) if self.bias else (w[""], None)
        flat = (lambda a: a.reshape(-1)) if "C" in self.stored else (lambda a: a.reshape(()))
        return flat(scale), (flat(bias) if bias is not None else None)

    def affine(self, w: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
        """x·scale + bias per channel, for folding into the layer before it."""
        import numpy as np
        scale, bias = self._factors(w)
        c = self.channels
        return (np.broadcast_to(scale, (c,)).astype(np.float32),
                np.broadcast_to(bias if bias is not None else np.float32(0), (c,))
                .astype(np.float32))

    def numpy(self, w: dict[str, np.ndarray]) -> Step | None:
        """x·scale (+ bias), written over x (the model copies an x another layer reads)."""
        import numpy as np
        scale, bias = self._factors(w)

        def step(x: np.ndarray) -> np.ndarray:
            np.multiply(x, scale, out=x)
            if bias is not None:
                x += bias
            return x
        return step

    def training_step(self, w: dict[str, np.ndarray], training: bool = False,
                      rng: np.random.Generator | None = None) -> TrainStep | None:
        from ..numerics.backward import channels, steps
        keys = ("scale", "bias") if self.bias else ("",)
        arrays = [w[k] for k in keys]
        return steps.unary(lambda x: channels.layer_scale_forward(x, *arrays, keys=keys),
                           channels.layer_scale_backward)

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        """Mul by the scale (and Add the bias), shaped to broadcast: C×1×1 on a volume."""
        c, n = self.channels, self.name
        shape = (c, 1, 1) if "C" in self.stored and len(self.input_shape) == 3 else None
        if not self.bias:   # the key is the layer's own name, which names its output value
            return g.node(self, "Mul", [inputs[0], g.weight(self, "", shape, f"{n}.scale")], n)
        scaled = g.node(self, "Mul", [inputs[0], g.weight(self, "scale", shape)],
                        f"{n}.scaled", name=f"{n}.scaled")
        return g.node(self, "Add", [scaled, g.weight(self, "bias", shape)], n)

    onnx_ops = ("Mul", "Add")

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        """x times a constant with one number per channel, shaped (C, 1, 1) or (C,) (a model
        netspec exported says which stored shape, and whether a bias Add follows)."""
        written = r.statement(node).split()
        why = "`scale` (a multiplier per channel, a constant shaped (C, 1, 1) or (C,))"
        const = [i for i in node.input if r.const(i)]
        flowing = [i for i in node.input if not r.const(i)]
        if written and written[0] not in cls.keywords or len(const) != 1 or len(flowing) != 1:
            return why
        pending = r.pending("scale with a bias")   # the Mul's output → (x, scale, stored)
        if node.op_type == "Add":
            step = pending.get(r.resolve(flowing[0]))
            if step is None:
                return why
            x, scale, stored = step
            r.emit(node, cls, [cls.keywords[0], stored, "bias"], [x],
                   {"scale": scale, "bias": r.lazy(const[0], _stored(stored))})
            return None
        stored = next((w for w in written if w.startswith("(")), STORED[0])
        if "bias" in written:
            pending[node.output[0]] = (flowing[0], r.lazy(const[0], _stored(stored)), stored)
            return None
        if not written:   # another exporter's: one number per channel of a volume
            channels, dims = r.shape(flowing[0])[1], r.dims(const[0])
            if len(r.shape(flowing[0])) != 4 or prod(dims) != channels or \
                    len(dims) > 1 and dims[0] != channels:
                return why
        r.emit(node, cls, [cls.keywords[0], *([stored] if stored != STORED[0] else [])],
               flowing, {"": r.lazy(const[0], _stored(stored))})
        return None


def _stored(stored: str) -> object:
    """A function giving an array the stored shape written (ONNX keeps C×1×1)."""
    return {"(C,1,1)": lambda a: a.reshape(-1, 1, 1), "(C,)": lambda a: a.reshape(-1),
            "(1,)": lambda a: a.reshape(1), "()": lambda a: a.reshape(())}[stored]


class ConstMul(Layer):
    """`mul F`: x times the constant F (a decimal number), no weights."""

    kind = "const_mul"
    rule = "const_mul"
    keywords = ("mul",)
    usage = "mul F`, e.g. `mul 0.17` (or `mul { branch … branch … }`"
    pointwise = True
    saves = ()   # its backward is dy·F
    per_channel_affine = True
    numpy_in_place = True
    draw_colour = "#f0e8f5"

    def __init__(self, pos: Pos, text: str, factor: float) -> None:
        super().__init__(pos, text)
        self.factor = factor

    @classmethod
    def read(cls, r: Reading) -> list[Layer]:
        layer = cls(r.span(), r.text(), r.words[0].number)
        layer.options = {"factor": r.words[0].pos} if r.words[0].pos else {}
        return [layer]

    @classmethod
    def torch(cls, r: Reading, t: TorchWriter) -> str | None:
        t.helper("ConstantMul", CONSTANT_MUL)
        return f"ConstantMul({r.words[0].number!r})"

    def flops(self) -> int:
        """One multiply per value."""
        return prod(self.output_shape)

    def explain(self) -> list[str]:
        return [f"out = in × {self.factor:g} = {shape_str(self.output_shape)}",
                f"params = 0, FLOPs = {self.flops():,} (one multiply per value)"]

    def attrs(self) -> dict:
        return {"factor": self.factor}

    def affine(self, w: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
        """x·F + 0 per channel, for folding into the layer before it."""
        import numpy as np
        c = self.output_shape[-1]
        return np.full(c, self.factor, np.float32), np.zeros(c, np.float32)

    def numpy(self, w: dict[str, np.ndarray]) -> Step | None:
        import numpy as np
        factor = np.float32(self.factor)
        return lambda x: np.multiply(x, factor, out=x)   # in place: the model copies if read

    def training_step(self, w: dict[str, np.ndarray], training: bool = False,
                      rng: np.random.Generator | None = None) -> TrainStep | None:
        from ..numerics.backward import channels, steps
        return steps.unary(lambda x: channels.const_mul_forward(x, self.factor),
                           channels.const_mul_backward)

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        factor = g.constant(f"{self.name}.factor", self.factor)
        return g.node(self, "Mul", [inputs[0], factor], self.name)

    onnx_ops = ("Mul",)

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        """x times one constant number (a model netspec exported says it wrote `mul`)."""
        written = r.statement(node).split()
        const = [i for i in node.input if r.const(i)]
        flowing = [i for i in node.input if not r.const(i)]
        if written and written[0] not in cls.keywords or len(const) != 1 or \
                len(flowing) != 1 or prod(r.dims(const[0])) != 1:
            return "`mul F` (times one constant number)"
        r.emit(node, cls, [cls.keywords[0], r.short(r.scalar(const[0], "the factor"))], flowing)
        return None

