"""torchvision as the oracle for the zoo specs: same weights, names, shapes and outputs.

A spec under specs/ (any folder) whose file name is a torchvision builder
(`resnet50.ns`, `efficientnet_b3.ns`, `fcn_resnet50.ns`) is compared with the
model that builder makes. Test-only: imports torch and torchvision.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
import torchvision

import netspec

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("**/*.ns"))
CLASSIFICATION = set(torchvision.models.list_models(module=torchvision.models))
SEGMENTATION = set(torchvision.models.list_models(module=torchvision.models.segmentation))
#: torchvision's classification models that are not convolutional (out of the zoo's scope).
ATTENTION = {m for m in CLASSIFICATION if m.startswith(("vit_", "swin_", "maxvit"))}
_INPUT = re.compile(r"^(\s*input\s+)(\d+)x(\d+)x(\d+)", re.MULTILINE)


def zoo_specs() -> dict[str, Path]:
    """Specs named after a torchvision builder, by builder name."""
    return {p.stem: p for p in SPECS if p.stem in CLASSIFICATION | SEGMENTATION}


def torchvision_model(name: str) -> torch.nn.Module:
    """The builder's model with fresh (random) weights, as the spec describes it."""
    if name in SEGMENTATION:
        return torchvision.models.get_model(name, weights=None, weights_backbone=None,
                                            aux_loss=False, num_classes=21)
    return torchvision.models.get_model(name, weights=None)


def at_input(text: str, height: int, width: int) -> str:
    """The spec with its input resized to height×width (channels kept)."""
    return _INPUT.sub(lambda m: f"{m.group(1)}{height}x{width}x{m.group(4)}", text, count=1)


def smallest_input(path: Path, sizes: tuple[int, ...] = (64, 96, 128, 160)) -> netspec.Network:
    """The spec at the smallest of `sizes` it accepts, else at its own size.

    Large models run at a small input in tests (the issue allows it); a spec whose
    fc layers fix the size (their parameters change with it) stays at its own size.
    Every batch norm must still see at least 3×3 positions per image (or as many as at
    full size, as after DeepLab's global pooling): its statistics
    come from the test batch, and over 2×2 positions of 2 images a channel's variance
    can be so small that float32 rounding, amplified, decides the output.
    """
    text = path.read_text(encoding="utf-8")
    full = netspec.parse(text, str(path))
    positions = {layer.name: min(9, layer.output_shape[0] * layer.output_shape[1])
                 for layer in full.layers if layer.kind == "bn" and not layer.aux}
    for s in sizes:
        if s >= full.input_shape[0]:
            break
        try:
            net = netspec.parse(at_input(text, s, s), str(path))
        except netspec.NetspecError:
            continue
        if net.total_params == full.total_params and \
                net.output_shape[-1] == full.output_shape[-1] and \
                all(layer.output_shape[0] * layer.output_shape[1] >= positions[layer.name]
                    for layer in net.layers if layer.name in positions):
            return net
    return full


def batch_statistics(model: torch.nn.Module, x: torch.Tensor) -> None:
    """Set every batch norm's running statistics from the batch `x`.

    Fresh models have mean 0 / variance 1, so eval mode would test nothing of the
    normalisation (and some nets' outputs shrink to 1e-8 or to the fc bias).
    """
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None   # a cumulative average: one batch sets the statistics exactly
    model.train()
    with torch.no_grad():
        model(x)
    model.eval()


def state_dict_arrays(model: torch.nn.Module) -> dict[str, np.ndarray]:
    """The model's state_dict as NumPy arrays, without torch's batch counters."""
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()
            if not k.endswith("num_batches_tracked")}


def float32_error(model: torch.nn.Module, x: np.ndarray, want: np.ndarray) -> float:
    """How far torch's own float32 output `want` is from the float64 result.

    Deep nets with batch statistics from a 2-sample batch at a small input divide
    by small variances, which amplifies rounding (ResNet-101 at 64×64: 1.4e-3
    against outputs of about 4); a float32 implementation can only be asked to
    be about as exact as torch's float32 is.
    """
    import copy
    exact = forward(copy.deepcopy(model).double(), x.astype(np.float64))
    return float(np.abs(want - exact).max())


def forward(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """The model's output (`out` of a segmentation model) in eval mode."""
    with torch.no_grad():
        y = model(torch.from_numpy(x))
    return (y["out"] if isinstance(y, dict) else y).numpy()


def spread_tiny_constants(model: torch.nn.Module) -> None:
    """Redraw every parameter torch initialises to one tiny non-zero constant.

    ConvNeXt's layer scales start at 1e-6: each block then adds a millionth of its
    output to the residual stream, and a comparison of the outputs would not see a
    wrong block. Uniform values in [0.5, 1.5) make every block count.
    """
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            first = float(p.flatten()[0])
            if p.numel() > 1 and 0 < abs(first) < 1e-3 and bool((p == first).all()):
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
