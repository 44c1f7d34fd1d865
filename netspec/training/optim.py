"""Optimizers whose every step equals torch.optim's: SGD (momentum, Nesterov, weight
decay), Adam and AdamW.

Each steps a dict of float32 arrays in place, given a dict of gradients by the
same names (a name without a gradient is skipped, as torch skips a parameter
whose .grad is None), with torch's single-tensor algorithm (what torch runs on
CPU) operation for operation:

- torch's CPU kernels compute `a + α·b` (add with alpha, lerp, addcmul) as one
  fused multiply-add, rounded once; here such a step is computed in float64 and
  rounded to float32 once (a product of two float32 values is exact in float64,
  so only the sum rounds twice, which almost never changes the float32 result);
- plain products, quotients and sums are float32 operations, Python-float
  hyperparameters entering as float32, as torch's scalar arguments do;
- Adam's bias corrections and step size are Python floats (float64), as torch's.

torch's float32 sqrt differs from the correctly rounded one by one unit in the
last place for a few values in ten, so Adam agrees to about that (a relative
1e-7 of a step, not of the weights), not bit for bit. Every array is updated in
cache-sized pieces, all of a step's operations on one piece before the next.
"""

from __future__ import annotations

import math

import numpy as np

#: Values per piece: a piece's float32 and float64 temporaries stay in the core's cache.
CHUNK = 16384
_F32 = np.float32


def _fma(a: np.ndarray, b: np.ndarray | np.floating, c: np.ndarray) -> np.ndarray:
    """a·b + c rounded once to float32 (torch's fused multiply-add)."""
    return (np.multiply(a, b, dtype=np.float64) + c).astype(_F32)


def _pieces(n: int) -> list[slice]:
    return [slice(i, i + CHUNK) for i in range(0, n, CHUNK)]


def _flat(a: np.ndarray) -> np.ndarray:
    """A flat view of a contiguous array (never a copy: the step writes through it)."""
    if not a.flags.c_contiguous:
        raise ValueError("optimizer parameters and state must be contiguous arrays")
    return a.reshape(-1)


