"""The NumPy model computes what PyTorch computes, and by-hand cases from the course."""

from pathlib import Path

import numpy as np
import pytest

import netspec
from random_nets import random_spec, random_weights

torch = pytest.importorskip("torch")
from torch_reference import torch_forward  # noqa: E402

TOL = dict(rtol=1e-4, atol=1e-5)
ROOT = Path(__file__).resolve().parent.parent


def test_vertical_edge_example_from_the_course():
    # 6x6 image: three columns of 10, three of 0; the filter [[1, 0, -1]] x 3 rows.
    image = np.array([[10, 10, 10, 0, 0, 0]] * 6, np.float32)
    kernel = np.array([[1, 0, -1]] * 3, np.float32)
    net = netspec.parse("input 6x6x1\nconv 3x3 x1")
    model = net.numpy_model({"conv1.weight": kernel[None, None], "conv1.bias": np.zeros(1)})
    out = model(image[None, None])[0, 0]
    # each window over the edge sees 3*10 - 3*0 = 30; flat windows sum to 0
    assert out.tolist() == [[0, 30, 30, 0]] * 4


def test_max_pool_pads_with_minus_infinity_and_avg_pool_skips_padding():
    x = -np.arange(1, 10, dtype=np.float32).reshape(1, 1, 3, 3)   # all negative
    mx = netspec.parse("input 3x3x1\npool max 3 s1 p1").numpy_model({})(x)[0, 0]
    # the top-left window covers -1, -2, -4, -5 (and padding, which must not win as 0)
    assert mx[0, 0] == -1 and mx[1, 1] == -1 and mx[2, 2] == -5
    av = netspec.parse("input 3x3x1\npool avg 3 s1 p1").numpy_model({})(x)[0, 0]
    assert av[0, 0] == pytest.approx(-(1 + 2 + 4 + 5) / 4)   # 4 real cells, not 9
    assert av[1, 1] == pytest.approx(-45 / 9)


def test_flatten_is_channel_major():
    x = np.arange(2 * 2 * 3, dtype=np.float32).reshape(1, 3, 2, 2)
    y = netspec.parse("input 2x2x3\nflatten").numpy_model({})(x)
    assert y.tolist() == [list(range(12))]   # NCHW order: channel 0's 4 pixels first


def test_softmax_is_stable_and_sums_to_one():
    x = np.array([[1000.0, 0.0, -1000.0]], np.float32)
    y = netspec.parse("input 3\nsoftmax").numpy_model({})(x)
    assert np.isfinite(y).all() and y.sum() == pytest.approx(1) and y[0, 0] == pytest.approx(1)


@pytest.mark.parametrize("seed", range(60))
def test_random_networks_match_pytorch(seed):
    net = netspec.parse(random_spec(seed))
    weights = random_weights(net, seed)
    model = net.numpy_model(weights)
    x = np.random.default_rng(seed).standard_normal((3, *model.input_shape)).astype(np.float32)
    np.testing.assert_allclose(model(x), torch_forward(net, weights, x), **TOL)


def test_random_networks_cover_every_option():
    specs = "\n".join(random_spec(seed) for seed in range(60))
    for option in ("same", "valid", " p1", " s2", " d2", " g2", "pool avg", "pool max",
                   "bn", "relu", "tanh", "sigmoid", "softmax", "dropout", "flatten", "fc",
                   "silu", "gelu", "hswish", "hsigmoid", "leaky", "leaky 0.", "bn eps1e-3", "gate {",
                   "countpad", "ceil countpad"):
        assert option in specs, option
    depthwise = [line for line in specs.splitlines() if line.startswith("conv 3x3") and " g" in line]
    assert depthwise


@pytest.mark.parametrize("spec", ["input 8x8x4\nconv 4x4 s2 same x4",
                                  "input 9x7x4\nconv 2x2 s3 same g2 x6",
                                  "input 10x10x2\npool avg 4 s3 same",
                                  "input 10x10x2\npool max 2 s1 same"])
def test_same_with_even_kernels_and_strides_matches_pytorch(spec):
    net = netspec.parse(spec)
    weights = random_weights(net, 0)
    x = np.random.default_rng(1).standard_normal((2, *net.numpy_model(weights).input_shape))
    np.testing.assert_allclose(net.numpy_model(weights)(x), torch_forward(net, weights, x), **TOL)


