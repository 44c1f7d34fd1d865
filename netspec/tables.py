"""What `netspec check` prints: the per-layer table (as text, Markdown, CSV or HTML)
and the JSON object.

A table is a list of columns (`COLUMNS`, chosen with `--columns`), one row per
layer or, with `depth`, per group of layers sharing a name prefix; a grouped row
sums what its layers sum (parameters, MACs, activations, memory) and shows its
last layer's output and receptive field.
"""

from __future__ import annotations

import io
from collections import namedtuple
from collections.abc import Callable
from math import prod
from typing import TYPE_CHECKING, Any

from .analysis.memory import (
    DTYPE_BYTES,
    forward_peak,
    human_bytes,
    training_memory,
    weight_counts,
)
from .analysis.groups import groups
from .analysis.rf import Field, receptive_fields
from .kinds import Layer, shape_str

if TYPE_CHECKING:
    from .network import Network

FORMATS = ("table", "json", "markdown", "csv")


class Row(namedtuple("Row", "key layers net fields batch dtype_bytes")):
    """One row of the table: a layer, or a group of layers under one name."""

    __slots__ = ()   # a namedtuple, not typing.NamedTuple: see source/pos.py
    key: str
    layers: list[Layer]
    net: Network
    fields: dict[str, Field]
    batch: int
    dtype_bytes: int

    @property
    def last(self) -> Layer:
        return self.layers[-1]

    @property
    def single(self) -> Layer | None:
        """The layer, when the row is exactly one layer (options make sense only then)."""
        return self.layers[0] if len(self.layers) == 1 else None

    def attr(self, key: str) -> Any:
        return self.single.attrs().get(key) if self.single else None

    def sum(self, what: Callable[[Layer], int]) -> int:
        return sum(what(lay) for lay in self.layers)


def _text(r: Row) -> str:
    one = r.single
    text = (one.text if one is not None and one.name == r.key
            else r.net.instances.get(r.key, f"{len(r.layers)} layers"))
    # an aux head is counted in the parameters but not computed at inference
    return text + "  (aux)" if all(lay.aux for lay in r.layers) else text


def _pair(values: Any) -> str | None:
    if values is None:
        return None
    values = list(values)
    return str(values[0]) if len(set(values)) == 1 else "×".join(map(str, values))


def _padding(r: Row) -> str | None:
    pads = r.attr("pads")   # top, left, bottom, right
    if pads is None:
        return None
    return str(pads[0]) if len(set(pads)) == 1 else ",".join(map(str, pads))


def _rf(r: Row, what: str) -> str | None:
    f = r.fields.get(r.last.name)
    if f is None:
        return None
    if what == "centre":   # only when asked: the centre needs `fractions` (start-up time)
        return ",".join(f"{float(c):g}" for c in f.centre)
    return "×".join(map(str, f.size if what == "rf" else f.jump))


#: Every column: name → (header, cell, right-aligned, counts: 0 shows as "–").
COLUMNS: dict[str, tuple[str, Callable[[Row], Any], bool, bool]] = {
    "layer": ("layer", lambda r: r.key, False, False),
    "text": ("as written", _text, False, False),
    "output": ("output", lambda r: shape_str(r.last.output_shape), False, False),
    "activations": ("activations", lambda r: r.sum(lambda lay: prod(lay.output_shape)),
                    True, False),
    "params": ("params", lambda r: r.sum(lambda lay: lay.params), True, True),
    "params%": ("params %", lambda r: f"{100 * r.sum(lambda lay: lay.params) / max(r.net.total_params, 1):.1f}",
                True, False),
    "non-trainable": ("non-trainable", lambda r: r.sum(lambda lay: lay.non_trainable), True, True),
    "macs": ("MACs", lambda r: r.sum(lambda lay: lay.macs), True, True),
    "flops": ("FLOPs", lambda r: r.sum(lambda lay: lay.flops()), True, True),
    "rf": ("rf", lambda r: _rf(r, "rf"), True, False),
    "jump": ("jump", lambda r: _rf(r, "jump"), True, False),
    "centre": ("centre", lambda r: _rf(r, "centre"), True, False),
    "kernel": ("kernel", lambda r: _pair(r.attr("kernel")), True, False),
    "stride": ("stride", lambda r: _pair(r.attr("stride")), True, False),
    "padding": ("padding", _padding, True, False),
    "dilation": ("dilation", lambda r: r.attr("dilation"), True, False),
    "groups": ("groups", lambda r: r.attr("groups"), True, False),
    "memory": ("memory", lambda r: human_bytes(r.batch * r.dtype_bytes *
                                               r.sum(lambda lay: prod(lay.output_shape))),
               True, False),
}
DEFAULT_COLUMNS = ("layer", "text", "output", "activations", "params", "macs", "rf")


