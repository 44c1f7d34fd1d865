"""Memory figures against their oracles: tracemalloc for the NumPy model's forward
peak, PyTorch's saved tensors and optimizer for training, torchvision for the
parameter split, and by hand from the formulas."""

from __future__ import annotations

import math
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from random_nets import random_spec

import netspec
from netspec.analysis import forward_peak, training_memory, weight_counts
from netspec.analysis.memory import saved_bytes

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.ns"))
SMALL_SPECS = ["lenet5", "mnist_cnn", "vgg_mini", "mobilenet_cifar", "resnet18", "squeezenet1_1",
               "mobilenet_v2"]


def _allocated(net, batch: int) -> int:
    """Peak bytes tracemalloc sees while the NumPy model runs one batch (one thread)."""
    model = net.numpy_model(seed=0, threads=1)
    s = net.input_shape
    x = np.ones((batch, s[2], s[0], s[1]) if len(s) == 3 else (batch, s[0]), np.float32)
    model(x[:1])   # warm up: lazily built tables are not part of a forward pass
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        model(x)
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("seed", range(30))
def test_forward_peak_of_random_nets_is_within_10_percent_of_tracemalloc(seed):
    from netspec.backends.numpy.memory import NumpyRuntime
    net = netspec.parse(random_spec(seed))
    batch = 256   # small nets: enough values that NumPy's fixed buffers do not dominate
    assert forward_peak(net, batch, runtime=NumpyRuntime()).bytes == \
        pytest.approx(_allocated(net, batch), rel=0.10)


@pytest.mark.parametrize("name", SMALL_SPECS)
def test_forward_peak_of_specs_is_within_10_percent_of_tracemalloc(name):
    from netspec.backends.numpy.memory import NumpyRuntime
    net = netspec.load(ROOT / "specs" / f"{name}.ns")
    assert forward_peak(net, 2, runtime=NumpyRuntime()).bytes == \
        pytest.approx(_allocated(net, 2), rel=0.10)


def test_forward_peak_by_hand():
    # input 8×8×1 (256 B); conv → 6×6×4 (576 B); relu in place; pool → 3×3×4 (144 B).
    # While conv runs, input and conv's output are alive: 256 + 576 = 832; relu adds
    # nothing; the pool then holds 576 + 144 = 720. With the NumPy model's own scratch,
    # the input is held to the end and the conv's im2col block (36 rows of 9 values).
    net = netspec.parse("input 8x8x1\nconv 3x3 x4 relu\npool 2")
    peak = forward_peak(net, 1)
    assert (peak.bytes, peak.layer) == (256 + 576, "conv1")
    assert forward_peak(net, 10).bytes == 10 * (256 + 576)


# ---- training: PyTorch's autograd is the oracle ---------------------------------------

