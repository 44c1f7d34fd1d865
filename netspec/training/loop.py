"""Training a network: the loss, the optimizer and the epochs, as torch's usual loop does.

One step: a training forward over the batch (batch norms on the batch's statistics,
updating their running ones as torch does; dropout masks drawn from the epoch's
generator), the loss, a backward pass, and the optimizer's update of every trainable
weight in place. The loss is mean cross-entropy from the logits (torch's
CrossEntropyLoss), or with `loss="mse"` mean squared error against one-hot targets.

A spec that ends in `softmax` outputs probabilities, not logits. Cross-entropy is
then computed from the softmax's input, the logits, and the softmax itself is left
out of training (its output's argmax is the logits', so the accuracy is the same):
the loss torch's CrossEntropyLoss gives on a network without the final softmax, never
a second softmax over probabilities. `aux` heads (GoogLeNet's, Inception's) run in
training, each adding its own cross-entropy times `aux_weight` to the loss.

Every epoch is reproducible from the seed alone: its batch order and its dropout
masks come from generators seeded (seed, epoch), so a run resumed after epoch k
continues exactly as the uninterrupted one would.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..kinds.activations import Softmax
from . import losses
from .model import TrainingModel
from .optim import SGD, Adam, AdamW, Optimizer

if TYPE_CHECKING:
    from ..network import Network

OPTIMIZERS = ("sgd", "adam", "adamw")
#: Each optimizer's learning rate when none is given (torch's Adam default; SGD's is
#: the one torch's examples use, torch itself has none).
DEFAULT_LR = {"sgd": 0.01, "adam": 1e-3, "adamw": 1e-3}
#: GoogLeNet's paper weighs each auxiliary classifier's loss by 0.3.
AUX_WEIGHT = 0.3
#: A step of fewer multiply-adds than this (forward and backward: three times the
#: forward's) holds BLAS at one thread: its matrix products are too small for BLAS's
#: threads to pay for their hand-shaking. On the 2-core machine of docs/performance.md,
#: loaded, two threads took 6× the CPU time of one on the digits LeNet (10 epochs: 12.3 s
#: against 1.8 s) and on ResNet-18 at 32×32, batch 32 (1.1 s a step against 0.19 s).
ONE_THREAD_MACS = 10**10


class Settings(NamedTuple):
    """How to train: the optimizer and its numbers, batches, loss, seed."""

    optimizer: str = "adam"
    lr: float | None = None           # None: DEFAULT_LR
    momentum: float = 0.9             # SGD's
    weight_decay: float | None = None  # None: 0 (AdamW: torch's 0.01)
    nesterov: bool = False
    batch: int = 32
    shuffle: bool = True
    seed: int = 0
    loss: str = "cross-entropy"
    aux_weight: float = AUX_WEIGHT


class Diverged(Exception):
    """The loss (or a weight) became NaN or infinite: the run stops, nothing is saved."""


class EpochResult(NamedTuple):
    """One epoch's training loss and accuracy (means over its samples) and its seconds."""

    loss: float
    accuracy: float
    seconds: float


@lru_cache(maxsize=1)
def _blas():   # a ThreadpoolController: finding the BLAS libraries takes a while
    from threadpoolctl import ThreadpoolController
    return ThreadpoolController()


def blas_threads(net: Network, batch: int) -> AbstractContextManager:
    """The threads BLAS runs a training step of `batch` samples on: one for a small step
    (ONE_THREAD_MACS), else as many as BLAS likes."""
    if 3 * net.total_macs * batch < ONE_THREAD_MACS:
        return _blas().limit(limits=1, user_api="blas")
    return nullcontext()


def make_optimizer(settings: Settings, params: dict[str, np.ndarray]) -> Optimizer:
    """The optimizer the settings name, over `params` (updated in place)."""
    lr = settings.lr if settings.lr is not None else DEFAULT_LR[settings.optimizer]
    if settings.optimizer == "sgd":
        return SGD(params, lr, momentum=settings.momentum, weight_decay=settings.weight_decay or 0,
                   nesterov=settings.nesterov)
    kind = Adam if settings.optimizer == "adam" else AdamW
    decay = settings.weight_decay if settings.weight_decay is not None else \
        (0.0 if kind is Adam else 1e-2)
    return kind(params, lr, weight_decay=decay)


