"""Weight-standardised convolution, conv's `ws` options: timm's StdConv2d (`ws`, BiT) and
ScaledStdConv2d (`ws gain`, NFNet).

On every forward, each filter's N = C/g·FH·FW weights are standardised to mean 0 and
variance 1 (biased), ŵ = (w − mean)/√(var + ε), ε 1e-6 unless written (timm's default;
BiT writes `eps1e-8`, NFNet `eps1e-5`). With `gain`, ŵ is then multiplied per filter by a
learnable gain (state_dict `gain`, K×1×1×1, 1 to start) and by γ/√N (`gammaG`, 1 unless
written: NFNet's γ of its activation, 1.7139588594436646 for relu). The conv runs on ŵ.

ONNX: the standardisation is written into the graph, from the `weight` initializer as it
is in the state_dict (Reshape to 1×K×N, InstanceNormalization without scale or shift,
Reshape back; with a gain, times Mul(gain, γ/√N)), not folded into the Conv's weight:
the initializers stay the weights netspec and timm train (an exported model fine-tunes
and imports back to `ws`), and a runtime folds the constant subgraph once when it loads
the model (onnxruntime does), so it costs nothing per inference.
"""

from __future__ import annotations

import re
from math import prod
from typing import TYPE_CHECKING, Any, NamedTuple

from ..source.diagnostics import Reporter, SpecError
from .window import PAD_SAME

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from .conv import Conv
    from .statement import OnnxGraph, OnnxReader, TorchWriter

#: timm's StdConv2d and ScaledStdConv2d default ε.
EPSILON = 1e-6


class Standardised(NamedTuple):
    """A conv's weight standardisation: ε, whether it has a gain, and γ."""

    eps: float = EPSILON
    gain: bool = False
    gamma: float = 1.0

    @classmethod
    def of(cls, opts: dict[str, tuple[Any, Any]]) -> Standardised | None:
        """From a conv's options (`ws`, `gain`, `gammaG`, `epsE`); None without `ws`."""
        if "ws" not in opts:
            return None
        return cls(opts["eps"][1] if "eps" in opts else EPSILON, "gain" in opts,
                   opts["gamma"][1] if "gamma" in opts else 1.0)

    def scale(self, fan_in: int) -> float:
        """γ/√N with a gain (computed in float64, as timm's Python float), else 1."""
        return self.gamma * fan_in ** -0.5 if self.gain else 1.0

    def formula(self, fan_in: int) -> str:
        """ŵ's formula for `explain`, numbers filled in."""
        base = f"ŵ = (w − mean)/√(var + {self.eps:g}) per filter, over its {fan_in} weights"
        return base + (f", times gain·{self.gamma:g}/√{fan_in}" if self.gain else "")


def check(layer: Conv, rep: Reporter) -> None:
    """`gain`, `gammaG` and `epsE` belong to `ws`; γ to `ws gain`; ε must be positive."""
    ws = layer.ws
    for option, what in (("gain", "a learnable gain per filter"), ("gamma", "the gain's γ"),
                         ("eps", "the standardisation's ε")):
        if option in layer.options and ws is None:
            rep.error(layer.where(option), f"`{option}` ({what}) applies to a weight-"
                                           f"standardised conv only", SpecError,
                      hint="add `ws`: `conv 3x3 x64 ws`, or `ws gain` for NFNet's scaled form")
    if ws is None:
        return
    if "gamma" in layer.options and not ws.gain:
        rep.error(layer.where("gamma"), "`gamma` scales the gain: it needs `ws gain`", SpecError,
                  hint="timm's StdConv2d has no γ; ScaledStdConv2d is `ws gain gammaG`")
    if not ws.eps > 0:
        rep.error(layer.where("eps"), f"the standardisation's epsilon must be positive, not "
                                      f"{ws.eps:g}", SpecError,
                  hint="timm's default is `eps1e-6`; BiT uses `eps1e-8`, NFNet `eps1e-5`")


