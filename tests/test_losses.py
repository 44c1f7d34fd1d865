"""Losses and their gradients against torch's CrossEntropyLoss, NLLLoss(log p) and MSELoss."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from backward_oracle import assert_close

from netspec.training.losses import cross_entropy, cross_entropy_from_probabilities, mse


def _torch_loss(fn, prediction, *rest):
    t = torch.tensor(prediction, requires_grad=True)
    loss = fn(t, *(torch.tensor(r) for r in rest))
    loss.backward()
    return loss.item(), t.grad.numpy()


@pytest.mark.parametrize("shape", [(16, 10), (1, 3), (4, 5, 6, 7)], ids=["batch", "one", "per-pixel"])
def test_cross_entropy(shape):
    """Per pixel: the last axis holds the classes (torch's (N, K, H, W) form, moved)."""
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal(shape) * 3).astype(np.float32)
    labels = rng.integers(0, shape[-1], shape[:-1])
    loss, grad = cross_entropy(logits, labels)
    want_loss, want_grad = _torch_loss(
        lambda t, y: F.cross_entropy(t.movedim(-1, 1) if t.ndim > 2 else t, y), logits, labels)
    assert loss == pytest.approx(want_loss, rel=1e-5)
    assert_close(grad, want_grad)


def test_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[1e4, 0, -1e4], [0, 0, 0]], np.float32)
    loss, grad = cross_entropy(logits, np.array([1, 2]))
    # sample 1: −log softmax = 1e4 exactly (to float32); sample 2: log 3
    assert loss == pytest.approx((1e4 + np.log(3)) / 2, rel=1e-6)
    np.testing.assert_allclose(grad, [[0.5, -0.5, 0], [1 / 6, 1 / 6, -1 / 3]], atol=1e-7)


def test_probabilities_after_a_softmax():
    """A spec ending in softmax: NLL of log(p) equals the cross-entropy of the logits,
    and so does its gradient carried back through the softmax."""
    rng = np.random.default_rng(1)
    logits = (rng.standard_normal((8, 5)) * 2).astype(np.float32)
    labels = rng.integers(0, 5, 8)
    e = np.exp(logits - logits.max(1, keepdims=True))
    p = e / e.sum(1, keepdims=True)
    loss, grad = cross_entropy_from_probabilities(p, labels)
    want_loss, want_grad = _torch_loss(lambda t, y: F.nll_loss(torch.log(t), y), p, labels)
    assert loss == pytest.approx(want_loss, rel=1e-5)
    assert_close(grad, want_grad)
    through_softmax = p * (grad - (grad * p).sum(1, keepdims=True))
    assert_close(through_softmax, cross_entropy(logits, labels)[1])


def test_probability_zero_gives_an_infinite_loss_as_torch():
    p = np.array([[1.0, 0.0]], np.float32)
    loss, grad = cross_entropy_from_probabilities(p, np.array([1]))
    assert loss == np.inf and grad[0, 1] == -np.inf
    assert F.nll_loss(torch.log(torch.tensor(p)), torch.tensor([1])).item() == np.inf


@pytest.mark.parametrize("labels", [[0, 3], [-1, 0], [0, 1.0]])
def test_bad_labels_are_refused(labels):
    with pytest.raises(ValueError, match="label|integers"):
        cross_entropy(np.zeros((2, 3), np.float32), np.array(labels))


def test_mse():
    rng = np.random.default_rng(2)
    prediction = rng.standard_normal((4, 3, 5, 2)).astype(np.float32)
    target = rng.standard_normal((4, 3, 5, 2)).astype(np.float32)
    loss, grad = mse(prediction, target)
    want_loss, want_grad = _torch_loss(F.mse_loss, prediction, target)
    assert loss == pytest.approx(want_loss, rel=1e-5)
    assert_close(grad, want_grad)
    with pytest.raises(ValueError, match="shape"):
        mse(prediction, target[:2])
