"""Weights: deterministic He initialisation, .npz round trip, and every mismatch reported."""

import numpy as np
import pytest

import netspec
from netspec.data import weights as W

NET = "input 8x8x3\nconv 3x3 x16\nbn\nfc 10"


def test_names_and_shapes_follow_pytorch_state_dict_layout():
    net = netspec.parse("input 8x8x4\nconv 3x5 g2 x6\nbn\nfc 10")
    assert net.weight_shapes() == {
        "conv1.weight": (6, 4 // 2, 3, 5), "conv1.bias": (6,),
        "bn1.weight": (6,), "bn1.bias": (6,), "bn1.running_mean": (6,), "bn1.running_var": (6,),
        "fc1.weight": (10, 6 * 6 * 4), "fc1.bias": (10,),   # conv out: (8-3+1) x (8-5+1) x 6
    }


def test_init_is_deterministic_and_he_normal():
    net = netspec.parse("input 32x32x64\nconv 3x3 x256\nfc 10")
    a, b, c = net.init_weights(seed=7), net.init_weights(seed=7), net.init_weights(seed=8)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["conv1.weight"], c["conv1.weight"])
    assert all(v.dtype == np.float32 for v in a.values())
    # He-normal: std sqrt(2 / fan_in), fan_in = 3*3*64 = 576; 147,456 draws → within 2%
    assert a["conv1.weight"].std() == pytest.approx(np.sqrt(2 / 576), rel=0.02)
    assert abs(a["conv1.weight"].mean()) < 0.01 * np.sqrt(2 / 576) * 10
    assert not a["conv1.bias"].any()


def test_batch_norm_starts_as_identity():
    net = netspec.parse("input 4x4x2\nbn")
    x = np.random.default_rng(0).standard_normal((2, 2, 4, 4)).astype(np.float32)
    # (x - 0) / sqrt(1 + 1e-5) * 1 + 0
    np.testing.assert_allclose(net.numpy_model(seed=0)(x), x / np.sqrt(1 + 1e-5), rtol=1e-6)


def test_save_load_round_trip(tmp_path):
    net = netspec.parse(NET)
    w = net.init_weights(3)
    W.save_weights(tmp_path / "w.npz", w)
    back = net.check_weights(W.load_weights(tmp_path / "w.npz"))
    assert back.keys() == w.keys() and all(np.array_equal(back[k], w[k]) for k in w)


def test_every_mismatch_is_reported_by_layer():
    net = netspec.parse(NET, "n.ns")
    w = net.init_weights(0)
    del w["bn1.running_var"]
    w["conv1.weight"] = np.zeros((16, 3, 5, 5), np.float32)
    w["conv9.weight"] = np.zeros(3, np.float32)
    w["bn1.num_batches_tracked"] = np.array(5)      # torch's counter is ignored
    with pytest.raises(netspec.WeightsError) as info:
        net.check_weights(w)
    messages = sorted(str(e) for e in info.value.errors)
    assert len(messages) == 3
    assert any("n.ns:2:1: `conv1.weight` has shape (16, 3, 5, 5), but `conv1` needs "
               "(16, 3, 3, 3)" in m for m in messages)
    assert any("n.ns:3:1: missing array `bn1.running_var` of shape (16,)" in m for m in messages)
    assert any("unexpected array `conv9.weight`" in m for m in messages)


def test_non_numeric_arrays_are_refused():
    net = netspec.parse("input 2\nfc 1")
    with pytest.raises(netspec.WeightsError, match="not numbers"):
        net.check_weights({"fc1.weight": np.array([["a", "b"]]), "fc1.bias": np.zeros(1)})


def test_weights_that_do_not_fit_are_refused_before_allocating(monkeypatch):
    net = netspec.parse("input 1000x1000x3\nfc 1000")
    monkeypatch.setattr(W, "available_memory", lambda: 2**30)
    # (3,000,000 * 1000 + 1000) float32 values
    need = 4 * (3_000_000 * 1000 + 1000)
    with pytest.raises(netspec.WeightsError, match=f"need {need:,} bytes"):
        net.init_weights()


def test_unreadable_weights_file(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(netspec.WeightsError, match="cannot read weights"):
        W.load_weights(bad)
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(netspec.WeightsError, match="single array"):
        W.load_weights(tmp_path / "one.npy")


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    from netspec.source.files import atomic_write
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def fail(f):
        f.write(b"partial")
        raise RuntimeError("disk full")
    with pytest.raises(RuntimeError):
        atomic_write(target, fail)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["out.bin"]
