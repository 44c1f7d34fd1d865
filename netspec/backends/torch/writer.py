"""Writing one class's statements: its constructor's modules and its forward's lines.

The writer walks a block's statements (the spec tree, not an instance of it), naming
modules with the builder's own scopes (netspec.language.names) and asking each layer
kind for its module (`Layer.torch`, given this writer as its `TorchWriter`). Where a
decision depends on shapes (does this residual's shortcut exist?), the condition it
writes is checked against what the builder decided for every instance (the network's
tree, netspec.ir.tree).
"""

from __future__ import annotations

import keyword
from typing import TYPE_CHECKING, Any, NoReturn

from ...ir import tree as ir
from ...kinds import registry
from ...language.names import Names
from ...syntax import expr as E
from ...language.named import definitions
from ...syntax.tree import (
    Assign, Aux, Call, From, Gate, Group, Join, Labeled, LayerStmt, Merge, Node, Repeat, Residual,
)
from .calls import Calls
from .joins import Joins
from .values import Values
from .symbols import (
    CH,
    ClassText,
    Lin,
    SymbolicReading,
    Unsupported,
    call_expr,
    default_name,
    has_joins,
    scope,
    simplify,
)

if TYPE_CHECKING:
    from .module import TorchGenerator

_LOOP_VARS = "ijkl"


class _NotInline(Exception):
    """A group that cannot be written as one `nn.Sequential(…)` expression."""


