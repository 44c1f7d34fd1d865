"""The first phase: source text, positions in it, and the diagnostics that point there.

    pos          Pos: a line, column and length in a spec or a library it uses
    diagnostics  Diagnostic, the NetspecError family, and the Reporter that collects them
    files        reading specs within limits; writing outputs atomically, never over an input
    limits       the limits on numbers, expressions and statements, checked on the text

Nothing here knows the language: every later phase reports through it.
"""
