"""torch autograd as the oracle for netspec.gradients: the network's torch twin
(torch_reference) run with gradients, in training or inference mode, in float32 and
float64, and the tolerance derived from how far torch's own float32 gradients are
from its float64 ones (as the zoo's forward tests do, zoo_oracle.float32_error).

Test-only: imports torch.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch_reference import _layer, _upsample

from netspec.training.model import TrainingModel, to_nhwc


def dropout_masks(net, weights, x: np.ndarray) -> dict[str, np.ndarray]:
    """The masks netspec.gradients(training=True) draws (its generator is seeded 0), as
    NCHW float arrays of kept values, by dropout layer name."""
    model = TrainingModel(net, net.check_weights(weights), True, np.random.default_rng(0))
    _, tape = model.forward(to_nhwc(np.asarray(x, np.float32)))
    masks = {}
    for layer in net.layers:
        if layer.op == "dropout" and layer.name in tape.caches:
            kept = tape.caches[layer.name].kept
            if kept is not None:
                masks[layer.name] = kept.transpose(0, 3, 1, 2) if kept.ndim == 4 else kept
    return masks


def torch_gradients(net, weights: dict[str, np.ndarray], x: np.ndarray, dy: np.ndarray,
                    training: bool, masks: dict[str, np.ndarray] | None = None,
                    dtype: torch.dtype = torch.float32) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(dx, {name: dW}) by autograd on the twin: x, dy NCHW (or N×F); aux heads are not
    computed (their weights get zeros), as netspec.gradients' output does not reach them."""
    trainable = {layer.weight_key(s) for layer in net.layers
                 for s in layer.weight_shapes() if s not in layer.buffers}
    w = {k: torch.tensor(np.asarray(v), dtype=dtype, requires_grad=k in trainable)
         for k, v in weights.items()}
    xt = torch.tensor(np.asarray(x), dtype=dtype, requires_grad=True)
    values = {net.layers[0].name: xt}
    for layer in net.layers[1:]:
        if layer.aux:
            continue
        ins = [values[i.name] for i in layer.inputs]
        if layer.op == "bn":
            n = layer.name
            y = F.batch_norm(ins[0], w[f"{n}.running_mean"].detach().clone(),
                             w[f"{n}.running_var"].detach().clone(), w[f"{n}.weight"],
                             w[f"{n}.bias"], training=training, eps=layer.eps)
        elif layer.op == "dropout" and training:
            mask = torch.tensor((masks or {})[layer.name], dtype=dtype)
            y = ins[0] * mask / (1 - layer.rate)
        elif layer.op == "upsample":
            y = _upsample(layer, ins[0], values)
        else:
            y = _layer(layer, w, ins)
        values[layer.name] = y
    values[net.layers[-1].name].backward(torch.tensor(np.asarray(dy), dtype=dtype))
    grads = {k: (w[k].grad.numpy() if w[k].grad is not None else np.zeros(w[k].shape))
             for k in sorted(trainable)}
    return xt.grad.numpy(), grads


def ours_in_float64(net, weights, x: np.ndarray, dy: np.ndarray,
                    training: bool) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """netspec's gradients computed in float64 (every kernel works in its input's
    precision), with the masks netspec.gradients draws."""
    w64 = {k: np.asarray(v, np.float64) for k, v in weights.items()}
    model = TrainingModel(net, w64, training, np.random.default_rng(0) if training else None)
    _, tape = model.forward(to_nhwc(np.asarray(x, np.float64)))
    dx, grads = model.backward(tape, {model.output: to_nhwc(np.asarray(dy, np.float64))},
                               want_dx=True)
    every = {layer.weight_key(s): grads.get(layer.weight_key(s), np.zeros(shape))
             for layer in net.layers for s, shape in layer.weight_shapes().items()
             if s not in layer.buffers}
    return (dx.transpose(0, 3, 1, 2) if dx.ndim == 4 else dx), every


