"""The language's data: the spec tree, its words and the expressions inside them.

    words   Word: one token of a statement as written (`s2`, `x{4*c}`, `conv`), its numbers
    expr    Expr: `$param` and `{expression}` parsed once; evaluated, printed, written as Python
    tree    the spec tree the parser makes, the printer writes and the builder expands

Nothing here reads text (the parser, netspec.language, does) or knows a layer kind.
"""
