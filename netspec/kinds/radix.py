"""Split attention across a radix of paths: the softmax across the paths (`rsoftmax`) and
the sum of the paths' channel runs (`chunksum`).

ResNeSt's split attention and SKNet's selective kernels weigh R paths (a radix) laid side
by side along the channels: the attention reads their sum (`chunksum R`), ends in a
softmax across the paths (`rsoftmax R gG`), multiplies them (a gate) and sums them again:

    conv 3x3 p1 g{2*G} x{2*C}; bn0: bn; relu                      # R = 2 paths
    gate { chunksum 2; pool avg global; fc1: conv 1x1 gG x64; bn1: bn; relu
           fc2: conv 1x1 gG x{2*C}; rsoftmax 2 gG }
    chunksum 2

Each works on every pixel's channels alone (pointwise): on a volume, a vector, or the
1×1×C of a global pool. Their ONNX patterns end in a Softmax or a Sigmoid: the registry
lists this module before the activations, which read those operators too.
"""

from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING, Any

from ..source.diagnostics import Reporter, ShapeError
from ..source.pos import Pos
from ..syntax import expr as E
from .base import Layer, Shape, shape_str
from .statement import OnnxGraph, OnnxReader, Reading, TorchWriter

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from ..numerics.backward.steps import TrainStep
    from ..numerics.windows import Step

#: The generated PyTorch code's modules: the radix softmax (timm's RadixSoftmax, keeping
#: the shape) and the sum of the radix's runs.
RADIX_SOFTMAX = '''class RadixSoftmax(nn.Module):
    """Softmax across a radix of R (a sigmoid for R = 1): the channels laid out
    (groups, R, rest), given laid out (R, groups, rest), as timm's RadixSoftmax."""

    def __init__(self, radix: int, groups: int) -> None:
        super().__init__()
        self.radix, self.groups = radix, groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.radix == 1:
            return torch.sigmoid(x)
        y = x.reshape(x.shape[0], self.groups, self.radix, -1).transpose(1, 2)
        return torch.softmax(y, dim=1).reshape(x.shape)'''

CHUNK_SUM = '''class ChunkSum(nn.Module):
    """The channels as R runs, added first to last: (N, R·C, …) → (N, C, …)."""

    def __init__(self, radix: int) -> None:
        super().__init__()
        self.radix = radix

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1] // self.radix
        y = x[:, :c]
        for r in range(1, self.radix):
            y = y + x[:, r * c:(r + 1) * c]
        return y'''

#: The pending steps of this module's ONNX patterns, by the value each stopped at.
PATTERN = "radix across channels"


