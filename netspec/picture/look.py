"""What a layer looks like in a picture, asked of the layer itself.

Nothing here switches on layer classes: a layer is drawn from what every layer
answers (its `op`, `attrs()`, `inputs`, input and output shapes), so a new kind
draws without a change here. The rules:

- several inputs: a merge, drawn as a small circle with the op's sign
  (`add` ⊕, `concat` ‖, `mul` ⊗, any other op its first letters);
- the output shape equal to the input shape, no `kernel` in attrs and no weight
  matrix (weights of one dimension at most, as bn's scale): an in-place layer
  (activations, norms, dropout), drawn with the volume before it
  (except the network's last layer, its output: LeNet's softmax);
- a vector output: a thin bar (fc, flatten...);
- anything else: a 3-D volume; `kernel`/`stride`/`pads`/`dilation`/`groups` in attrs
  put a kernel on the volume it reads, labelled `5×5, s1, p0` (`3×3, s1, same (p1)`), and
  the padding as a border around that volume's H×W face.

A layer kind may override these by declaring, as class attributes, `draw_as` (one of
"volume", "vector", "inplace", "merge"), `draw_colour` (a CSS colour), `draw_sign` (a
short text) for a merge, `draw_kernel` (the kernel's style) and `picture_label()`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..kinds import shape_str

if TYPE_CHECKING:
    from ..kinds import Layer
    from .structure import Unit

ROLES = ("input", "volume", "vector", "inplace", "merge")

NEUTRAL = "#f5f0dc"
COLLAPSED = "#c9d7f5"


def role(layer: Layer) -> str:
    """How the layer is drawn (see the module's docstring)."""
    if layer.draw_as in ROLES:
        return layer.draw_as
    if not layer.inputs:
        return "input"
    if len(layer.inputs) > 1:
        return "merge"
    if layer.output_shape == layer.input_shape and "kernel" not in layer.attrs() and \
            all(len(s) < 2 for s in layer.weight_shapes().values()):
        return "inplace"
    if layer.output_shape is not None and len(layer.output_shape) == 1:
        return "vector"
    return "volume"


def colour(layer: Layer) -> str:
    return layer.draw_colour or NEUTRAL


def sign(layer: Layer) -> str:
    return layer.draw_sign or layer.op[:2]


def _pair(v: object, mark: str = "×") -> str:
    if isinstance(v, (list, tuple)):
        return str(v[0]) if len(set(v)) == 1 and mark != "×" else mark.join(map(str, v))
    return str(v)


def padding_label(attrs: dict) -> str | None:
    """The padding as written and as it pads: `p1`, `same (p1)`, `valid (p0)`, or
    `p0,1,1,0` (top, left, bottom, right) where the sides differ; None without padding."""
    pads = attrs.get("pads")
    if pads is None:
        pad = attrs.get("padding")
        return f"p{pad}" if isinstance(pad, int) else None
    amount = f"p{pads[0]}" if len(set(pads)) == 1 else "p" + ",".join(map(str, pads))
    word = attrs.get("padding")
    return f"{word} ({amount})" if word in ("same", "valid") else amount


def kernel_label(layer: Layer) -> str | None:
    """`5×5, s1, p0` (with `same (p1)`, `d2`, `g32` where they apply, `max` for a pool),
    or None."""
    a = layer.attrs()
    if "kernel" not in a:
        return None
    if a.get("global"):
        return f"global {a.get('mode', '')}".strip()
    parts = [f"{a.get('mode', '')} {_pair(a['kernel'])}".strip()]
    if "stride" in a:
        parts.append(f"s{_pair(a['stride'], ',')}")
    padding = padding_label(a)
    if padding:
        parts.append(padding)
    if a.get("dilation", 1) != 1:
        parts.append(f"d{a['dilation']}")
    if a.get("groups", 1) != 1:
        parts.append(f"g{a['groups']}")
    return ", ".join(parts)


def spec_label(layer: Layer) -> str:
    """The layer in one line with every number resolved: `conv 5×5 s1 p0 ×6`."""
    a = layer.attrs()
    if "kernel" not in a:
        if role(layer) == "vector" and layer.picture_label() is not None:
            return layer.picture_label()
        text = layer.text if layer.text and len(layer.text) <= 28 else layer.op
        return text
    if a.get("global"):
        return f"{a.get('mode', '')} pool global".strip()
    parts = [f"{a.get('mode', '')}{layer.op} {_pair(a['kernel'])}".strip()]
    if "stride" in a:
        parts.append(f"s{_pair(a['stride'], ',')}")
    padding = padding_label(a)
    if padding:
        parts.append(padding)
    if a.get("dilation", 1) != 1:
        parts.append(f"d{a['dilation']}")
    if a.get("groups", 1) != 1:
        parts.append(f"g{a['groups']}")
    if a.get("filters"):
        parts.append(f"×{a['filters']}")
    return " ".join(parts)


def table_row(layer: Layer) -> str:
    """The layer's row of `check`'s table, for a tooltip."""
    out = layer.output_shape
    acts = 1
    for d in out or ():
        acts *= d
    return (f"{layer.name}  {layer.text}  (line {layer.line})\n"
            f"  output {shape_str(out)} · {acts:,} activations · "
            f"{layer.params:,} params · {layer.macs:,} MACs")


def shade(fill: str, factor: float) -> str:
    """`fill` (#rrggbb) darkened (factor < 1) or lightened (> 1): the faces of a box."""
    rgb = [int(fill[i:i + 2], 16) for i in (1, 3, 5)]
    if factor >= 1:
        rgb = [round(c + (255 - c) * (factor - 1)) for c in rgb]
    else:
        rgb = [round(c * factor) for c in rgb]
    return "#" + "".join(f"{min(255, max(0, c)):02x}" for c in rgb)


def unit_title(u: Unit) -> str:
    """The tooltip of a drawn unit: its layers' table rows (a collapsed group: its totals
    and its first rows)."""
    layers = u.all_layers()
    if not u.collapsed:
        return "\n".join(table_row(lay) for lay in layers)
    head = (f"{u.key}" + (f" = {u.call}" if u.call else "") + f": {len(layers)} layers, "
            f"output {shape_str(u.layer.output_shape)}, "
            f"{sum(lay.params for lay in layers):,} params, "
            f"{sum(lay.macs for lay in layers):,} MACs")
    rows = [table_row(lay) for lay in layers[:12]]
    more = [f"… {len(layers) - 12} more layers"] if len(layers) > 12 else []
    return "\n".join([head, *rows, *more])
