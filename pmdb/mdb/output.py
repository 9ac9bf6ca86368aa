"""mdb's output buffer (its `mdb_iob`): columns, the 16-column indent, TAB stops and autowrap.

A faithful model of the rules in mdb_io.c, because they decide every blank of `addr/fmt`:
a line is a buffer whose length is the current column; with INDENT on, every new line starts
with `margin` blanks; with autowrap on, a field that would cross the page width starts a new
line (unless the line holds only the indent), padding that would reach the page width becomes
a newline, and text longer than the room left is broken at the page width. At the end of a
command a line holding anything but the indent is ended (mdb's nl-flush).
"""

from __future__ import annotations

COLUMNS = 80
MARGIN = 16
TABSTOP = 8
BUFSIZ = 1024  # mdb's line buffer: the widest page `$w` can set


class LineWriter:
    """Text written with mdb's column rules; `finish()` nl-flushes and returns it.

    `autowrap` is mdb's global autowrap flag (the `::set -o autowrap` option, forced on by
    the format engine for each format character); `indent` is the buffer's INDENT flag.
    """

    def __init__(self, columns: int = COLUMNS, margin: int = MARGIN, autowrap: bool = False) -> None:
        self.columns = columns
        self.margin = margin
        self.tabstop = TABSTOP
        self.autowrap = autowrap
        self.indent = False
        self._done: list[str] = []
        self._line = ""

    @property
    def column(self) -> int:
        """The current output column (0-based): the length of the buffered line."""
        return len(self._line)

    # Flags -------------------------------------------------------------------------

    def set_indent(self, on: bool) -> None:
        """Turn INDENT on (an empty line gets the margin) or off (a bare margin is dropped)."""
        self.indent = on
        if on:
            self._indent()
        else:
            self._unindent()

    def force_autowrap(self) -> None:
        """Turn autowrap on, first ending a line that already runs past the page width."""
        self.autowrap = True
        if self._wrap_now(0):
            self.newline()

    def _indent(self) -> None:
        if not self._line and self.margin and self.indent:
            self._line = " " * self.margin

    def _unindent(self) -> None:
        if self._line and self._line == " " * self.margin:
            self._line = ""

    def _wrap_now(self, width: int) -> bool:
        """mdb's IOB_WRAPNOW: would `width` more columns cross the page on a non-empty line?"""
        return (self.autowrap and bool(self._line) and width + self.column > self.columns
                and not (self.indent and self.column == self.margin))

    # Primitives --------------------------------------------------------------------

    def newline(self) -> None:
        """End the line; the next one starts with the indent when INDENT is on."""
        self._done.append(self._line + "\n")
        self._line = ""
        self._indent()

    def text(self, s: str) -> None:
        """Raw text (mdb_iob_puts): TABs go to the next tab stop, newlines end lines, and with
        autowrap a run longer than the room left is broken at the page width."""
        start = 0
        for i, ch in enumerate(s):
            if ch in "\t\n":
                self._copy(s[start:i])
                if ch == "\t":
                    self.tab()
                else:
                    self.newline()
                start = i + 1
        self._copy(s[start:])

    def _room(self) -> int | None:
        """Columns left before the page width when wrapping (None: unlimited)."""
        if not self.autowrap:
            return None
        if self.columns < self.column:
            self.newline()
        return self.columns - self.column

    def _copy(self, s: str) -> None:
        while s:
            room = self._room()
            if room is None:
                self._line += s
                return
            self._line += s[:room]
            s = s[room:]
            if s:
                self.newline()

    def blanks(self, n: int) -> None:
        """mdb_iob_ws: `n` blanks, or a newline instead when wrapping and they would reach the
        page width."""
        if not self.autowrap or self.column + n < self.columns:
            self._copy(" " * n)
        else:
            self.newline()

    def tab(self, stop: int | None = None) -> None:
        """mdb_iob_tab: always move to the next multiple of the tab stop (`stop`, default 8),
        or end the line when that is at or past the page width."""
        stop = self.tabstop if stop is None else min(stop, self.columns - 1)
        if stop <= 0:
            return
        target = (self.column + stop) // stop * stop
        if target < self.columns:
            self._copy(" " * (target - self.column))
        else:
            self.newline()

    def tab_to(self, n: int) -> None:
        """printf's `%nT`: pad to the next multiple of `n` unless the column already is one."""
        if n and self.column % n:
            self.tab(n)

    # printf ------------------------------------------------------------------------

    def field(self, s: str, width: int = 0) -> None:
        """One left-justified printf conversion (`%-16s`): wrap first when the field would cross
        the page, then the text, then the padding, which may become the newline."""
        w = max(width, len(s))
        newline_at = s.find("\n")
        if 0 <= newline_at < w:
            w = newline_at
        if self._wrap_now(w):
            self.newline()
        self.text(s)
        if len(s) < w:
            self.blanks(w - len(s))

    def literal(self, s: str) -> None:
        """Literal text of a printf format: it starts a new line first when it would cross the
        page (unless it begins with a newline)."""
        if s and self._wrap_now(len(s)) and s[0] != "\n":
            self.newline()
        self.text(s)

    # End ---------------------------------------------------------------------------

    def finish(self) -> str:
        """Everything written, after mdb's nl-flush: an unfinished line that holds more than the
        indent is ended, a bare indent is dropped."""
        self._unindent()
        if self._line:
            self.newline()
        self._line = ""
        out = "".join(self._done)
        self._done = []
        return out
