"""From one layer statement (its `$params` already substituted) to layer objects.

`conv 3x3 s2 x64 relu` is one statement and two layers; the maker reads the
statement's tokens, reports options given twice or in the wrong form, and hands
the numbers to the layer classes, which check them.
"""

from __future__ import annotations

from typing import Any

from ._lark import Token
from .errors import Reporter, SpecError, SpecSyntaxError
from .layers import (
    FC,
    LRN,
    Activation,
    AdaptivePool,
    BatchNorm,
    Conv,
    Dropout,
    Flatten,
    Input,
    Layer,
    Pool,
    Pos,
)
from .layers.channels import LayerNorm, LayerScale, Linear, Shuffle
from .layers.resample import Deconv, Upsample
from .syntax import LayerStmt, pos_of, span

_OPTION_NAMES = {"STRIDE": "stride", "PADDING": "padding", "DILATION": "dilation",
                 "GROUPS": "groups", "FILTERS": "filters", "SAME": "padding", "VALID": "padding",
                 "CEIL": "ceil", "NOBIAS": "nobias", "COUNTPAD": "countpad",
                 "OUTPUT_PADDING": "output_padding"}


class LayerMaker:
    """Turns one layer statement (params substituted) into Layer objects."""

    def __init__(self, text: str, rep: Reporter) -> None:
        self.text = text
        self.rep = rep

    def make(self, stmt: LayerStmt) -> list[Layer]:
        """The layers of one statement: one, or two with an activation shorthand."""
        return getattr(self, stmt.rule)(stmt.items)

    def _written(self, items: list[Token]) -> str:
        """The layer as written, or with its `$params` filled in when it has any."""
        toks = [t for t in items if isinstance(t, Token)]
        source = self.text[toks[0].start_pos:toks[-1].end_pos]
        if all(self.text[t.start_pos:t.end_pos] == t.value for t in toks):   # `.value`: a str
            return source
        return " ".join(toks)

    def _size(self, tok: Token, n_dims: tuple[int, ...], what: str) -> tuple[int, ...]:
        dims = tuple(int(d) for d in tok.split("x"))
        if len(dims) not in n_dims:
            forms = " or ".join({1: "N", 2: "FxF", 3: "FxFxC"}.get(n, "HxWxC") for n in n_dims)
            self.rep.error(pos_of(tok), f"{what} must be {forms}, not `{tok}`", SpecSyntaxError)
            return tuple([1] * n_dims[0])
        return dims

    def _options(self, keyword: Token, opts: list[Token]) -> dict[str, tuple[Token, Any]]:
        """Options by name, reporting any given twice."""
        seen: dict[str, tuple[Token, Any]] = {}
        for tok in opts:
            name = _OPTION_NAMES[tok.type]
            value: Any = (str(tok) if tok.type in ("SAME", "VALID") else True
                          if tok.type in ("CEIL", "NOBIAS", "COUNTPAD") else
                          int(tok[2:]) if tok.type == "OUTPUT_PADDING" else int(tok[1:]))
            if name in seen:
                first = seen[name][0]
                self.rep.error(pos_of(tok), f"{name} given twice in `{keyword}` "
                                            f"(first as `{first}` at column {first.column})",
                               SpecError, hint=f"remove one of `{first}` and `{tok}`")
                continue
            seen[name] = (tok, value)
        return seen

    def _kernel(self, tok: Token) -> tuple[tuple[int, int], int | None]:
        dims = self._size(tok, (1, 2, 3), "a kernel")
        if len(dims) == 1:
            return (dims[0], dims[0]), None
        return (dims[0], dims[1]), (dims[2] if len(dims) == 3 else None)

    @staticmethod
    def _split_activation(items: list) -> tuple[list, list[Layer] | LayerStmt | None]:
        if items and isinstance(items[-1], LayerStmt):
            return items[:-1], items[-1]
        return items, None

    def _finish(self, layer: Layer, opts: dict[str, tuple[Token, Any]],
                act: LayerStmt | None, extra: dict[str, Pos]) -> list[Layer]:
        layer.options = {k: pos_of(t) for k, (t, _) in opts.items()} | extra
        return [layer, *(self.make(act) if act is not None else [])]

    def input(self, items: list[Token]) -> list[Layer]:
        kw, size = items
        layer = Input(span(kw, size), self._written(items),
                      self._size(size, (1, 2, 3, 4), "input"))
        layer.options = {"size": pos_of(size)}
        return [layer]

    def conv(self, items: list) -> list[Layer]:
        items, act = self._split_activation(items)
        kw, size, *rest = items
        opts = self._options(kw, rest)
        kernel, depth = self._kernel(size)
        get = lambda k, d: opts[k][1] if k in opts else d  # noqa: E731
        last = rest[-1] if rest else size
        layer = Conv(span(kw, last), self._written(items), kernel, depth,
                     get("filters", None), get("stride", None), get("padding", 0),
                     get("dilation", 1), get("groups", 1), bias=not get("nobias", False))
        return self._finish(layer, opts, act, {"kernel": pos_of(size)})

    def pool(self, items: list) -> list[Layer]:
        kw, *rest = items
        mode = str(rest.pop(0)) if rest[0].type in ("MAX", "AVG") else "max"
        if rest[0].type == "TO":
            size = rest[1]
            adaptive = AdaptivePool(span(kw, size), self._written(items), mode,
                                    self._size(size, (1, 2), "the output size of `pool avg to`"))
            return self._finish(adaptive, {}, None, {"size": pos_of(size),
                                                     "mode": pos_of(items[1])})
        if rest[0].type == "GLOBAL":
            layer = Pool(span(kw, rest[0]), self._written(items), mode, (1, 1), None, 0,
                         global_pool=True)
            return self._finish(layer, {}, None, {})
        size, *opts_toks = rest
        opts = self._options(kw, opts_toks)
        kernel, depth = self._kernel(size)
        if depth is not None:
            self.rep.error(pos_of(size), f"a pooling window has no depth: `{size}`",
                           SpecSyntaxError,
                           hint=f"write `{kernel[0]}x{kernel[1]}`; pooling keeps every channel")
        last = opts_toks[-1] if opts_toks else size
        layer = Pool(span(kw, last), self._written(items), mode, kernel,
                     opts["stride"][1] if "stride" in opts else None,
                     opts["padding"][1] if "padding" in opts else 0,
                     ceil_mode="ceil" in opts, count_pad="countpad" in opts)
        return self._finish(layer, opts, None, {"kernel": pos_of(size)})

    def fc(self, items: list) -> list[Layer]:
        items, act = self._split_activation(items)
        kw, size = items
        units = self._size(size, (1,), "the unit count of `fc`")[0]
        layer = FC(span(kw, size), self._written(items), units)
        return self._finish(layer, {}, act, {"units": pos_of(size)})

    def lrn(self, items: list[Token]) -> list[Layer]:
        kw, size, *opts = items
        values: dict[str, float] = {}
        where: dict[str, Pos] = {"size": pos_of(size)}
        for tok in opts:
            key = {"a": "alpha", "b": "beta", "k": "k"}[tok[0]]
            if key in values:
                self.rep.error(pos_of(tok), f"{key} given twice in `lrn`", SpecError)
            values[key] = float(tok[1:])
            where[key] = pos_of(tok)
        layer = LRN(span(kw, opts[-1] if opts else size), self._written(items),
                    self._size(size, (1,), "the size of `lrn`")[0], **values)
        layer.options = where
        return [layer]

    def activation(self, items: list[Token]) -> list[Layer]:
        tok, *slope = items
        layer = Activation(span(tok, items[-1]), self._written(items), str(tok),
                           float(slope[0]) if slope else None)
        layer.options = {"slope": pos_of(slope[0])} if slope else {}
        return [layer]

    def bn(self, items: list[Token]) -> list[Layer]:
        kw, *eps = items
        layer = BatchNorm(span(kw, items[-1]), self._written(items),
                          float(eps[0][3:]) if eps else None)
        layer.options = {"eps": pos_of(eps[0])} if eps else {}
        return [layer]

    def flatten(self, items: list[Token]) -> list[Layer]:
        return [Flatten(pos_of(items[0]), str(items[0]))]

    def dropout(self, items: list[Token]) -> list[Layer]:
        kw, rate = items
        layer = Dropout(span(kw, rate), self._written(items), float(rate))
        layer.options = {"rate": pos_of(rate)}
        return [layer]

    # ---- channels and resampling (netspec/layers/channels.py, resample.py) ----------
    def layernorm(self, items: list[Token]) -> list[Layer]:
        kw, *eps = items
        layer = LayerNorm(span(kw, eps[-1] if eps else kw), self._written(items),
                          float(eps[0][3:]) if eps else None)
        layer.options = {"epsilon": pos_of(eps[0])} if eps else {}
        return [layer]

    def scale(self, items: list[Token]) -> list[Layer]:
        return [LayerScale(pos_of(items[0]), str(items[0]))]

    def linear(self, items: list) -> list[Layer]:
        items, act = self._split_activation(items)
        kw, size, *rest = items
        units = self._size(size, (1,), "the unit count of `linear`")[0]
        layer = Linear(span(kw, rest[-1] if rest else size), self._written(items), units,
                       bias=not rest)
        return self._finish(layer, {}, act, {"units": pos_of(size)})

    def shuffle(self, items: list[Token]) -> list[Layer]:
        kw, groups = items
        layer = Shuffle(span(kw, groups), self._written(items), int(groups))
        layer.options = {"groups": pos_of(groups)}
        return [layer]

    def deconv(self, items: list) -> list[Layer]:
        items, act = self._split_activation(items)
        kw, size, *rest = items
        opts = self._options(kw, rest)
        kernel, depth = self._kernel(size)
        if depth is not None:
            self.rep.error(pos_of(size), f"write the kernel of `deconv` without a depth, not "
                                         f"`{size}`", SpecSyntaxError,
                           hint=f"`{kernel[0]}x{kernel[1]}`: the filters read every input channel")
        get = lambda k, d: opts[k][1] if k in opts else d  # noqa: E731
        layer = Deconv(span(kw, rest[-1] if rest else size), self._written(items), kernel,
                       get("filters", None), get("stride", 1), get("padding", 0),
                       get("dilation", 1), get("groups", 1), get("output_padding", 0),
                       bias=not get("nobias", False))
        return self._finish(layer, opts, act, {"kernel": pos_of(size)})

    def upsample(self, items: list[Token]) -> list[Layer]:
        kw, *rest = items
        mode = str(rest.pop(0)) if rest[0].type in ("NEAREST", "BILINEAR") else "nearest"
        last = rest[-1]
        where: dict[str, Pos] = {}
        factor = size = target = None
        if last.type == "SIZE":
            dims = self._size(last, (1, 2), "an upsampling factor" if len(rest) == 1 else
                              "an upsampling size")
            dims = (dims[0], dims[-1])
            if len(rest) == 1:
                factor, where["factor"] = dims, pos_of(last)
            else:
                size, where["size"] = dims, pos_of(last)
        else:
            target = str(last)
        layer = Upsample(span(kw, last), self._written(items), mode, factor, size, target)
        layer.options = where
        return [layer]
