"""The NumPy model's speed-ups change no number: folded batch norms, fused activations,
in-place steps and one sample's work split across threads all give PyTorch's results."""

import numpy as np
import pytest

import netspec
from netspec.backends.numpy import model as model_module
from netspec.kinds.dense import Flatten
from random_nets import random_weights

torch = pytest.importorskip("torch")
from torch_reference import torch_forward  # noqa: E402

TOL = dict(rtol=1e-4, atol=1e-5)


def _check(spec: str, batch: int = 2, threads: int | None = None, seed: int = 0):
    net = netspec.parse(spec)
    weights = random_weights(net, seed)
    model = net.numpy_model(weights) if threads is None else \
        netspec.backends.numpy.NumpyModel(net, weights, threads)
    x = np.random.default_rng(seed).standard_normal((batch, *model.input_shape)).astype(np.float32)
    np.testing.assert_allclose(model(x), torch_forward(net, weights, x), **TOL)
    return model, net, weights, x


def test_conv_bn_relu_is_one_step_with_pytorchs_numbers():
    model, *_ = _check("input 8x8x3\nconv 3x3 p1 x4 nobias\nbn\nrelu6\nconv 3x3 x5\nbn\nrelu")
    # each conv absorbs the batch norm and the activation after it
    assert [name for name, *_ in model.fast.steps] == ["conv1", "conv2"]


def test_a_conv_read_by_two_layers_keeps_its_own_output():
    # conv1 feeds the residual body's bn and the identity shortcut: no folding, and
    # the bn, which works in place, must not overwrite what the shortcut reads
    model, net, weights, x = _check("input 6x6x4\nconv 3x3 p1 x4\n"
                                    "residual { bn; relu; conv 3x3 p1 x4 }\nrelu")
    steps = [name for name, *_ in model.fast.steps]
    assert "conv1" in steps and "bn1" in steps


def test_activations_show_every_layer_unfused():
    net = netspec.parse("input 6x6x3\nconv 3x3 x4\nbn\nrelu")
    weights = random_weights(net, 1)
    x = np.random.default_rng(1).standard_normal((2, 3, 6, 6)).astype(np.float32)
    acts = net.numpy_model(weights).activations(x)
    conv_only = netspec.parse("input 6x6x3\nconv 3x3 x4")
    want = torch_forward(conv_only, {k: v for k, v in weights.items() if k.startswith("conv1")}, x)
    np.testing.assert_allclose(acts["conv1"], want, **TOL)   # before the batch norm
    assert (acts["bn1"] < 0).any() and (acts["relu1"] >= 0).all()


def test_fc_bn_and_add_relu_fuse_with_pytorchs_numbers():
    model, *_ = _check("input 4x4x3\nconv 1x1 x3\nresidual { conv 3x3 p1 x3; bn }\nrelu\n"
                       "flatten\nfc 6\nbn\nrelu\nfc 4\nsigmoid", batch=3)
    # conv1; conv2 + bn1; add + relu; flatten; fc1 + bn2 + relu; fc2 + sigmoid
    assert [name for name, *_ in model.fast.steps] == \
        ["conv1", "conv2", "add1", "flatten1", "fc1", "fc2"]


# At batch 1 the model's threads share one sample's work: output rows of a big conv,
# output channels of a small one, row blocks of a depthwise conv (tap by tap below 48
# channels, one einsum from 48 on), grouped convs, the features of a wide fc layer.
ONE_SAMPLE = "\n".join([
    "input 40x40x3",
    "conv 3x3 p1 x16 nobias; bn; relu6",
    "conv 3x3 p1 g16 x16 nobias; bn; relu6",
    "conv 1x1 x64; bn",
    "conv 3x3 s2 p1 g64 x64 relu",
    "conv 3x3 p1 g4 x64",
    "pool 2",
    "conv 3x3 p1 x48 relu",
    "flatten",
    "fc 300 relu",
    "fc 10",
])


