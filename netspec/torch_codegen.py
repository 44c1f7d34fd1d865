"""`netspec export --torch`: a spec as a readable PyTorch module (only torch needed to run it).

One `nn.Module` class per block definition, its parameters the constructor's
arguments (after `in_channels`, the channels it reads), and one class for the
network. The code is written from the syntax tree the builder keeps
(`Network.syntax`), so a block is written once, with its `$params`, not once per
call: `repeat` becomes a loop, `residual` a `forward` with the add, `project` a
module that exists only where the body changes the shape (as torchvision's
`downsample`), `concat` a `torch.cat`. Modules are named as netspec names layers,
so the network's `state_dict` keys and shapes are exactly netspec's weight names,
and netspec's `.npz` weights load with `load_state_dict`.

Numbers written as `$p` or `{expression}` are replaced by stand-in integers
before the statement is handed to netspec's own LayerMaker (so the options are
read exactly as the builder reads them), and the stand-ins are written back as
the Python expressions they stand for. Each layer kind's constructor is one
entry of `MODULES`; a new kind adds one.

Nothing here imports torch (or NumPy): generating the code needs no more than
`netspec check` does.
"""

from __future__ import annotations

import ast
import keyword
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from ._lark import Token
from .errors import Diagnostic, NetspecError, Reporter
from .layers import Layer, Pos
from .maker import LayerMaker
from .syntax import Aux, BlockDef, Call, Gate, Group, Labeled, LayerStmt, Repeat, Residual
from .syntax import Concat as ConcatNode

if TYPE_CHECKING:
    from .network import Network

_PARAM = re.compile(r"\$([A-Za-z_]\w*)|\{([^{}\n]*)\}")
_STAND_IN = 1_000_003_000   # stand-ins count up from here; no real spec uses such sizes
_LOOP_VARS = "ijkl"


class TorchCodegenError(NetspecError):
    """A spec construct the PyTorch generator cannot write (yet)."""


def _camel(name: str) -> str:
    out = "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\W]+", name) if part)
    return out if out and not out[0].isdigit() else f"Net{out}"


@dataclass
class _Lin:
    """A counter in generated code: constant + Σ coefficient·variable (loops make it symbolic)."""

    const: int = 0
    terms: dict[str, int] = field(default_factory=dict)

    def plus(self, other: _Lin, times: str | None = None) -> _Lin:
        if times is None:
            terms = dict(self.terms)
            for k, v in other.terms.items():
                terms[k] = terms.get(k, 0) + v
            return _Lin(self.const + other.const, terms)
        if other.terms:
            raise _Unsupported("nested loops whose counts are parameters")
        terms = dict(self.terms)
        if other.const:
            terms[times] = terms.get(times, 0) + other.const
        return _Lin(self.const, terms)

    def py(self) -> str:
        parts = [f"{var}" if c == 1 else f"{c} * {var}" for var, c in self.terms.items() if c]
        if self.const or not parts:
            parts.append(str(self.const))
        return " + ".join(parts)

    @property
    def static(self) -> bool:
        return not any(self.terms.values())


class _NotInline(Exception):
    """A group that cannot be written as one `nn.Sequential(…)` expression."""


class _Unsupported(Exception):
    """A construct the generator does not write; becomes a TorchCodegenError with its position.

    `pos` is the innermost statement being written when it was raised (`located`
    once that is known; an outer statement leaves it alone)."""

    located = False
    pos: Pos | None = None


class _Scope:
    """Names in a module, as the builder gives them: by kind and count, or by position."""

    def __init__(self, indexed: bool) -> None:
        self.indexed = indexed
        self.counts: dict[str, _Lin] = {}
        self.index = _Lin()

    def take(self, kind: str) -> _Lin:
        """The next default name's number (1-based count, or 0-based index)."""
        if self.indexed:
            n = self.index
            self.index = self.index.plus(_Lin(1))
            return n
        n = self.counts.get(kind, _Lin()).plus(_Lin(1))
        self.counts[kind] = n
        return n

    def name(self, kind: str) -> str:
        """A Python string expression: `"conv3"`, `"4"`, or an f-string in a loop."""
        n = self.take(kind)
        stem = "" if self.indexed else kind
        return repr(f"{stem}{n.const}") if n.static else f'f"{stem}{{{n.py()}}}"'


@dataclass
class _Class:
    """One generated class: its constructor lines and forward lines."""

    name: str
    signature: str
    doc: str
    sequential: bool
    init: list[str] = field(default_factory=list)
    forward: list[str] = field(default_factory=list)
    takes_branch: bool = False   # forward(x, branch): a `to branch` its caller's branch feeds