def standardised(layer: Conv, w: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The conv's weights with `weight` standardised (and `gain` applied), for the NumPy
    model's ordinary conv step."""
    from ..numerics.backward.standardise import standardise_forward
    ws = layer.ws
    weight = w["weight"]
    std, _ = standardise_forward(weight, ws.eps, w.get("gain"), ws.scale(prod(weight.shape[1:])))
    return {**{k: v for k, v in w.items() if k != "gain"}, "weight": std}


def saved_bytes(layer: Conv) -> int:
    """What torch's autograd keeps for the standardisation: ŵ (the conv keeps it), the
    per-filter mean and 1/std, and with a gain the gain·scale it multiplies by."""
    k, n = layer.filters, layer.kernel[0] * layer.kernel[1] * layer.in_channels // layer.groups
    return 4 * (k * n + 2 * k + (k if layer.ws.gain else 0))


# ---- ONNX ---------------------------------------------------------------------------------

def onnx_weight(layer: Conv, g: OnnxGraph) -> str:
    """The value holding ŵ, computed in the graph from the `weight` (and `gain`) initializers."""
    ws, n, k = layer.ws, layer.name, layer.filters
    shape = [k, layer.in_channels // layer.groups, *layer.kernel]
    rows = g.node(layer, "Reshape", [g.weight(layer, "weight"),
                                     g.int64s(layer, f"{n}.rows_shape", [1, k, -1])],
                  f"{n}.weight_rows", name=f"{n}.weight_rows")
    normed = g.node(layer, "InstanceNormalization",
                    [rows, g.constant(f"{n}.ones", [1.0] * k), g.constant(f"{n}.zeros", [0.0] * k)],
                    f"{n}.standardised_rows", name=f"{n}.standardise", epsilon=ws.eps)
    std = g.node(layer, "Reshape", [normed, g.int64s(layer, f"{n}.weight_shape", shape)],
                 f"{n}.standardised", name=f"{n}.standardised")
    if not ws.gain:
        return std
    factor = g.node(layer, "Mul", [g.weight(layer, "gain"),
                                   g.constant(f"{n}.scale", ws.scale(prod(shape[1:])))],
                    f"{n}.gain_scaled", name=f"{n}.gain_scaled")
    return g.node(layer, "Mul", [std, factor], f"{n}.scaled_weight", name=f"{n}.scaled_weight")


WHY = "a weight standardised in the graph (Reshape, InstanceNormalization, Reshape, Mul)"


def read_step(r: OnnxReader, node: onnx.NodeProto) -> str | None:
    """One node of `onnx_weight`'s subgraph, remembered by the value it makes (`pending`)
    until the Conv that reads it (`read_weight`); any other node is declined."""
    import numpy as np
    steps = r.pending("ws")   # value → {"stage", "weight", "eps", "gain", "factor"}
    out, op = node.output[0], node.op_type
    ins = [r.resolve(i) for i in node.input if i]
    then = [c.op_type for c in r.consumers(out)]
    if op == "Reshape" and r.const(ins[0]) and r.const(ins[1]) and \
            then == ["InstanceNormalization"] and len(r.dims(ins[0])) == 4:
        k = r.dims(ins[0])[0]
        if [int(v) for v in r.array(ins[1]).reshape(-1)] in ([1, k, -1],
                                                            [1, k, prod(r.dims(ins[0])[1:])]):
            steps[out] = {"stage": "rows", "weight": ins[0]}
            return None
    step = steps.get(ins[0]) if ins else None
    if op == "InstanceNormalization" and step and step["stage"] == "rows" and \
            np.all(r.array(ins[1]) == 1) and np.all(r.array(ins[2]) == 0):
        eps = float(f"{float(r.attrs(node).get('epsilon', 1e-5)):.6g}")   # stored as float32
        steps[out] = {**step, "stage": "normed", "eps": eps}
        return None
    if op == "Reshape" and step and step["stage"] == "normed" and r.const(ins[1]) and \
            [int(v) for v in r.array(ins[1]).reshape(-1)] == list(r.dims(step["weight"])):
        steps[out] = {**step, "stage": "standardised"}
        return None
    if op == "Mul" and len(ins) == 2 and all(r.const(i) for i in ins) and then == ["Mul"]:
        gain = [i for i in ins if len(r.dims(i)) == 4]
        scalar = [i for i in ins if prod(r.dims(i)) == 1 and i not in gain]
        if len(gain) == 1 and len(scalar) == 1:
            steps[out] = {"stage": "gain", "gain": gain[0],
                          "factor": r.scalar(scalar[0], "a weight's scale")}
            return None
    if op == "Mul" and len(ins) == 2:
        parts = {steps.get(i, {}).get("stage"): steps.get(i) for i in ins}
        if set(parts) == {"standardised", "gain"}:
            steps[out] = {**parts["standardised"], **parts["gain"], "stage": "scaled"}
            return None
    return WHY


def read_weight(r: OnnxReader, node: onnx.NodeProto, value: str
                ) -> tuple[str, list[str], dict[str, Any]] | None:
    """For a Conv reading `value`: the weight initializer it standardises, the words after
    the filter count (`ws`, `gain`, `gammaG`, `epsE`) and the arrays (`weight`, `gain`);
    None when `value` is not a standardised weight."""
    step = r.pending("ws").get(r.resolve(value))
    if step is None or step["stage"] not in ("standardised", "scaled"):
        return None
    words = ["ws"]
    arrays = {"weight": r.lazy(step["weight"])}
    if step["stage"] == "scaled":
        fan_in = prod(r.dims(step["weight"])[1:])
        written = re.search(r"\bgamma(\S+)", r.statement(node))   # netspec's own export
        gamma = written[1] if written else r.short(step["factor"] * fan_in ** 0.5)
        words += ["gain"] + ([] if float(gamma) == 1.0 else [f"gamma{gamma}"])
        arrays["gain"] = r.lazy(step["gain"])
    if abs(step["eps"] - EPSILON) > 1e-12:
        words.append(f"eps{r.short(step['eps'])}")
    return step["weight"], words, arrays


# ---- PyTorch code -------------------------------------------------------------------------

#: The modules the generated code defines for `ws` and `ws gain` (timm's StdConv2d and
#: ScaledStdConv2d; with `same=True`, their …Same forms, padded in forward).
MODULES = {
    "StdConv2d": '''class StdConv2d(nn.Conv2d):
    """nn.Conv2d whose filters are standardised on every forward, each to mean 0 and
    variance 1 (timm's StdConv2d; with `same`, padded in forward as its StdConv2dSame)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int = 1, padding: int | str = 0, dilation: int = 1, groups: int = 1,
                 bias: bool = False, eps: float = 1e-6, same: bool = False) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride,
                         padding=padding, dilation=dilation, groups=groups, bias=bias)
        self.eps, self.same = eps, same

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.same:
            x = pad_same(x, [self.kernel_size[0], self.kernel_size[1]],
                         [self.stride[0], self.stride[1]], [self.dilation[0], self.dilation[1]])
        weight = nn.functional.batch_norm(
            self.weight.reshape(1, self.out_channels, -1), None, None, training=True,
            momentum=0.0, eps=self.eps).reshape_as(self.weight)
        return self._conv_forward(x, weight, self.bias)''',
    "ScaledStdConv2d": '''class ScaledStdConv2d(nn.Conv2d):
    """nn.Conv2d whose filters are standardised on every forward, then multiplied by a
    learnable gain and γ/√fan_in (timm's ScaledStdConv2d; with `same`, padded in forward
    as its ScaledStdConv2dSame)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int = 1, padding: int | str = 0, dilation: int = 1, groups: int = 1,
                 bias: bool = True, gamma: float = 1.0, eps: float = 1e-6,
                 same: bool = False) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride,
                         padding=padding, dilation=dilation, groups=groups, bias=bias)
        self.gain = nn.Parameter(torch.ones(self.out_channels, 1, 1, 1))
        self.scale = gamma * self.weight[0].numel() ** -0.5
        self.eps, self.same = eps, same

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.same:
            x = pad_same(x, [self.kernel_size[0], self.kernel_size[1]],
                         [self.stride[0], self.stride[1]], [self.dilation[0], self.dilation[1]])
        weight = nn.functional.batch_norm(
            self.weight.reshape(1, self.out_channels, -1), None, None,
            weight=(self.gain * self.scale).view(-1), training=True, momentum=0.0,
            eps=self.eps).reshape_as(self.weight)
        return self._conv_forward(x, weight, self.bias)''',
}


def torch_module(t: TorchWriter, ws_opts: dict[str, tuple[Any, Any]], args: list[str],
                 same_in_forward: bool) -> str:
    """The module of a `ws` conv: its class (defined in the generated code) and arguments,
    `args` being nn.Conv2d's as the conv writes them."""
    ws = Standardised.of(ws_opts)
    name = "ScaledStdConv2d" if ws.gain else "StdConv2d"
    t.helper(name, MODULES[name])
    has_bias = "bias=False" not in args
    args = [a for a in args if a != "bias=False"]
    extra = []   # StdConv2d's bias is off unless asked, ScaledStdConv2d's on
    if has_bias != ws.gain:
        extra.append(f"bias={has_bias}")
    if ws.gain and ws.gamma != 1.0:
        extra.append(f"gamma={ws.gamma!r}")
    if ws.eps != EPSILON:
        extra.append(f"eps={ws.eps!r}")
    if same_in_forward:
        t.helper("pad_same", PAD_SAME)
        extra.append("same=True")
    return f"{name}({', '.join(args + extra)})"