@pytest.mark.parametrize("threads", [2, 3])
def test_one_sample_split_across_threads_gives_pytorchs_numbers(threads, monkeypatch):
    monkeypatch.setattr(model_module, "SPLIT_SECONDS", 0.0)   # every step splits
    model, net, weights, x = _check(ONE_SAMPLE, batch=1, threads=threads)
    assert model._alone == {1: frozenset()}   # the first call timed every step on one thread
    one = netspec.backends.numpy.NumpyModel(net, weights, 1)(x)
    np.testing.assert_allclose(model(x), one, rtol=1e-5, atol=1e-6)


def test_at_batch_1_only_the_long_steps_split_across_threads(monkeypatch):
    # the first call times each step on one thread; a step shorter than SPLIT_SECONDS
    # then runs on one thread (width 1), a longer one may split
    from netspec.numerics import threads as threads_module
    widths: dict[str, int] = {}
    net = netspec.parse("input 64x64x8\nconv 3x3 p1 x64 relu\npool 2\nflatten\nfc 3")
    model = netspec.backends.numpy.NumpyModel(net, random_weights(net, 0), 2)
    x = np.ones((1, 8, 64, 64), np.float32)
    model(x)
    model._tuners[1] = threads_module.Tuner(("shared",))   # the way this test is about
    timed = set(model._alone[1])
    assert timed <= {"conv1", "pool1", "flatten1", "fc1"}
    for name, step, ins, in_place in model.fast.steps:
        def spy(*args, step=step, name=name, **kw):
            widths[name] = threads_module.width()
            return step(*args, **kw)
        model.fast.steps[model.fast.steps.index((name, step, ins, in_place))] = \
            (name, spy, ins, in_place)
    model(x)
    assert {n for n, w in widths.items() if w == 1} == timed
    assert all(w == 2 for n, w in widths.items() if n not in timed)


@pytest.mark.parametrize("batch", [1, 4])
def test_blas_runs_one_thread_while_the_model_runs_its_own(monkeypatch, batch):
    # a batch the threads share, the first call at batch 1 (one thread, timing its
    # steps) and its "shared" and "one" ways hold BLAS at one thread; only the "blas"
    # way of a batch smaller than the threads gives BLAS the model's threads
    from threadpoolctl import threadpool_info
    seen = []

    def spy(layer, w):   # NHWC as NCHW: only the order of the values differs
        def flatten(x):
            seen.append(max((p["num_threads"] for p in threadpool_info()
                             if p["user_api"] == "blas"), default=1))
            return x.reshape(x.shape[0], -1)
        return flatten
    monkeypatch.setattr(Flatten, "numpy", spy)
    net = netspec.parse("input 8x8x3\nconv 3x3 x4\nflatten\nfc 2")
    model = netspec.backends.numpy.NumpyModel(net, net.init_weights(0), threads=2)
    x = np.zeros((batch, 3, 8, 8), np.float32)
    ways = []
    for _ in range(7):
        ways.append(model._tuners[batch].next() if batch in model._alone else "first")
        model(x)
    if batch == 4:
        assert seen and set(seen) == {1}
    else:   # the first call, then the tuner's trials: each way twice, BLAS's last
        assert ways == ["first", "one", "one", "shared", "shared", "blas", "blas"]
        assert seen == [1, 1, 1, 1, 1, 2, 2]


def _tune(tuner, seconds):
    """Run the tuner's trials with these times; the ways it tried, in order."""
    tried = []
    for t in seconds:
        tried.append(tuner.next())
        tuner.record(tried[-1], t)
    return tried


def test_the_tuner_keeps_the_faster_way_until_it_slows_down_for_several_calls():
    from netspec.numerics.threads import Tuner
    tuner = Tuner(("shared", "blas"))
    assert _tune(tuner, (0.020, 0.022, 0.010, 0.011)) == ["shared", "shared", "blas", "blas"]
    assert tuner.chosen == "blas" and tuner.next() == "blas"
    tuner.record("blas", 0.025)              # one call over twice its best: noise, kept
    tuner.record("blas", 0.012)
    tuner.record("blas", 0.025)
    tuner.record("blas", 0.025)
    assert tuner.chosen == "blas"
    tuner.record("blas", 0.025)              # the third in a row: tried again, but split
    assert tuner.chosen is None              # (twice blas's best) is no contender
    assert _tune(tuner, (0.024, 0.026)) == ["blas", "blas"] and tuner.chosen == "blas"


