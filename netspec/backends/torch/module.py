"""`netspec export --torch`: a spec as a readable PyTorch module (only torch needed to run it).

One `nn.Module` class per block definition, its parameters the constructor's
arguments (after `in_channels`, the channels it reads), and one class for the
network. The classes are written from the spec tree (`Network.syntax`), so a block is
written once, with its `$params`, not once per call: `repeat` becomes a loop,
`residual` a `forward` with the add, `project` a module that exists only where the
body changes the shape (as torchvision's `downsample`), `concat` a `torch.cat`.
Each layer kind writes its own module (`Layer.torch`). Modules are named as netspec
names layers, so the network's `state_dict` keys and shapes are exactly netspec's
weight names, and netspec's `.npz` weights load with `load_state_dict`.

Nothing here imports torch (or NumPy): generating the code needs no more than
`netspec check` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...ir import tree as ir
from ...kinds import FC
from ...kinds.base import Layer
from ...source.diagnostics import Diagnostic, NetspecError
from ...syntax import expr as E
from ...syntax.tree import BlockDef, Group, LayerStmt, Node, unlabel
from .symbols import ClassText, Unsupported, camel, has_joins, has_param_loops, scope
from .values import read_names, variable
from .writer import Writer

if TYPE_CHECKING:
    from ...network import Network


class TorchCodegenError(NetspecError):
    """A spec construct the PyTorch generator cannot write (yet)."""


class TorchGenerator:
    """Writes the module for one network."""

    def __init__(self, net: Network) -> None:
        if net.syntax is None:
            raise TorchCodegenError("this network has no syntax tree to generate code from")
        self.net = net
        self.blocks: dict[str, BlockDef] = net.syntax[0]
        self.statements: list[Node] = net.syntax[1]
        self.classes: dict[str, ClassText] = {}
        self.order: list[str] = []
        self.ends_vector: dict[str, bool] = {}
        self.out_channels: dict[str, E.Expr | None] = {}   # class → formula of its params
        self.keeps: dict[str, list[E.Expr]] = {}   # class → when it keeps H×W
        self.windows: list[E.Expr] | None = None   # in a residual body: when it keeps H×W
        self.in_block: str | None = None   # the block whose class is being written
        self.helpers: dict[str, str] = {}  # classes the code defines for itself

    def fc_inputs(self, stmt: LayerStmt | None) -> E.Expr | None:
        """in_features of an fc (or flatten) over a volume (C·H·W, which the module does not
        track): what the builder computed for every layer made from `stmt`, when they agree;
        None if they do not (the fc is then an `nn.LazyLinear`)."""
        sizes = {layer.in_features if isinstance(layer, FC) else layer.output_shape[0]
                 for layer in ir.instances_of(self.net.tree, stmt)
                 if isinstance(layer, Layer) and len(layer.input_shape) == 3}
        return E.Num(sizes.pop()) if len(sizes) == 1 else None

    def block_class(self, block: BlockDef) -> ClassText:
        name = camel(block.name.text)
        if name in self.classes:
            return self.classes[name]
        params = [p.text for p, _ in block.params]
        sig = ["self", "in_channels: int"]
        for p, default in block.params:
            sig.append(f"{p.text}: int" + (f" = {default.text}" if default is not None else ""))
        sequential = has_param_loops(block.body.body) and not has_joins(block.body.body)
        where = f"{block.pos.file}, " if block.pos.file else ""
        cls = ClassText(name, ", ".join(sig), f"`block {block.name.text}({', '.join(params)})`, "
                        f"{where}line {block.pos.line}.", sequential)
        self.classes[name] = cls
        writer = Writer(self, cls, {p: E.Name(p) for p in params},
                        self._block_input_vector(block.name.text), E.Name("in_channels"))
        was, self.in_block = self.in_block, block.name.text
        outer, self.windows = self.windows, []
        self._write_body(writer, block.body)
        self.keeps[name] = [w for w in self.windows if w != E.Num(1)]
        self.in_block, self.windows = was, outer
        self.ends_vector[name] = writer.vector
        formula = writer.cur
        self.out_channels[name] = formula if formula.names() <= {"in_channels", *params} \
            else None
        self.order.append(name)
        return cls

    def _block_input_vector(self, name: str) -> bool:
        """Whether the block's (first) instance reads a vector."""
        for node in ir.walk(self.net.tree):
            if isinstance(node, ir.Instance) and node.block == name:
                return node.input is not None and len(node.input.output_shape) == 1
        return False

    def _write_body(self, writer: Writer, body: Group) -> None:
        writer.wanted = read_names(body.body)
        writer.reserved = {variable(w) for w in writer.wanted if "$" not in w}
        try:
            if body.indexed:
                if has_joins(body.body):
                    raise Unsupported("a residual or concat in a `[ ]` block body")
                writer.explicit = False
                writer.cls.sequential = True
                writer.body(body.body, scope(True), "self")
            else:
                writer.body(body.body, scope(False), "self")
            writer.line(f"self.out_channels = {writer.cur.python()}")
        except Unsupported as err:
            raise TorchCodegenError(self._unsupported(err)) from None

    def _unsupported(self, err: Unsupported) -> Diagnostic:
        """What --torch cannot write, at the statement that asks for it, with its line."""
        pos = err.pos
        if pos is None:
            return Diagnostic("error", f"--torch cannot write {err.args[0]}", self.net.filename)
        text = self.net.sources.get(pos.file, "")
        lines = text.splitlines()
        return Diagnostic(
            "error", f"--torch cannot write {err.args[0]}", pos.file or self.net.filename,
            pos.line, pos.column,
            lines[pos.line - 1] if 0 < pos.line <= len(lines) else None, pos.length,
            hint="netspec check, export to ONNX and the NumPy model still take this spec")

    def module(self) -> str:
        """The whole Python module."""
        net_name = camel(self.net.name)
        if net_name in {camel(b) for b in self.blocks}:
            net_name += "Net"
        shape = self.net.input_shape
        vector = len(shape) == 1
        cls = ClassText(net_name, "self", "", has_param_loops(self.statements))
        writer = Writer(self, cls, {}, vector, E.Num(shape[-1] if not vector else shape[0]))
        body = Group(None, [s for s in self.statements if not _is_input(s)], False)
        self._write_body(writer, body)
        cls.init.pop()   # the network needs no out_channels
        out = [f'"""{self.net.name}: generated by netspec from {self.net.filename or "a spec"}.',
               "",
               "Weights saved by netspec (`netspec init`, or any .npz keyed like this model's",
               "state_dict) load with:",
               "",
               f"    model = {net_name}()",
               ("    model.load_state_dict({k: torch.from_numpy(v) for k, v in "
                "numpy.load(\"w.npz\").items()})"),
               '"""', "", "import torch", "from torch import nn"]
        for name in sorted(self.helpers):
            out += ["", "", self.helpers[name]]
        for name in self.order:
            out += ["", "", *self._class_text(self.classes[name])]
        cls.doc = f"The network{f' in {self.net.filename}' if self.net.filename else ''}: " \
                  f"input {'×'.join(map(str, shape))}."
        out += ["", "", *self._class_text(cls, network=True)]
        return "\n".join(out) + "\n"

    def _class_text(self, cls: ClassText, network: bool = False) -> list[str]:
        base = "nn.Sequential" if cls.sequential else "nn.Module"
        lines = [f"class {cls.name}({base}):", f'    """{cls.doc}"""', "",
                 f"    def __init__({cls.signature}) -> None:", "        super().__init__()"]
        lines += cls.init or []
        if not cls.sequential:
            branch = ", branch: torch.Tensor" if cls.takes_branch else ""
            lines += ["", f"    def forward(self, x: torch.Tensor{branch}) -> torch.Tensor:"]
            if network:
                shape = "N×C×H×W" if len(self.net.input_shape) == 3 else "N×F"
                last = self.net.layers[-1].name
                lines.append(f'        """{shape} in, the output of `{last}` out."""')
            lines += cls.forward + ["        return x"]
        return lines


def _is_input(node: Node) -> bool:
    _, item = unlabel(node)
    return isinstance(item, LayerStmt) and item.rule == "input"


def torch_source(net: Network) -> str:
    """The network as a PyTorch module's source (see the module docstring)."""
    return TorchGenerator(net).module()
