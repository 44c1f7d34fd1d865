"""Diagnostics: every user-facing error and warning, rendered like a compiler's.

A diagnostic knows where it points (file, line, column, how many characters to
underline) and carries the offending source line, so it renders on its own as::

    lenet.ns:3:1: error: unknown layer `cnov`
        3 | cnov 5x5 x16
          | ^~~~
      hint: did you mean `conv`?

Errors are raised as `NetspecError` subclasses (the API never prints); the CLI
renders them. A raised error also carries every other error found in the same
pass in `errors`, so one run reports all of them.
"""

from __future__ import annotations

from collections import namedtuple
import re
from typing import Iterable, Sequence

from .pos import Pos


#: Source lines longer than this are shown clipped around the caret.
SHOWN_COLUMNS = 100
#: At most this many errors are kept per pass; the rest are counted.
MAX_ERRORS = 50

#: Control characters (patterns here are compiled on first use, by `re`'s cache: a spec
#: without diagnostics never needs them).
_CONTROL = r"[\x00-\x08\x0b-\x1f\x7f]"


def visible(text: str) -> str:
    """`text` with each control character shown as its one-column Unicode symbol (␀, ␛...)."""
    return re.sub(_CONTROL,
                  lambda m: chr(0x2421 if m.group() == "\x7f" else 0x2400 + ord(m.group())), text)