def test_the_tuner_retries_a_close_contender_and_every_way_now_and_then():
    from netspec.numerics.threads import Tuner
    tuner = Tuner(("one", "shared", "blas"))
    _tune(tuner, (0.030, 0.031, 0.012, 0.013, 0.010, 0.011))   # split within 1.25× of blas
    for _ in range(3):
        tuner.record("blas", 0.080)          # the machine got busy: blas collapses
    assert _tune(tuner, (0.020, 0.021, 0.090, 0.085)) == ["shared", "shared", "blas", "blas"]
    assert tuner.chosen == "shared"
    for _ in range(Tuner.RETUNE_CALLS):      # now and then every way is tried again,
        tuner.record("shared", 0.020)
    assert _tune(tuner, (0.030,) * 2 + (0.020,) * 2 + (0.090,) * 2) == \
        ["one", "one", "shared", "shared", "blas", "blas"]
    assert tuner.chosen == "shared" and tuner.interval == 2 * Tuner.RETUNE_CALLS   # less often


def test_every_way_of_one_sample_gives_pytorchs_numbers():
    net = netspec.parse(ONE_SAMPLE)
    weights = random_weights(net, 0)
    model = netspec.backends.numpy.NumpyModel(net, weights, 2)
    x = np.random.default_rng(0).standard_normal((1, *model.input_shape)).astype(np.float32)
    want = torch_forward(net, weights, x)
    ways = set()
    for _ in range(7):   # the timing call, then each of three ways twice
        ways.add(model._tuners[1].next() if 1 in model._alone else "first")
        np.testing.assert_allclose(model(x), want, **TOL)
    assert ways == {"first", "shared", "blas", "one"}