def trainable(net: Network, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The weights an optimizer updates (not batch norm's running statistics)."""
    return {layer.weight_key(s): weights[layer.weight_key(s)] for layer in net.layers
            for s in layer.weight_shapes() if s not in layer.buffers}


def _logits_of(net: Network, name: str, loss: str) -> str:
    """The value the loss reads for the output `name`: a final softmax's input under
    cross-entropy (see the module's docstring), else the output itself."""
    layer = net[name]
    if loss == "cross-entropy" and isinstance(layer, Softmax):
        return layer.inputs[0].name
    return name


class Trainer:
    """Trains `net` from `weights` (float32, contiguous; updated in place)."""

    def __init__(self, net: Network, weights: dict[str, np.ndarray], settings: Settings) -> None:
        self.net, self.weights, self.settings = net, weights, settings
        self.optimizer = make_optimizer(settings, trainable(net, weights))
        read = {i.name for layer in net.layers for i in layer.inputs}
        heads = [layer.name for layer in net.layers if layer.aux and layer.name not in read]
        self.main = _logits_of(net, net.layers[-1].name, settings.loss)
        self.heads = [_logits_of(net, h, settings.loss) for h in heads]
        #: the network's output, checked against labels (None: ends in a vector
        #: the loss reads directly)
        self.evaluator = TrainingModel(net, weights, training=False, ends=[self.main])

    @property
    def softmax_skipped(self) -> bool:
        """Whether the loss reads the logits before the spec's final softmax."""
        return self.main != self.net.layers[-1].name

    def _loss(self, output: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        if self.settings.loss == "mse":
            target = np.zeros_like(output)
            np.put_along_axis(target, y.reshape(*y.shape, 1), 1, axis=-1)
            return losses.mse(output, target)
        return losses.cross_entropy(output, y)

    def step(self, model: TrainingModel, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        """One training step on the NHWC batch x with labels y: (loss, correct samples)."""
        outs, tape = model.forward(x)
        loss, grad = self._loss(outs[self.main], y)
        seeds = {self.main: grad}
        for head in self.heads:
            head_loss, head_grad = self._loss(outs[head], y)
            loss += self.settings.aux_weight * head_loss
            head_grad *= head_grad.dtype.type(self.settings.aux_weight)
            seeds[head] = head_grad
        if not math.isfinite(loss):
            raise Diverged(f"the loss is {loss}")
        correct = int((outs[self.main].argmax(axis=-1) == y).sum())
        del outs
        _, grads = model.backward(tape, seeds)
        self.optimizer.step(grads)
        return loss, correct

    def epoch(self, x: np.ndarray, y: np.ndarray, epoch: int,
              report: Callable[[int, float, int], None] | None = None) -> EpochResult:
        """One pass over (x, y) in batches (the last one smaller, kept): `report(samples,
        loss sum, correct)` after each batch."""
        start = time.perf_counter()
        rng = np.random.default_rng([self.settings.seed, epoch])
        model = TrainingModel(self.net, self.weights, training=True, rng=rng, heads=bool(self.heads),
                              ends=[self.main, *self.heads])
        order = (np.random.default_rng([self.settings.seed, epoch, 1]).permutation(len(x))
                 if self.settings.shuffle else None)
        total = correct = seen = 0
        with blas_threads(self.net, self.settings.batch):
            for xb, yb in batches(x, y, self.settings.batch, order):
                loss, right = self.step(model, xb, yb)
                seen += len(xb)
                total += loss * len(xb)
                correct += right
                if report is not None:
                    report(seen, total, correct)
        for name, w in self.weights.items():
            if not np.isfinite(w).all():
                raise Diverged(f"`{name}` holds NaN or infinite values")
        return EpochResult(total / seen, correct / (seen * _positions(y)),
                           time.perf_counter() - start)

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """(mean loss, accuracy) at inference (batch norm's running statistics, no dropout)."""
        total = correct = 0.0
        size = max(self.settings.batch, 256)
        with blas_threads(self.net, size // 3):   # no backward: a third of a step's work
            for xb, yb in batches(x, y, size):
                out = self.evaluator.forward(xb, keep=False)[0][self.main]
                total += self._loss(out, yb)[0] * len(xb)
                correct += int((out.argmax(axis=-1) == yb).sum())
        return total / len(x), correct / (len(x) * _positions(y))


def _positions(y: np.ndarray) -> int:
    """Labels per sample: 1, or H·W for per-pixel labels."""
    return int(np.prod(y.shape[1:], dtype=np.int64))


def batches(x: np.ndarray, y: np.ndarray, size: int,
            order: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Batches of `size` samples in `order` (file order if None), the last one smaller,
    as torch's DataLoader gives them (drop_last=False)."""
    for start in range(0, len(x), size):
        if order is None:
            yield x[start:start + size], y[start:start + size]
        else:
            pick = order[start:start + size]
            yield x[pick], y[pick]