class _Writer:
    """Walks the syntax tree of one class body and writes its constructor and forward."""

    def __init__(self, gen: TorchGenerator, cls: _Class, env: dict[str, str],
                 vector: bool, in_channels: str) -> None:
        self.gen = gen
        self.cls = cls
        self.env = env                 # block parameter → Python expression
        self.vector = vector           # the value flowing is a vector (N, F)
        self.cur = in_channels         # Python expression of the channels now
        self.indent = 2
        self.fwd_indent = 2
        self.loop_depth = 0
        self.tmp: dict[str, int] = {}
        self.explicit = not cls.sequential
        self.capture: list[tuple[str, str]] | None = None   # (name, module) of a Sequential
        self.branch_inputs: list[str] = []   # forward variables the enclosing branches read
        self.parts: dict[str, int] = {}   # attribute → how many parts share its name

    # ---- output ----------------------------------------------------------------------
    def line(self, text: str) -> None:
        if self.capture is not None:
            raise _NotInline
        pad = "    " * self.indent
        self.cls.init.append(pad + text.replace("\n", "\n" + pad))

    def fline(self, text: str) -> None:
        self.cls.forward.append("    " * self.fwd_indent + text)

    def fresh(self, stem: str) -> str:
        self.tmp[stem] = self.tmp.get(stem, 0) + 1
        n = self.tmp[stem]
        return stem if n == 1 else f"{stem}{n}"

    def channels(self) -> str:
        """`ch`, after writing `ch = …` if the current channels are another expression."""
        if self.cur != "ch":
            self.line(f"ch = {self.cur}")
            self.cur = "ch"
        return "ch"

    # ---- numbers ---------------------------------------------------------------------------
    def expr(self, text: str, pos: Any) -> str:
        """A `$p` / `{expression}` as Python, C being the channels read here."""
        body = text.strip()
        whole = _PARAM.fullmatch(body)   # a whole token, `$p` or `{expression}`: `{n-1}` is
        if whole:                        # n − 1, not a set
            body = whole.group(1) or whole.group(2)
        try:
            tree = ast.parse(body.replace("$", "").strip(), mode="eval")
        except SyntaxError:
            raise _Unsupported(f"the expression `{text}`") from None
        gen = self

        class Rewrite(ast.NodeTransformer):
            def visit_Name(self, node: ast.Name) -> ast.AST:
                if node.id in gen.env:
                    return ast.parse(f"({gen.env[node.id]})", mode="eval").body
                if node.id == "C":
                    return ast.parse(f"({gen.cur})", mode="eval").body
                raise _Unsupported(f"`{node.id}` in an expression (the generated module does "
                                   f"not track H and W)")

            def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
                self.generic_visit(node)
                if isinstance(node.op, ast.Div):   # netspec's `/` divides exactly
                    node.op = ast.FloorDiv()
                return node
        return _simplify(ast.unparse(Rewrite().visit(tree)))

    def stand_ins(self, items: list[Any], numbers: dict[int, str]) -> list[Any]:
        """Tokens with `$p`/`{…}` replaced by stand-in integers, recorded in `numbers`."""
        out = []
        for tok in items:
            if isinstance(tok, LayerStmt):
                out.append(LayerStmt(tok.rule, self.stand_ins(tok.items, numbers), tok.pos))
                continue
            if not isinstance(tok, Token) or ("$" not in tok and "{" not in tok):
                out.append(tok)
                continue

            def sub(m: re.Match, tok: Token = tok) -> str:
                value = _STAND_IN + len(numbers)
                numbers[value] = self.expr(m.group(1) or m.group(2), tok)
                return str(value)
            out.append(Token.new_borrow_pos(tok.type, _PARAM.sub(sub, str(tok)), tok))
        return out

    # ---- statements -------------------------------------------------------------------------
    def body(self, nodes: list[Any], scope: _Scope, target: str) -> None:
        for node in nodes:
            self.statement(node, scope, target, None)

    def statement(self, node: Any, scope: _Scope, target: str, label: str | None) -> None:
        try:
            self._statement(node, scope, target, label)
        except _Unsupported as err:
            if not err.located:
                err.located, err.pos = True, getattr(node, "pos", None)
            raise

    def _statement(self, node: Any, scope: _Scope, target: str, label: str | None) -> None:
        if isinstance(node, Labeled):
            self.statement(node.item, scope, target, self.label(node.name, scope))
        elif isinstance(node, LayerStmt):
            self.layers(node, scope, target, label)
        elif isinstance(node, Group):
            if label is None and not node.indexed:
                self.body(node.body, scope, target)
            else:
                name = label if label is not None else scope.name("seq")
                self.group(node, name, target)
        elif isinstance(node, Repeat):
            self.repeat(node, scope, target, label)
        elif isinstance(node, Residual):
            self.residual(node, scope, target)
        elif isinstance(node, ConcatNode):
            self.concat(node, scope, target, label)
        elif isinstance(node, Gate):
            self.gate(node, scope, target, label)
        elif isinstance(node, Aux):
            self.aux(node, scope, target, label)
        elif isinstance(node, Call):
            name = label if label is not None else scope.name(str(node.name))
            self.call(node, name, target)

    def label(self, tok: Token, scope: _Scope) -> str:
        """A label as a Python string expression: `'conv1'`, or `f"block{i}-{j}"` where
        it has `$params`; a number in `[ … ]` sets the position the next items count from."""
        text = str(tok)
        if "$" in text:
            parts = re.split(r"\$([A-Za-z_]\w*)", text)
            out = "".join(p.replace("{", "{{").replace("}", "}}") if n % 2 == 0 else
                          "{" + self.expr("$" + p, tok) + "}" for n, p in enumerate(parts))
            return f'f"{out}"'
        if scope.indexed and text.isdigit():
            scope.index = _Lin(int(text) + 1)
        return repr(text)

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

    def layers(self, node: LayerStmt, scope: _Scope, target: str, label: str | None) -> None:
        numbers: dict[int, str] = {}
        stmt = LayerStmt(node.rule, self.stand_ins(node.items, numbers), node.pos)
        made = self.gen.maker.make(stmt)
        for n, layer in enumerate(made):
            name = label if n == 0 and label is not None else scope.name(layer.kind)
            if layer.kind == "scale" or layer.kind == "upsample" and layer.target:
                self.forward_only(layer, name, target)
                continue
            emit = MODULES.get(layer.kind)
            if emit is None:
                raise _Unsupported(f"a `{layer.kind}` layer")
            module = emit(_LayerContext(self, layer, numbers))
            if layer.kind == "fc" and not self.vector:
                if self.explicit:
                    self.fline("x = torch.flatten(x, 1)")
                else:
                    flat = name[:-1] + "_flatten'" if name.startswith("'") else \
                        name[:-1] + "_flatten\""
                    self.register(target, flat, "nn.Flatten()")
                self.vector = True
            if layer.kind == "flatten":
                self.vector = True
            self.apply(self.register(target, name, module))

    def forward_only(self, layer: Layer, name: str, target: str) -> None:
        """A layer written into forward: a layer scale (a bare parameter of this module,
        as torch's CNBlock keeps it) or an upsampling to the size of another value."""
        if not self.explicit or target != "self":
            raise _Unsupported(f"a `{layer.text}` inside a `[ ]` group or a loop (put it in a "
                               f"block)")
        if layer.kind == "scale":
            if not (name.startswith("'") and name[1:-1].isidentifier()):
                raise _Unsupported(f"a layer scale named {name} (label it with a plain name)")
            self.line(f"self.{name[1:-1]} = nn.Parameter(torch.ones({self.cur}, 1, 1))")
            self.fline(f"x = x * self.{name[1:-1]}")
            return
        self.fline(f"x = {self.resize_to(layer, self.reference(layer))}")
        if self.gen.windows is not None:
            self.gen.windows.append("False")

    def reference(self, layer: Layer) -> str:
        """The forward variable whose H×W `upsample … to input|branch` takes."""
        if layer.target == "branch":
            if not self.branch_inputs:
                if not self.gen.in_block:
                    raise _Unsupported("`to branch` outside a branch")
                self.cls.takes_branch = True   # the caller passes its branch's input
                return "branch"
            return self.branch_inputs[-1]
        if self.gen.in_block:
            raise _Unsupported("`upsample … to input` inside a block (use it at the top level)")
        if self.cls.forward[:1] != ["        image = x"]:
            self.cls.forward.insert(0, "        image = x")
        return "image"

    @staticmethod
    def resize_to(layer: Layer, ref: str) -> str:
        corners = ", align_corners=False" if layer.mode == "bilinear" else ""
        return (f"nn.functional.interpolate(x, size=[{ref}.shape[2], {ref}.shape[3]], "
                f"mode={layer.mode!r}{corners})")

    def group(self, node: Group, name: str, target: str) -> None:
        explicit, self.explicit = self.explicit, False
        module = self.module_of(node)
        self.explicit = explicit
        self.apply(self.register(target, name, module))

    def module_of(self, node: Group) -> str:
        """A group as one `nn.Sequential`: an expression if every item is one module, else a
        variable filled by the lines written before."""
        if _has_joins(node.body):
            raise _Unsupported("a residual or concat directly inside a named or `[ ]` group "
                               "(put it in a block)")
        saved = (self.cur, self.vector, self.gen.fc_index, self.capture, dict(self.tmp),
                 len(self.gen.windows) if self.gen.windows is not None else 0)
        if node.indexed:   # `nn.Sequential(a, b, c)` when every item is one module
            self.capture = []
            try:
                self.body(node.body, _Scope(True), "")
                items = self.capture
                if [n for n, _ in items] == [repr(str(i)) for i in range(len(items))]:
                    self.capture = saved[3]
                    return _call_expr("nn.Sequential", [m for _, m in items])
            except _NotInline:
                pass
            self.cur, self.vector, self.gen.fc_index, self.capture, self.tmp = saved[:5]
            if self.gen.windows is not None:
                del self.gen.windows[saved[5]:]
        var = self.fresh("seq")
        self.line(f"{var} = nn.Sequential()")
        self.body(node.body, _Scope(node.indexed), var)
        return var

    def call(self, node: Call, name: str, target: str) -> None:
        block = self.gen.blocks.get(str(node.name))
        if block is None:
            raise _Unsupported(f"unknown block `{node.name}`")
        cls = self.gen.block_class(block)
        args = [self.cur]
        values = {"in_channels": self.cur}
        params = [str(p) for p, _ in block.params]
        for n, (key, value) in enumerate(node.args):
            inner = str(value)[1:-1] if str(value).startswith("{") else str(value)  # `{C//4}`
            text = self.expr(inner, value) if ("$" in value or "{" in value) else str(value)
            args.append(f"{key}={text}" if key is not None else text)
            values[str(key) if key is not None else params[n]] = text
        for p, default in block.params:
            values.setdefault(str(p), str(default))
        module = f"{cls.name}({', '.join(args)})"
        if self.gen.windows is not None:   # in a residual body: does the call keep H×W?
            for cond in self.gen.keeps[cls.name]:
                keeps = _substitute(cond, values)
                if keeps is None:
                    raise _Unsupported(f"a call of `{block.name}` in a residual whose "
                                       f"shortcut depends on the shape")
                self.gen.windows.append(keeps)
        out = _substitute(self.gen.out_channels.get(cls.name), values)
        if cls.takes_branch:   # forward(x, branch): only where the caller writes forward
            if self.capture is not None or not self.explicit or not self.branch_inputs:
                raise _Unsupported(f"a call of `{block.name}` (its `to branch` needs the "
                                   f"input of a branch around the call)")
            ref = self.register(target, name, module)
            self.fline(f"x = {ref}(x, {self.branch_inputs[-1]})")
            self.cur = out if out is not None else f"{ref}.out_channels"
        elif out is not None:
            self.apply(self.register(target, name, module))
            self.cur = out
        else:
            var = self.fresh("block")
            self.line(f"{var} = {module}")
            self.apply(self.register(target, name, var))
            self.line(f"ch = {var}.out_channels")
            self.cur = "ch"
        self.vector = self.gen.ends_vector.get(cls.name, self.vector)

    def repeat(self, node: Repeat, scope: _Scope, target: str, label: str | None) -> None:
        count = str(node.count)
        symbolic = "$" in count or "{" in count
        inner = _Scope(True) if label is not None else scope
        inner_target = target
        if label is not None:
            var = self.fresh("seq")
            self.line(f"{var} = nn.Sequential()")
            ref = self.register(target, label, var)
            inner_target = var
        counter = str(node.var) if node.var is not None else None
        if not symbolic and (self.explicit and label is None or int(count) == 1):
            explicit, self.explicit = self.explicit, self.explicit and label is None
            env = self.env
            for i in range(int(count)):
                self.env = env if counter is None else {**env, counter: str(i)}
                self.statement(node.item, inner, inner_target, None)
            self.env, self.explicit = env, explicit
        else:
            if self.explicit and label is None:
                raise _Unsupported("a `repeat` with a parameter count in a block with a "
                                   "residual or concat")
            n = self.expr(count[1:-1] if count.startswith("{") else count, node.count) \
                if symbolic else count
            self.loop(node.item, inner, inner_target, n, counter)
        if label is not None:
            self.apply(ref)

    def loop(self, item: Any, scope: _Scope, target: str, n: str,
             counter: str | None = None) -> None:
        """`for i in range(n):` writing the item once with names counted from i (the
        loop variable is the repeat's own counter, `repeat N as j`, if it has one)."""
        var = counter or _LOOP_VARS[self.loop_depth]
        env = self.env
        if counter is not None:
            self.env = {**env, counter: counter}
        self.channels()
        # a dry run counts the names one iteration takes
        dry = _Writer(self.gen, _Class("", "", "", True), self.env, self.vector, "ch")
        dry.explicit = False
        probe = _Scope(scope.indexed)
        dry.statement(item, probe, "m", None)
        start_counts, start_index = dict(scope.counts), scope.index
        for kind, c in probe.counts.items():
            scope.counts[kind] = scope.counts.get(kind, _Lin()).plus(c, var)
        scope.index = scope.index.plus(probe.index, var)
        uses_var = bool(probe.counts or probe.index.const) or counter is not None
        self.line(f"for {var if uses_var else '_'} in range({n}):")
        self.indent += 1
        self.loop_depth += 1
        explicit, self.explicit = self.explicit, False
        self.statement(item, scope, target, None)
        end = self.cur
        self.channels()
        self.explicit, self.env = explicit, env
        self.loop_depth -= 1
        self.indent -= 1
        names = {x.id for x in ast.walk(ast.parse(end, mode="eval")) if isinstance(x, ast.Name)}
        if not names & {"ch", var}:   # repeat counts are at least 1: the body's last formula
            self.cur = end
        for kind, c in probe.counts.items():
            scope.counts[kind] = start_counts.get(kind, _Lin()).plus(c, f"({n})") \
                if not n.isdigit() else start_counts.get(kind, _Lin()).plus(_Lin(c.const * int(n)))
        scope.index = start_index.plus(probe.index, f"({n})") if not n.isdigit() else \
            start_index.plus(_Lin(probe.index.const * int(n)))

    def residual(self, node: Residual, scope: _Scope, target: str) -> None:
        if not self.explicit:
            raise _Unsupported("a residual inside a `[ ]` group or a loop (put it in a block)")
        c_in = self.fresh("c_in")
        self.line(f"{c_in} = {self.cur}")
        c_in_line = len(self.cls.init) - 1
        identity = self.fresh("identity")
        self.fline(f"{identity} = x")
        outer, windows = self.gen.windows, []
        self.gen.windows = windows
        self.branch_inputs.append(identity)
        self.body(node.body.body, scope, target) if isinstance(node.body, Group) else \
            self.statement(node.body, scope, target, None)
        self.branch_inputs.pop()
        self.gen.windows = outer
        if outer is not None:   # a residual keeps H×W exactly when its body does
            outer.extend(windows)
        out = self.cur
        if out != "ch" and "ch" in out:
            out = self.channels()
        conds = [x for x in map(_simplify, [f"{out} == {c_in}", *dict.fromkeys(windows)])
                 if x != "True"]
        same = " and ".join(conds) or "True"
        differs = " or ".join(_negate(x) for x in conds) or "False"
        if node.optional:
            same = self.as_built(node, same, c_in, out)
        elif node.shortcut_kind == "project":
            differs = self.as_built(node, differs, c_in, out)
        if node.shortcut_kind is None:
            if not node.optional or same == "True":
                if not any(c_in in line for line in self.cls.init[c_in_line + 1:]):
                    del self.cls.init[c_in_line]   # a plain identity: c_in is never read
                self.fline(f"x = x + {identity}")
            elif same == "False":   # never added here
                self.cls.forward.remove("    " * self.fwd_indent + f"{identity} = x")
            else:
                flag = self.fresh("skip")
                self.line(f"self.{flag} = {same}")
                self.fline(f"if self.{flag}:")
                self.fline(f"    x = x + {identity}")
            scope.take("add")
            return
        group = node.shortcut
        label = None
        if isinstance(group, Labeled):
            label, group = str(group.name), group.item
        if label is None or not label.isidentifier():
            raise _Unsupported("an unlabelled projection (label it: `project downsample: [ … ]`)"
                               if label is None else f"a projection labelled `{label}`")
        saved, self.cur = self.cur, c_in
        explicit, self.explicit = self.explicit, False
        conditional = node.shortcut_kind == "project" and differs != "True"
        if differs == "False" and node.shortcut_kind == "project":
            pass   # never used here: no module
        elif conditional:
            self.line(f"if {differs}:")
            self.indent += 1
            self.line(f"self.{label} = {self.module_of(group)}")
            self.indent -= 1
            self.line("else:")
            self.line(f"    self.{label} = None")
            self.fline(f"if self.{label} is not None:")
            self.fline(f"    {identity} = self.{label}({identity})")
        else:
            self.line(f"self.{label} = {self.module_of(group)}")
            self.fline(f"{identity} = self.{label}({identity})")
        self.explicit = explicit
        self.cur = saved
        self.fline(f"x = x + {identity}")
        scope.take("add")

    def as_built(self, node: Residual, cond: str, c_in: str, out: str) -> str:
        """`cond` (when this residual's shortcut is used), checked against what the builder
        decided for each instance of it: the generated module must use the shortcut exactly
        where netspec does. The shape test the builder makes can differ from the written
        condition (a stride on a 1×1 input keeps H×W); then the decision is written as a
        constant if every instance made the same one, else it is an error."""
        fixed = {k: int(v) for k, v in self.env.items() if v.isdigit()}   # unrolled counters
        seen = set()
        agrees = True
        for built, env, block_input, (chan_in, chan_out), used in self.gen.net.residuals:
            if built is not node or any(env.get(k) != v for k, v in fixed.items()):
                continue
            seen.add(used)
            names = {**env, "in_channels": block_input, c_in: chan_in}
            if out.isidentifier():   # the body's channels as a variable (`ch`)
                names[out] = chan_out
            try:
                agrees &= bool(eval(cond, {"__builtins__": {}}, names)) == used
            except Exception:  # noqa: BLE001 (a name the module computes as it goes)
                agrees = False
        if agrees or not seen:
            return cond
        if len(seen) == 1:
            return repr(seen.pop())
        raise _Unsupported("a residual whose shortcut depends on the input's height and width "
                           "here (a stride or window that keeps a small input's size)")
    def gate(self, node: Gate, scope: _Scope, target: str, label: str | None) -> None:
        """`x = inp * gate(inp)`: the gate's modules under its label, or in this scope."""
        if not self.explicit:
            raise _Unsupported("a gate inside a `[ ]` group or a loop (put it in a block)")
        c_in, vector = self.fresh("c_in"), self.vector
        self.line(f"{c_in} = {self.cur}")
        inp = self.fresh("inp")
        self.fline(f"{inp} = x")
        outer, self.gen.windows = self.gen.windows, None   # the product keeps the input's H×W
        if label is not None:
            self.group(node.body, label, target)
        else:
            self.body(node.body.body, scope, target)
        self.gen.windows = outer
        self.fline(f"x = {inp} * x")
        self.cur, self.vector = c_in, vector
        scope.take("mul")

    def aux(self, node: Aux, scope: _Scope, target: str, label: str | None) -> None:
        """An aux head: its modules exist (their weights are in the state_dict), but
        `forward` does not run them, as torchvision's GoogLeNet and Inception at eval."""
        first, saved = len(self.cls.forward), (self.cur, self.vector, self.gen.windows)
        self.gen.windows = None
        if label is not None or node.body.indexed:
            self.group(node.body, label if label is not None else scope.name("seq"), target)
        else:
            self.body(node.body.body, scope, target)
        del self.cls.forward[first:]
        self.cur, self.vector, self.gen.windows = saved

    def concat(self, node: ConcatNode, scope: _Scope, target: str,
               concat_label: str | None = None) -> None:
        if not self.explicit:
            raise _Unsupported("a concat inside a `[ ]` group or a loop (put it in a block)")
        c_in = self.fresh("c_in")
        self.line(f"{c_in} = {self.cur}")
        n = len(node.branches)
        inp = self.fresh("chunks" if node.split else "inp")
        starts = [inp] * n
        if not node.split:
            self.fline(f"{inp} = x")
        else:   # each branch reads its own run of channels
            chunks = inp
            self.fline(f"{chunks} = torch.chunk(x, {n}, 1)")
            starts = [f"{chunks}[{i}]" for i in range(n)]
            self.line(f"{c_in} = {c_in} // {n}")
        if concat_label is not None:   # unlabelled `[ ]` branches: label.0, label.1, …
            if not concat_label.startswith("'") or not concat_label[1:-1].isidentifier():
                raise _Unsupported(f"a concat labelled {concat_label}")
            self.line(f"self.{concat_label[1:-1]} = nn.ModuleList()")
        outs, chans = [], []
        for i, (branch, start) in enumerate(zip(node.branches, starts)):
            label = None
            if isinstance(branch, Labeled):
                label, branch = self.label(branch.name, scope), branch.item
            self.cur = c_in
            if not branch.body:
                outs.append(start)
                chans.append(c_in)
                continue
            if outs or self.cls.forward[-1].strip() != f"{start} = x":
                self.fline(f"x = {start}")
            self.branch_inputs.append(start)
            body, resize = branch, None
            last = branch.body[-1]
            if isinstance(last, LayerStmt) and last.rule == "upsample" and \
                    str(last.items[-1]) in ("branch", "input") and (branch.indexed or label):
                # torchvision's ASPPPooling: a Sequential, then back to the branch's size
                body = Group(branch.body[:-1], branch.indexed, branch.pos)
                resize = self.gen.maker.make(last)[0]
            if concat_label is not None:
                if label is not None or not branch.indexed:
                    raise _Unsupported("a labelled or `{ }` branch in a labelled concat")
                explicit, self.explicit = self.explicit, False
                module = self.module_of(body)
                self.explicit = explicit
                self.line(f"self.{concat_label[1:-1]}.append({module})")
                self.fline(f"x = self.{concat_label[1:-1]}[{i}](x)")
            elif label is not None or branch.indexed:
                name = label if label is not None else scope.name("seq")
                self.group(body, name, target)
            else:
                self.body(branch.body, scope, target)
            if resize is not None:
                self.fline(f"x = {self.resize_to(resize, self.reference(resize))}")
            self.branch_inputs.pop()
            out = self.fresh("y")
            self.fline(f"{out} = x")
            outs.append(out)
            if node.op != "concat":   # add/mul: the channels are the last branch's
                chans.append(self.cur)
                continue
            c_out = self.fresh("c_out")
            self.line(f"{c_out} = {self.cur}")
            chans.append(c_out)
        if node.op == "concat":
            self.fline(f"x = torch.cat([{', '.join(outs)}], 1)")
            self.cur = " + ".join(chans)
        else:   # add / mul: torch broadcasts a 1×1×C branch over H×W
            self.fline(f"x = {(' + ' if node.op == 'add' else ' * ').join(outs)}")
            self.cur = chans[-1]
        scope.take("concat")