@pytest.mark.parametrize("spec", ["lenet5", "mnist_cnn", "mobilenet_cifar"])
def test_shipped_specs_match_pytorch(spec):
    net = netspec.load(ROOT / "specs" / f"{spec}.ns")
    weights = random_weights(net, 1)
    x = np.random.default_rng(2).standard_normal((2, *net.numpy_model(weights).input_shape))
    np.testing.assert_allclose(net.numpy_model(weights)(x), torch_forward(net, weights, x), **TOL)


def test_a_torch_state_dict_loads_by_name(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential()
    model.add_module("conv1", torch.nn.Conv2d(3, 4, 3, padding=1))
    model.add_module("bn1", torch.nn.BatchNorm2d(4))
    model.add_module("relu1", torch.nn.ReLU())
    model.add_module("pool1", torch.nn.MaxPool2d(2))
    model.add_module("flatten1", torch.nn.Flatten())
    model.add_module("fc1", torch.nn.Linear(4 * 4 * 4, 5))
    model.bn1.running_mean.uniform_(-1, 1)
    model.bn1.running_var.uniform_(0.5, 2)
    model.eval()
    path = tmp_path / "w.npz"
    np.savez(path, **{k: v.numpy() for k, v in model.state_dict().items()})

    net = netspec.parse("input 8x8x3\nconv 3x3 p1 x4\nbn\nrelu\npool 2\nflatten\nfc 5")
    from netspec.data.weights import load_weights
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    y = net.numpy_model(load_weights(path))(x)
    with torch.no_grad():
        np.testing.assert_allclose(y, model(torch.from_numpy(x)).numpy(), **TOL)


def test_any_batch_size_and_dtype():
    net = netspec.load(ROOT / "specs/lenet5.ns")
    model = net.numpy_model(seed=3)
    x = np.random.default_rng(0).standard_normal((5, 3, 32, 32))
    batch = model(x)
    assert batch.shape == (5, 10) and batch.dtype == np.float32
    np.testing.assert_allclose(model(x[2:3]), batch[2:3], rtol=1e-5, atol=1e-6)
    assert model(np.zeros((1, 3, 32, 32), np.uint8)).shape == (1, 10)


def test_fully_convolutional_output_is_nchw():
    model = netspec.parse("input 8x6x3\nconv 3x3 x5").numpy_model()
    assert model(np.zeros((2, 3, 8, 6), np.float32)).shape == (2, 5, 6, 4)


def test_input_shape_mismatch_says_what_is_expected():
    model = netspec.load(ROOT / "specs/lenet5.ns").numpy_model()
    with pytest.raises(netspec.InputError, match=r"expects N×3×32×32 \(N×C×H×W\)"):
        model(np.zeros((2, 32, 32, 3), np.float32))
    with pytest.raises(netspec.InputError) as info:
        model(np.zeros((3, 32, 32), np.float32))
    assert info.value.hint == "add a batch dimension: x[None]"


def test_model_does_not_modify_its_input():
    model = netspec.parse("input 4x4x1\nrelu\ntanh").numpy_model()
    x = -np.ones((1, 1, 4, 4), np.float32)
    model(x)
    assert (x == -1).all()


def test_activations_returns_every_layer_unchanged_by_later_layers():
    model = netspec.parse("input 3\nfc 4\nrelu").numpy_model(seed=0)
    acts = model.activations(np.ones((2, 3), np.float32))
    assert list(acts) == ["input", "fc1", "relu1"]
    np.testing.assert_array_equal(acts["relu1"], np.maximum(acts["fc1"], 0))


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_a_batch_split_across_threads_gives_the_same_numbers(threads):
    net = netspec.load(ROOT / "specs/mobilenet_cifar.ns")
    weights = random_weights(net, 0)
    x = np.random.default_rng(0).standard_normal((5, 3, 32, 32)).astype(np.float32)
    one = net.numpy_model(weights, threads=1)(x)
    np.testing.assert_allclose(net.numpy_model(weights, threads=threads)(x), one, rtol=1e-5, atol=1e-6)
