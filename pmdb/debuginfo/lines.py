"""Line tables: address -> (file, line, column), one compilation unit at a time.

A unit's line program (pyelftools decodes it) becomes a sorted table of rows the first
time an address in the unit is asked for; later lookups are a bisect. File names are
spelled as gdb spells them: the unit's own source file by its DW_AT_name (`seed.c`), the
others joined to their directory entry (`./nptl/pthread_create.c` in a unit compiled in
`./nptl`, `/usr/include/x86_64-linux-gnu/bits/stdio2.h`); `path` is where the file was
compiled (relative when the compiler recorded a relative directory).
"""

from __future__ import annotations

import bisect
import posixpath
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pmdb.debuginfo.dies import AT_stmt_list
from pmdb.debuginfo.dwarf_units import DwarfError, ObjectDwarf, guard

if TYPE_CHECKING:
    from elftools.dwarf.lineprogram import LineProgram

    from pmdb.debuginfo.dies import Unit

MAX_ROWS = 1 << 22  # a unit's line rows pmdb keeps; a line program claiming more is malformed


@dataclass(frozen=True)
class SourceFile:
    """A file of a unit's line table: `name` as gdb shows it, `path` where it was compiled."""

    name: str
    path: str


@dataclass(frozen=True)
class SourceLine:
    """A place in the source: file, line and column (0 when the compiler gave none)."""

    file: SourceFile
    line: int
    column: int = 0

    def __str__(self) -> str:
        return f"{self.file.name}:{self.line}" + (f":{self.column}" if self.column else "")


class LineTable:
    """One unit's line rows, sorted by address, and its file table (for DW_AT_call_file)."""

    def __init__(self, files: list[SourceFile], rows: list[_Row], file_base: int) -> None:
        self.files = files
        self._file_base = file_base
        rows.sort(key=lambda r: (r[0], r[1]))
        self._addrs = [r[0] for r in rows]
        self._rows = rows

    def at(self, addr: int) -> SourceLine | None:
        """The line of the instruction at link-time `addr` (None outside every sequence).

        As gdb chooses: the last row at or before addr, unless it is not a statement and an
        earlier row at the same address is (several rows at one address are views of one
        instruction, and the statement is the line it starts).
        """
        i = bisect.bisect_right(self._addrs, addr) - 1
        if i < 0:
            return None
        rows = self._rows
        j = i
        while not rows[j][3] and j > 0 and rows[j - 1][0] == rows[j][0] and rows[j - 1][2] is not None:
            j -= 1
        return rows[j][2] if rows[j][3] else rows[i][2]

    def file(self, index: int) -> SourceFile | None:
        """The file a DW_AT_decl_file / DW_AT_call_file index names."""
        i = index - self._file_base
        return self.files[i] if 0 <= i < len(self.files) else None


# A row: (address, 0 for an end of sequence else 1, its line (None: none), is_stmt).
_Row = tuple[int, int, "SourceLine | None", bool]


def line_table(dwarf: ObjectDwarf, unit: Unit) -> LineTable:
    """Decode the unit's line program (pyelftools) into a LineTable (DwarfError when it is
    malformed)."""
    info = dwarf.info
    if info is None:
        raise DwarfError(f"{dwarf.label}: no DWARF")
    with guard(f"{unit.where} .debug_line"):
        stmt_list = unit.top.int(AT_stmt_list)
        if stmt_list is None:
            return LineTable([], [], 0)
        # line_program_for_CU() would decode the unit's top DIE, and its whole abbreviation
        # table, through pyelftools again just to read DW_AT_stmt_list: ask for the program
        # at the offset pmdb's own reader found (pyelftools 0.33 is pinned).
        prog = info._parse_line_program_at_offset(stmt_list, info.get_CU_at(unit.offset).structs)
        files, base = _files(unit, prog)
        rows: list[_Row] = []
        for entry in prog.get_entries():
            state = entry.state
            if state is None:
                continue
            if len(rows) >= MAX_ROWS:
                raise DwarfError(f"bad DWARF in {unit.where}: more than {MAX_ROWS} line rows")
            if state.end_sequence:
                rows.append((state.address, 0, None, False))  # sorts before a sequence starting there
                continue
            i = state.file - base
            f = files[i] if 0 <= i < len(files) else None
            line = SourceLine(f, state.line, state.column) if f is not None and state.line else None
            rows.append((state.address, 1, line, bool(state.is_stmt)))
    return LineTable(files, rows, base)


def _files(unit: Unit, prog: LineProgram) -> tuple[list[SourceFile], int]:
    """The program's file table and the index of its first entry (0 in DWARF 5, else 1).

    A file is named as gdb names it: joined to its directory entry (in DWARF 5 entry 0 is
    the compilation directory; before, 0 means none), except that the unit's own source
    file keeps the unit's DW_AT_name. `path` joins the compilation directory as well.
    """
    header = prog.header
    dirs = [_str(d) for d in header["include_directory"]]
    v5 = header["version"] >= 5
    comp_dir = unit.comp_dir or (dirs[0] if v5 and dirs else "")
    primary = posixpath.normpath(posixpath.join(comp_dir, unit.name)) if unit.name else None
    files: list[SourceFile] = []
    for entry in header["file_entry"]:
        name = _str(entry.name)
        d = entry.dir_index if v5 else entry.dir_index - 1
        directory = dirs[d] if 0 <= d < len(dirs) else None
        shown = name if posixpath.isabs(name) or directory is None else posixpath.join(directory, name)
        relative_dir = None if v5 and entry.dir_index == 0 else directory
        path = posixpath.normpath(posixpath.join(comp_dir, relative_dir or "", name))
        if posixpath.isabs(shown) and posixpath.normpath(shown) == primary:
            shown = unit.name
        files.append(SourceFile(shown, path))
    return files, 0 if v5 else 1


def _str(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
