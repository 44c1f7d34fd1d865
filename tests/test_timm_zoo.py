"""Every timm spec (specs/timm/) against timm: parameters, state_dict names and shapes, outputs.

A spec at `specs/timm/NAME.ns` is `timm.create_model(NAME)`: the parameter count and every
`state_dict` name and shape are compared on the meta device for every member; the outputs
of the NumPy model, onnxruntime and the spec's PyTorch code (which loads timm's state_dict
as it is), with timm's weights on a small random batch, for one small member per family
(`conftest.TIMM_CI`). The slow suite, `NETSPEC_TIMM_ALL=1`, compares the outputs of every
member. Test-only: imports torch and timm.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

from conftest import TIMM_ALL, TIMM_CI
from test_torch_codegen import _load_module, _network_class
from zoo_oracle import float32_error, forward, smallest_input, state_dict_arrays

import netspec
from netspec.backends.onnx import OnnxModel
from netspec.backends.torch import torch_source

ROOT = Path(__file__).resolve().parent.parent
TIMM = {p.stem: p for p in sorted((ROOT / "specs" / "timm").glob("*.ns"))}


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
    net = netspec.load(TIMM[name])
    theirs = {k: tuple(v.shape) for k, v in model.state_dict().items()
              if not k.endswith("num_batches_tracked")}
    assert net.weight_shapes() == theirs
    assert net.total_params == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(TIMM))
def test_timm_spec_computes_what_timm_computes(name, tmp_path):
    """The NumPy model, onnxruntime and the spec's PyTorch code (`netspec export --torch`,
    which loads timm's state_dict as it is) compute timm's outputs from timm's weights."""
    if name not in TIMM_CI and not TIMM_ALL:
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
    error = Float32Error(model, x, want)
    assert_close(net.numpy_model(weights)(x), want, error)
    assert_close(OnnxModel(net, net.check_weights(weights))(x), want, error)
    source = torch_source(net)
    ours = _network_class(_load_module(source, tmp_path / f"gen_{name}.py"), source)().eval()
    ours.load_state_dict(model.state_dict(), strict=True)
    assert_close(forward(ours, x), want, error)


class Float32Error:
    """torch's own float32 error on this batch (`zoo_oracle.float32_error`: the distance of
    its output from a float64 run), computed when first asked for: a float64 forward of a
    large model takes torch up to a minute."""

    def __init__(self, model: torch.nn.Module, x: np.ndarray, want: np.ndarray) -> None:
        self.model, self.x, self.want = model, x, want
        self.value: float | None = None

    def __float__(self) -> float:
        if self.value is None:
            self.value = float32_error(self.model, self.x, self.want)
        return self.value


def assert_close(got: np.ndarray, want: np.ndarray, error: Float32Error) -> None:
    """`got` equals timm's float32 output `want` to 1e-3 relative and 1e-4 of the largest
    output absolute, plus 3× torch's own float32 error where that bound is not enough."""
    atol = 1e-4 * max(1.0, float(np.abs(want).max()))
    if not np.allclose(got, want, rtol=1e-3, atol=atol):
        atol += 3 * float(error)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=atol)


def test_the_comparison_sees_one_block_wrong():
    """The outputs compared are sensitive to every block: StarNet-S050 with its last
    block's 1×1 `g` conv transposed in two input channels is caught."""
    net = smallest_input(TIMM["starnet_s050"])
    torch.manual_seed(0)
    model = timm_model("starnet_s050").eval()
    redraw_constants(model)
    h, w, c = net.input_shape
    spread_statistics(model, (c, h, w))
    x = np.random.default_rng(0).standard_normal((2, c, h, w), dtype=np.float32)
    weights = state_dict_arrays(model)
    g = weights["stages.3.1.g.conv.weight"]
    g[:, [0, 1]] = g[:, [1, 0]]
    want = forward(model, x)
    with pytest.raises(AssertionError):
        assert_close(net.numpy_model(weights)(x), want, Float32Error(model, x, want))


def test_the_ci_members_are_specs():
    assert TIMM_CI <= set(TIMM)