def _cell(value: Any, counts: bool, raw: bool) -> str:
    if value is None:
        return "" if raw else "–"
    if isinstance(value, int):
        return str(value) if raw else "–" if counts and not value else f"{value:,}"
    return str(value)


def _grid(net: Network, depth: int | None, columns: tuple[str, ...], batch: int,
          dtype_bytes: int, raw: bool) -> tuple[list[str], list[list[str]], list[str]]:
    """Headers, rows and the totals row, as strings."""
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        raise ValueError(f"unknown column `{unknown[0]}`: choose from {', '.join(COLUMNS)}")
    fields = receptive_fields(net) if {"rf", "jump"} & set(columns) else {}
    rows = [Row(key, layers, net, fields, batch, dtype_bytes) for key, layers in groups(net, depth)]
    cells = [[_cell(COLUMNS[c][1](r), COLUMNS[c][3], raw) for c in columns] for r in rows]
    every = Row("total", net.layers, net, {}, batch, dtype_bytes)
    # an aux head's parameters count, its work does not: inference does not compute it
    inference = Row("total", [lay for lay in net.layers if not lay.aux], net, {}, batch,
                    dtype_bytes)
    totals = []
    for c in columns:
        if c == "layer":
            totals.append("total")
        elif c == "output":
            totals.append(shape_str(net.output_shape))
        elif c in ("params", "params%", "non-trainable"):
            totals.append(_cell(COLUMNS[c][1](every), False, raw))
        elif c in ("activations", "macs", "flops", "memory"):
            totals.append(_cell(COLUMNS[c][1](inference), False, raw))
        else:
            totals.append("")
    return [COLUMNS[c][0] for c in columns], cells, totals


def footer(net: Network, batch: int = 1, dtype: str = "float32", optimizer: str = "adam") -> list[str]:
    """The summary lines under the table: parameters, memory and FLOPs."""
    trainable, buffers = weight_counts(net)
    size_mb = net.total_params * 4 / 2**20
    peak = forward_peak(net, batch, DTYPE_BYTES[dtype])
    train = training_memory(net, batch, optimizer)
    from .analysis.cost import total_flops
    return [(f"{net.total_params:,} parameters ({size_mb:,.2f} MiB as float32), "
             f"{net.total_activations:,} activation values and "
             f"{net.total_macs:,} multiply-adds per sample"),
            (f"{trainable:,} trainable + {buffers:,} non-trainable values: "
             f"{human_bytes((trainable + buffers) * DTYPE_BYTES[dtype])} as {dtype}; "
             f"{total_flops(net):,} FLOPs per sample"),
            (f"batch {batch}: forward peak {human_bytes(peak.bytes)} of {dtype} values "
             f"(at `{peak.layer}`); training with {optimizer} {human_bytes(train.total)} = "
             f"weights {human_bytes(train.weights)} + gradients {human_bytes(train.gradients)} + "
             f"{optimizer} state {human_bytes(train.optimizer)} + saved for backward "
             f"{human_bytes(train.saved)} + in flight {human_bytes(train.in_flight)}")]