def test_a_step_overwrites_only_values_nobody_else_reads():
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 5)).astype(np.float32)
    model = netspec.parse("input 5x5x3\nbn\nresidual { relu; bn }\ntanh").numpy_model(seed=0)
    before = x.copy()
    acts = model.activations(x)
    np.testing.assert_array_equal(x, before)
    # the shortcut still reads bn1's output after the body's relu and bn ran in place
    np.testing.assert_allclose(acts["add1"], acts["bn1"] + acts["bn2"], rtol=1e-6)
    np.testing.assert_allclose(model(x), np.tanh(acts["add1"]), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("threads", [2, 3])
def test_a_large_fc_layer_runs_on_the_gathered_batch(threads):
    # 2048 → 1024 is 8 MiB of weights: the threads' shares of the batch are gathered
    # before it, and its output features split across the threads
    spec = "input 8x8x32\nconv 3x3 p1 x32 relu\nflatten\nfc 1024 relu\nfc 10"
    model, net, weights, x = _check(spec, batch=5, threads=threads)
    assert model.fast.gather == (2, "flatten1")   # conv1, flatten1, then fc1
    one = netspec.backends.numpy.NumpyModel(net, weights, 1)(x)
    np.testing.assert_allclose(model(x), one, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("threads", [1, 2])
def test_stride_1_convs_with_few_filters_by_shared_rows_give_pytorchs_numbers(threads):
    # ≤ 16 filters at stride 1 run by kernel rows (filters × pixels): padded or not,
    # with and without bias, a fused activation, a kernel taller than wide, and a
    # batch that ends in a partial block of samples (61 samples of 30×30×3 per block)
    spec = ("input 30x30x3\nconv 5x5 x6 relu\nconv 3x2 p1 x16 nobias\nbn\nsilu\n"
            "conv 3x3 same x4 tanh\npool 2\nflatten\nfc 3")
    model, net, weights, x = _check(spec, batch=67, threads=threads)
    assert [name for name, *_ in model.fast.steps][:3] == ["conv1", "conv2", "conv3"]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("batch", [1, 3])
def test_linear_by_blocks_with_its_scale_and_activation_folded_gives_pytorchs_numbers(
        threads, batch):
    # 20×20 pixels: several blocks of pixels; at batch 1 with 2 threads and a 2×2
    # input, the output channels are split instead. The layer scale folds into the
    # linear before it, gelu and silu run fused on each block.
    spec = ("input 20x20x8\nlinear 32\ngelu\nlinear 8\nscale\nconv 3x3 s2 p1 x24\n"
            "layernorm\nlinear 600 silu\nlinear 24\npool avg global\nflatten\nfc 5")
    model, *_ = _check(spec, batch=batch, threads=threads)
    steps = [name for name, *_ in model.fast.steps]
    assert "scale1" not in steps and "gelu1" not in steps and "silu1" not in steps


FAULTS = """
import resource, sys
import numpy as np
import netspec
model = netspec.load(sys.argv[1]).numpy_model(seed=0, threads=1)
x = np.ones((1, 3, 224, 224), np.float32)
model(x), model(x)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
model(x)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="glibc only")
def test_a_warm_pass_reuses_freed_memory_instead_of_faulting_in_new_pages():
    # a MobileNetV2 pass at batch 1 allocates and frees some 30 MB of values: with a
    # low trim threshold they go back to the OS and come back as a page fault per
    # 4 KiB; the model keeps them instead
    import os
    import subprocess
    import sys
    from pathlib import Path

    def faults(**env):
        spec = str(Path(__file__).resolve().parent.parent / "specs" / "mobilenet_v2.ns")
        out = subprocess.run([sys.executable, "-c", FAULTS, spec], capture_output=True, text=True,
                             env={**os.environ, **env}, check=True)
        return int(out.stdout)
    user_chose = faults(MALLOC_TRIM_THRESHOLD_=str(128 * 1024))   # netspec leaves it alone
    assert user_chose > 1000
    assert faults() < user_chose / 10


@pytest.mark.parametrize("threads", [1, 2])
def test_a_concat_writes_straight_into_the_shuffled_order_with_pytorchs_numbers(threads):
    # 3 + 5 + 4 channels in 3 groups of 4: the first input fills part of group 0,
    # the second the rest of group 0 and part of group 1, the third crosses into 2
    spec = ("input 6x6x4\nconcat { branch [ conv 1x1 x3 ] branch [ conv 3x3 p1 x5 ] "
            "branch [ conv 1x1 x4 relu ] }\nshuffle 3\nconv 1x1 x6\n"
            "concat { branch [ relu ] branch [ tanh ] }\nshuffle 2\npool avg global\n"
            "flatten\nfc 3")
    model, *_ = _check(spec, batch=2, threads=threads)
    steps = [name for name, *_ in model.fast.steps]
    assert "shuffle1" not in steps and "shuffle2" not in steps


def test_a_gate_multiplies_in_place_only_what_nobody_else_reads():
    # the block's input is read by the gate's multiply and by the concat after it:
    # the multiply must not overwrite it, nor write into the 1×1×C gate instead
    spec = ("input 5x5x4\nconv 3x3 p1 x4\nconcat { branch {} branch [ "
            "gate { pool avg global; conv 1x1 x4 sigmoid } ] }\n"
            "mul { branch [ relu ] branch [ tanh ] }\npool avg global\nflatten\nfc 2")
    _check(spec, batch=3)


@pytest.mark.parametrize("threads", [1, 2])
def test_depthwise_convs_by_column_phases_give_pytorchs_numbers(threads):
    # stride 1, 2 and 3 (one, two and three column phases), dilated at stride 1 and
    # 2 (taps 2 apart within a phase at stride 1, one phase at stride 2 with d2),
    # kernels 3, 5 and 7 wide, odd widths, no padding (the input read as it is), and
    # a depthwise conv on one branch of a split
    spec = ("input 41x37x6\nconv 3x3 p1 g6 x6 relu6\nconv 5x5 s2 p2 g6 x6 nobias\nbn\n"
            "conv 3x3 s1 p2 d2 g6 x6\nconv 3x3 s2 p2 d2 g6 x6 silu\nconv 7x7 s1 p3 g6 x6\n"
            "conv 3x3 s3 p1 g6 x6\nconv 1x1 x8\nconv 3x3 g8 x8\n"
            "split { branch {} branch [ conv 3x3 p1 g4 x4 relu ] }\n"
            "conv 3x3 s2 p1 g8 x8\npool avg global\nflatten\nfc 3")
    model, *_ = _check(spec, batch=3, threads=threads)
    assert [name for name, *_ in model.fast.steps][:6] == [f"conv{i}" for i in range(1, 7)]
