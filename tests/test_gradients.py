"""netspec.gradients equals torch autograd's vector–Jacobian product: on random networks,
on a network of every kind the random ones leave out, and on the shipped specs at a
small input, in inference and in training mode (tolerances: grad_oracle).

The whole zoo (every spec under specs/, some 80 networks up to regnet_y_128gf) runs
only with NETSPEC_TRAIN_ZOO=1 (about XX minutes on two cores); without it, the specs
below ZOO_CI_PARAMS parameters run, each at 32×32 or the smallest input it accepts.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import netspec
from conftest import network_specs
from netspec.kinds import registry
from random_nets import random_spec, random_weights

torch = pytest.importorskip("torch")
from grad_oracle import assert_gradients_match  # noqa: E402
from zoo_oracle import at_input  # noqa: E402

#: The kinds random_spec leaves out, each at least once (with a vector-side fc/linear,
#: a merge of two branches, a split and shuffle, upsampling to a branch and the input).
EVERY_KIND = """
input 12x10x4
conv 3x3 p1 x8 relu
s2d 2
blur 4
blur 3 s1
deconv 3x3 s2 p1 op1 g2 x6
upsample bilinear to 12x10
layernorm eps1e-6
groupnorm 3 eps1e-6
layer_scale: scale
lab: scale (1,) bias
mul 0.5
linear 8 gelu
split { branch {} branch b: [ conv 1x1 x4; relu6 ] }
shuffle 2
add { branch { conv 3x3 p1 x8 } branch { pool max 3 s1 p1 } }
mul { branch { conv 1x1 x8 tanh } branch { pool avg global; conv 1x1 x8 sigmoid } }
gate { pool avg global; eca; sigmoid }
rsoftmax 2 g2
concat { branch [ conv 1x1 x2 ] branch [ pool avg 2; upsample nearest to branch ] }
chunksum 2
upsample nearest to input
pool avg to 3x4
bn
lrn 3
dropout 0.25
flatten
fc 12 leaky 0.2
elu 0.7
groupnorm 4
bn
linear 6 nobias
dropout 0.5
fc 5 silu
slice 1:
layernorm
mish
fc 4 hswish
fc 3 hsigmoid
softmax
"""

#: Specs with at most this many parameters are checked in every run (at a small input).
ZOO_CI_PARAMS = 3_000_000
#: Above this many (regnet_y_128gf: 645 M, 2.6 GB of weights, held six times over in
#: float32 and float64 by both sides), only with NETSPEC_ZOO_HEAVY=1 as well.
HEAVY = 200_000_000


def _check(net, weights, rng, training, batch=3, elementwise=True):
    h, w, c = net.input_shape if len(net.input_shape) == 3 else (None, None, None)
    x = rng.standard_normal((batch, c, h, w) if c else (batch, *net.input_shape),
                            dtype=np.float32)
    out = net.output_shape
    dy = rng.standard_normal((batch, out[2], out[0], out[1]) if len(out) == 3
                             else (batch, *out), dtype=np.float32)
    assert_gradients_match(net, weights, x, dy, training,
                           netspec.gradients(net, weights, x, dy, training=training), elementwise)


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize("seed", range(24))
def test_random_networks_gradients_equal_autograds(seed, training):
    net = netspec.parse(random_spec(seed))
    _check(net, random_weights(net, seed), np.random.default_rng(seed), training)


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
def test_every_kind_gradients_equal_autograds(training):
    net = netspec.parse(EVERY_KIND)
    _check(net, random_weights(net, 1), np.random.default_rng(1), training)


def test_the_networks_here_cover_every_kind():
    """Every registered kind (bar the input) has a layer in the networks tested above, so a
    new kind without a checked backward fails here."""
    seen = {layer.kind for seed in range(24) for layer in netspec.parse(random_spec(seed)).layers}
    seen |= {layer.kind for layer in netspec.parse(EVERY_KIND).layers}
    kinds = {k.kind for k in registry.kinds()}
    assert kinds - seen == set()
    assert all(k.supports("backward") for k in registry.kinds())


def test_gradients_take_and_give_nchw():
    """dx is in x's layout; a vector network takes N×F; a wrong dy shape is an InputError."""
    net = netspec.parse("input 4x3x2\nconv 1x1 x1 nobias")
    w = {"conv1.weight": np.array([[[[2.0]], [[-1.0]]]], np.float32)}
    x = np.zeros((1, 2, 4, 3), np.float32)
    dy = np.arange(12, dtype=np.float32).reshape(1, 1, 4, 3)
    dx, grads = netspec.gradients(net, w, x, dy)
    # y = 2·x₀ − x₁ per pixel: dx₀ = 2·dy, dx₁ = −dy, dW = Σ dy·x = 0
    np.testing.assert_array_equal(dx[0, 0], 2 * dy[0, 0])
    np.testing.assert_array_equal(dx[0, 1], -dy[0, 0])
    assert grads["conv1.weight"].shape == (1, 2, 1, 1) and not grads["conv1.weight"].any()
    with pytest.raises(netspec.InputError, match="dy has shape"):
        netspec.gradients(net, w, x, dy[:, :, :2])


def test_aux_heads_get_zero_gradients_and_training_mode_updates_nothing():
    net = netspec.parse("input 8x8x3\nconv 3x3 x4\nbn\nrelu\n"
                        "aux { pool avg global; fc 5 }\nflatten\nfc 2")
    w = random_weights(net, 0)
    before = {k: v.copy() for k, v in w.items()}
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8), dtype=np.float32)
    _, grads = netspec.gradients(net, w, x, np.ones((2, 2), np.float32), training=True)
    aux = [k for k in grads if k.startswith("fc1")]   # the head's fc
    assert aux and all(not grads[k].any() for k in aux)
    assert all(np.array_equal(w[k], before[k]) for k in w)   # running statistics unchanged


def _small(path):
    """The spec at 32×32 where it accepts that input with the same weights, else at the
    smallest of a few larger sizes, else as written."""
    net = netspec.load(path)
    if len(net.input_shape) != 3:
        return net
    text = path.read_text(encoding="utf-8")
    for size in (32, 48, 64, 96, 128):
        if size >= net.input_shape[0]:
            break
        try:
            small = netspec.parse(at_input(text, size, size), str(path))
        except netspec.NetspecError:
            continue
        if small.weight_shapes() == net.weight_shapes() and all(
                layer.output_shape[0] * layer.output_shape[1] >= 9
                for layer in small.layers if layer.kind == "bn" and len(layer.output_shape) == 3
                and not layer.aux):
            return small
    return net


SPECS = network_specs()


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_shipped_spec_gradients_equal_autograds(path, training):
    net = _small(path)
    if net.total_params > ZOO_CI_PARAMS and not os.environ.get("NETSPEC_TRAIN_ZOO"):
        pytest.skip(f"{net.total_params:,} parameters: NETSPEC_TRAIN_ZOO=1 checks it")
    if net.total_params > HEAVY and not os.environ.get("NETSPEC_ZOO_HEAVY"):
        pytest.skip(f"{net.total_params:,} parameters: NETSPEC_ZOO_HEAVY=1 checks it too")
    torch.manual_seed(0)
    _check(net, random_weights(net, 2), np.random.default_rng(2), training, batch=2,
           elementwise=False)