class RadixSoftmax(Layer):
    """`rsoftmax R [gG]`: a softmax across a radix of R paths (ResNeSt's split attention,
    SKNet's selective kernel; timm's RadixSoftmax): each pixel's C channels, laid out as
    (G groups, R paths, C/(G·R)), become probabilities over the R paths, given laid out
    (R, G, C/(G·R)); R = 1 is a sigmoid."""

    kind = "rsoftmax"
    rule = "rsoftmax"
    keywords = ("rsoftmax",)
    usage = "rsoftmax R [gG]`, e.g. `rsoftmax 2` or `rsoftmax 2 g4"
    pointwise = True
    saves = ("output",)   # a sigmoid's backward reads its output (R > 1: see __init__)
    draw_colour = "#f5e1c8"

    def __init__(self, pos: Pos, text: str, radix: int, groups: int) -> None:
        super().__init__(pos, text)
        self.radix, self.groups = radix, groups
        if radix > 1:
            # torch's softmax keeps its output, a transposed view's (timm's RadixSoftmax),
            # a tensor of its own: the layer's output is a reshaped copy of it
            self.saves = ()

    def saved_extra_bytes(self) -> int:
        """With R > 1, the softmax's own output (see __init__), 4 bytes a value."""
        return 4 * prod(self.output_shape) if self.saves == () else 0

    @classmethod
    def _numbers(cls, r: Reading) -> tuple[Any, Any]:
        radix, *rest = r.words
        return r.number(radix), (r.number(rest[0]) if rest else 1)

    @classmethod
    def read(cls, r: Reading) -> list[Layer]:
        layer = cls(r.span(), r.text(), *cls._numbers(r))
        layer.options = {k: w.pos for k, w in zip(("radix", "groups"), r.words) if w.pos}
        return [layer]

    @classmethod
    def torch(cls, r: Reading, t: TorchWriter) -> str | None:
        radix, *rest = r.words
        groups = t.py(r.number(rest[0])) if rest else "1"
        t.helper("RadixSoftmax", RADIX_SOFTMAX)
        return f"RadixSoftmax({t.py(r.number(radix))}, {groups})"

    def check_options(self, rep: Reporter) -> None:
        self._positive(rep, "radix", "radix", self.radix)
        self._positive(rep, "groups", "groups", self.groups)

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        self.input_shape = shape
        r, g, c = self.radix, self.groups, shape[-1]
        if r < 1 or g < 1:
            return None
        if c % (r * g):
            rep.error(self.pos, f"`{self.text}` needs channels divisible by {r}·{g} = {r * g} "
                                f"(R paths of G groups), but its input is {shape_str(shape)}",
                      ShapeError, hint=f"give the layer before it a multiple of {r * g} channels")
            return None
        self.output_shape = shape
        return shape

    def flops(self) -> int:
        """Three per value (exp, sum, divide), as softmax; one for R = 1 (a sigmoid)."""
        return (1 if self.radix == 1 else 3) * prod(self.output_shape)

    def explain(self) -> list[str]:
        r, g, c = self.radix, self.groups, self.output_shape[-1]
        if r == 1:
            return [f"out = in = {shape_str(self.output_shape)}, a sigmoid (radix 1)",
                    f"FLOPs = {self.flops():,} (one per value)"]
        return [f"out = in = {shape_str(self.output_shape)}: channels as ({g}, {r}, "
                f"{c // (r * g)}) → softmax over the {r} → laid out ({r}, {g}, {c // (r * g)})",
                f"FLOPs = 3·{prod(self.output_shape):,} = {self.flops():,} "
                f"(exp, sum, divide per value)"]

    def attrs(self) -> dict:
        return {"radix": self.radix, "groups": self.groups}

    def numpy(self, w: dict[str, np.ndarray]) -> Step | None:
        """Written in one array (then, for G > 1, copied into the output's order)."""
        import numpy as np
        r, g = self.radix, self.groups

        def rsoftmax(x: np.ndarray) -> np.ndarray:
            if r == 1:   # a sigmoid, 0.5·tanh(0.5·x) + 0.5 (no overflow)
                y = np.multiply(x, np.float32(0.5))
                np.tanh(y, out=y)
                y *= np.float32(0.5)
                y += np.float32(0.5)
                return y
            a = x.reshape(*x.shape[:-1], g, r, x.shape[-1] // (g * r))
            e = a - a.max(axis=-2, keepdims=True)
            np.exp(e, out=e)
            e /= e.sum(axis=-2, keepdims=True)
            return np.ascontiguousarray(np.swapaxes(e, -3, -2)).reshape(x.shape)
        return rsoftmax

    def numpy_scratch(self, batch: int) -> int:
        """For R > 1, the maximum and the sum over the paths (1/R of the values each, one
        at a time), or for G > 1 the softmax before its copy into the output's order."""
        n = 4 * batch * prod(self.output_shape)
        return 0 if self.radix == 1 else n if self.groups > 1 else n // self.radix

    def training_step(self, w: dict[str, np.ndarray], training: bool = False,
                      rng: np.random.Generator | None = None) -> TrainStep | None:
        from ..numerics.backward import attention, steps
        return steps.unary(lambda x: attention.radix_softmax_forward(x, self.radix, self.groups),
                           attention.radix_softmax_backward)

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        """Sigmoid for R = 1; else Reshape to (N, G, R, c', [H, W]), Transpose R first (for
        G > 1), Softmax over R, Reshape back (a vector through N×C×1 and a Squeeze: a
        Reshape to N×C reads as a flatten)."""
        if self.radix == 1:
            return g.node(self, "Sigmoid", [inputs[0]], self.name)
        r, grp, n = self.radix, self.groups, self.name
        c, hw = self.input_shape[-1], list(self.input_shape[:2]) if len(self.input_shape) == 3 \
            else []
        x = g.node(self, "Reshape", [inputs[0], g.int64s(self, f"{n}.paths", [
            0, grp, r, c // (r * grp), *hw])], f"{n}.paths_out", name=f"{n}.paths_out")
        axis = 2
        if grp > 1:
            perm = list(range(len(hw) + 4))
            perm[1], perm[2] = 2, 1
            x = g.node(self, "Transpose", [x], f"{n}.swapped", name=f"{n}.swapped", perm=perm)
            axis = 1
        x = g.node(self, "Softmax", [x], f"{n}.softmax", name=f"{n}.softmax", axis=axis)
        if hw:
            return g.node(self, "Reshape", [x, g.int64s(self, f"{n}.shape", [0, c, *hw])], n)
        x = g.node(self, "Reshape", [x, g.int64s(self, f"{n}.shape", [0, c, 1])],
                   f"{n}.column", name=f"{n}.column")
        return g.node(self, "Squeeze", [x, g.int64s(self, f"{n}.axis", [2])], n)

    onnx_ops = ("Sigmoid", "Reshape", "Transpose", "Softmax", "Squeeze")

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        """Its steps (`onnx`), or a Sigmoid netspec exported as `rsoftmax 1`."""
        why = "`rsoftmax R gG` (Reshape to N×G×R×…, Transpose, Softmax over R, Reshape back)"
        if node.op_type == "Sigmoid":
            if r.statement(node).split()[:2] != [cls.keywords[0], "1"]:
                return why
            r.emit(node, cls, r.statement(node).split(), [node.input[0]])
            return None
        steps = r.pending(PATTERN)
        step = steps.get(r.resolve(node.input[0]))
        known = tuple(r.shapes.get(node.output[0], ()))
        if node.op_type == "Transpose":
            perm = list(r.attrs(node).get("perm", []))
            if step is None or step[0] != "paths" or perm[:3] != [0, 2, 1] or \
                    perm[3:] != list(range(3, len(perm))):
                return why
            steps[node.output[0]] = ("swapped", *step[1:])
            return None
        if node.op_type == "Softmax":
            axis = r.attrs(node).get("axis", -1) % max(len(known), 1)
            if step is None or (step[0], axis) not in (("paths", 2), ("swapped", 1)):
                return why
            steps[node.output[0]] = ("weighed", *step[1:])
            return None
        x = r.shape(node.input[0])
        done = step is not None and (step[0] == "weighed" and known == tuple(r.shape(step[1]))
                                     or step[0] == "column" and node.op_type == "Squeeze")
        if step is not None and step[0] == "weighed" and len(known) == 3 and \
                known[1:] == (r.shape(step[1])[1], 1):   # a vector's N×C×1
            steps[node.output[0]] = ("column", *step[1:])
        elif done:
            words = [cls.keywords[0], r.num("", step[2], None, "r"), r.num("g", step[3], 1, "g")]
            r.emit(node, cls, words, [step[1]])
        elif len(x) in (2, 4) and len(known) == len(x) + 2 and tuple(known[4:]) == tuple(x[2:]) \
                and known[1] * known[2] * known[3] == x[1] and known[2] > 1:
            steps[node.output[0]] = ("paths", r.resolve(node.input[0]), int(known[2]),
                                     int(known[1]))
        else:
            return why
        return None


class ChunkSum(Layer):
    """`chunksum R`: the C channels as R runs of C/R, added (the paths of a radix summed:
    torch's `x.reshape(B, R, C/R, H, W).sum(1)`); C/R channels out."""

    kind = "chunksum"
    rule = "chunksum"
    keywords = ("chunksum",)
    usage = "chunksum R`, e.g. `chunksum 2"
    pointwise = True
    saves = ()   # a sum: its backward copies dy
    draw_colour = "#f5e1c8"

    def __init__(self, pos: Pos, text: str, radix: int) -> None:
        super().__init__(pos, text)
        self.radix = radix

    @classmethod
    def read(cls, r: Reading) -> list[Layer]:
        layer = cls(r.span(), r.text(), r.number(r.words[0]))
        layer.options = {"radix": r.words[0].pos} if r.words[0].pos else {}
        return [layer]

    @classmethod
    def torch(cls, r: Reading, t: TorchWriter) -> str | None:
        radix = r.number(r.words[0])
        t.out(E.Bin("//", t.c_in, radix))
        t.helper("ChunkSum", CHUNK_SUM)
        return f"ChunkSum({t.py(radix)})"

    def check_options(self, rep: Reporter) -> None:
        self._positive(rep, "radix", "radix", self.radix)

    def infer(self, shape: Shape, rep: Reporter) -> Shape | None:
        self.input_shape = shape
        r, c = self.radix, shape[-1]
        if r < 1:
            return None
        if c % r:
            rep.error(self.where("radix"), f"`chunksum {r}` needs channels divisible by {r}, "
                                           f"but its input is {shape_str(shape)}", ShapeError,
                      hint=f"it adds {r} runs of C/{r} channels")
            return None
        self.output_shape = (*shape[:-1], c // r)
        return self.output_shape

    def flops(self) -> int:
        """R − 1 adds per output value."""
        return (self.radix - 1) * prod(self.output_shape)

    def explain(self) -> list[str]:
        r, c = self.radix, self.input_shape[-1]
        return [f"out = {r} runs of {c // r} channels added = {shape_str(self.output_shape)}",
                f"FLOPs = ({r} − 1)·{prod(self.output_shape):,} = {self.flops():,}"]

    def attrs(self) -> dict:
        return {"radix": self.radix}

    def numpy(self, w: dict[str, np.ndarray]) -> Step | None:
        from ..numerics.backward.attention import chunk_sum_forward
        return lambda x: chunk_sum_forward(x, self.radix)[0]

    def training_step(self, w: dict[str, np.ndarray], training: bool = False,
                      rng: np.random.Generator | None = None) -> TrainStep | None:
        from ..numerics.backward import attention, steps
        return steps.unary(lambda x: attention.chunk_sum_forward(x, self.radix),
                           attention.chunk_sum_backward)

    def onnx(self, g: OnnxGraph, *inputs: str) -> str:
        """Split into the R runs, Sum them (first to last)."""
        r, n = self.radix, self.name
        c = self.input_shape[-1] // r
        runs = [f"{n}.run{i}" for i in range(r)]
        if r == 1:
            return g.node(self, "Identity", [inputs[0]], n)
        g.node(self, "Split", [inputs[0], g.int64s(self, f"{n}.sizes", [c] * r)], runs,
               axis=1)   # named after the layer, which import reads it as
        return g.node(self, "Sum", runs, n, name=f"{n}.sum")

    onnx_ops = ("Split", "Sum")

    @classmethod
    def from_onnx(cls, r: OnnxReader, node: onnx.NodeProto) -> str | None:
        """The Split into R equal runs netspec writes for `chunksum R`, and their Sum."""
        why = "`chunksum R` (netspec's own Split into R runs and their Sum)"
        steps = r.pending(PATTERN)
        if node.op_type == "Split":
            if r.statement(node).split()[:1] != list(cls.keywords):
                return why
            for i, out in enumerate(node.output):
                steps[out] = ("run", r.resolve(node.input[0]), i, len(node.output), node)
            return None
        runs = [steps.get(r.resolve(i)) for i in node.input]
        if None in runs or [s[2] for s in runs] != list(range(len(runs))) or \
                len({s[1] for s in runs}) != 1 or runs[0][3] != len(runs):
            return why
        r.emit(runs[0][4], cls, [cls.keywords[0], r.num("", len(runs), None, "r")],
               [runs[0][1]], out=node.output[0])
        return None
