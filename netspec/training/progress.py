"""What `netspec train` shows while it runs: a progress bar on a terminal, and one line
per epoch everywhere.

The bar (loss, accuracy and samples per second so far in the epoch) is redrawn in
place on standard error at most ten times a second, and only when standard error
is a terminal: piped to a file or a CI log, training prints its epoch lines alone.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

#: Seconds between two redraws of the bar.
REDRAW = 0.1
BAR = 24


class Progress:
    """The bar of one epoch over `total` samples (quiet when `stream` is no terminal)."""

    def __init__(self, epoch: int, epochs: int, total: int, stream: TextIO | None = None,
                 enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.label = f"epoch {epoch}/{epochs}"
        self.total = total
        self.start = time.perf_counter()
        self.drawn = 0.0

    def __call__(self, seen: int, loss_sum: float, correct: int) -> None:
        """After a batch: `seen` samples so far, their summed loss and correct count."""
        now = time.perf_counter()
        if not self.enabled or (now - self.drawn < REDRAW and seen < self.total):
            return
        self.drawn = now
        done = int(BAR * seen / self.total)
        rate = seen / max(now - self.start, 1e-9)
        self.stream.write(f"\r{self.label} [{'=' * done}{'>' if done < BAR else ''}"
                          f"{' ' * (BAR - done - 1)}] {seen:,}/{self.total:,}  loss "
                          f"{loss_sum / seen:.4f}  accuracy {correct / seen:6.2%}  "
                          f"{rate:,.0f} samples/s ")
        self.stream.flush()

    def close(self) -> None:
        """Clear the bar's line (the epoch's own line follows on standard output)."""
        if self.enabled and self.drawn:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()


def epoch_line(epoch: int, epochs: int, record: dict) -> str:
    """`epoch 3/10: loss 0.2310, accuracy 93.12% | validation loss 0.1987, accuracy 94.44% |
    1.3 s, 1,105 samples/s`."""
    text = f"epoch {epoch}/{epochs}: loss {record['loss']:.4f}, accuracy {record['accuracy']:.2%}"
    if record.get("val_loss") is not None:
        text += (f" | validation loss {record['val_loss']:.4f}, accuracy "
                 f"{record['val_accuracy']:.2%}")
    rate = record["samples"] / max(record["seconds"], 1e-9)
    return text + f" | {record['seconds']:.1f} s, {rate:,.0f} samples/s"
