"""Source text: the file a line table names, found under the `--source-path` directories
first (as gdb's `directory` does), then where it was compiled; read once, kept by path.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence

from pmdb.debuginfo.lines import SourceFile, SourceLine

MAX_SOURCE_BYTES = 64 << 20  # a "source file" larger than this is not read


class SourceFiles:
    """Finds and reads source files for SourceLines."""

    def __init__(self, source_path: Sequence[str] = ()) -> None:
        self.source_path = tuple(source_path)
        self._found: dict[SourceFile, str | None] = {}
        self._lines: dict[str, list[str] | None] = {}

    def find(self, f: SourceFile) -> str | None:
        """The host path of the file, or None when no candidate exists."""
        if f not in self._found:
            self._found[f] = next((c for c in self._candidates(f) if os.path.isfile(c)), None)
        return self._found[f]

    def _candidates(self, f: SourceFile) -> list[str]:
        """DIR/name, DIR/compiled-path and DIR/basename for each source-path DIR, then the path."""
        out = []
        base = posixpath.basename(f.path)
        for d in self.source_path:
            if not posixpath.isabs(f.name):
                out.append(posixpath.join(d, f.name))
            out.append(posixpath.join(d, f.path.lstrip("/")))
            out.append(posixpath.join(d, base))
        out.append(f.path)
        return out

    def text(self, line: SourceLine) -> str | None:
        """The text of the line (without its newline), None when the file or line is missing."""
        path = self.find(line.file)
        if path is None:
            return None
        if path not in self._lines:
            self._lines[path] = _read_lines(path)
        lines = self._lines[path]
        if lines is None or not 1 <= line.line <= len(lines):
            return None
        return lines[line.line - 1]


def _read_lines(path: str) -> list[str] | None:
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_SOURCE_BYTES + 1)
    except OSError:
        return None
    if len(data) > MAX_SOURCE_BYTES:
        return None
    # split on newlines only: C sources may hold form feeds, which str.splitlines() also splits at
    return [ln.removesuffix("\r") for ln in data.decode("utf-8", "replace").split("\n")]
