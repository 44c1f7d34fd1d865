"""Random valid netspec networks covering every option, and random weights."""

from __future__ import annotations

import random

import numpy as np

import netspec


def random_layer(rng: random.Random, c: int) -> str:
    kind = rng.choice(["conv", "conv", "conv", "dwconv", "pool", "avgpool", "bn", "act",
                       "residual", "concat", "ceilpool", "lrn", "gate", "countpad"])
    if kind == "gate":
        return rng.choice(["gate { pool avg global; conv 1x1 x2 relu; conv 1x1 x{C} hsigmoid }",
                           "gate { pool avg global; conv 1x1 x3 silu; conv 1x1 x{C} sigmoid }",
                           "gate { conv 3x3 p1 x{C} sigmoid }"])
    if kind == "countpad":
        return rng.choice(["pool avg 3 s1 p1 countpad", "pool avg 3 s2 p1 ceil countpad",
                           "pool avg 2 s2 same countpad"])
    if kind == "residual":
        body = rng.choice(["conv 3x3 p1 x{C}; bn", "conv 1x1 x{C} nobias relu6; conv 3x3 same x{C}"])
        tail = rng.choice(["", " project { conv 1x1 s2 x8 nobias; bn }",
                           " shortcut { conv 1x1 x{C} }"])
        if "project" in tail:
            body = "conv 3x3 s2 p1 x8 nobias; bn"
        return f"residual{{ {body} }}{tail}"
    if kind == "concat":
        return rng.choice(["concat { branch {} branch { conv 1x1 x3 relu } }",
                           "concat { branch { conv 1x1 x2 } branch { conv 3x3 p1 x3 } "
                           "branch { pool 3 s1 p1 } }",
                           "concat { branch { conv 3x3 s2 same x2 } branch { pool avg 2 s2 same } }"])
    if kind == "ceilpool":
        return rng.choice(["pool 3 s2 ceil", "pool avg 3 s2 ceil", "pool max 3 s2 p1 ceil",
                           "pool avg 2 s2 p1 ceil"])
    if kind == "lrn":
        return rng.choice(["lrn 3", "lrn 5 a0.001 b0.5 k2"])
    if kind == "conv":
        f = rng.choice(["1x1", "2x2", "3x3", "3x5", "4x4", "5x5"])
        g = rng.choice([d for d in (1, 1, 2, 3, 4) if c % d == 0])
        k = g * rng.randint(1, 4)
        pad = rng.choice(["", "p1", "p2", "same", "same", "valid"])
        opts = [pad, f"s{rng.choice([1, 1, 2, 3])}", f"d{rng.choice([1, 1, 2])}",
                f"g{g}" if g > 1 else "", f"x{k}", rng.choice(["", "", "nobias"]),
                rng.choice(["", "", "relu", "relu6", "tanh", "sigmoid", "silu", "gelu", "hswish",
                            "hsigmoid", "leaky", "leaky 0.2"])]
        head, tail = opts[:-1], opts[-1]
        rng.shuffle(head)
        return " ".join(["conv", f, *head, tail]).replace("  ", " ").strip()
    if kind == "dwconv":
        return f"conv 3x3 {rng.choice(['same', 'p1', 's2 same'])} g{c} x{c * rng.choice([1, 2])}"
    if kind in ("pool", "avgpool"):
        f = rng.choice([2, 3])
        mode = "avg" if kind == "avgpool" else rng.choice(["", "max"])
        pad = rng.choice(["", "p1", "same", "valid"])
        return f"pool {mode} {f} s{rng.choice([1, 2, f])} {pad}".replace("  ", " ").strip()
    if kind == "bn":
        return rng.choice(["bn", "bn eps1e-3"])
    return rng.choice(["relu", "relu6", "tanh", "sigmoid", "softmax", "dropout 0.3", "silu", "gelu",
                       "hswish", "hsigmoid", "leaky", "leaky 0.3"])


def random_spec(seed: int) -> str:
    """A spec that checks clean: layers are drawn until one fits."""
    rng = random.Random(seed)
    h, w, c = rng.randint(6, 20), rng.randint(6, 20), rng.randint(1, 6)
    lines = [f"input {h}x{w}x{c}"]
    for _ in range(rng.randint(1, 6)):
        for _ in range(20):
            candidate = random_layer(rng, c)
            try:
                net = netspec.parse("\n".join([*lines, candidate]))
            except netspec.NetspecError:
                continue
            lines.append(candidate)
            c = net.output_shape[-1]
            break
    tail = rng.choice(["", "fc 7", "flatten\nfc 5 relu\nfc 3\nsoftmax", "flatten", "fc 4 sigmoid",
                       "pool avg global\nfc 3", "pool max global", "fc 6 gelu\ngate { fc 6 sigmoid }"])
    return "\n".join([*lines, tail]).strip()


def random_weights(net: netspec.Network, seed: int) -> dict[str, np.ndarray]:
    """Weights with non-trivial biases and batch-norm statistics.

    Filters are scaled by √(2/fan_in), as He initialisation does, so that values
    stay near 1 in deep networks and float32 rounding does not dominate.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in net.weight_shapes().items():
        if name.endswith("running_var"):
            out[name] = rng.uniform(0.5, 2.0, shape).astype(np.float32)
        else:
            w = rng.standard_normal(shape, dtype=np.float32)
            w *= np.float32(np.sqrt(2 / np.prod(shape[1:])) if len(shape) > 1 else 0.5)
            out[name] = w
    return out
