"""`netspec train`: train a spec's network on data, epoch by epoch, with checkpoints.

After every epoch the weights are written (atomically) to -o, with the state a
`--resume` continues from beside them (netspec.training.checkpoint), the log and the
plot. A loss that becomes NaN or infinite stops the run with exit status 1, and the
weights of the last good epoch stay as they were; Ctrl-C stops it with status 130,
keeping the last complete epoch's.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import TYPE_CHECKING

from ..source.diagnostics import Diagnostic, InputError
from ..source.files import atomic_write, refuse_overwriting_inputs
from .common import EXIT_OK, EXIT_SPEC, UsageError, print_warnings, read_spec, with_suffix

if TYPE_CHECKING:
    import numpy as np

    from ..network import Network

#: Exit status after Ctrl-C, as a shell reports a process ended by SIGINT.
EXIT_INTERRUPTED = 130


def cmd_train(args: argparse.Namespace) -> int:
    """`netspec train SPEC --data DATA`: see the module's docstring."""
    import numpy as np

    from ..training import checkpoint
    from ..training.data import load_data, split
    from ..training.loop import Settings, Trainer, trainable
    output = args.output or with_suffix(args.spec, ".trained.npz")
    outputs = {"-o": output, "the state beside -o": checkpoint.state_path(output),
               "--log": args.log, "--plot": args.plot}
    data_file = args.data if os.path.isfile(args.data) else None
    refuse_overwriting_inputs(outputs, {"SPEC": args.spec, "--weights": args.weights,
                                        "--data": data_file})
    if len({os.path.abspath(p) for p in outputs.values() if p}) < \
            sum(1 for p in outputs.values() if p):
        raise UsageError("-o, --log and --plot must name different files")
    net = read_spec(args.spec)
    print_warnings(net)
    data = load_data(args.data, net)
    train_idx, val_idx = split(len(data.x), args.val_split, args.seed)
    fixed = {"seed": args.seed, "val_split": args.val_split, "samples": int(len(data.x))}
    settings = Settings(args.optimizer, args.lr, args.momentum, args.weight_decay, args.nesterov,
                        args.batch, not args.no_shuffle, args.seed, args.loss, args.aux_weight)
    state = _start(args, net, output, fixed)
    weights = {k: np.array(v, np.float32, order="C") for k, v in state.weights.items()}
    trainer = Trainer(net, weights, settings)
    if state.optimizer:
        try:
            trainer.optimizer.load_state_dict(state.optimizer)
        except ValueError as err:
            raise UsageError(f"cannot resume: {err} (resume with the same --optimizer)") from None
    x, y = data.x[train_idx], data.y[train_idx]
    vx, vy = data.x[val_idx], data.y[val_idx]
    _introduce(args, net, data.note, trainer, len(x), len(vx), state.epoch)
    history = list(state.history)
    saved = state.epoch if args.resume else None
    epoch = state.epoch
    try:
        with np.errstate(all="ignore"):   # a NaN loss is reported as such, below
            for epoch in range(state.epoch + 1, args.epochs + 1):
                record = _epoch(args, trainer, x, y, vx, vy, epoch)
                history.append(record)
                checkpoint.save(output, checkpoint.Checkpoint(
                    weights, trainer.optimizer.state_dict(), epoch, history, fixed))
                saved = epoch
                _write_log(args, history)
                _write_plot(args, net, history)
                if not args.quiet:
                    from ..training.progress import epoch_line
                    print(epoch_line(epoch, args.epochs, record), flush=True)
    except KeyboardInterrupt:
        print(f"netspec train: interrupted in epoch {epoch}; {_kept(output, saved)}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except _diverged() as err:
        hint = "lower --lr (or check the data's scale)"
        print(Diagnostic("error", f"training diverged in epoch {epoch}: {err}; "
                         f"{_kept(output, saved)}", args.spec, hint=hint).render(),
              file=sys.stderr)
        return EXIT_SPEC
    except ValueError as err:   # a batch the kernels refuse (batch norm over one value)
        raise InputError(Diagnostic("error", f"cannot train on this batch: {err}", args.data,
                                    hint="choose another --batch (the last batch holds "
                                         f"{len(x) % args.batch or args.batch} samples)"))
    if state.epoch >= args.epochs:
        print(f"{output} already holds epoch {state.epoch} of {args.epochs}: nothing to do")
    else:
        count = sum(v.size for v in trainable(net, weights).values())
        print(f"wrote {output}: {count:,} trained parameters after epoch {saved}"
              + _result(history[-1]))
    return EXIT_OK


def _result(record: dict) -> str:
    """`; training accuracy 99.86%, validation accuracy 98.06% (loss 0.0710)`: the last
    epoch's, as its line says them."""
    text = f"; training accuracy {record['accuracy']:.2%}"
    if record.get("val_accuracy") is not None:
        text += (f", validation accuracy {record['val_accuracy']:.2%} "
                 f"(loss {record['val_loss']:.4f})")
    return text


def _diverged() -> type[Exception]:
    from ..training.loop import Diverged
    return Diverged


def _kept(output: str, saved: int | None) -> str:
    if saved is None:
        return f"no epoch was complete, {output} was not written"
    if saved == 0:
        return f"{output} was not changed"
    return f"{output} keeps epoch {saved}'s weights (--resume continues from there)"


def _start(args: argparse.Namespace, net: Network, output: str, fixed: dict):
    """The run's starting point: the checkpoint beside -o (--resume), --weights, or
    `init` with --seed."""
    from ..data.weights import check_weights
    from ..training import checkpoint
    from .common import weights_of
    if not args.resume:
        return checkpoint.Checkpoint(weights_of(net, args), {}, 0, [], fixed)
    state = checkpoint.load(output)
    changed = [k for k in fixed if state.fixed.get(k) != fixed[k]]
    if changed:
        raise UsageError(f"cannot resume with another {', '.join(changed)} (the run used "
                         + ", ".join(f"{k} {state.fixed.get(k)}" for k in changed) + ")")
    return state._replace(weights=check_weights(net, state.weights,
                                                checkpoint.state_path(output)))


def _introduce(args: argparse.Namespace, net: Network, note: str, trainer, train: int,
               val: int, done: int) -> None:
    """What is about to happen: the data as read, the split, the optimizer."""
    from ..training.loop import DEFAULT_LR
    print(f"data: {note}")
    held = f", {val:,} for validation" if val else " (no validation)"
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    print(f"training {net.name} on {train:,} samples{held}: {args.optimizer}, lr {lr:g}, "
          f"batch {args.batch}, {args.epochs} epochs" +
          (f" (resuming after epoch {done})" if args.resume else ""))
    if trainer.softmax_skipped:
        print(f"the spec ends in `softmax`: the loss is the cross-entropy of its input, "
              f"`{trainer.main}` (the logits), so nothing is softmaxed twice")
    if trainer.heads:
        print(f"aux heads {', '.join(trainer.heads)}: each adds {args.aux_weight:g}× its "
              f"cross-entropy to the loss")


def _epoch(args: argparse.Namespace, trainer, x: np.ndarray, y: np.ndarray, vx: np.ndarray,
           vy: np.ndarray, epoch: int) -> dict:
    """Train one epoch and evaluate; its log record."""
    from ..training.progress import Progress
    bar = Progress(epoch, args.epochs, len(x), enabled=False if args.quiet else None)
    try:
        result = trainer.epoch(x, y, epoch, bar)
    finally:
        bar.close()
    record = {"epoch": epoch, "loss": result.loss, "accuracy": result.accuracy,
              "val_loss": None, "val_accuracy": None, "seconds": round(result.seconds, 3),
              "samples": int(len(x))}
    if len(vx):
        record["val_loss"], record["val_accuracy"] = trainer.evaluate(vx, vy)
        if not math.isfinite(record["val_loss"]):
            raise _diverged()(f"the validation loss is {record['val_loss']}")
    return record


def _write_log(args: argparse.Namespace, history: list[dict]) -> None:
    if args.log:
        keys = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds")
        text = "".join(json.dumps({k: r.get(k) for k in keys}) + "\n" for r in history)
        atomic_write(args.log, lambda f: f.write(text.encode()))


def _write_plot(args: argparse.Namespace, net: Network, history: list[dict]) -> None:
    if args.plot:
        from ..training.plot import curve_svg
        svg = curve_svg(history, net.name)
        atomic_write(args.plot, lambda f: f.write(svg.encode()))
