"""Self-gated activations, x·g(x) for a smooth or hard gate g: silu (g = sigmoid), gelu
(g = the normal CDF), hswish (g = hsigmoid), mish (g = tanh∘softplus), and hsigmoid
itself; the activations of EfficientNet, MobileNetV3, CSPDarknet and the transformers' MLPs.

They are element-wise activations like those of activations.py (see there for what each
states); in ONNX most are a Mul of x by its gate, which the importer reads back as one
layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .activations import Activation, Sigmoid, Tanh, times_own
from .statement import OnnxGraph, OnnxReader

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from ..numerics.elementwise import Activation as Function


class Silu(Activation):
    """`silu`: x·sigmoid(x), also called swish (EfficientNet); a sigmoid and a multiply."""

    kind = "silu"
    keywords = ("silu",)
    foreign = {"swish": "silu"}
    module = "nn.SiLU()"
    flops_per_value = 2
    temporaries = 1
    saves = ("input",)

    def elementwise(self) -> Function:
        """x·sigmoid(x) as h·(1 + tanh(h)), h = x/2 (no overflow; four passes)."""
        import numpy as np
        half, one = np.float32(0.5), np.float32(1)

        def silu(x: np.ndarray) -> np.ndarray:
            x *= half
            s = np.tanh(x)
            s += one
            x *= s
            return x
        return silu

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        x = inputs[0]
        gate = g.node(self, "Sigmoid", [x], f"{self.name}.sigmoid", name=f"{self.name}.sigmoid")
        g.record(gate, self.output_shape)
        return g.node(self, "Mul", [x, gate], self.name)

    onnx_ops = ("Mul",)

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        x = times_own(r, node, Sigmoid)
        if x is None:
            return "`silu` (x·sigmoid(x))"
        r.emit(node, cls, [cls.keywords[0]], [x])
        return None


#: Abramowitz and Stegun 7.1.26: erf(a) = 1 − t·P(t)·e^(−a²), t = 1/(1 + p·a), a ≥ 0,
#: with absolute error below 1.5e-7 (float32's resolution near 1 is 6e-8).
_ERF_P = 0.3275911
_ERF_A = (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)


class Gelu(Activation):
    """`gelu`: the exact x·Φ(x) = x/2·(1 + erf(x/√2)) (torch's default, not the tanh form);
    scale, erf, add 1, multiply, halve."""

    kind = "gelu"
    keywords = ("gelu",)
    module = "nn.GELU()"
    flops_per_value = 5
    temporaries = 3
    saves = ("input",)

    def elementwise(self) -> Function:
        return _gelu

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        """Gelu from opset 20; before, its definition x·(1 + erf(x/√2))/2 in Div, Erf, Add,
        Mul."""
        x = inputs[0]
        if g.opset >= 20:
            return g.node(self, "Gelu", [x], self.name, approximate="none")
        n = self.name
        steps = (("Div", "scaled", g.constant(f"{n}.sqrt2", 2 ** 0.5)), ("Erf", "erf", None),
                 ("Add", "plus1", g.constant(f"{n}.one", 1)), ("Mul", "times_x", x),
                 ("Mul", None, g.constant(f"{n}.half", 0.5)))
        value = x
        for op, suffix, operand in steps:
            out = f"{n}.{suffix}" if suffix else n
            value = g.node(self, op, [value] + ([operand] if operand else []), out, name=out)
            if suffix:
                g.record(value, self.output_shape)
        return value

    onnx_ops = ("Gelu", "Div", "Erf", "Add", "Mul")

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        """Gelu (exact), or its definition x·(1 + erf(x/√2))·0.5 in Div, Erf, Add, Mul, Mul:
        each step remembered by the value it made (`pending`) until the last."""
        if node.op_type == "Gelu":
            if r.attrs(node).get("approximate", "none") != "none":
                r.fail("Gelu with the tanh approximation: netspec's gelu is the exact one (erf)")
            r.emit(node, cls, [cls.keywords[0]], [node.input[0]])
            return None
        steps = r.pending("gelu")   # value → (step, x)
        why = "`gelu` (its definition x·(1 + erf(x/√2))·0.5)"
        ins = [r.resolve(i) for i in node.input]
        const = [i for i in ins if r.const(i)]
        c = r.scalar(const[0], "a constant") if len(const) == 1 and \
            r.dims(const[0]) in ((), (1,)) else None
        flowing = [i for i in ins if not r.const(i)]
        step = steps.get(flowing[0]) if flowing else None
        if node.op_type == "Div" and c is not None and ins[0] == flowing[0] and \
                abs(c - 2 ** 0.5) < 1e-5:
            steps[node.output[0]] = ("div", flowing[0])
        elif node.op_type == "Erf" and step is not None and step[0] == "div":
            steps[node.output[0]] = ("erf", step[1])
        elif node.op_type == "Add" and step is not None and step[0] == "erf" and \
                c is not None and abs(c - 1) < 1e-7:
            steps[node.output[0]] = ("plus1", step[1])
        elif node.op_type == "Mul" and step is not None and step[0] == "times_x" and \
                c is not None and abs(c - 0.5) < 1e-7:
            r.emit(node, cls, [cls.keywords[0]], [step[1]])
        elif node.op_type == "Mul" and len(flowing) == 2 and any(
                steps.get(v, ("",))[0] == "plus1" and steps[v][1] == u
                for u, v in (flowing, flowing[::-1])):
            steps[node.output[0]] = ("times_x", next(
                u for u, v in (flowing, flowing[::-1]) if steps.get(v, ("",))[0] == "plus1"))
        else:
            return why
        return None


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU, x·Φ(x) = x/2·(1 + erf(x/√2)): torch's `gelu` without the tanh approximation.

    With a = |x|/√2 and q = t·P(t)·e^(−a²)/2, x·Φ(x) is x·(1 − q) for x ≥ 0 and
    x·q below: max(x, 0) − |x|·q. Three temporaries, twenty passes.
    """
    import numpy as np
    a = np.abs(x)
    e = a * a                              # |x|·e^(−x²/2)
    e *= np.float32(-0.5)
    np.exp(e, out=e)
    e *= a
    t = a * np.float32(_ERF_P / np.sqrt(2))   # t = 1/(1 + p·|x|/√2)
    t += np.float32(1)
    np.reciprocal(t, out=t)
    q = np.multiply(t, np.float32(_ERF_A[0] / 2), out=a)   # Horner, halved: ((a0·t + a1)·t + …)·t/2
    for c in _ERF_A[1:]:
        q += np.float32(c / 2)
        q *= t
    q *= e
    np.clip(x, 0, np.float32(np.inf), out=x)
    x -= q
    return x


class HSigmoid(Activation):
    """`hsigmoid`: relu6(x + 3)/6, torch's Hardsigmoid; add 3, clamp, divide."""

    kind = "hsigmoid"
    keywords = ("hsigmoid",)
    foreign = {"hardsigmoid": "hsigmoid", "hard_sigmoid": "hsigmoid"}
    module = "nn.Hardsigmoid()"
    flops_per_value = 4
    saves = ("input",)

    def elementwise(self) -> Function:
        import numpy as np

        def hsigmoid(x: np.ndarray) -> np.ndarray:
            x += np.float32(3)
            np.clip(x, 0, 6, out=x)
            x /= np.float32(6)
            return x
        return hsigmoid

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        return g.node(self, "HardSigmoid", [inputs[0]], self.name, alpha=1 / 6, beta=0.5)

    onnx_ops = ("HardSigmoid",)

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        a = r.attrs(node)
        alpha, beta = float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))
        if abs(alpha - 1 / 6) > 1e-6 or abs(beta - 0.5) > 1e-6:
            r.fail(f"HardSigmoid with alpha {alpha:g}, beta {beta:g}: netspec's hsigmoid is "
                   f"torch's, relu6(x + 3)/6 (alpha 1/6, beta 0.5)")
        r.emit(node, cls, [cls.keywords[0]], [node.input[0]])
        return None


