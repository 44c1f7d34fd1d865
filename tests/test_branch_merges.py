"""`add { branch … }` and `mul { branch … }`: merges of two branches against PyTorch."""

import numpy as np
import pytest
from random_nets import random_weights

import netspec
from netspec.backends.onnx import OnnxModel

torch = pytest.importorskip("torch")
F = torch.nn.functional

#: LR-ASPP's head in miniature: cbr(x) × scale(x), then a low and a high path added.
SPEC = """
input 8x8x3
stem: conv 3x3 s2 p1 x4                  # the low level, 4×4×4
add {
    branch { low: conv 1x1 x5 }
    branch {
        high: conv 3x3 s2 p1 x6          # 2×2×6
        mul {
            branch cbr: [ conv 1x1 x4 nobias; bn; relu ]
            branch scale: [ pool avg global; conv 1x1 x4 nobias; sigmoid ]
        }
        upsample bilinear to branch      # back to the low level's 4×4
        out: conv 1x1 x5
    }
}
"""


def _twin(w: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The same network written by hand in torch (the oracle)."""
    t = {k: torch.from_numpy(v) for k, v in w.items()}
    low = F.conv2d(torch.from_numpy(x), t["stem.weight"], t["stem.bias"], stride=2, padding=1)
    high = F.conv2d(low, t["high.weight"], t["high.bias"], stride=2, padding=1)
    cbr = F.relu(F.batch_norm(F.conv2d(high, t["cbr.0.weight"]), t["cbr.1.running_mean"],
                              t["cbr.1.running_var"], t["cbr.1.weight"], t["cbr.1.bias"]))
    scale = torch.sigmoid(F.conv2d(high.mean((2, 3), keepdim=True), t["scale.1.weight"]))
    up = F.interpolate(cbr * scale, size=low.shape[-2:], mode="bilinear", align_corners=False)
    return (F.conv2d(low, t["low.weight"], t["low.bias"])
            + F.conv2d(up, t["out.weight"], t["out.bias"])).numpy()


def test_add_and_mul_of_branches_match_torch_in_numpy_and_onnxruntime():
    net = netspec.parse(SPEC)
    assert [layer.kind for layer in net.layers if layer.kind in ("add", "mul")] == ["mul", "add"]
    assert net.output_shape == (4, 4, 5)
    w = random_weights(net, np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8), dtype=np.float32)
    want = _twin(w, x)
    np.testing.assert_allclose(net.numpy_model(w)(x), want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(OnnxModel(net, w)(x), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("spec, message", [
    ("input 4x4x2\nadd { branch { conv 1x1 x3 } branch { conv 1x1 x4 } }",
     "branches of `add` differ: 4×4×3 and 4×4×4"),
    ("input 4x4x2\nmul { branch { conv 1x1 x3 } branch { pool avg global; conv 1x1 x2 } }",
     "branches of `mul` differ: 4×4×3 and 1×1×2"),
    ("input 4x4x2\nmul { branch {} branch {} branch {} }", "`mul` merges exactly two branches"),
])
def test_merges_of_branches_that_cannot_be_combined_are_errors(spec, message):
    with pytest.raises(netspec.NetspecError, match=message.replace("{", r"\{")) as info:
        netspec.parse(spec)
    assert info.value.line == 2


def test_add_and_mul_are_keywords_that_may_still_label_a_layer():
    net = netspec.parse("input 4x4x2\nadd: conv 1x1 x2\nmul: relu")
    assert [layer.name for layer in net.layers[1:]] == ["add", "mul"]