def table(net: Network, depth: int | None = None, columns: tuple[str, ...] = DEFAULT_COLUMNS,
          batch: int = 1, dtype: str = "float32", optimizer: str = "adam") -> str:
    """One row per layer, like the course's LeNet-5 table, then the totals.

    With `depth`, layers are summed into one row per name prefix of that many
    parts (`--depth 1` shows `layer1`, `layer2`...; `--depth 2` `layer1.0`...), as
    torchinfo's depth does; a block instance is shown as its call.
    """
    headers, rows, total = _grid(net, depth, columns, batch, DTYPE_BYTES[dtype], raw=False)
    widths = [max(len(r[i]) for r in (headers, *rows, total)) for i in range(len(headers))]
    right = [COLUMNS[c][2] for c in columns]

    def fmt(row: list[str]) -> str:
        return "  ".join(c.rjust(w) if right[i] else c.ljust(w)
                         for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    rule = "  ".join("─" * w for w in widths)
    return "\n".join([f"{net.name}: {shape_str(net.input_shape)} → {shape_str(net.output_shape)}",
                      fmt(headers), rule, *map(fmt, rows), rule, fmt(total),
                      *footer(net, batch, dtype, optimizer)])


def markdown(net: Network, depth: int | None = None, columns: tuple[str, ...] = DEFAULT_COLUMNS,
             batch: int = 1, dtype: str = "float32", optimizer: str = "adam") -> str:
    """The table as GitHub Markdown, with the summary lines under it."""
    headers, rows, total = _grid(net, depth, columns, batch, DTYPE_BYTES[dtype], raw=False)
    esc = lambda c: c.replace("|", "\\|")
    line = lambda r: "| " + " | ".join(map(esc, r)) + " |"
    align = ["---:" if COLUMNS[c][2] else "---" for c in columns]
    total = [f"**{c}**" if c else "" for c in total]
    return "\n".join([(f"**{net.name}**: {shape_str(net.input_shape)} → "
                       f"{shape_str(net.output_shape)}"), "", line(headers),
                      "| " + " | ".join(align) + " |", *map(line, rows), line(total), "",
                      *footer(net, batch, dtype, optimizer)])


def csv_table(net: Network, depth: int | None = None, columns: tuple[str, ...] = DEFAULT_COLUMNS,
              batch: int = 1, dtype: str = "float32") -> str:
    """The rows as CSV, numbers without separators; the totals row last."""
    headers, rows, total = _grid(net, depth, columns, batch, DTYPE_BYTES[dtype], raw=True)
    import csv   # here, not at the top: `check` starts faster without it
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerows([headers, *rows, total])
    return buf.getvalue().rstrip("\n")


def html_table(net: Network, depth: int | None = None,
               columns: tuple[str, ...] = DEFAULT_COLUMNS) -> str:
    """The table as HTML, for a notebook (`Network._repr_html_`)."""
    import html   # here, not at the top: `check` starts faster without it
    headers, rows, total = _grid(net, depth, columns, 1, 4, raw=False)
    right = [COLUMNS[c][2] for c in columns]

    def tr(cells: list[str], tag: str = "td") -> str:
        return "<tr>" + "".join(
            f"<{tag} style=\"text-align:{'right' if right[i] else 'left'}\">{html.escape(c)}</{tag}>"
            for i, c in enumerate(cells)) + "</tr>"
    notes = "".join(f"<br>{html.escape(line)}" for line in footer(net))
    return (f"<div><b>{html.escape(net.name)}</b>: {shape_str(net.input_shape)} → "
            f"{shape_str(net.output_shape)}<table><thead>{tr(headers, 'th')}</thead><tbody>"
            + "".join(map(tr, rows)) + f"{tr(total)}</tbody></table>{notes[4:]}</div>")


def as_dict(net: Network, batch: int = 1, dtype: str = "float32",
            optimizer: str = "adam") -> dict[str, Any]:
    """The `--json` object: every layer in order, input first."""
    fields = receptive_fields(net)
    trainable, buffers = weight_counts(net)
    peak = forward_peak(net, batch, DTYPE_BYTES[dtype])
    train = training_memory(net, batch, optimizer)
    from .analysis.cost import total_flops

    def rf(layer: Layer) -> dict[str, Any]:
        f = fields.get(layer.name)
        return {} if f is None else {"rf": list(f.size), "jump": list(f.jump),
                                     "rf_centre": [float(c) for c in f.centre]}

    return {
        "network": net.name,
        "file": net.filename,
        "input": list(net.input_shape),
        "output": list(net.output_shape),
        "layers": [{"name": layer.name, "op": layer.op, "text": layer.text, "line": layer.line,
                    "inputs": [i.name for i in layer.inputs],
                    "output": list(layer.output_shape), "params": layer.params,
                    "macs": layer.macs, **({"attrs": a} if (a := layer.attrs()) else {}),
                    **rf(layer), "flops": layer.flops(),
                    **({"non_trainable": n} if (n := layer.non_trainable) else {}),
                    **({"file": layer.pos.file} if layer.pos.file else {}),
                    **({"aux": True} if layer.aux else {})}
                   for layer in net.layers],
        "total_params": net.total_params,
        "trainable_params": trainable,
        "non_trainable_params": buffers,
        "total_activations": net.total_activations,
        "total_macs": net.total_macs,
        "total_flops": total_flops(net),
        "memory": {"batch": batch, "dtype": dtype,
                   "weights_bytes": (trainable + buffers) * DTYPE_BYTES[dtype],
                   "forward_peak_bytes": peak.bytes, "forward_peak_layer": peak.layer,
                   "training": {"optimizer": optimizer, "weights_bytes": train.weights,
                                "gradients_bytes": train.gradients,
                                "optimizer_bytes": train.optimizer,
                                "saved_bytes": train.saved,
                                "in_flight_bytes": train.in_flight,
                                "total_bytes": train.total}},
        "warnings": [w.as_dict() for w in net.warnings],
    }