class HSwish(Activation):
    """`hswish`: x·relu6(x + 3)/6, torch's Hardswish (MobileNetV3); hsigmoid and a multiply."""

    kind = "hswish"
    keywords = ("hswish",)
    foreign = {"hardswish": "hswish", "hard_swish": "hswish"}
    module = "nn.Hardswish()"
    flops_per_value = 5
    temporaries = 1
    saves = ("input",)

    def elementwise(self) -> Function:
        import numpy as np

        def hswish(x: np.ndarray) -> np.ndarray:
            s = x + np.float32(3)
            np.clip(s, 0, 6, out=s)
            s /= np.float32(6)
            x *= s
            return x
        return hswish

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        """HardSwish from opset 14; in opset 13, x·HardSigmoid(x)."""
        x = inputs[0]
        if g.opset >= 14:
            return g.node(self, "HardSwish", [x], self.name)
        gate = g.node(self, "HardSigmoid", [x], f"{self.name}.hsigmoid",
                      name=f"{self.name}.hsigmoid", alpha=1 / 6, beta=0.5)
        g.record(gate, self.output_shape)
        return g.node(self, "Mul", [x, gate], self.name)

    onnx_ops = ("HardSwish", "Mul")

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        x = node.input[0] if node.op_type == "HardSwish" else times_own(r, node, HSigmoid)
        if x is None:
            return "`hswish` (x·hsigmoid(x))"
        r.emit(node, cls, [cls.keywords[0]], [x])
        return None