class Writer(Joins, Calls, Values):
    """Walks the statements of one class body and writes its constructor and forward."""

    def __init__(self, gen: TorchGenerator, cls: ClassText, env: dict[str, E.Expr],
                 vector: bool, in_channels: E.Expr) -> None:
        self.gen = gen
        self.cls = cls
        self.env = env                 # block parameter → expression
        self.vector = vector           # the value flowing is a vector (N, F)
        self.cur = in_channels         # the channels now
        self.indent = 2
        self.fwd_indent = 2
        self.loop_depth = 0
        self.tmp: dict[str, int] = {}
        self.explicit = not cls.sequential
        self.capture: list[tuple[str, str]] | None = None   # (name, module) of a Sequential
        self.branch_inputs: list[str] = []   # forward variables the enclosing branches read
        self.parts: dict[str, int] = {}   # attribute → how many parts share its name
        self.wanted: set[str] = set()     # the value names its joins and `from`s read
        self.reserved: set[str] = set()   # their variables, which `fresh` never gives
        self.named: dict[str, tuple[str, E.Expr, bool]] = {}   # name → variable, channels,
                                                                # whether a vector
        # the layer being written, for the TorchWriter methods a kind calls
        self._name = ""
        self._target = "self"
        self._stmt: LayerStmt | None = None

    # ---- output ----------------------------------------------------------------------
    def line(self, text: str) -> None:
        if self.capture is not None:
            raise _NotInline
        pad = "    " * self.indent
        self.cls.init.append(pad + text.replace("\n", "\n" + pad))

    def fline(self, text: str) -> None:
        self.cls.forward.append("    " * self.fwd_indent + text)

    def fresh(self, stem: str) -> str:
        """A new variable `stem`, `stem2`, …, never one a named value takes."""
        while True:
            self.tmp[stem] = self.tmp.get(stem, 0) + 1
            n = self.tmp[stem]
            name = stem if n == 1 else f"{stem}{n}"
            if name not in self.reserved:
                return name

    def channels(self) -> E.Expr:
        """`ch`, after writing `ch = …` if the current channels are another expression."""
        if self.cur != CH:
            self.line(f"ch = {self.cur.python()}")
            self.cur = CH
        return CH

    def local(self, stem: str, value: E.Expr) -> E.Name:
        """A new local variable of the constructor, set to `value`."""
        name = self.fresh(stem)
        self.line(f"{name} = {value.python()}")
        return E.Name(name)

    # ---- TorchWriter: what a kind's `torch` method uses ----------------------------------
    @property
    def c_in(self) -> E.Expr:
        return self.cur

    @property
    def in_residual(self) -> bool:
        return self.gen.windows is not None

    def py(self, value: E.Expr | tuple[E.Expr, ...]) -> str:
        if isinstance(value, tuple):
            items = [self.py(v) for v in value]
            return items[0] if len(set(items)) == 1 else f"({', '.join(items)})"
        return value.python()

    def out(self, channels: E.Expr) -> None:
        self.cur = channels

    def keeps_size(self, cond: E.Expr) -> None:
        if self.gen.windows is not None:
            self.gen.windows.append(simplify(cond))

    def fc_inputs(self) -> E.Expr | None:
        return self.gen.fc_inputs(self._stmt)

    def flatten(self) -> None:
        if self.explicit:
            self.fline("x = torch.flatten(x, 1)")
        else:
            name = self._name
            flat = name[:-1] + "_flatten'" if name.startswith("'") else name[:-1] + '_flatten"'
            self.register(self._target, flat, "nn.Flatten()")
        self.vector = True

    def to_vector(self) -> None:
        self.vector = True

    def helper(self, name: str, source: str) -> None:
        self.gen.helpers[name] = source

    def _forward_only(self) -> str:
        """The layer's attribute name, where it can be written into forward."""
        if not self.explicit or self._target != "self":
            raise Unsupported(f"a `{' '.join(w.text for w in self._stmt.words)}` inside a "
                              f"`[ ]` group or a loop (put it in a block)")
        return self._name

    def parameter(self, init: str) -> str:
        name = self._forward_only()
        if not (name.startswith("'") and name[1:-1].isidentifier()):
            raise Unsupported(f"a layer scale named {name} (label it with a plain name)")
        self.line(f"self.{name[1:-1]} = nn.Parameter({init})")
        return f"self.{name[1:-1]}"

    def forward(self, line: str) -> None:
        self._forward_only()
        self.fline(line)

    def reference(self, target: str) -> str:
        self._forward_only()
        if target == "branch":
            if not self.branch_inputs:
                if not self.gen.in_block:
                    raise Unsupported("`to branch` outside a branch")
                self.cls.takes_branch = True   # the caller passes its branch's input
                return "branch"
            return self.branch_inputs[-1]
        if self.gen.in_block:
            raise Unsupported("`upsample … to input` inside a block (use it at the top level)")
        if self.cls.forward[:1] != ["        image = x"]:
            self.cls.forward.insert(0, "        image = x")
        return "image"

    def unsupported(self, what: str) -> NoReturn:
        raise Unsupported(what)

    # ---- statements -------------------------------------------------------------------
    def body(self, nodes: list[Node], names: Names[Lin], target: str) -> None:
        for node in nodes:
            self.statement(node, names, target, None)

    def statement(self, node: Node, names: Names[Lin], target: str, label: str | None) -> None:
        try:
            self._statement(node, names, target, label)
        except Unsupported as err:
            if not err.located:
                err.located, err.pos = True, node.pos
            raise

    def _statement(self, node: Node, names: Names[Lin], target: str,
                   label: str | None) -> None:
        if isinstance(node, Labeled):
            self.statement(node.item, names, target, self.label(node.label.text, names))
            if not node.label.text.isdigit() and not isinstance(node.item, Aux):
                self.name_value(node.label.text)
        elif isinstance(node, Assign):
            self.statement(node.item, names, target, None)
            self.name_value(node.name.text)
        elif isinstance(node, Join):
            self.join(node, names)
        elif isinstance(node, From):
            self.from_value(node)
        elif isinstance(node, LayerStmt):
            self.layers(node, names, target, label)
        elif isinstance(node, Group):
            if label is None and not node.indexed:
                self.body(node.body, names, target)
            else:
                name = label if label is not None else default_name(names, "seq")
                if self.explicit and (has_joins(node.body) or
                                      any(w.text in self.wanted for w in definitions(node.body))):
                    self.namespace(node, name, target)   # its values are forward's variables
                else:
                    self.group(node, name, target)
        elif isinstance(node, Repeat):
            self.repeat(node, names, target, label)
        elif isinstance(node, Residual):
            self.residual(node, names, target)
        elif isinstance(node, Merge):
            self.merge(node, names, target, label)
        elif isinstance(node, Gate):
            self.gate(node, names, target, label)
        elif isinstance(node, Aux):
            self.aux(node, names, target, label)
        elif isinstance(node, Call):
            name = label if label is not None else default_name(names, node.name.text)
            self.call(node, name, target)

    def label(self, text: str, names: Names[Lin]) -> str:
        """A label as a Python string expression: `'conv1'`, or `f"block{i}-{j}"` where
        it has `$params`; a number in `[ … ]` sets the position the next items count from."""
        if "$" in text:
            from ...syntax.words import LABEL_PARAM
            parts = LABEL_PARAM.split(text)
            out = "".join(p.replace("{", "{{").replace("}", "}}") if n % 2 == 0 else
                          "{" + self.symbolic(E.Name(p)).python() + "}"
                          for n, p in enumerate(parts))
            return f'f"{out}"'
        if names.indexed and text.isdigit():
            names.at(int(text))
        return repr(text)

    def symbolic(self, e: E.Expr) -> E.Expr:
        """An expression of the spec as the generated code computes it."""
        return SymbolicReading(LayerStmt(None, "", []), self.env, lambda: self.cur).expression(e)

    def register(self, target: str, name: str, module: str) -> str:
        """Add `module` to `target` under `name`; return how forward refers to it."""
        if self.capture is not None:
            self.capture.append((name, module))
            return ""
        plain = name.startswith("'") and name[1:-1].isidentifier() and \
            not keyword.iskeyword(name[1:-1])
        if target == "self" and plain:
            attr = name[1:-1]
            if attr in self.parts:
                return self.another_part(attr, module)
            self.parts[attr] = 1
            self.line(f"self.{attr} = {module}")
            return f"self.{attr}"
        if target.startswith("self.") and plain:   # inside a namespace (values.py)
            self.line(f"{target}.{name[1:-1]} = {module}")
            return f"{target}.{name[1:-1]}"
        self.line(f"{target}.add_module({name}, {module})")
        if plain:
            return f"{target}.{name[1:-1]}"
        return f"getattr({target}, {name})"

    def another_part(self, attr: str, module: str) -> str:
        """A second group labelled `attr:` (netspec's names continue the first's): one
        container `self.attr` holds the children of both, so the state_dict keys are
        netspec's; forward runs each part from `self.attr_parts`, a tuple torch does not
        register (the parts share the container's modules)."""
        if self.parts[attr] == 1:   # the first part moves into the tuple
            first = f"self.{attr} = "
            i = next(n for n, text in enumerate(self.cls.init) if text.strip().startswith(first))
            pad = self.cls.init[i][:len(self.cls.init[i]) - len(self.cls.init[i].lstrip())]
            expr = self.cls.init[i].strip()[len(first):]
            self.cls.init[i:i + 1] = [
                f"{pad}self.{attr} = nn.Module()   # the parts labelled `{attr}:` share it",
                f"{pad}self.{attr}_parts = ({expr},)",
                f"{pad}for key, child in self.{attr}_parts[0].named_children():",
                f"{pad}    self.{attr}.add_module(key, child)"]
            self.cls.forward = [text.replace(f"self.{attr}(", f"self.{attr}_parts[0](")
                                for text in self.cls.forward]
        n = self.parts[attr]
        self.parts[attr] = n + 1
        self.line(f"self.{attr}_parts += ({module},)")
        self.line(f"for key, child in self.{attr}_parts[{n}].named_children():\n"
                  f"    self.{attr}.add_module(key, child)")
        return f"self.{attr}_parts[{n}]"

    def apply(self, ref: str) -> None:
        if self.explicit:
            self.fline(f"x = {ref}(x)")

    def layers(self, node: LayerStmt, names: Names[Lin], target: str, label: str | None) -> None:
        """A layer statement: its module (and its shorthand activation's) under their names."""
        for n, stmt in enumerate(s for s in (node, node.act) if s is not None):
            kind = registry.reader(stmt.keyword)
            if kind.kind == "input":
                continue
            self._name = label if n == 0 and label is not None \
                else default_name(names, kind.made_kind(stmt))
            self._target, self._stmt = target, stmt
            module = kind.torch(SymbolicReading(stmt, self.env, lambda: self.cur), self)
            if module is not None:
                self.apply(self.register(target, self._name, module))

    def group(self, node: Group, name: str, target: str) -> None:
        explicit, self.explicit = self.explicit, False
        module = self.module_of(node)
        self.explicit = explicit
        self.apply(self.register(target, name, module))

    def module_of(self, node: Group) -> str:
        """A group as one `nn.Sequential`: an expression if every item is one module, else a
        variable filled by the lines written before."""
        if has_joins(node.body):
            raise Unsupported("a residual or concat directly inside a named or `[ ]` group "
                              "(put it in a block)")
        saved = (self.cur, self.vector, self.capture, dict(self.tmp),
                 len(self.gen.windows) if self.gen.windows is not None else 0)
        if node.indexed:   # `nn.Sequential(a, b, c)` when every item is one module
            self.capture = []
            try:
                self.body(node.body, scope(True), "")
                items = self.capture
                if [n for n, _ in items] == [repr(str(i)) for i in range(len(items))]:
                    self.capture = saved[2]
                    return call_expr("nn.Sequential", [m for _, m in items])
            except _NotInline:
                pass
            self.cur, self.vector, self.capture, self.tmp = saved[:4]
            if self.gen.windows is not None:
                del self.gen.windows[saved[4]:]
        var = self.fresh("seq")
        self.line(f"{var} = nn.Sequential()")
        self.body(node.body, scope(node.indexed), var)
        return var

    def repeat(self, node: Repeat, names: Names[Lin], target: str, label: str | None) -> None:
        symbolic = node.count.symbolic
        inner = scope(True) if label is not None else names
        inner_target = target
        if label is not None:
            var = self.fresh("seq")
            self.line(f"{var} = nn.Sequential()")
            ref = self.register(target, label, var)
            inner_target = var
        counter = node.var.text if node.var is not None else None
        count = node.count.exprs[0]
        if not symbolic and (self.explicit and label is None or count.n == 1):
            explicit, self.explicit = self.explicit, self.explicit and label is None
            env = self.env
            for i in range(count.n):
                self.env = env if counter is None else {**env, counter: E.Num(i)}
                self.statement(node.item, inner, inner_target, None)
            self.env, self.explicit = env, explicit
        else:
            if self.explicit and label is None:
                raise Unsupported("a `repeat` with a parameter count in a block with a "
                                  "residual or concat")
            n = self.symbolic(count).python() if symbolic else str(count.n)
            self.loop(node.item, inner, inner_target, n, counter)
        if label is not None:
            self.apply(ref)

    def loop(self, item: Node, names: Names[Lin], target: str, n: str,
             counter: str | None = None) -> None:
        """`for i in range(n):` writing the item once with names counted from i (the
        loop variable is the repeat's own counter, `repeat N as j`, if it has one)."""
        var = counter or _LOOP_VARS[self.loop_depth]
        env = self.env
        if counter is not None:
            self.env = {**env, counter: E.Name(counter)}
        self.channels()
        # a dry run counts the names one iteration takes
        dry = Writer(self.gen, ClassText("", "", "", True), self.env, self.vector, CH)
        dry.explicit = False
        probe = scope(names.indexed)
        dry.statement(item, probe, "m", None)
        start_counts, start_index = dict(names.counts), names.next_index
        for kind, c in probe.counts.items():
            names.counts[kind] = names.counts.get(kind, Lin()) + c.times(var)
        names.next_index = names.next_index + probe.next_index.times(var)
        uses_var = bool(probe.counts or probe.next_index.const) or counter is not None
        self.line(f"for {var if uses_var else '_'} in range({n}):")
        self.indent += 1
        self.loop_depth += 1
        explicit, self.explicit = self.explicit, False
        self.statement(item, names, target, None)
        end = self.cur
        self.channels()
        self.explicit, self.env = explicit, env
        self.loop_depth -= 1
        self.indent -= 1
        if not end.names() & {"ch", var}:   # repeat counts are at least 1: the body's last
            self.cur = end                    # formula
        for kind, c in probe.counts.items():
            names.counts[kind] = start_counts.get(kind, Lin()) + (
                c.scaled(int(n)) if n.isdigit() else c.times(f"({n})"))
        names.next_index = start_index + (probe.next_index.scaled(int(n)) if n.isdigit()
                                          else probe.next_index.times(f"({n})"))

    def aux(self, node: Aux, names: Names[Lin], target: str, label: str | None) -> None:
        """An aux head: its modules exist (their weights are in the state_dict), but
        `forward` does not run them, as torchvision's GoogLeNet and Inception at eval."""
        first, saved = len(self.cls.forward), (self.cur, self.vector, self.gen.windows)
        self.gen.windows = None
        if label is not None or node.body.indexed:
            self.group(node.body, label if label is not None else default_name(names, "seq"),
                       target)
        else:
            self.body(node.body.body, names, target)
        del self.cls.forward[first:]
        self.cur, self.vector, self.gen.windows = saved

    def as_built(self, node: Residual, cond: E.Expr, c_in: E.Name, out: E.Expr) -> E.Expr:
        """`cond` (when this residual's shortcut is used), checked against what the builder
        decided for each instance of it: the generated module must use the shortcut exactly
        where netspec does. The shape test the builder makes can differ from the written
        condition (a stride on a 1×1 input keeps H×W); then the decision is written as a
        constant if every instance made the same one, else it is an error."""
        fixed = {k: v.n for k, v in self.env.items() if isinstance(v, E.Num)}   # unrolled
        seen = set()
        agrees = True
        for built in ir.instances_of(self.gen.net.tree, node):
            if not isinstance(built, ir.Residual) or any(built.env.get(k) != v for k, v in fixed.items()):
                continue
            used = not built.skipped if node.optional else built.projected
            seen.add(used)
            values: dict[str, Any] = {**built.env, "in_channels": built.block_channels,
                                      c_in.id: built.channels[0]}
            if isinstance(out, E.Name):   # the body's channels as a variable (`ch`)
                values[out.id] = built.channels[1]
            try:
                agrees &= bool(cond.value(E.Env(values))) == used
            except (E.EvalError, TypeError):   # a name the module computes as it goes
                agrees = False
        if agrees or not seen:
            return cond
        if len(seen) == 1:
            return E.Num(int(seen.pop()))
        raise Unsupported("a residual whose shortcut depends on the input's height and width "
                          "here (a stride or window that keeps a small input's size)")

