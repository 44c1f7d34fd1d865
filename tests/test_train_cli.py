"""`netspec train`: one epoch ends where torch.optim ends from the same start, a resumed
run where an uninterrupted one does, and bad data, a diverging loss and Ctrl-C stop
cleanly (exit status, message, checkpoint kept)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import netspec
from netspec.cli import main

ROOT = Path(__file__).resolve().parent.parent

#: conv (no bias before batch norm: its gradient is 0 but for rounding, and Adam would
#: step it by ±lr), batch norm with running statistics, pooling, fc, a final softmax.
SPEC = "input 6x6x2\nconv 3x3 p1 x4 nobias\nbn\nrelu\npool 2\nfc 8 tanh\nfc 3\nsoftmax\n"


def _data(tmp_path, n=70, layout="nchw", seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2, 6, 6), dtype=np.float32)
    y = rng.integers(0, 3, n)
    path = tmp_path / "data.npz"
    np.savez(path, x=x if layout == "nchw" else x.transpose(0, 2, 3, 1), y=y)
    return path, x, y


def _spec(tmp_path, text=SPEC):
    path = tmp_path / "net.ns"
    path.write_text(text)
    return path


def _torch_epoch(net, weights, x, y, batch, optimizer):
    """One epoch of torch's usual loop, on the net's twin: batch norm in training
    (momentum 0.1, updating its running statistics), cross-entropy on the logits."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F
    from torch_reference import _layer
    params = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in weights.items()
              if not k.endswith(("running_mean", "running_var"))}
    buffers = {k: torch.tensor(v) for k, v in weights.items() if k.endswith(("mean", "var"))}
    opt = optimizer(list(params.values()))
    for start in range(0, len(x), batch):
        values = {"input": torch.tensor(x[start:start + batch])}
        for layer in net.layers[1:-1]:   # not the softmax: CrossEntropyLoss takes logits
            ins = [values[i.name] for i in layer.inputs]
            if layer.op == "bn":
                n = layer.name
                values[n] = F.batch_norm(ins[0], buffers[f"{n}.running_mean"],
                                         buffers[f"{n}.running_var"], params[f"{n}.weight"],
                                         params[f"{n}.bias"], training=True, momentum=0.1,
                                         eps=layer.eps)
            else:
                values[layer.name] = _layer(layer, params, ins)
        loss = F.cross_entropy(values[net.layers[-2].name], torch.tensor(y[start:start + batch]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {k: v.detach().numpy() for k, v in (params | buffers).items()}


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_one_epoch_ends_where_torch_optim_does(tmp_path, optimizer):
    torch = pytest.importorskip("torch")
    spec = _spec(tmp_path)
    data, x, y = _data(tmp_path)
    net = netspec.load(spec)
    start = net.init_weights(3)
    start["bn1.running_var"][:] = [0.5, 1, 2, 4]   # not the identity: the update is seen
    np.savez(tmp_path / "start.npz", **start)
    args = ["train", str(spec), "--data", str(data), "--epochs", "1", "--batch", "32",
            "--no-shuffle", "--val-split", "0", "--weights", str(tmp_path / "start.npz"),
            "--optimizer", optimizer, "-o", str(tmp_path / "out.npz")]
    if optimizer == "sgd":
        args += ["--lr", "0.1", "--momentum", "0.9"]
        make = lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)  # noqa: E731
    else:
        make = lambda p: torch.optim.Adam(p, lr=1e-3)  # noqa: E731
    assert main(args) == 0
    ours = dict(np.load(tmp_path / "out.npz"))
    want = _torch_epoch(net, start, x, y, 32, make)   # 70 samples: batches of 32, 32, 6
    assert set(ours) == set(want)
    for k in want:   # three steps from equal gradients (to float32 rounding, test_gradients)
        scale = max(1.0, float(np.abs(want[k]).max()))
        np.testing.assert_allclose(ours[k], want[k], rtol=1e-4, atol=1e-5 * scale, err_msg=k)
        assert not np.array_equal(ours[k], start[k]), k   # every array moved


def test_the_log_the_plot_and_the_layout_read(tmp_path, capsys):
    spec = _spec(tmp_path)
    data, _, _ = _data(tmp_path, layout="nhwc")
    log, plot = tmp_path / "log.jsonl", tmp_path / "curve.svg"
    assert main(["train", str(spec), "--data", str(data), "--epochs", "3", "-o",
                 str(tmp_path / "w.npz"), "--log", str(log), "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "x as N×H×W×C: 70×6×6×2" in out
    assert "56 samples, 14 for validation" in out   # 0.2 of 70 held out
    assert "`fc2` (the logits)" in out
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert set(records[0]) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy",
                               "seconds"}
    assert all(0 <= r["accuracy"] <= 1 and r["loss"] > 0 for r in records)
    svg = ET.parse(plot).getroot()
    assert svg.tag.endswith("svg") and len(svg.findall(".//{*}polyline")) == 4
    # the weights load back for `run`
    w = netspec.load(spec).numpy_model(dict(np.load(tmp_path / "w.npz")))
    assert w(np.zeros((1, 2, 6, 6), np.float32)).shape == (1, 3)


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path):
    spec = _spec(tmp_path, SPEC.replace("fc 8 tanh", "fc 8 tanh\ndropout 0.3"))
    data, _, _ = _data(tmp_path)
    common = ["train", str(spec), "--data", str(data), "--batch", "16", "--optimizer", "sgd"]
    assert main([*common, "--epochs", "3", "-o", str(tmp_path / "whole.npz")]) == 0
    assert main([*common, "--epochs", "1", "-o", str(tmp_path / "part.npz")]) == 0
    assert main([*common, "--epochs", "3", "--resume", "-o", str(tmp_path / "part.npz"),
                 "--log", str(tmp_path / "log.jsonl")]) == 0
    whole, part = np.load(tmp_path / "whole.npz"), np.load(tmp_path / "part.npz")
    for k in whole.files:
        np.testing.assert_array_equal(whole[k], part[k], err_msg=k)
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 3   # epoch 1 kept


def test_resuming_with_another_split_is_refused(tmp_path, capsys):
    spec, (data, _, _) = _spec(tmp_path), _data(tmp_path)
    out = str(tmp_path / "w.npz")
    assert main(["train", str(spec), "--data", str(data), "--epochs", "1", "-o", out]) == 0
    assert main(["train", str(spec), "--data", str(data), "--epochs", "2", "-o", out,
                 "--resume", "--val-split", "0.5"]) == 2
    assert "cannot resume with another val_split" in capsys.readouterr().err


@pytest.mark.parametrize("x, y, message", [
    (np.zeros((5, 3, 6, 6)), np.zeros(5, int), "`x` has shape 5×3×6×6, but net takes "
                                               "N×2×6×6 (N×C×H×W) or N×6×6×2 (N×H×W×C)"),
    (np.zeros((5, 2, 6, 6)), np.array([0, 1, 2, 3, 0]), "label 3 is out of range: net gives 3 "
                                                        "classes (0 … 2)"),
    (np.zeros((5, 2, 6, 6)), np.zeros(4, int), "`y` has shape 4, but 5 samples need 5"),
    (np.zeros((5, 2, 6, 6)), np.full(5, 0.5), "`y` holds float64 values, not class indices"),
    (np.full((5, 2, 6, 6), np.nan), np.zeros(5, int), "`x` holds 360 NaN or infinite values"),
])
def test_bad_data_is_an_error_naming_the_file(tmp_path, capsys, x, y, message):
    spec = _spec(tmp_path)
    np.savez(tmp_path / "bad.npz", x=x, y=y)
    assert main(["train", str(spec), "--data", str(tmp_path / "bad.npz"), "-o",
                 str(tmp_path / "w.npz")]) == 1
    err = capsys.readouterr().err
    assert message in err and "bad.npz" in err and "Traceback" not in err
    assert not (tmp_path / "w.npz").exists()


def test_missing_arrays_and_missing_data_are_errors(tmp_path, capsys):
    spec = _spec(tmp_path)
    np.savez(tmp_path / "d.npz", images=np.zeros((2, 2, 6, 6)))
    assert main(["train", str(spec), "--data", str(tmp_path / "d.npz")]) == 1
    assert "has no array `x` or `y` (it holds `images`)" in capsys.readouterr().err
    assert main(["train", str(spec), "--data", str(tmp_path / "none.npz")]) == 1
    assert "no such data file or folder" in capsys.readouterr().err


def test_a_diverging_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    spec, (data, _, _) = _spec(tmp_path, "input 6x6x2\nfc 16 relu\nfc 16 relu\nfc 3"), \
        _data(tmp_path)
    out = tmp_path / "w.npz"
    common = ["train", str(spec), "--data", str(data), "--optimizer", "sgd", "-o", str(out)]
    assert main([*common, "--epochs", "1"]) == 0
    good = out.read_bytes()
    assert main([*common, "--epochs", "3", "--resume", "--lr", "1e5"]) == 1
    err = capsys.readouterr().err
    assert "training diverged in epoch 2" in err and "keeps epoch 1's weights" in err
    assert "lower --lr" in err and "Traceback" not in err
    assert out.read_bytes() == good


def test_ctrl_c_keeps_the_last_complete_epoch(tmp_path, capsys, monkeypatch):
    from netspec.training.loop import Trainer
    spec, (data, _, _) = _spec(tmp_path), _data(tmp_path)
    out = tmp_path / "w.npz"
    real = Trainer.epoch

    def interrupted(self, x, y, epoch, report=None):
        if epoch == 2:
            raise KeyboardInterrupt
        return real(self, x, y, epoch, report)
    monkeypatch.setattr(Trainer, "epoch", interrupted)
    assert main(["train", str(spec), "--data", str(data), "--epochs", "5", "-o",
                 str(out)]) == 130
    assert "interrupted in epoch 2; " in capsys.readouterr().err
    state = np.load(tmp_path / "w.state.npz")
    assert int(state["epoch"]) == 1 and out.exists()


def test_sigint_in_a_real_process_exits_130_with_whole_files(tmp_path):
    spec = _spec(tmp_path)
    data, _, _ = _data(tmp_path, n=2000)
    out = tmp_path / "w.npz"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "netspec", "train", str(spec), "--data",
                             str(data), "--epochs", "10000", "-o", str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not out.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted in epoch" in err and "Traceback" not in err
    weights = np.load(out)   # whole: it loads
    assert set(weights.files) == set(netspec.load(spec).weight_shapes())


def test_usage_errors(tmp_path, capsys):
    spec, (data, _, _) = _spec(tmp_path), _data(tmp_path)
    np.savez(tmp_path / "w.npz", **netspec.load(spec).init_weights())
    with pytest.raises(SystemExit) as info:   # argparse: --weights and --resume exclude
        main(["train", str(spec), "--data", str(data), "--weights", str(tmp_path / "w.npz"),
              "--resume"])
    assert info.value.code == 2
    assert main(["train", str(spec), "--data", str(data), "--weights",
                 str(tmp_path / "w.npz"), "-o", str(tmp_path / "w.npz")]) == 2
    assert "would destroy an input" in capsys.readouterr().err
    assert main(["train", str(spec), "--data", str(data), "-o", str(tmp_path / "x.npz"),
                 "--resume"]) == 1
    assert "no training state to resume from" in capsys.readouterr().err


def test_a_folder_of_class_folders(tmp_path, capsys):
    pil = pytest.importorskip("PIL.Image")
    spec = _spec(tmp_path, "input 6x6x1\nconv 3x3 x2 relu\nfc 2")
    for label, value in (("dark", 20), ("light", 230)):
        (tmp_path / "img" / label).mkdir(parents=True)
        for i in range(3):
            pil.fromarray(np.full((8, 8), value + i, np.uint8)).save(
                tmp_path / "img" / label / f"{i}.png")
    assert main(["train", str(spec), "--data", str(tmp_path / "img"), "--epochs", "1",
                 "--val-split", "0", "-o", str(tmp_path / "w.npz")]) == 0
    assert "6 images in 2 classes (dark, light), values in [0, 1]; 6 resized to 6×6" in \
        capsys.readouterr().out


def test_quiet_prints_what_was_read_and_the_result(tmp_path, capsys):
    """-q: no line per epoch; the last line gives the last epoch's accuracies, as the
    log records them."""
    data, _, _ = _data(tmp_path)
    log = tmp_path / "log.jsonl"
    assert main(["train", str(_spec(tmp_path)), "--data", str(data), "--epochs", "2", "-q",
                 "-o", str(tmp_path / "w.npz"), "--log", str(log)]) == 0
    out = capsys.readouterr().out
    last = json.loads(log.read_text().splitlines()[-1])
    assert "epoch 1/2" not in out and "epoch 2/2" not in out
    assert out.splitlines()[-1].endswith(
        f"after epoch 2; training accuracy {last['accuracy']:.2%}, validation accuracy "
        f"{last['val_accuracy']:.2%} (loss {last['val_loss']:.4f})")
