"""Every zoo spec against torchvision: parameters, state_dict names and shapes, outputs."""

from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from netspec.backends.onnx import OnnxModel  # noqa: E402
from zoo_oracle import (batch_statistics, float32_error, forward, smallest_input,  # noqa: E402
                        spread_tiny_constants, state_dict_arrays, torchvision_model, zoo_specs)

ZOO = zoo_specs()
#: Above this many parameters (only regnet_y_128gf: 645 M, 11.5 GB and two minutes to
#: run) the outputs are compared only when NETSPEC_ZOO_HEAVY=1; names, shapes and counts
#: are always compared.
HEAVY = 200_000_000


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_spec_has_torchvisions_parameters_and_names(name):
    try:
        with torch.device("meta"):   # shapes only: no memory, no initialisation
            model = torchvision_model(name)
    except NotImplementedError:      # an initialiser that reads values (RegNetY's)
        model = torchvision_model(name)
    net = smallest_input(ZOO[name])
    assert net.total_params == sum(p.numel() for p in model.parameters())
    theirs = {k: tuple(v.shape) for k, v in model.state_dict().items()
              if not k.endswith("num_batches_tracked")}
    assert net.weight_shapes() == theirs


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_spec_computes_what_torchvision_computes(name):
    net = smallest_input(ZOO[name])
    if net.total_params > HEAVY and not os.environ.get("NETSPEC_ZOO_HEAVY"):
        pytest.skip(f"{net.total_params:,} parameters: set NETSPEC_ZOO_HEAVY=1 to run")
    torch.manual_seed(0)
    model = torchvision_model(name).eval()
    spread_tiny_constants(model)   # ConvNeXt's 1e-6 layer scales would hide its blocks
    h, w, c = net.input_shape
    x = np.random.default_rng(0).standard_normal((2, c, h, w), dtype=np.float32)
    batch_statistics(model, torch.from_numpy(x))
    weights = state_dict_arrays(model)
    want = forward(model, x)
    scale = max(1.0, float(np.abs(want).max()))
    tol = dict(rtol=1e-3, atol=1e-4 * scale + 3 * float32_error(model, x, want))
    np.testing.assert_allclose(net.numpy_model(weights)(x), want, **tol)
    np.testing.assert_allclose(OnnxModel(net, net.check_weights(weights))(x), want, **tol)
