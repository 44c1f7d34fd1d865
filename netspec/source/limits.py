"""Limits on what a spec may say, checked on the text before it is parsed.

A spec has at most `MAX_WORK` statements; every number netspec reads is at most
`MAX_DIGITS` digits long, and every `{expression}` at most `MAX_EXPRESSION`
characters, so no number meets Python's 4,300-digit conversion limit and no
expression is deep enough for a RecursionError (the builder keeps values and
sizes within `MAX_VALUE`, so every total stays exact and inside a float).
Digits are ASCII: `x６` (a fullwidth 6) is refused rather than read as 6. Each
violation is an error at its column. `available_memory` bounds what reading weights
and arrays may allocate.
"""

from __future__ import annotations

import os
import re

from .diagnostics import Reporter, SpecSyntaxError
from .pos import Pos

MAX_DIGITS = 18                 # up to 10**18 - 1: more than any layer could use
MAX_EXPRESSION = 200            # characters inside `{...}` (the builder checks this)
MAX_VALUE = 10**18              # the largest magnitude an expression may reach
#: Statements a spec may expand to (repeats and block calls included), and so
#: also the most it may contain as written. Checked before the work is done.
MAX_WORK = 100_000

#: A run of digits too long to read (the whole run: the match starts at its first digit).
_LONG_DIGIT_RUN = re.compile(f"[0-9]{{{MAX_DIGITS + 1},}}")
#: What may stand before a number's digits: nothing, an option letter, or a size's `3x`
#: (compiled on first use, by `re`'s cache: only a spec with a long number needs it).
_NUMBER_PREFIX = r"[spdgxabk]?|[0-9x]*x|[spdgxabk]-|[0-9x]*x-"


def _code(line: str) -> str:
    """The line without its comment."""
    return line.split("#", 1)[0]


def _is_number(code: str, start: int) -> bool:
    """Whether the digits at `start` are an integer, not part of a name (`conv1`) or a fraction."""
    if start and code[start - 1] == ".":
        return False
    word = re.search(r"[A-Za-z0-9_$-]*$", code[:start]).group()
    return re.fullmatch(_NUMBER_PREFIX, word) is not None


def check_text(text: str, rep: Reporter, file: str | None = None) -> None:
    """Report over-long numbers, non-ASCII digits and too many statements in `text` (the spec,
    or library `file`)."""
    statements = 0
    for line_no, line in enumerate(text.split("\n"), 1):
        code = _code(line)
        statements += code.count(";") + (not code.isspace() and code != "")
        if statements > MAX_WORK:
            rep.error(Pos(line_no, 1, 1, file), f"the spec has more than {MAX_WORK:,} statements",
                      SpecSyntaxError, hint="generate the repetition with `repeat` or a block")
            return
        if code.isascii():
            bad_digits = []
        else:
            bad_digits = [(i, ch) for i, ch in enumerate(code) if ch.isdigit() and not ch.isascii()]
        for i, ch in bad_digits[:3]:
            import unicodedata   # only for a spec with such digits: not on every start-up
            value = unicodedata.digit(ch, None)
            rep.error(Pos(line_no, i + 1, 1, file), f"`{ch}` ({unicodedata.name(ch, 'a digit')}) is not "
                      f"an ASCII digit", SpecSyntaxError,
                      hint=f"write `{value}`" if value is not None else "write digits as 0-9")
        for m in _LONG_DIGIT_RUN.finditer(code):
            if _is_number(code, m.start()):
                rep.error(Pos(line_no, m.start() + 1, len(m.group()), file),
                          f"a number of {len(m.group()):,} digits is larger than netspec reads "
                          f"(at most {MAX_DIGITS} digits)", SpecSyntaxError)


def available_memory() -> int | None:
    """Bytes of memory available now (Linux `MemAvailable`), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