def _torch_training_twin(net, batch: int, backward: bool):
    """Run `net` in training mode in PyTorch; return (saved bytes, params, grads, module).

    Written as PyTorch code is written (torchvision's idioms): convolutions and
    pools pad through their own `padding` where it is symmetric and with F.pad
    where it is not; relu and relu6 run in place (`inplace=True`) where no one else
    reads their input and its producer does not keep its output; batch norm and
    dropout run in training mode; global average pooling is adaptive_avg_pool2d.
    """
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F
    from torch_reference import _pads
    params, buffers = {}, {}
    for name, shape in net.weight_shapes().items():
        t = torch.full(shape, 0.01)
        if name.endswith(("running_mean", "running_var")):
            buffers[name] = t
        else:
            params[name] = t.requires_grad_()
    readers: dict[str, int] = {}
    for layer in net.layers:
        for i in layer.inputs:
            readers[i.name] = readers.get(i.name, 0) + 1
    keeps_output = {"input", "relu", "relu6", "tanh", "sigmoid", "softmax"}
    kept: list = []
    h = net.input_shape
    x = torch.rand((batch, h[2], h[0], h[1]) if len(h) == 3 else (batch, h[0]))
    values = {net.layers[0].name: x}

    def pads(layer, t):
        left, right, top, bottom = _pads(layer, t.shape[2:])
        if (left, top) == (right, bottom) and (layer.op == "conv" or left <= min(layer.kernel) // 2):
            return t, (top, left)
        return F.pad(t, (left, right, top, bottom),
                     value=-math.inf if getattr(layer, "mode", "") == "max" else 0.0), (0, 0)

    with torch.autograd.graph.saved_tensors_hooks(lambda t: kept.append(t) or t, lambda t: t):
        for layer in net.layers[1:]:
            ins = [values[i.name] for i in layer.inputs]
            t, op = ins[0], layer.op

            def w(key: str, name: str = layer.name):
                return params.get(f"{name}.{key}")
            src = layer.inputs[0]
            inplace = readers[src.name] == 1 and src.op not in keeps_output
            if op == "conv":
                t, p = pads(layer, t)
                out = F.conv2d(t, w("weight"), w("bias"), layer.strides, p, layer.dilation,
                               layer.groups)
            elif op == "adaptive_pool":
                out = F.adaptive_avg_pool2d(t, layer.size)
            elif op == "deconv":
                out = F.conv_transpose2d(t, w("weight"), w("bias"), layer.stride, layer.padding,
                                         layer.output_padding, layer.groups, layer.dilation)
            elif op == "pool" and layer.global_pool:
                out = (F.adaptive_avg_pool2d(t, 1) if layer.mode == "avg"
                       else F.adaptive_max_pool2d(t, 1))
            elif op == "pool":
                t, p = pads(layer, t)
                out = (F.max_pool2d(t, layer.kernel, layer.strides, p, ceil_mode=layer.ceil_mode)
                       if layer.mode == "max" else
                       F.avg_pool2d(t, layer.kernel, layer.strides, p, ceil_mode=layer.ceil_mode,
                                    count_include_pad=layer.count_pad))
            elif op == "fc":
                out = F.linear(t.flatten(1), w("weight"), w("bias"))
            elif op == "bn":
                n = layer.name
                out = F.batch_norm(t, buffers[f"{n}.running_mean"], buffers[f"{n}.running_var"],
                                   w("weight"), w("bias"), training=True)
            elif op == "relu":
                out = F.relu(t, inplace=inplace)
            elif op == "relu6":
                out = F.relu6(t, inplace=inplace)
            elif op in ("tanh", "sigmoid"):
                out = getattr(torch, op)(t)
            elif op == "softmax":
                out = F.softmax(t, dim=1)
            elif op == "lrn":
                out = F.local_response_norm(t, layer.size, layer.alpha, layer.beta, layer.k)
            elif op == "dropout":
                out = F.dropout(t, layer.rate, training=True)
            elif op == "flatten":
                out = t.flatten(1)
            elif op == "add":
                out = ins[0] + ins[1]
            elif op == "concat":
                out = torch.cat(ins, dim=1)
            elif op == "mul":
                out = ins[0] * ins[1]
            elif op in ("silu", "gelu", "hswish", "hsigmoid"):
                out = {"silu": F.silu, "gelu": F.gelu, "hswish": F.hardswish,
                       "hsigmoid": F.hardsigmoid}[op](t)
            elif op == "leaky":
                out = F.leaky_relu(t, layer.slope)
            elif op == "layernorm":   # as torchvision's ConvNeXt: channels last and back
                out = F.layer_norm(t.permute(0, 2, 3, 1), (t.shape[1],), w("weight"), w("bias"),
                                   layer.epsilon).permute(0, 3, 1, 2)
            elif op == "scale":
                out = params[layer.name] * t
            elif op == "linear":
                out = F.linear(t.permute(0, 2, 3, 1), w("weight"), w("bias")).permute(0, 3, 1, 2)
            elif op == "chunk":
                out = torch.chunk(t, layer.count, dim=1)[layer.index]
            elif op == "shuffle":   # as torchvision's ShuffleNetV2 channel_shuffle
                b, c, hh, ww = t.shape
                g = layer.groups
                out = t.view(b, g, c // g, hh, ww).transpose(1, 2).contiguous().view(b, c, hh, ww)
            elif op == "upsample":
                out = F.interpolate(t, size=tuple(layer.output_shape[:2]), mode=layer.mode,
                                    **({"align_corners": False} if layer.mode == "bilinear" else {}))
            else:
                raise AssertionError(f"no PyTorch twin for `{op}`")
            values[layer.name] = out
    weights = {p.data_ptr() for p in [*params.values(), *buffers.values()]}
    storages = {}
    for t in kept:
        s = t.untyped_storage()
        if s.data_ptr() not in weights:
            storages[s.data_ptr()] = s.nbytes()
    result = values[net.layers[-1].name]
    return sum(storages.values()), params, result


@pytest.mark.parametrize("seed", range(20))
def test_saved_for_backward_of_random_nets_is_within_10_percent_of_pytorch(seed):
    net = netspec.parse(random_spec(seed))
    saved, _, _ = _torch_training_twin(net, 3, backward=False)
    assert saved_bytes(net, 3) == pytest.approx(saved, rel=0.10)


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_saved_for_backward_of_every_spec_is_within_10_percent_of_pytorch(spec):
    net = netspec.load(spec)
    saved, _, _ = _torch_training_twin(net, 1, backward=False)
    assert saved_bytes(net, 1) == pytest.approx(saved, rel=0.10)


@pytest.mark.parametrize("optimizer, torch_name, options", [
    ("sgd", "SGD", {}), ("momentum", "SGD", {"momentum": 0.9}), ("adam", "Adam", {})])
def test_training_memory_against_a_real_optimizer_step(optimizer, torch_name, options):
    torch = pytest.importorskip("torch")
    net = netspec.load(ROOT / "specs/mobilenet_cifar.ns")
    saved, params, out = _torch_training_twin(net, 2, backward=True)
    out.sum().backward()
    opt = getattr(torch.optim, torch_name)(params.values(), lr=0.1, **options)
    opt.step()
    grads = sum(p.grad.nbytes for p in params.values())
    state = sum(v.nbytes for s in opt.state.values() for v in s.values()
                if torch.is_tensor(v) and v.dim() > 0)   # Adam's step counters are scalars
    m = training_memory(net, 2, optimizer)
    trainable, buffers = weight_counts(net)
    assert m.weights == 4 * (trainable + buffers)
    assert m.gradients == grads
    assert m.optimizer == state
    assert m.saved == pytest.approx(saved, rel=0.10)
    assert m.total == m.weights + m.gradients + m.optimizer + m.saved + m.in_flight


def test_training_holds_what_the_forward_pass_holds():
    # The 1000×1000×3 image through 1,000 3×3 filters, batch 1: the conv's output is
    # 998·998·1000 values (3.71 GiB), which its backward does not keep (it keeps its
    # input, 1000·1000·3 values). The step holds that output to the loss, and the
    # output's gradient beside it: twice 998·998·1000·4 bytes in flight.
    net = netspec.parse("input 1000x1000x3\nconv 3x3 x1000")
    m = training_memory(net, 1, "adam")
    params = 3 * 3 * 3 * 1000 + 1000
    out = 998 * 998 * 1000 * 4
    assert (m.weights, m.gradients, m.optimizer) == (4 * params, 4 * params, 8 * params)
    assert m.saved == 1000 * 1000 * 3 * 4
    assert m.in_flight == 2 * out
    assert m.total == 16 * params + 1000 * 1000 * 3 * 4 + 2 * out
    assert m.total > forward_peak(net, 1).bytes == 1000 * 1000 * 3 * 4 + out


def test_in_flight_of_a_chain_by_hand():
    # input 8×8×1 (256 B), conv → 8×8×4 (1 KiB), relu in place (it keeps its output,
    # which conv2 keeps as its input too), conv → 8×8×4. Kept: the input and conv1's
    # memory, 1,280 B. In flight: conv2's output while the loss reads it, and its
    # gradient beside it; then conv2's dy and the dx it makes; then relu's: 2 KiB.
    net = netspec.parse("input 8x8x1\nconv 3x3 p1 x4\nrelu\nconv 3x3 p1 x4")
    m = training_memory(net, 1, "sgd")
    assert m.saved == 256 + 1024
    assert m.in_flight == 2 * 1024
    assert training_memory(net, 8, "sgd").in_flight == 8 * 2 * 1024


def test_in_flight_of_a_residual_by_hand():
    # Every value 4×4×2 (128 B). Kept: the input (conv1's), conv1's output (conv2's
    # input and the shortcut), conv2's memory (tanh runs in it and keeps its output,
    # conv3 keeps it as its input) and the add's memory (relu runs in it, keeping its
    # output): 4 × 128 B. conv3's output is not kept. In backward, while the body's
    # convs run, the shortcut's gradient waits beside each one's dy and the dx it
    # makes: 3 × 128 B at once.
    net = netspec.parse("input 4x4x2\nconv 1x1 x2\nresidual { conv 1x1 x2; tanh; conv 1x1 x2 }\n"
                        "relu")
    m = training_memory(net, 1, "sgd")
    assert m.saved == 4 * 128
    assert m.in_flight == 3 * 128


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_training_memory_is_at_least_the_forward_peak(spec):
    net = netspec.load(spec)
    m = training_memory(net, 2)
    assert m.saved + m.in_flight >= forward_peak(net, 2).bytes


@pytest.mark.parametrize("seed", range(20))
def test_training_memory_of_random_nets_is_at_least_the_forward_peak(seed):
    net = netspec.parse(random_spec(seed))
    m = training_memory(net, 3)
    assert m.saved + m.in_flight >= forward_peak(net, 3).bytes


# ---- parameters and bytes ----------------------------------------------------------------

def test_trainable_and_buffer_counts_match_torchvision():
    torchvision = pytest.importorskip("torchvision")
    for name in ("resnet18", "mobilenet_v2", "densenet121"):
        model = getattr(torchvision.models, name)()
        buffers = sum(b.numel() for k, b in model.named_buffers()
                      if not k.endswith("num_batches_tracked"))
        trainable = sum(p.numel() for p in model.parameters())
        assert weight_counts(netspec.load(ROOT / "specs" / f"{name}.ns")) == (trainable, buffers)


def test_weight_bytes_per_dtype_in_json():
    import json
    import subprocess
    import sys
    for dtype, size in (("float32", 4), ("float16", 2), ("bfloat16", 2), ("int8", 1)):
        r = subprocess.run([sys.executable, "-m", "netspec", "check", "--json", "--dtype", dtype,
                            "specs/mobilenet_cifar.ns"], capture_output=True, text=True, cwd=ROOT,
                           check=False)
        d = json.loads(r.stdout)
        # bn layers: 2·C trainable and 2·C running statistics each
        bn = sum(lay["output"][-1] for lay in d["layers"] if lay["op"] == "bn")
        assert d["non_trainable_params"] == 2 * bn
        assert d["trainable_params"] == d["total_params"]
        assert d["memory"]["weights_bytes"] == size * (d["total_params"] + 2 * bn)


def test_depth_rows_add_up_to_the_totals():
    net = netspec.load(ROOT / "specs/resnet50.ns")
    from netspec.tables import _grid
    for depth in (1, 2):
        _, rows, total = _grid(net, depth, ("layer", "activations", "params", "macs"),
                                     1, 4, raw=True)
        for col in (1, 2, 3):
            assert sum(int(r[col]) for r in rows) == int(total[col])
    assert int(total[1]) == sum(math.prod(lay.output_shape) for lay in net.layers)


@pytest.mark.parametrize("size", ["6x6", "4x4", "1x1"])
def test_adaptive_pooling_memory(size):
    from netspec.backends.numpy.memory import NumpyRuntime
    net = netspec.parse(f"input 24x24x3\nconv 3x3 p1 x8 relu\npool avg to {size}\nfc 5")
    saved, _, _ = _torch_training_twin(net, 4, backward=False)
    assert saved_bytes(net, 4) == pytest.approx(saved, rel=0.10)
    assert forward_peak(net, 64, runtime=NumpyRuntime()).bytes == \
        pytest.approx(_allocated(net, 64), rel=0.10)


#: Two ConvNeXt blocks (torchvision's layout) at a small size: the zoo's ConvNeXts are too
#: large for the twin, so layer norm, linear and layer scale are checked here.
SMALL_CONVNEXT = (
    "input 32x32x3\nconv 4x4 s4 x16\nlayernorm eps1e-6\n"
    "residual { conv 7x7 p3 g16 x16; layernorm eps1e-6; linear 64; gelu; linear 16; scale }\n"
    "layernorm eps1e-6\nconv 2x2 s2 x32\n"
    "residual { conv 7x7 p3 g32 x32; layernorm eps1e-6; linear 128; gelu; linear 32; scale }\n"
    "pool avg global")


def test_saved_for_backward_of_a_small_convnext_is_within_10_percent_of_pytorch():
    net = netspec.parse(SMALL_CONVNEXT)
    saved, _, _ = _torch_training_twin(net, 2, backward=False)
    assert saved_bytes(net, 2) == pytest.approx(saved, rel=0.10)
