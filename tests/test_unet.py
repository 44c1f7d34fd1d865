"""specs/unet.ns against a hand-written PyTorch U-Net (Ronneberger et al., 2015, padded convs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")   # zoo_oracle imports it
nn = torch.nn

from zoo_oracle import at_input, state_dict_arrays  # noqa: E402

import netspec  # noqa: E402
from netspec.backends.onnx import OnnxModel  # noqa: E402

SPEC = Path(__file__).resolve().parent.parent / "specs" / "unet.ns"


class Double(nn.Module):
    """Two 3×3 convs with padding 1, each followed by a ReLU."""

    def __init__(self, c_in: int, c: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return torch.relu(self.conv2(torch.relu(self.conv1(x))))


class UNet(nn.Module):
    """The paper's figure 1: 64…1024 channels, 2×2 max pools, 2×2 up-convs, copies
    concatenated in front of the upsampled features, a 1×1 conv to the classes."""

    def __init__(self, c_in: int = 1, classes: int = 2) -> None:
        super().__init__()
        widths = [64, 128, 256, 512]
        for i, (a, b) in enumerate(zip([c_in] + widths[:-1], widths), 1):
            setattr(self, f"enc{i}", Double(a, b))
            setattr(self, f"dec{i}", Double(2 * b, b))
            setattr(self, f"up{i}", nn.ConvTranspose2d(2 * b, b, 2, stride=2))
        self.bottom = Double(512, 1024)
        self.head = nn.Conv2d(64, classes, 1)

    def forward(self, x):
        skips = []
        for i in range(1, 5):
            x = getattr(self, f"enc{i}")(x)
            skips.append(x)
            x = nn.functional.max_pool2d(x, 2)
        x = self.bottom(x)
        for i in range(4, 0, -1):
            x = torch.cat([skips[i - 1], getattr(self, f"up{i}")(x)], dim=1)
            x = getattr(self, f"dec{i}")(x)
        return self.head(x)


def test_unet_spec_equals_its_pytorch_twin():
    torch.manual_seed(0)
    twin = UNet().eval()
    full = netspec.load(SPEC)
    assert full.total_params == sum(p.numel() for p in twin.parameters())
    net = netspec.parse(at_input(SPEC.read_text(encoding="utf-8"), 32, 32), str(SPEC))
    theirs = {k: tuple(v.shape) for k, v in twin.state_dict().items()}
    assert net.weight_shapes() == theirs
    assert net.output_shape == (32, 32, 2)

    x = np.random.default_rng(0).standard_normal((2, 1, 32, 32), dtype=np.float32)
    weights = state_dict_arrays(twin)
    with torch.no_grad():
        want = twin(torch.from_numpy(x)).numpy()
    tol = {"rtol": 1e-4, "atol": 1e-5 * max(1.0, float(np.abs(want).max()))}
    np.testing.assert_allclose(net.numpy_model(weights)(x), want, **tol)
    np.testing.assert_allclose(OnnxModel(net, net.check_weights(weights))(x), want, **tol)
