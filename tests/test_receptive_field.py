"""Receptive fields against autograd, and by hand from the recurrence.

The oracle: a PyTorch twin of the network with every weight positive, max
pooling swapped for average pooling and saturating or channel-normalising
functions (relu6, softmax, LRN) swapped for monotone ones, so that every input
pixel a window reaches gets a nonzero gradient. The nonzero-gradient pixels of
one output pixel (the top-left corner and the centre) must span exactly the
reported window, clipped to the input. The corner's window is exact always; a
window that runs past the input's bottom or right may reach pixels that exist
only as padding at some layer, so there the gradient's span must lie inside the
reported one (and equal it when the window fits inside the input).

Channels do not change which pixels a pixel sees, so the large specs run a
narrow twin (one channel per conv) to stay fast; random nets run at full width,
groups included.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
from random_nets import random_spec

import netspec
from netspec.analysis import receptive_fields

torch = pytest.importorskip("torch")
import torch.nn.functional as F
from torch_reference import _pads, _pool

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.ns"))


def _twin(net, x, narrow: bool):
    """Every layer's output (spatial ones) for x, with positive weights throughout."""
    values = {net.layers[0].name: x}
    for layer in net.layers[1:]:
        ins = [values.get(i.name) for i in layer.inputs]
        if any(t is None for t in ins) or len(layer.output_shape) != 3:
            continue   # after fc/flatten: no spatial output
        t = ins[0]
        op = layer.op
        if op == "conv":
            c_in = t.shape[1]
            g = 1 if narrow else layer.groups
            k = 1 if narrow else layer.filters
            w = torch.full((k, c_in // g, *layer.kernel), 1.0 / (c_in // g * math.prod(layer.kernel)),
                           dtype=x.dtype)
            out = F.conv2d(F.pad(t, _pads(layer, t.shape[2:])), w, torch.full((k,), 0.1, dtype=x.dtype),
                           stride=layer.strides, dilation=layer.dilation, groups=g)
        elif op == "pool":
            shim = SimpleNamespace(**{a: getattr(layer, a) for a in (
                "global_pool", "kernel", "strides", "ceil_mode", "padding", "dilation",
                "count_pad")}, mode="avg")
            out = _pool(shim, t)
        elif op == "adaptive_pool":
            out = F.adaptive_avg_pool2d(t, layer.size)
        elif op == "deconv":   # no field from here on; its value feeds what follows
            c_in, g = t.shape[1], layer.groups
            w = torch.full((c_in, 1 if narrow else layer.filters // g, *layer.kernel), 0.1,
                           dtype=x.dtype)
            out = F.conv_transpose2d(t, w, stride=layer.stride, padding=layer.padding,
                                     output_padding=layer.output_padding,
                                     groups=1 if narrow else g, dilation=layer.dilation)
        elif op == "add":
            out = ins[0] + ins[1]
        elif op == "concat":
            out = torch.cat(ins, dim=1)
        elif op == "mul":
            out = ins[0] * ins[1]
        elif op in ("silu", "gelu", "hswish", "hsigmoid", "leaky"):
            out = torch.sigmoid(t)   # pointwise, with a gradient everywhere
        elif op in ("tanh", "sigmoid"):
            out = getattr(torch, op)(t)
        elif op in ("relu", "relu6", "softmax"):
            out = torch.sigmoid(t) if op == "softmax" else F.relu(t)
        elif op == "bn":
            out = t * 0.9 + 0.05
        elif op in ("lrn", "dropout"):
            out = t
        elif op == "layernorm":   # mixes a pixel's channels, never its neighbours
            out = t + t.mean(1, keepdim=True)
        elif op == "scale":
            out = t * 0.5
        elif op == "linear":      # a 1×1 conv: each pixel's channels only
            k = 1 if narrow else layer.units
            out = F.conv2d(t, torch.full((k, t.shape[1], 1, 1), 1.0 / t.shape[1], dtype=x.dtype))
        elif op == "chunk":       # narrow twins have one channel: every chunk is all of it
            out = t if narrow else torch.chunk(t, layer.count, dim=1)[layer.index]
        elif op == "shuffle":
            b, c, hh, ww = t.shape
            g = layer.groups if c % layer.groups == 0 else 1
            out = t.view(b, g, c // g, hh, ww).transpose(1, 2).reshape(b, c, hh, ww)
        elif op == "upsample":    # no field from here on; its value feeds what follows
            out = F.interpolate(t, size=tuple(layer.output_shape[:2]), mode=layer.mode,
                                **({"align_corners": False} if layer.mode == "bilinear" else {}))
        else:
            raise AssertionError(f"no twin for {op}")
        values[layer.name] = out
    return values


def _boxes(net, probes, narrow: bool):
    """For each (layer, row, column): the rows and columns of input pixels with a gradient.

    Each probe is its own sample of one batch, so one backward pass serves them all.
    """
    h, w, c = net.input_shape
    dtype = torch.float32 if narrow else torch.float64   # positive sums: no cancellation
    x = torch.ones((len(probes), 1 if narrow else c, h, w), dtype=dtype, requires_grad=True)
    values = _twin(net, x, narrow)
    total = sum(values[name][b, :, i, j].sum() for b, (name, i, j) in enumerate(probes))
    total.backward()
    boxes = []
    for b in range(len(probes)):
        nz = (x.grad[b].abs().sum(0) > 0).nonzero()
        if not len(nz):   # a window over padding only (a 1×1 conv with p1 at the corner)
            boxes.append(None)
            continue
        boxes.append(((nz[:, 0].min().item(), nz[:, 0].max().item()),
                      (nz[:, 1].min().item(), nz[:, 1].max().item())))
    return boxes


def _inside(f, axis: int, n: int, out: int) -> int | None:
    """The first output pixel along `axis` whose whole window lies inside the input."""
    for i in range(out):
        a, b = f.span(i, axis)
        if a >= 0 and b <= n - 1:
            return i
    return None


def _check(net, layers, narrow: bool = False) -> int:
    """Compare every probe; return how many were compared exactly."""
    fields = receptive_fields(net)
    h, w = net.input_shape[:2]
    probes = []
    for layer in layers:
        oh, ow = layer.output_shape[:2]
        f = fields[layer.name]
        probes += [(layer.name, 0, 0), (layer.name, oh // 2, ow // 2)]
        i, j = _inside(f, 0, h, oh), _inside(f, 1, w, ow)
        if i is not None and j is not None:
            probes.append((layer.name, i, j))
    exact = 0
    for (name, i, j), got in zip(probes, _boxes(net, probes, narrow)):
        f = fields[name]
        spans = [f.span(i, 0), f.span(j, 1)]
        clipped = [(max(a, 0), min(b, n - 1)) for (a, b), n in zip(spans, (h, w))]
        where = f"{name} pixel ({i}, {j}): field {f}"
        if all(a >= 0 and b < n for (a, b), n in zip(spans, (h, w))):
            assert list(got) == clipped, where   # the window fits: exactly its span
            exact += 1
        else:
            # past the border, padding at some layer and gaps of a sparse window (a 1×1
            # stride-2 conv) may leave the clipped ends unread: the span lies within
            for (ga, gb), (ca, cb) in zip(got or (), clipped):
                assert ca <= ga <= gb <= cb, where
    return exact


@pytest.mark.parametrize("seed", range(30))
def test_random_nets_every_layer_against_autograd(seed):
    net = netspec.parse(random_spec(seed))
    fields = receptive_fields(net)
    layers = [lay for lay in net.layers if lay.name in fields]
    assert _check(net, layers) >= 1   # the input itself at least


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_every_spec_against_autograd(spec):
    net = netspec.load(spec)
    fields = receptive_fields(net)
    spatial = [lay for lay in net.layers if lay.name in fields]
    step = max(1, len(spatial) // 6)
    chosen = {*spatial[::step], spatial[-1]}
    exact = _check(net, [lay for lay in spatial if lay in chosen], narrow=True)
    assert exact >= len(chosen) // 2, exact


def test_lenet_by_hand():
    # rf' = rf + (f−1)·jump, jump' = jump·s: 5, then 5 + 1·1 = 6 (jump 2), 6 + 4·2 = 14,
    # 14 + 1·2 = 16 (jump 4)
    fields = receptive_fields(netspec.load(ROOT / "specs/lenet5.ns"))
    assert [(fields[n].rf[0], fields[n].jump[0]) for n in ("conv1", "pool1", "conv2", "pool2")] \
        == [(5, 1), (6, 2), (14, 2), (16, 4)]
    assert "fc1" not in fields   # no spatial output


def test_dilation_padding_and_residual_by_hand():
    net = netspec.parse("input 32x32x3\nconv 3x3 d2 p2 x4\nresidual { conv 3x3 s1 p1 x4 }\n"
                        "pool 2 s2\nconv 3x3 s2 p1 x4")
    f = receptive_fields(net)
    assert f["conv1"].rf == (5, 5) and f["conv1"].start == (-2, -2)   # d·(f−1)+1 = 5, p = 2
    assert f["conv2"].rf == (7, 7)                                    # 5 + 2·1
    assert f["add1"].rf == (7, 7) and not f["add1"].misaligned        # the larger path
    assert f["pool1"].rf == (8, 8) and f["pool1"].jump == (2, 2)
    assert f["conv3"].rf == (8 + 2 * 2, 8 + 2 * 2) and f["conv3"].jump == (4, 4)
    assert f["conv3"].start == (-3 - 1 * 2,) * 2                      # −3, then −p·jump
    assert not net.warnings


def test_misaligned_concat_is_warned_and_the_union_reported():
    # conv 3x3 s2 same on 8: padding 0 before, 1 after, windows 0…2; pool 2 s2: 0…1.
    net = netspec.parse("input 8x8x2\nconcat { branch { conv 3x3 s2 same x2 } "
                        "branch { pool avg 2 s2 same } }")
    f = receptive_fields(net)["concat1"]
    assert f.rf == (3, 3) and f.start == (0, 0) and f.misaligned
    assert [w.code for w in net.warnings if w.code == "rf-misaligned"] == ["rf-misaligned"]
    assert _check(net, [net["concat1"]]) == 3   # the corner's window fits: all exact


def test_an_undeclared_spatial_kind_is_refused():
    net = netspec.parse("input 8x8x1\nconv 3x3 x1")

    class Mystery(type(net["conv1"]).__mro__[-2]):   # a bare Layer subclass
        pass
    Mystery.kind = "mystery"   # set after the class is made: a test double is not registered

    odd = Mystery(net["conv1"].pos, "mystery")
    odd.name, odd.inputs, odd.output_shape = "mystery1", [net["conv1"]], (6, 6, 1)
    net.layers.append(odd)
    with pytest.raises(NotImplementedError, match="mystery"):
        receptive_fields(net)
    from netspec.analysis import total_flops, training_memory
    with pytest.raises(NotImplementedError, match="mystery"):
        total_flops(net)
    with pytest.raises(NotImplementedError, match="mystery"):
        training_memory(net)


def test_a_broadcast_gate_sees_the_whole_image():
    # Squeeze-and-excitation: x · s, s = a global pool of x read by every output pixel.
    # Through the gate, every output pixel depends on every input pixel.
    from netspec.kinds import Layer
    net = netspec.parse("input 8x8x2\nconv 3x3 p1 x2\npool avg global")

    class Gate(Layer):
        kind = "gate"

        def input_windows(self):
            return [((1, 1, 0), (1, 1, 0)), ((1, 0, 0), (1, 0, 0))]   # s is broadcast

    gate = Gate(net["conv1"].pos, "gate")
    gate.name, gate.inputs, gate.output_shape = "gate1", [net["conv1"], net["pool1"]], (8, 8, 2)
    net.layers.append(gate)
    f = receptive_fields(net)["gate1"]
    assert not f.misaligned and f.jump == (1, 1)
    x = torch.rand((1, 2, 8, 8), dtype=torch.float64, requires_grad=True)
    c = F.conv2d(x, torch.ones((2, 2, 3, 3), dtype=torch.float64), padding=1)
    for i, j in ((0, 0), (4, 4), (7, 7)):
        gated = c * c.mean((2, 3), keepdim=True)
        (g,) = torch.autograd.grad(gated[0, :, i, j].sum(), x, retain_graph=True)
        nz = (g[0].abs().sum(0) > 0).nonzero()
        got = [(nz[:, 0].min().item(), nz[:, 0].max().item()),
               (nz[:, 1].min().item(), nz[:, 1].max().item())]
        assert got == [(max(a, 0), min(b, 7)) for a, b in (f.span(i, 0), f.span(j, 1))]
        assert got == [(0, 7), (0, 7)]


def test_adaptive_pooling_has_a_field_only_where_its_windows_are_alike():
    # 10 → 5: windows of 2 at stride 2, plain average pooling; 10 → 4: windows of 3 or 4
    even = netspec.parse("input 12x12x2\nconv 3x3 x2\npool avg to 5x5\nconv 3x3 p1 x2")
    f = receptive_fields(even)
    assert f["adaptive_pool1"].size == (3 + 1, 3 + 1) and f["adaptive_pool1"].jump == (2, 2)
    assert _check(even, [even["adaptive_pool1"], even["conv2"]]) >= 2
    odd = netspec.parse("input 12x12x2\nconv 3x3 x2\npool avg to 4x4\nconv 3x3 p1 x2")
    f = receptive_fields(odd)
    assert "conv1" in f and "adaptive_pool1" not in f and "conv2" not in f
    row = next(line for line in odd.summary().splitlines() if line.startswith("conv2"))
    assert row.endswith("–")   # the rf column says nothing rather than guess


def test_a_small_convnext_against_autograd():
    # layer norm, linear and layer scale are per pixel: the field is the convs' alone
    from test_memory import SMALL_CONVNEXT
    net = netspec.parse(SMALL_CONVNEXT)
    fields = receptive_fields(net)
    layers = [lay for lay in net.layers if lay.name in fields]
    assert fields["linear4"].rf == (4 + 6 * 4 + 1 * 4 + 6 * 8,) * 2
    fits = [lay for lay in layers if fields[lay.name].rf[0] <= 32]   # some window fits the input
    assert _check(net, layers) >= len(fits)