class Diagnostic(namedtuple("Diagnostic", "severity message filename line column source_line length hint notes code",
                            defaults=(None, None, None, None, 1, None, (), None))):
    """One message about a spec: an error or a warning, with its position.

    A value: never changed once made, compared and hashed by its fields (so the
    same message reported twice can be recognised). `code` names a warning for
    `# netspec: ignore[code]`.
    """

    __slots__ = ()   # a namedtuple, not typing.NamedTuple: see source/pos.py
    severity: str
    message: str
    filename: str | None
    line: int | None
    column: int | None
    source_line: str | None
    length: int
    hint: str | None
    notes: tuple[str, ...]
    code: str | None

    @property
    def location(self) -> str:
        """`FILE:LINE:COL`, or as much of it as is known."""
        parts = [self.filename or "<spec>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def render(self) -> str:
        """The full multi-line message: location, source line, caret, notes, hint.

        Control characters are shown as visible symbols (a NUL as `␀`), and a
        source line longer than `SHOWN_COLUMNS` is clipped around the caret.
        """
        where = f"{self.location}: " if self.filename or self.line is not None else ""
        code = f" [{self.code}]" if self.code else ""
        out = [f"{where}{self.severity}: {visible(self.message)}{code}"]
        if self.source_line is not None and self.line is not None:
            gutter = str(self.line)
            pad = " " * len(gutter)
            text = visible(self.source_line.rstrip("\r\n").expandtabs(1))
            column = min(self.column or 1, len(text) + 1)
            length = self.length
            if len(text) > SHOWN_COLUMNS:   # keep the caret's neighbourhood
                start = max(0, min(column - 1 - SHOWN_COLUMNS // 3, len(text) - SHOWN_COLUMNS))
                end = start + SHOWN_COLUMNS
                before, after = "…" if start else "", "…" if end < len(text) else ""
                column += len(before) - start
                length = min(length, end - (self.column or 1) + 1)
                text = before + text[start:end] + after
            out.append(f"    {gutter} | {text}")
            if self.column is not None:
                width = max(1, min(length, len(text) - column + 1))
                out.append(f"    {pad} | {' ' * (column - 1)}^{'~' * (width - 1)}")
        out.extend(f"  note: {visible(n)}" for n in self.notes)
        if self.hint:
            out.append(f"  hint: {visible(self.hint)}")
        return "\n".join(out)

    def as_dict(self) -> dict:
        """A JSON-ready form for `netspec check --json`."""
        d = {"severity": self.severity, "message": self.message, "file": self.filename,
             "line": self.line, "column": self.column}
        if self.hint:
            d["hint"] = self.hint
        if self.notes:
            d["notes"] = list(self.notes)
        if self.code:
            d["code"] = self.code
        return d


class NetspecError(Exception):
    """Base of every error netspec raises for bad user input.

    `line` and `column` locate the error in the spec (None when it is not about a
    spec position, e.g. a bad argument to `conv_output_size`); `errors` lists this
    error and all others found in the same pass.
    """

    def __init__(self, diagnostic: Diagnostic | str):
        if isinstance(diagnostic, str):
            diagnostic = Diagnostic("error", diagnostic)
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic
        self.errors: list[NetspecError] = [self]
        self.dropped = 0   # > 0: the pass stopped early, after MAX_ERRORS errors or a budget

    @property
    def line(self) -> int | None:
        return self.diagnostic.line

    @property
    def column(self) -> int | None:
        return self.diagnostic.column

    @property
    def filename(self) -> str | None:
        return self.diagnostic.filename

    @property
    def hint(self) -> str | None:
        return self.diagnostic.hint

    def __str__(self) -> str:
        if self.diagnostic.line is None and self.diagnostic.filename is None:
            return self.diagnostic.message
        return f"{self.diagnostic.location}: {self.diagnostic.message}"

    def render(self) -> str:
        """Every error of the pass, rendered with source lines and carets."""
        out = [e.diagnostic.render() for e in self.errors]
        if self.dropped:
            out.append(f"note: stopped after {len(self.errors)} errors; there may be more")
        return "\n".join(out)


class SpecSyntaxError(NetspecError):
    """The text is not a well-formed netspec program (unknown word, bad option...)."""


class SpecError(NetspecError):
    """Well-formed, but breaks a rule of the language (missing input, duplicate name...)."""


class ShapeError(NetspecError):
    """The convolution arithmetic does not work out (size < 1, depth mismatch...)."""


class WeightsError(NetspecError):
    """A weights set does not match its network (missing, unexpected, misshapen arrays)."""


class InputError(NetspecError):
    """Input data does not fit the network (wrong shape or dtype)."""


def raise_all(errors: Sequence[NetspecError], dropped: int = 0) -> None:
    """Raise the first of `errors` in source order, carrying all; do nothing if empty.

    `dropped` counts further errors that were found but not kept (see Reporter).
    """
    if errors:
        ordered = sorted(errors, key=lambda e: (e.filename or "", e.line or 0, e.column or 0))
        ordered[0].errors = ordered
        ordered[0].dropped = dropped
        raise ordered[0]


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A `did you mean ...?` hint for a near miss of one of `choices`, or None."""
    import difflib   # only when there is a near miss to name: not on every start-up
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None


#: `# netspec: ignore` or `# netspec: ignore[lost-input, large-fc]` on a line
#: silences that line's warnings (all, or those codes).
_IGNORE = r"#.*netspec:\s*ignore(?:\[([^\]]*)\])?"


class Reporter:
    """Collects the diagnostics of one spec, each pinned to its source line."""

    def __init__(self, text: str, filename: str | None) -> None:
        self.lines = text.split("\n")
        self.filename = filename
        self.texts: dict[str | None, str] = {None: text}   # the spec, and libraries by name
        self._lines: dict[str | None, list[str]] = {None: self.lines}
        self.errors: list[NetspecError] = []
        self.warnings: list[Diagnostic] = []
        self.context: list[str] = []   # the block calls being expanded, innermost last
        self._reported: set[Diagnostic] = set()
        self.dropped = 0   # errors past MAX_ERRORS, or 1 when a pass stopped early

    @property
    def full(self) -> bool:
        """Whether MAX_ERRORS errors are kept already (passes may stop looking)."""
        return len(self.errors) >= MAX_ERRORS

    def raise_errors(self) -> None:
        """Raise every error reported so far (see raise_all); do nothing if none."""
        raise_all(self.errors, self.dropped)

    def add_source(self, name: str, text: str) -> None:
        """Register library file `name`, so that positions in it show its lines."""
        self.texts[name] = text
        self._lines[name] = text.split("\n")

    def _source_line(self, pos: Pos) -> str | None:
        lines = self._lines.get(pos.file, ())
        return lines[pos.line - 1] if 0 < pos.line <= len(lines) else None

    def _diag(self, severity: str, pos: Pos | None, message: str, hint: str | None,
              notes: tuple[str, ...], code: str | None = None) -> Diagnostic:
        if pos is None:   # about the spec as a whole (or a file beside it)
            return Diagnostic(severity, message, self.filename, hint=hint, notes=notes, code=code)
        return Diagnostic(severity, message, pos.file or self.filename, pos.line, pos.column,
                          self._source_line(pos), pos.length, hint,
                          (*notes, *reversed(self.context)), code)

    def error(self, pos: Pos | None, message: str, kind: type[NetspecError] = SpecError, *,
              hint: str | None = None, notes: tuple[str, ...] = ()) -> None:
        """An error of class `kind` at `pos`; the same error twice is reported once."""
        diag = self._diag("error", pos, message, hint, notes)
        if self.full and diag not in self._reported:
            self._reported.add(diag)
            self.dropped += 1
        elif diag not in self._reported:
            self._reported.add(diag)
            self.errors.append(kind(diag))

    def warning(self, pos: Pos, code: str, message: str, *, hint: str | None = None,
                notes: tuple[str, ...] = ()) -> None:
        """A warning, unless its line says `# netspec: ignore` or `ignore[code, ...]`."""
        line = self._source_line(pos) or ""
        m = re.search(_IGNORE, line)
        if m and (m.group(1) is None or code in re.split(r"[,\s]+", m.group(1))):
            return
        self.warnings.append(self._diag("warning", pos, message, hint, notes, code))
