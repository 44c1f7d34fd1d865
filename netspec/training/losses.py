"""Losses with their gradients, each equal to torch's with reduction "mean".

Each returns (loss as a Python float, the loss's gradient with respect to the
network's output), the gradient being what a backward pass starts from.

A network whose spec ends in `softmax` outputs probabilities, not logits. Its
loss is then `cross_entropy_from_probabilities`: torch's NLLLoss of log(p), the
same cross-entropy computed from the probabilities (so the softmax is not applied
twice). It is as exact as the probabilities are, but a probability that rounds
to 0 in float32 (a logit some 104 below the largest) makes the loss infinite, as
torch's does; training on the logits before the softmax (`cross_entropy`, whose
log-softmax never rounds to −∞) avoids that, and gives the same gradient at the
logits: (softmax − one-hot)/N.
"""

from __future__ import annotations

import numpy as np


def _check_labels(labels: np.ndarray, classes: int, rows: int) -> np.ndarray:
    """Labels as a flat int64 array, each a class index 0 … classes − 1."""
    labels = np.asarray(labels)
    if labels.size != rows or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be {rows} class indices (integers), "
                         f"not {labels.size} of {labels.dtype}")
    flat = labels.reshape(-1).astype(np.int64)
    if rows and (flat.min() < 0 or flat.max() >= classes):
        bad = flat[(flat < 0) | (flat >= classes)][0]
        raise ValueError(f"label {bad} is out of range: the network has {classes} classes "
                         f"(0 … {classes - 1})")
    return flat


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of class `labels` under softmax(logits), torch's CrossEntropyLoss.

    logits (N, K) (or (..., K), every position a sample, as torch's spatial form);
    labels (N,) (or (...)) of class indices. The log-softmax subtracts each row's
    maximum first, so no exponential overflows. Gradient: (softmax − one-hot)/N.
    """
    k = logits.shape[-1]
    z = logits.reshape(-1, k)
    rows = np.arange(z.shape[0])
    y = _check_labels(labels, k, z.shape[0])
    shifted = z - z.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    total = e.sum(axis=1)
    loss = float(np.mean(np.log(total) - shifted[rows, y]))
    e /= total[:, None]
    e[rows, y] -= 1
    e /= e.dtype.type(z.shape[0])
    return loss, e.reshape(logits.shape)


def cross_entropy_from_probabilities(probabilities: np.ndarray,
                                     labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean −log p[label], torch's NLLLoss(log(p)): the loss of a network that ends in
    softmax, from its probabilities (no clipping: p = 0 at a label gives an infinite
    loss and gradient, as in torch). Gradient: −1/(N·p[label]) at each label, 0 elsewhere.
    """
    k = probabilities.shape[-1]
    p = probabilities.reshape(-1, k)
    rows = np.arange(p.shape[0])
    y = _check_labels(labels, k, p.shape[0])
    picked = p[rows, y]
    grad = np.zeros_like(p)
    with np.errstate(divide="ignore"):
        loss = float(-np.mean(np.log(picked)))
        grad[rows, y] = -1 / (picked * p.dtype.type(p.shape[0]))
    return loss, grad.reshape(probabilities.shape)


def mse(prediction: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean squared error over every value, torch's MSELoss. Gradient 2·(prediction −
    target)/(number of values)."""
    if prediction.shape != np.shape(target):
        raise ValueError(f"prediction {prediction.shape} and target {np.shape(target)} differ "
                         f"in shape")
    diff = prediction - np.asarray(target, prediction.dtype)
    loss = float(np.mean(diff * diff))
    diff *= prediction.dtype.type(2) / prediction.dtype.type(diff.size)
    return loss, diff