def assert_gradients_match(net, weights, x, dy, training: bool, ours,
                           elementwise: bool = True) -> None:
    """netspec's gradients against autograd's, twice.

    In float64, netspec's formulas against torch's: rtol 1e-4 plus 1e-5 of each array's
    largest magnitude (plus 1e-12 of the largest of all, for gradients that are 0 but for
    rounding: a conv's bias before a batch norm in training). Rounding in float64 is ~1e-16 per operation, but two of netspec's
    computations are exact to float32 only, by design: GELU's erf (Abramowitz and
    Stegun 7.1.26, absolute error below 1.5e-7) and bilinear upsampling's weights
    (computed in float32, as torch does for float32); a wrong formula moves values by a
    sizeable fraction of their magnitude, 10³ times more (batch statistics over few
    values amplify the approximations' error). In float32, `ours` (what netspec.gradients
    returned) against torch's float64 gradients: per array, rtol 1e-3 plus 1e-3 of the
    array's largest magnitude (the forward tests' tolerances, ten times looser: a
    gradient such as a bias's sums many terms that cancel) plus ten times the largest
    difference between torch's own float32 and float64 gradients of that array (a deep
    net at a small batch with batch statistics divides by small variances, which
    amplifies rounding; a float32 implementation summing in another order can only be
    asked to be about as exact as torch's float32 is), plus 1e-6 of the largest magnitude
    of all arrays (float32's rounding of a gradient that is 0 but for rounding).

    Without `elementwise` (deep networks), the float32 gradients are compared as one
    vector instead: the norm of ours less torch's float64 within ten times the norm of
    torch's float32 less its float64, plus 1e-4 of its norm. In float32 a value just
    above 0 can round to just below it before a relu, in torch's pass or in ours, and
    the pixel's whole gradient then goes (or does not), as it happens to both: torch's
    own float32 gradients of ShuffleNetV2 in training at 96×96, batch 2, are 1.6 % from
    its float64 ones, and one of its bias gradients 12 %. The float64 comparison, which
    rounds far below any such kink, still checks every value.
    """
    masks = dropout_masks(net, weights, x) if training else None
    want32 = torch_gradients(net, weights, x, dy, training, masks)
    want64 = torch_gradients(net, weights, x, dy, training, masks, torch.float64)
    exact = ours_in_float64(net, weights, x, dy, training)
    dx, grads = ours
    assert set(grads) == set(want32[1]), set(grads) ^ set(want32[1])
    names = ["dx", *sorted(grads)]
    got = dict(zip(names, [dx] + [grads[k] for k in names[1:]]))
    got64 = dict(zip(names, [exact[0]] + [exact[1][k] for k in names[1:]]))
    w32 = dict(zip(names, [want32[0]] + [want32[1][k] for k in names[1:]]))
    w64 = dict(zip(names, [want64[0]] + [want64[1][k] for k in names[1:]]))
    top = max(float(np.abs(a).max(initial=0)) for a in w64.values())
    for name in names:
        assert got[name].shape == w64[name].shape, (name, got[name].shape, w64[name].shape)
        scale = float(np.abs(w64[name]).max(initial=0))
        what = f"{net.name}: {name} (training={training})"
        np.testing.assert_allclose(got64[name], w64[name], rtol=1e-4, atol=1e-5 * scale + 1e-12 * top,
                                   err_msg=what + " in float64")
        if not elementwise:
            continue
        err = float(np.abs(w32[name] - w64[name]).max(initial=0))
        np.testing.assert_allclose(got[name], w64[name], rtol=1e-3,
                                   atol=1e-3 * scale + 10 * err + 1e-6 * top, err_msg=what + " in float32")
    if not elementwise:
        flat = {k: np.concatenate([d[n].ravel() for n in names]) for k, d in
                (("ours", got), ("torch", w32), ("exact", w64))}
        size = float(np.linalg.norm(flat["exact"]))
        ours_err = float(np.linalg.norm(flat["ours"] - flat["exact"]))
        torch_err = float(np.linalg.norm(flat["torch"] - flat["exact"]))
        assert ours_err <= 10 * torch_err + 1e-4 * size, \
            (f"{net.name} (training={training}) in float32: |ours − float64| = {ours_err:.3g}, "
             f"|torch − float64| = {torch_err:.3g}, |float64| = {size:.3g}")
