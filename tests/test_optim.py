"""The optimizers against torch.optim, step by step, on the same random gradients."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from netspec.training.optim import SGD, Adam, AdamW

#: One array bigger than a piece (optim.CHUNK) and not a multiple of 16 (a vector
#: register's width, where torch's kernels switch to their scalar tail), a matrix, a few.
SHAPES = {"conv.weight": (37, 3, 3, 5), "fc.weight": (20001,), "fc.bias": (3,)}
CONFIGS = [
    (SGD, torch.optim.SGD, {"lr": 0.1}),
    (SGD, torch.optim.SGD, {"lr": 0.01, "momentum": 0.9}),
    (SGD, torch.optim.SGD, {"lr": 0.01, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4}),
    (SGD, torch.optim.SGD, {"lr": 0.01, "momentum": 0.9, "dampening": 0.3, "weight_decay": 1e-2}),
    (Adam, torch.optim.Adam, {"lr": 1e-3}),
    (Adam, torch.optim.Adam, {"lr": 1e-2, "betas": (0.3, 0.99), "weight_decay": 1e-2}),
    (Adam, torch.optim.Adam, {"lr": 1e-3, "amsgrad": True}),
    (AdamW, torch.optim.AdamW, {"lr": 1e-3}),
    (AdamW, torch.optim.AdamW, {"lr": 1e-2, "weight_decay": 0.1, "amsgrad": True}),
]
STATE = {"sgd": ("momentum_buffer",), "adam": ("exp_avg", "exp_avg_sq"),
         "adamw": ("exp_avg", "exp_avg_sq")}


def _setup(ours, theirs, options, seed=0):
    rng = np.random.default_rng(seed)
    params = {k: rng.standard_normal(s).astype(np.float32) for k, s in SHAPES.items()}
    tensors = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in params.items()}
    return rng, params, ours(params, **options), tensors, theirs(list(tensors.values()), **options)


def _gradients(rng):
    """Random gradients whose scale changes from step to step (1e-3 … 10)."""
    scale = 10 ** rng.uniform(-3, 1)
    return {k: (rng.standard_normal(s) * scale).astype(np.float32) for k, s in SHAPES.items()}


def _step_both(rng, opt, tensors, topt):
    grads = _gradients(rng)
    for k, t in tensors.items():
        t.grad = torch.tensor(grads[k])
    opt.step(grads)
    topt.step()


@pytest.mark.parametrize("ours,theirs,options", CONFIGS,
                         ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(CONFIGS)])
def test_every_step_equals_torch(ours, theirs, options):
    """After each of 60 steps, weights and state agree with torch's to rtol 1e-6 plus
    1e-6 of the largest weight (a few units in the last place of float32: torch's fused
    multiply-adds are reproduced, but its float32 sqrt is not correctly rounded and
    differs by one unit for some values); a wrong formula moves weights by lr-sized
    amounts, 10³ times more."""
    rng, params, opt, tensors, topt = _setup(ours, theirs, options)
    for _ in range(60):
        _step_both(rng, opt, tensors, topt)
        for k, p in params.items():
            want = tensors[k].detach().numpy()
            np.testing.assert_allclose(p, want, rtol=1e-6, atol=1e-6 * np.abs(want).max(),
                                       err_msg=k)
            for buffer in STATE[opt.kind]:
                if buffer in topt.state[tensors[k]]:
                    want = topt.state[tensors[k]][buffer].numpy()
                    np.testing.assert_allclose(opt.state[k][buffer], want, rtol=1e-6,
                                               atol=1e-6 * np.abs(want).max(), err_msg=buffer)


@pytest.mark.skipif(torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"),
                    reason="torch's kernels use fused multiply-adds only with AVX2 or AVX-512")
@pytest.mark.parametrize("options", [c[2] for c in CONFIGS[:4]])
def test_sgd_is_bit_exact(options):
    """SGD has no sqrt: with torch's fused multiply-adds reproduced, every bit agrees."""
    rng, params, opt, tensors, topt = _setup(SGD, torch.optim.SGD, options)
    for _ in range(30):
        _step_both(rng, opt, tensors, topt)
    for k, p in params.items():
        np.testing.assert_array_equal(p, tensors[k].detach().numpy())


def test_parameters_without_a_gradient_are_left_alone():
    params = {"a": np.ones(3, np.float32), "b": np.ones(3, np.float32)}
    opt = Adam(params, lr=0.1, weight_decay=0.5)
    opt.step({"a": np.ones(3, np.float32)})
    assert np.all(params["b"] == 1) and "b" not in opt.state and np.all(params["a"] < 1)


@pytest.mark.parametrize("ours,theirs,options", [CONFIGS[2], CONFIGS[6], CONFIGS[8]],
                         ids=["sgd", "adam", "adamw"])
def test_state_survives_an_npz_round_trip(ours, theirs, options, tmp_path):
    """Saving after 5 steps, loading into a fresh optimizer and stepping on ends where
    stepping on without the round trip ends."""
    rng, params, opt, tensors, topt = _setup(ours, theirs, options)
    for _ in range(5):
        _step_both(rng, opt, tensors, topt)
    np.savez(tmp_path / "state.npz", **opt.state_dict())
    copy = {k: v.copy() for k, v in params.items()}
    resumed = ours(copy, **options)
    with np.load(tmp_path / "state.npz", allow_pickle=False) as f:
        resumed.load_state_dict(dict(f))
    for _ in range(5):
        grads = _gradients(rng)
        opt.step(grads)
        resumed.step(grads)
    for k in params:
        np.testing.assert_array_equal(copy[k], params[k])


def test_load_state_dict_refuses_a_mismatch():
    params = {"w": np.zeros((2, 3), np.float32)}
    sgd = SGD(params, lr=0.1, momentum=0.9)
    sgd.step({"w": np.ones((2, 3), np.float32)})
    with pytest.raises(ValueError, match="'sgd', not 'adam'"):
        Adam(params).load_state_dict(sgd.state_dict())
    with pytest.raises(ValueError, match=r"is \(3,\), expected \(2, 3\)"):
        SGD({"w": params["w"]}, lr=0.1, momentum=0.9).load_state_dict(
            {"kind": np.array("sgd"), "momentum_buffer/w": np.zeros(3, np.float32)})
    with pytest.raises(ValueError, match="names no sgd buffer"):
        SGD(params, lr=0.1).load_state_dict({"kind": np.array("sgd"),
                                             "momentum_buffer/v": np.zeros(3, np.float32)})