class Optimizer:
    """Parameters by name, updated in place; per-parameter state kept by name too."""

    kind = ""
    #: The state arrays each parameter gets, by key in `state_dict`.
    BUFFERS: tuple[str, ...] = ()

    def __init__(self, params: dict[str, np.ndarray]) -> None:
        for name, p in params.items():
            if p.dtype != _F32:
                raise ValueError(f"parameter {name!r} is {p.dtype}: the optimizers step float32")
            _flat(p)
        self.params = params
        self.state: dict[str, dict[str, np.ndarray]] = {}

    def step(self, grads: dict[str, np.ndarray]) -> None:
        """One update of every parameter that has a gradient."""
        for name, p in self.params.items():
            g = grads.get(name)
            if g is None:
                continue
            if g.shape != p.shape:
                raise ValueError(f"gradient of {name!r} is {g.shape}, the parameter {p.shape}")
            self._update(name, p, np.ascontiguousarray(g, dtype=_F32).reshape(g.shape))

    def _update(self, name: str, p: np.ndarray, g: np.ndarray) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, np.ndarray]:
        """The optimizer's state as arrays, `.npz`-able: "kind" (0-d string) and
        "BUFFER/NAME" per parameter and buffer (copies)."""
        out = {"kind": np.array(self.kind)}
        for name, buffers in self.state.items():
            for key, value in buffers.items():
                out[f"{key}/{name}"] = value.copy()
        return out

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore a `state_dict` (of the same kind, for these parameters)."""
        kind = str(state.get("kind", ""))
        if kind != self.kind:
            raise ValueError(f"optimizer state is for {kind or 'an unknown optimizer'!r}, "
                             f"not {self.kind!r}")
        loaded: dict[str, dict[str, np.ndarray]] = {}
        for key, value in state.items():
            if key == "kind":
                continue
            buffer, _, name = key.partition("/")
            if buffer not in self.BUFFERS or name not in self.params:
                raise ValueError(f"optimizer state {key!r} names no {self.kind} buffer of a "
                                 f"parameter here")
            want = () if buffer == "step" else self.params[name].shape
            if value.shape != want:
                raise ValueError(f"optimizer state {key!r} is {value.shape}, expected {want}")
            loaded.setdefault(name, {})[buffer] = np.array(value, dtype=_F32)
        self.state = loaded


class SGD(Optimizer):
    """torch.optim.SGD: with weight decay wd, momentum μ, dampening τ and rate lr,

        g ← g + wd·p;  b ← g (first step), else μ·b + (1 − τ)·g;
        g ← g + μ·b (Nesterov) or b;  p ← p − lr·g.
    """

    kind = "sgd"
    BUFFERS = ("momentum_buffer",)

    def __init__(self, params: dict[str, np.ndarray], lr: float, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(params)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        self.lr, self.momentum, self.dampening = lr, momentum, dampening
        self.weight_decay, self.nesterov = weight_decay, nesterov

    def _update(self, name: str, p: np.ndarray, g: np.ndarray) -> None:
        wd, mu, lr = _F32(self.weight_decay), _F32(self.momentum), _F32(-self.lr)
        keep = _F32(1 - self.dampening)
        first = self.momentum != 0 and name not in self.state
        if first:
            self.state[name] = {"momentum_buffer": np.empty_like(p)}
        buf = _flat(self.state[name]["momentum_buffer"]) if self.momentum != 0 else None
        fp, fg = _flat(p), g.reshape(-1)
        for s in _pieces(fp.size):
            d = fg[s]
            if self.weight_decay != 0:
                d = _fma(fp[s], wd, d)
            if buf is not None:
                if first:
                    buf[s] = d
                else:
                    b = buf[s] * mu
                    buf[s] = _fma(d, keep, b)
                d = _fma(buf[s], mu, d) if self.nesterov else buf[s]
            fp[s] = _fma(d, lr, fp[s])


class Adam(Optimizer):
    """torch.optim.Adam (and, with `decoupled`, AdamW): at step t, with weight decay wd,

        g ← g + wd·p (Adam) or p ← p·(1 − lr·wd) (AdamW);
        m ← m + (1 − β1)·(g − m);  v ← v·β2 + (1 − β2)·g·g;
        p ← p − lr/(1 − β1^t) · m / (√v/√(1 − β2^t) + ε)

    (with `amsgrad`, √ of the largest v so far).
    """

    kind = "adam"
    BUFFERS = ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    decoupled = False

    def __init__(self, params: dict[str, np.ndarray], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        super().__init__(params)
        self.lr, self.betas, self.eps = lr, betas, eps
        self.weight_decay, self.amsgrad = weight_decay, amsgrad

    def _update(self, name: str, p: np.ndarray, g: np.ndarray) -> None:
        beta1, beta2 = self.betas
        if name not in self.state:
            self.state[name] = {"step": np.zeros((), _F32), "exp_avg": np.zeros_like(p),
                                "exp_avg_sq": np.zeros_like(p)}
            if self.amsgrad:
                self.state[name]["max_exp_avg_sq"] = np.zeros_like(p)
        state = self.state[name]
        state["step"] += 1
        t = float(state["step"])
        step_size = _F32(-(self.lr / (1 - beta1 ** t)))
        root_correction = _F32(math.sqrt(1 - beta2 ** t))
        wd, eps = _F32(self.weight_decay), _F32(self.eps)
        shrink = _F32(1 - self.lr * self.weight_decay)
        w1, w2, b2 = _F32(1 - beta1), _F32(1 - beta2), _F32(beta2)
        small = abs(1 - beta1) < 0.5   # torch's lerp: from the nearer end
        fp, fg = _flat(p), g.reshape(-1)
        m, v = _flat(state["exp_avg"]), _flat(state["exp_avg_sq"])
        top = _flat(state["max_exp_avg_sq"]) if self.amsgrad else None
        for s in _pieces(fp.size):
            d = fg[s]
            if self.weight_decay != 0:
                if self.decoupled:
                    fp[s] *= shrink
                else:
                    d = _fma(fp[s], wd, d)
            gap = d - m[s]
            m[s] = _fma(gap, w1, m[s]) if small else _fma(gap, w1 - _F32(1), d)
            v[s] *= b2
            v[s] = _fma(d * w2, d, v[s])
            if top is not None:
                np.maximum(top[s], v[s], out=top[s])
            denom = np.sqrt(v[s] if top is None else top[s])
            denom /= root_correction
            denom += eps
            update = m[s] * step_size
            update /= denom
            fp[s] += update


class AdamW(Adam):
    """torch.optim.AdamW: Adam with the weight decay applied to the weights directly
    (p ← p·(1 − lr·wd) before the step), default weight decay 0.01."""

    kind = "adamw"
    decoupled = True

    def __init__(self, params: dict[str, np.ndarray], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)
