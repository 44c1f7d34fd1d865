"""Every timm spec (specs/timm/) against timm: parameters, state_dict names and shapes, outputs.

A spec at `specs/timm/NAME.ns` is `timm.create_model(NAME)`: the parameter count and every
`state_dict` name and shape are compared on the meta device for every member, and the
outputs of the NumPy model and onnxruntime on a small random batch, with timm's weights,
for one small member per family (`CI`). The slow suite, `NETSPEC_TIMM_ALL=1`, compares
the outputs of every member. Test-only: imports torch and timm.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

from netspec.backends.onnx import OnnxModel  # noqa: E402
from zoo_oracle import float32_error, forward, smallest_input, state_dict_arrays  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TIMM = {p.stem: p for p in sorted((ROOT / "specs" / "timm").glob("*.ns"))}
#: One small member per family: their outputs are compared in every run (seconds each);
#: the other members' outputs with NETSPEC_TIMM_ALL=1.
CI = {"starnet_s050", "ghostnet_050", "hardcorenas_b"}
SLOW = bool(os.environ.get("NETSPEC_TIMM_ALL"))


def timm_model(name: str) -> torch.nn.Module:
    """timm's model of that name with fresh (random) weights."""
    return timm.create_model(name, pretrained=False)


def redraw_constants(model: torch.nn.Module) -> None:
    """Redraw every parameter whose values are all equal.

    timm starts many residual branches at exactly zero (`zero_init_last` zeroes the last
    batch norm's weight), so a wrong body would add 0 and pass; batch norms start as the
    identity. Weights become uniform in [0.5, 1.5), biases normal with σ 0.1.
    """
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if bool((p == p.flatten()[0]).all()):
                if name.endswith("bias"):
                    p.copy_(0.1 * torch.randn(p.shape, generator=g))
                else:
                    p.copy_(torch.rand(p.shape, generator=g) + 0.5)


def spread_statistics(model: torch.nn.Module, shape: tuple[int, int, int]) -> None:
    """Batch-norm running statistics from a batch of 4 other images (C, H, W = shape).

    Fresh statistics (mean 0, variance 1) would leave the normalisation untested, and
    statistics of the very batch compared would make each batch norm an exact
    standardisation of it; 4 images also give the 1×1 batch norms of a head 4 values.
    """
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None   # a cumulative average: one batch sets the statistics
    x = np.random.default_rng(1).standard_normal((4, *shape), dtype=np.float32)
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(x))
    model.eval()


@pytest.mark.parametrize("name", sorted(TIMM))
def test_timm_spec_has_timms_parameters_and_names(name):
    with torch.device("meta"):   # shapes only: no memory, no initialisation
        model = timm_model(name)
    net = smallest_input(TIMM[name])
    theirs = {k: tuple(v.shape) for k, v in model.state_dict().items()
              if not k.endswith("num_batches_tracked")}
    assert net.weight_shapes() == theirs
    assert net.total_params == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(TIMM))
def test_timm_spec_computes_what_timm_computes(name):
    if name not in CI and not SLOW:
        pytest.skip("the slow suite: NETSPEC_TIMM_ALL=1 compares every member's outputs")
    net = smallest_input(TIMM[name])
    torch.manual_seed(0)
    model = timm_model(name).eval()
    redraw_constants(model)
    h, w, c = net.input_shape
    spread_statistics(model, (c, h, w))
    x = np.random.default_rng(0).standard_normal((2, c, h, w), dtype=np.float32)
    weights = state_dict_arrays(model)
    want = forward(model, x)
    scale = max(1.0, float(np.abs(want).max()))
    tol = dict(rtol=1e-3, atol=1e-4 * scale + 3 * float32_error(model, x, want))
    np.testing.assert_allclose(net.numpy_model(weights)(x), want, **tol)
    np.testing.assert_allclose(OnnxModel(net, net.check_weights(weights))(x), want, **tol)


def test_ci_members_are_specs():
    assert CI <= set(TIMM)