def _simplify(text: str) -> str:
    """Fold what is constant (`1 != 1 or not (True)` → `False`); leave the rest as written,
    without the parentheses it does not need (`2 * (k // 2)` keeps its own)."""
    try:
        return repr(eval(text, {"__builtins__": {}}, {}))   # only literals and names reach here
    except Exception:  # noqa: BLE001 (anything with a name stays an expression)
        try:
            return ast.unparse(ast.parse(text, mode="eval"))
        except SyntaxError:
            return text


def _call_expr(fn: str, args: list[str]) -> str:
    """`fn(a, b)` on one line when short, else one argument per line."""
    one = f"{fn}({', '.join(args)})"
    if len(one) <= 72 and "\n" not in one:
        return one
    inner = "".join("    " + a.replace("\n", "\n    ") + ",\n" for a in args)
    return f"{fn}(\n{inner})"


def _substitute(expr: str | None, values: dict[str, str]) -> str | None:
    """A block's out_channels expression for one call, or None if it is not a formula."""
    if expr is None:
        return None
    tree = ast.parse(expr, mode="eval")
    if any(isinstance(n, ast.Name) and n.id not in values for n in ast.walk(tree)):
        return None

    class Sub(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:
            return ast.parse(f"({values[node.id]})", mode="eval").body
    return _simplify(ast.unparse(Sub().visit(tree)))


def _negate(cond: str) -> str:
    """`not cond`, written plainly for the usual `s == 1`."""
    m = re.fullmatch(r"(.+) == (.+)", cond)
    return f"{m.group(1)} != {m.group(2)}" if m and " and " not in cond and " or " not in cond \
        else _simplify(f"not ({cond})")


def _has_joins(nodes: list[Any]) -> bool:
    for node in nodes:
        while isinstance(node, Labeled):
            node = node.item
        if isinstance(node, (Residual, ConcatNode, Gate, Aux)):
            return True
        if isinstance(node, Group) and not node.indexed and _has_joins(node.body):
            return True
        if isinstance(node, Repeat) and _has_joins([node.item]):
            return True
    return False


def _has_param_loops(nodes: list[Any]) -> bool:
    for node in nodes:
        while isinstance(node, Labeled):
            node = node.item
        if isinstance(node, Repeat) and ("$" in node.count or "{" in node.count):
            return True
        if isinstance(node, Group) and not node.indexed and _has_param_loops(node.body):
            return True
    return False


class _LayerContext:
    """What a module writer needs: the layer (stand-ins inside) and the writer's state."""

    def __init__(self, writer: _Writer, layer: Layer, numbers: dict[int, str]) -> None:
        self.w = writer
        self.layer = layer
        self.numbers = numbers

    def py(self, value: Any) -> str:
        """A number as Python: a literal, or the expression its stand-in stands for."""
        if isinstance(value, (tuple, list)):
            items = [self.py(v) for v in value]
            return items[0] if len(set(items)) == 1 else f"({', '.join(items)})"
        return self.numbers.get(value, repr(value))

    def window(self, kernel: Any, stride: Any, padding: Any, dilation: Any,
               default_stride: str = "1", conv: bool = False) -> str:
        """`stride=…, padding=…` for conv and pool; records whether it keeps H×W."""
        k = self.py(kernel)
        s = "1" if stride is None else self.py(stride)
        d = self.py(dilation)
        if padding == "same" and s != "1":
            raise _Unsupported("`same` padding with a stride (the padding depends on the "
                               "input size)")
        if padding == "same" and conv:
            p = "'same'"   # torch pads as netspec does: the odd pixel at the end
        elif padding == "same":
            if any(f in self.numbers or f % 2 == 0 for f in kernel):
                raise _Unsupported("`same` pooling with an even or parameter kernel")
            p = self.py(tuple((f - 1) // 2 for f in kernel))
        elif padding == "valid":
            p = "0"
        else:
            p = self.py(padding)
        if self.w.gen.windows is not None:   # inside a residual body: does it keep H×W?
            same = "True" if padding == "same" else f"2 * ({p}) == ({d}) * ({k} - 1)"
            for cond in (f"{s if stride is not None else default_stride} == 1", same):
                self.w.gen.windows.append(_simplify(cond))
        opts = []
        if stride is not None and s != default_stride:
            opts.append(f"stride={s}")
        if p != "0":
            opts.append(f"padding={p}")
        if d != "1":
            opts.append(f"dilation={d}")
        return ", ".join(opts)


def _conv(c: _LayerContext) -> str:
    layer = c.layer
    cin = c.w.cur
    k = c.py(layer.filters)
    args = [cin, k, c.py(layer.kernel)]
    opts = c.window(layer.kernel, layer.stride_opt, layer.padding, layer.dilation, conv=True)
    if opts:
        args.append(opts)
    if c.py(layer.groups) != "1":
        args.append(f"groups={c.py(layer.groups)}")
    if not layer.bias:
        args.append("bias=False")
    c.w.cur = k
    return f"nn.Conv2d({', '.join(args)})"


def _pool(c: _LayerContext) -> str:
    layer = c.layer
    if layer.global_pool:
        if c.w.gen.windows is not None:
            c.w.gen.windows.append("False")
        return f"nn.Adaptive{'Max' if layer.mode == 'max' else 'Avg'}Pool2d(1)"
    args = [c.py(layer.kernel)]
    opts = c.window(layer.kernel, layer.stride_opt, layer.padding, 1, c.py(layer.kernel))
    if opts:
        args.append(opts)
    if layer.ceil_mode:
        args.append("ceil_mode=True")
    if layer.mode == "max":
        return f"nn.MaxPool2d({', '.join(args)})"
    return f"nn.AvgPool2d({', '.join(args)}, count_include_pad={layer.count_pad})"


def _fc(c: _LayerContext) -> str:
    units = c.py(c.layer.units)
    if c.w.vector:
        inputs = c.w.cur
    else:
        inputs = c.w.gen.fc_inputs(c.w)
    c.w.cur = units
    return f"nn.Linear({inputs}, {units})" if inputs else f"nn.LazyLinear({units})"


def _adaptive_pool(c: _LayerContext) -> str:
    if c.w.gen.windows is not None:
        raise _Unsupported("adaptive pooling inside a residual (whether it keeps H×W "
                           "depends on the input)")
    return f"nn.AdaptiveAvgPool2d({c.py(c.layer.size)})"


def _bn(c: _LayerContext) -> str:
    eps = "" if c.layer.eps == c.layer.EPSILON else f", eps={c.layer.eps!r}"
    return f"nn.BatchNorm{'1' if c.w.vector else '2'}d({c.w.cur}{eps})"


def _lrn(c: _LayerContext) -> str:
    layer = c.layer
    return f"nn.LocalResponseNorm({layer.size}, alpha={layer.alpha!r}, beta={layer.beta!r}, " \
           f"k={layer.k!r})"


def _flatten(c: _LayerContext) -> str:
    if not c.w.vector:
        c.w.cur = c.w.gen.fc_inputs(c.w) or c.w.cur
    return "nn.Flatten()"


def _layernorm(c: _LayerContext) -> str:
    eps = f", eps={c.layer.epsilon!r}" if c.layer.epsilon != c.layer.DEFAULT_EPSILON else ""
    if c.w.vector:
        return f"nn.LayerNorm({c.w.cur}{eps})"
    c.w.gen.helpers.add("LayerNorm2d")
    return f"LayerNorm2d({c.w.cur}{eps})"


def _linear(c: _LayerContext) -> str:
    units = c.py(c.layer.units)
    args = f"{c.w.cur}, {units}" + ("" if c.layer.bias else ", bias=False")
    c.w.cur = units
    if c.w.vector:
        return f"nn.Linear({args})"
    c.w.gen.helpers.add("PixelLinear")
    return f"PixelLinear({args})"


def _deconv(c: _LayerContext) -> str:
    layer = c.layer
    k = c.py(layer.filters)
    args = [c.w.cur, k, c.py(layer.kernel)]
    for key, value, default in (("stride", layer.stride, 1), ("padding", layer.padding, 0),
                                ("output_padding", layer.output_padding, 0),
                                ("groups", layer.groups, 1), ("dilation", layer.dilation, 1)):
        if value != default:
            args.append(f"{key}={c.py(value)}")
    if not layer.bias:
        args.append("bias=False")
    if c.w.gen.windows is not None:   # in a residual body: it keeps H×W only at stride 1
        c.w.gen.windows.append(_simplify(
            f"{c.py(layer.stride)} == 1 and {c.py(layer.dilation)} * ({c.py(layer.kernel)} - 1)"
            f" + {c.py(layer.output_padding)} == 2 * {c.py(layer.padding)}"))
    c.w.cur = k
    return f"nn.ConvTranspose2d({', '.join(args)})"


def _upsample(c: _LayerContext) -> str:
    layer = c.layer
    corners = ", align_corners=False" if layer.mode == "bilinear" else ""
    if layer.factor is not None:
        f = layer.factor
        how = f"scale_factor={float(f[0])!r}" if f[0] == f[1] else \
            f"scale_factor=({float(f[0])!r}, {float(f[1])!r})"
        keeps = f"{f[0]} == 1 and {f[1]} == 1"
    else:
        how, keeps = f"size=({layer.size[0]}, {layer.size[1]})", "False"
    if c.w.gen.windows is not None:
        c.w.gen.windows.append(_simplify(keeps))
    return f"nn.Upsample({how}, mode={layer.mode!r}{corners})"


#: Modules the generated code defines for itself when a spec needs them.
HELPERS: dict[str, str] = {
    "LayerNorm2d": '''class LayerNorm2d(nn.LayerNorm):
    """Layer norm over the channels of each pixel (as torchvision's ConvNeXt LayerNorm2d)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)''',
    "PixelLinear": '''class PixelLinear(nn.Linear):
    """A linear layer applied to the channels of each pixel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.linear(x.permute(0, 2, 3, 1), self.weight, self.bias)
        return y.permute(0, 3, 1, 2)''',
}


def _simple(text: str) -> Callable[[_LayerContext], str]:
    return lambda c: text


#: How each layer kind is written as a torch module: context → constructor expression
#: (a writer that changes the channels sets `c.w.cur`).
MODULES: dict[str, Callable[[_LayerContext], str]] = {
    "conv": _conv, "pool": _pool, "fc": _fc, "bn": _bn, "lrn": _lrn, "flatten": _flatten,
    "adaptive_pool": _adaptive_pool,
    "dropout": lambda c: f"nn.Dropout({c.layer.rate!r})",
    "relu": _simple("nn.ReLU()"), "relu6": _simple("nn.ReLU6()"), "tanh": _simple("nn.Tanh()"),
    "sigmoid": _simple("nn.Sigmoid()"), "softmax": _simple("nn.Softmax(dim=1)"),
    "layernorm": _layernorm, "linear": _linear, "deconv": _deconv, "upsample": _upsample,
    "shuffle": lambda c: f"nn.ChannelShuffle({c.py(c.layer.groups)})",
    "silu": _simple("nn.SiLU()"), "gelu": _simple("nn.GELU()"), "hswish": _simple("nn.Hardswish()"),
    "hsigmoid": _simple("nn.Hardsigmoid()"),
    "leaky": lambda c: f"nn.LeakyReLU({c.layer.slope!r})",
}


class TorchGenerator:
    """Writes the module for one network."""

    def __init__(self, net: Network) -> None:
        if net.syntax is None:
            raise TorchCodegenError("this network has no syntax tree to generate code from")
        self.net = net
        self.blocks: dict[str, BlockDef] = net.syntax[0]
        self.statements: list[Any] = net.syntax[1]
        self.maker = LayerMaker(net.source, Reporter(net.source, net.filename))
        self.classes: dict[str, _Class] = {}
        self.order: list[str] = []
        self.ends_vector: dict[str, bool] = {}
        self.out_channels: dict[str, str | None] = {}   # class → formula of its params
        self.keeps: dict[str, list[str]] = {}   # class → conditions under which it keeps H×W
        self.windows: list[str] | None = None
        self.in_block: str | None = None   # the block whose class is being written
        self.fc_index = 0
        self.helpers: set[str] = set()   # names in HELPERS the code needs

    def fc_inputs(self, w: _Writer) -> str | None:
        """in_features of an fc over a volume (C·H·W, which the module does not track): what
        the builder computed for it, at the top level or in every instance of the block being
        written when they agree; None if they do not (the fc is then an `nn.LazyLinear`)."""
        owners = self.net.instances
        if self.in_block is None:
            prefixes = [""]
        else:
            prefixes = [p for p, call in owners.items() if call.startswith(f"{self.in_block}(")]
        sizes = set()
        for prefix in prefixes:
            fcs = [layer for layer in self.net.layers if layer.kind in ("fc", "flatten")
                   and len(layer.input_shape) == 3   # an fc over a vector knows its inputs
                   and _owner(layer.name, owners) == prefix]
            if self.fc_index >= len(fcs):
                return None
            layer = fcs[self.fc_index]
            sizes.add(layer.in_features if layer.kind == "fc" else layer.output_shape[0])
        self.fc_index += 1
        return str(sizes.pop()) if len(sizes) == 1 else None

    def block_class(self, block: BlockDef) -> _Class:
        name = _camel(str(block.name))
        if name in self.classes:
            return self.classes[name]
        params = [str(p) for p, _ in block.params]
        sig = ["self", "in_channels: int"]
        for p, default in block.params:
            sig.append(f"{p}: int" + (f" = {default}" if default is not None else ""))
        sequential = _has_param_loops(block.body.body) and not _has_joins(block.body.body)
        cls = _Class(name, ", ".join(sig), f"`block {block.name}({', '.join(params)})`, "
                     f"{f'{block.pos.file}, ' if block.pos.file else ''}line {block.pos.line}.",
                     sequential)
        self.classes[name] = cls
        vector = self._block_input_vector(str(block.name))
        writer = _Writer(self, cls, {p: p for p in params}, vector, "in_channels")
        was, self.in_block = (self.in_block, self.fc_index), str(block.name)
        outer, self.windows, self.fc_index = self.windows, [], 0
        self._write_body(writer, block.body)
        self.keeps[name] = [w for w in self.windows if w != "True"]
        (self.in_block, self.fc_index), self.windows = was, outer
        self.ends_vector[name] = writer.vector
        formula = writer.cur
        names = {n.id for n in ast.walk(ast.parse(formula, mode="eval")) if isinstance(n, ast.Name)}
        self.out_channels[name] = formula if names <= {"in_channels", *params} else None
        self.order.append(name)
        return cls

    def _block_input_vector(self, name: str) -> bool:
        for prefix, call in self.net.instances.items():
            if call.startswith(f"{name}("):
                for layer in self.net.layers:
                    if layer.name.startswith(prefix + "."):
                        return len(layer.inputs[0].output_shape) == 1 if layer.inputs else False
        return False

    def _write_body(self, writer: _Writer, body: Group) -> None:
        try:
            if body.indexed:
                if _has_joins(body.body):
                    raise _Unsupported("a residual or concat in a `[ ]` block body")
                writer.explicit = False
                var = "self"
                writer.cls.sequential = True
                writer.body(body.body, _Scope(True), var)
            else:
                writer.body(body.body, _Scope(False), "self")
            writer.line(f"self.out_channels = {writer.cur}")
        except _Unsupported as err:
            raise TorchCodegenError(self._unsupported(err)) from None

    def _unsupported(self, err: _Unsupported) -> Diagnostic:
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
        net_name = _camel(self.net.name)
        if net_name in {_camel(str(b)) for b in self.blocks}:
            net_name += "Net"
        shape = self.net.input_shape
        vector = len(shape) == 1
        cls = _Class(net_name, "self", "", _has_param_loops(self.statements))
        writer = _Writer(self, cls, {}, vector, str(shape[-1] if not vector else shape[0]))
        body = Group([s for s in self.statements if not _is_input(s)], False, None)
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
            out += ["", "", HELPERS[name]]
        for name in self.order:
            out += ["", "", *self._class_text(self.classes[name])]
        cls.doc = f"The network{f' in {self.net.filename}' if self.net.filename else ''}: " \
                  f"input {'×'.join(map(str, shape))}."
        out += ["", "", *self._class_text(cls, network=True)]
        return "\n".join(out) + "\n"

    def _class_text(self, cls: _Class, network: bool = False) -> list[str]:
        base = "nn.Sequential" if cls.sequential else "nn.Module"
        lines = [f"class {cls.name}({base}):", f'    """{cls.doc}"""', "",
                 f"    def __init__({cls.signature}) -> None:", "        super().__init__()"]
        lines += cls.init or []
        if not cls.sequential:
            branch = ", branch: torch.Tensor" if cls.takes_branch else ""
            lines += ["", f"    def forward(self, x: torch.Tensor{branch}) -> torch.Tensor:"]
            if network:
                shape = "N×C×H×W" if len(self.net.input_shape) == 3 else "N×F"
                lines.append(f'        """{shape} in, the output of `{self.net.layers[-1].name}` out."""')
            lines += cls.forward + ["        return x"]
        return lines


def _owner(name: str, instances: dict[str, str]) -> str:
    """The block instance a layer belongs to directly (its longest instance prefix), or ""."""
    parts = name.split(".")
    for n in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in instances:
            return prefix
    return ""


def _is_input(node: Any) -> bool:
    while isinstance(node, Labeled):
        node = node.item
    return isinstance(node, LayerStmt) and node.rule == "input"


def torch_source(net: Network) -> str:
    """The network as a PyTorch module's source (see the module docstring)."""
    return TorchGenerator(net).module()


__all__ = ["MODULES", "TorchCodegenError", "torch_source"]
