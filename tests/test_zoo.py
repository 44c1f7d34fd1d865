"""Every zoo spec against torchvision: parameters, state_dict names and shapes, outputs."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from netspec.onnx_export import OnnxModel  # noqa: E402
from zoo_oracle import (batch_statistics, float32_error, forward, smallest_input,  # noqa: E402
                        spread_tiny_constants, state_dict_arrays, torchvision_model, zoo_specs)

ZOO = zoo_specs()


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_spec_equals_torchvision(name):
    torch.manual_seed(0)
    model = torchvision_model(name).eval()
    spread_tiny_constants(model)   # ConvNeXt's 1e-6 layer scales would hide its blocks
    net = smallest_input(ZOO[name])

    trainable = sum(p.numel() for p in model.parameters())
    assert net.total_params == trainable
    theirs = {k: tuple(v.shape) for k, v in model.state_dict().items()
              if not k.endswith("num_batches_tracked")}
    assert net.weight_shapes() == theirs

    h, w, c = net.input_shape
    x = np.random.default_rng(0).standard_normal((2, c, h, w), dtype=np.float32)
    batch_statistics(model, torch.from_numpy(x))
    weights = state_dict_arrays(model)
    want = forward(model, x)
    scale = max(1.0, float(np.abs(want).max()))
    tol = dict(rtol=1e-3, atol=1e-4 * scale + 3 * float32_error(model, x, want))
    np.testing.assert_allclose(net.numpy_model(weights)(x), want, **tol)
    np.testing.assert_allclose(OnnxModel(net, net.check_weights(weights))(x), want, **tol)
