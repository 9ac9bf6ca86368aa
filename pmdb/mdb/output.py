"""mdb's output line discipline: columns, the 16-column indent, TAB stops, and 80-column wrapping.

Format commands place each value as a field: a field that would cross column 80 starts a new
(indented) line, and padding that would reach column 80 becomes a newline instead. At the
end of a command a line holding anything but the indent is ended.
"""

from __future__ import annotations

COLUMNS = 80
MARGIN = 16


class LineWriter:
    """Accumulates text with mdb's column rules; `finish()` returns it nl-flushed."""

    def __init__(self, columns: int = COLUMNS, margin: int = MARGIN) -> None:
        self.columns = columns
        self.margin = margin
        self.indent = False
        self._parts: list[str] = []
        self._line = ""

    @property
    def column(self) -> int:
        """The current output column (0-based)."""
        return len(self._line)

    def _just_indent(self) -> bool:
        return self.indent and self._line == " " * self.margin

    def text(self, s: str) -> None:
        """Raw text; TABs expand to the next multiple of 8, newlines start indented lines."""
        for ch in s:
            if ch == "\n":
                self.newline()
            elif ch == "\t":
                self._line += " " * (8 - len(self._line) % 8)
            else:
                self._line += ch

    def newline(self) -> None:
        """End the line; the next one starts with the indent when indenting."""
        self._parts.append(self._line + "\n")
        self._line = " " * self.margin if self.indent else ""

    def start_indent(self) -> None:
        """Turn on indenting (continuation lines start at the margin)."""
        self.indent = True
        if not self._line:
            self._line = " " * self.margin

    def stop_indent(self) -> None:
        """Turn indenting off, dropping a line that holds only the indent."""
        if self._just_indent():
            self._line = ""
        self.indent = False

    def tab_to(self, n: int) -> None:
        """Pad to the next multiple of `n` unless the column already is one (mdb's %nT)."""
        if self.column % n:
            self._line += " " * (n - self.column % n)

    def field(self, s: str, width: int) -> None:
        """A left-justified field of `width` (or its length), wrapped at the page width."""
        w = max(width, len(s))
        if self._line and not self._just_indent() and self.column + w > self.columns:
            self.newline()
        self.text(s)
        pad = w - len(s)
        if pad and self.column + pad >= self.columns:
            self.newline()
        else:
            self._line += " " * pad

    def finish(self) -> str:
        """Everything written, with an unfinished non-empty line ended (mdb's nl-flush)."""
        if self._line and not self._just_indent():
            self._parts.append(self._line + "\n")
        self._line = ""
        out = "".join(self._parts)
        self._parts = []
        return out