class Mish(Activation):
    """`mish`: x·tanh(softplus(x)) (CSPDarknet, YOLOv4), torch's Mish; its gate is smooth,
    unbounded above and slightly negative below, like silu's."""

    kind = "mish"
    keywords = ("mish",)
    module = "nn.Mish()"
    flops_per_value = 3   # softplus, tanh and a multiply (a named function counts 1)
    temporaries = 2
    saves = ("input",)
    #: tanh(softplus(x)) is 1 in float32 from here on (torch's softplus also turns linear at 20).
    LINEAR_FROM = 20.0

    def explain(self) -> list[str]:
        return [*super().explain(), "per value: softplus(x) = ln(1 + eˣ), its tanh, "
                "and the multiply by x"]

    def elementwise(self) -> Function:
        """x·n/(n + 2) with n = eˣ·(eˣ + 2): tanh(softplus(x)) = ((1 + eˣ)² − 1)/((1 + eˣ)² + 1),
        with eˣ taken at min(x, 20) so that nothing overflows (six passes)."""
        import numpy as np
        top, two = np.float32(self.LINEAR_FROM), np.float32(2)

        def mish(x: np.ndarray) -> np.ndarray:
            e = np.minimum(x, top)
            np.exp(e, out=e)
            n = e + two
            e *= n            # n = eˣ·(eˣ + 2)
            np.add(e, two, out=n)
            e /= n
            x *= e
            return x
        return mish

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        """Mish from opset 18; before it, x·Tanh(Softplus(x)), as torch writes it there."""
        x = inputs[0]
        if g.opset >= 18:
            return g.node(self, "Mish", [x], self.name)
        soft = g.node(self, "Softplus", [x], f"{self.name}.softplus",
                      name=f"{self.name}.softplus")
        g.record(soft, self.output_shape)
        gate = g.node(self, "Tanh", [soft], f"{self.name}.tanh", name=f"{self.name}.tanh")
        g.record(gate, self.output_shape)
        return g.node(self, "Mul", [x, gate], self.name)

    onnx_ops = ("Mish", "Softplus", "Mul")

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        """Mish itself, or x·Tanh(Softplus(x)): the Softplus is remembered, the Tanh read as
        a tanh layer, and the Mul that closes the pattern replaces both with one mish. A
        Softplus the pattern does not close leaves its tanh reading a value nothing makes,
        and the import stops there."""
        softplus = r.pending("mish")   # Softplus output → its input
        if node.op_type == "Mish":
            r.emit(node, cls, [cls.keywords[0]], [node.input[0]])
            return None
        if node.op_type == "Softplus":
            if r.uses(node.output[0]) != 1:
                return "the softplus of `mish` (x·tanh(softplus(x)))"
            softplus[node.output[0]] = r.resolve(node.input[0])
            return None
        a, b = (r.resolve(i) for i in node.input)
        for x, t in ((a, b), (b, a)):
            gate = r.producer(t)
            if gate is not None and gate.kind == Tanh.kind and r.uses(t) == 1 and \
                    len(gate.inputs) == 1 and softplus.get(gate.inputs[0]) == x:
                r.drop(gate)
                r.emit(node, cls, [cls.keywords[0]], [x])
                return None
        return "`mish` (x·tanh(softplus(x)))"
