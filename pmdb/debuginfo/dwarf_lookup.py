"""One type name's DIE, found without indexing every unit: the first lookup on a file whose
name index is not cached yet.

Indexing all of a large file's DWARF takes seconds (7 s for a Debian vmlinux's 164 MB of
.debug_info); one name is found far faster by letting bytes.find, which runs at C speed, pick
the few units that can hold it. A unit that defines `struct task_struct` names it through
DW_AT_name, whose form puts the text in one of three places:

- DW_FORM_strp / line_strp: a 4-byte (DWARF64: 8-byte, little-endian) offset into .debug_str
  or .debug_line_str. Every place the text `task_struct\\0` occurs there is a possible offset
  (linkers merge strings by their tails: the kernel's is the tail of `free_task_struct`), and
  the unit holds that offset's bytes;
- DW_FORM_strx*: an index into the unit's slice of .debug_str_offsets, whose slot holds such
  an offset; the unit's root DIE holds that slice's base (DW_AT_str_offsets_base) as bytes;
- DW_FORM_string: the text itself, in the unit.

So the units holding one of those byte strings are a superset of those that can define the
name. They are read in section order with the index's own scanner (dwarf_index.Scanner), unit
by unit, until one defines the name: its first definition in section order, or when none
does, its first declaration: exactly what the full index records. Names made of C integer
words (`unsigned long`) also match base types spelt otherwise (`long unsigned int`), so every
unit is a candidate for them; they are defined in the first units. A lookup that would read
more than a share of the section (a common word's text is in hundreds of places) gives up with
TooCostly and the caller builds the full index instead, so no lookup costs much more than that.
"""

from __future__ import annotations

import bisect
import mmap
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pmdb.debuginfo.dwarf_index import DwarfIndex, Scanner, ctf_int_name, tables, unit_spans
from pmdb.formats.dwarf import SHF_COMPRESSED

if TYPE_CHECKING:
    from elftools.dwarf.dwarfinfo import DWARFInfo

    from pmdb.formats.elf import ElfFile

ET_REL = 1
BUDGET = 0.25  # share of .debug_info's scanning cost one lookup may spend before the full index is cheaper
FIND_COST = 1 / 25  # bytes.find's cost per byte and needle, in units of the scanner's cost per byte
FIRST_WINDOW, LAST_WINDOW = 1 << 20, 16 << 20  # bytes of .debug_info searched at a time (doubling)
_KEYWORDS = ("struct ", "union ", "enum ")


class TooCostly(Exception):
    """This lookup would cost about as much as indexing the whole file: build the index."""


@dataclass(frozen=True)
class Section:
    """A section's bytes, searchable at C speed: [base, base + size) of `data`, an mmap of the
    file (no copy) or the section read out (compressed or relocated sections)."""

    data: bytes | mmap.mmap
    base: int
    size: int

    def find(self, needle: bytes, start: int, end: int) -> int:
        """The section offset of `needle`'s first occurrence in [start, end), or -1."""
        at = self.data.find(needle, self.base + start, self.base + end)
        return at - self.base if at >= 0 else -1

    def get(self, start: int, end: int) -> bytes:
        """The bytes at [start, end) of the section."""
        return bytes(self.data[self.base + start : self.base + end])


def info_section(elf: ElfFile, dwarf: DWARFInfo) -> Section | None:
    """The file's .debug_info as pmdb reads it: straight from the file's map when stored plainly
    (a relocatable file's needs relocating, a compressed one inflating: read those out)."""
    sec = elf.section(".debug_info")
    if sec is not None and not sec.flags & SHF_COMPRESSED and elf.type != ET_REL and sec.type != 8:
        return Section(elf.data, sec.offset, max(0, min(sec.size, elf.size - sec.offset)))
    desc = dwarf.debug_info_sec
    if desc is None:
        return None
    desc.stream.seek(0)
    data = desc.stream.read(desc.size)
    return Section(data, 0, len(data))


def type_names(key: str) -> list[str] | None:
    """The DW_AT_name texts a DIE filed under `key` can have: the name without its keyword, and
    the tails after each `::` (a namespace's members are filed as `ns::name`); None for C integer
    words, which base types of other spellings are filed under too (and for a name some DIE's
    undecodable bytes may have become)."""
    if ctf_int_name(key) is not None or "\ufffd" in key:
        return None
    for keyword in _KEYWORDS:
        if key.startswith(keyword):
            key = key[len(keyword):]
            break
    names = [key]
    at = key.find("::")
    while at >= 0:
        names.append(key[at + 2:])
        at = key.find("::", at + 1)
    return [n for n in names if n]


class NameFinder:
    """Lookups of type names in one file's DWARF, each reading only the units that can hold the
    name; units once read are kept (per unit) for the lookups that follow."""

    def __init__(self, info: Section, abbrev: bytes, strs: bytes, line_strs: bytes, str_offsets: bytes) -> None:
        self.info = info
        self.strs, self.line_strs, self.str_offsets = strs, line_strs, str_offsets
        self.scanner = Scanner(b"", abbrev, strs, line_strs, str_offsets, DwarfIndex())
        self.spans, self.error = unit_spans(info.data, info.base, info.size)
        self.starts = [span[0] for span in self.spans]
        self.units: dict[int, DwarfIndex] = {}  # what each unit read so far holds, by its number
        self.spent = 0.0  # scanner-byte equivalents this finder has spent

    @classmethod
    def of(cls, elf: ElfFile, dwarf: DWARFInfo) -> NameFinder | None:
        """A finder over `elf`'s DWARF (None when it has no .debug_info)."""
        info = info_section(elf, dwarf)
        return None if info is None else cls(info, *tables(dwarf))

    @property
    def errors(self) -> list[str]:
        """Why units read so far (or the walk over the unit headers) failed, one line each."""
        found = [e for i in sorted(self.units) for e in self.units[i].errors]
        return found + ([self.error] if self.error else [])

    def unit_of(self, die_offset: int) -> int:
        """The offset of the unit holding the DIE at `die_offset`."""
        i = bisect.bisect_right(self.starts, die_offset) - 1
        if i < 0:
            raise KeyError(die_offset)
        return self.starts[i]

    def find(self, name: str) -> int | None:
        """The DIE the full index gives for the type `name` (its first definition, else the
        definition of its ctfconvert spelling, else its first declaration); None when the
        file has none; TooCostly when finding it would cost nearly what indexing does."""
        canonical = ctf_int_name(name)
        texts = type_names(name)
        needles = None if texts is None else self._needles(texts)
        if needles is not None and len(needles) * FIND_COST > 1 / 2:
            needles = None  # so many searches cost more than reading the units they would pick
        declared = of_canonical = None
        for i in self._candidates(needles):
            unit = self._unit(i)
            found = unit.types.get(name)
            if found is not None:
                return found
            if of_canonical is None and canonical is not None:
                of_canonical = unit.types.get(canonical)
            if declared is None:
                declared = unit.forwards.get(name)
        return of_canonical if of_canonical is not None else declared

    # Which units can hold the name -------------------------------------------------

    def _needles(self, texts: list[str]) -> list[bytes] | None:
        """The byte strings of .debug_info one of which a unit naming a DIE with one of `texts`
        holds; None when any unit may (string offsets tables of a form read through defaults)."""
        needles: set[bytes] = set()
        offsets: set[int] = set()
        for text in texts:
            raw = text.encode() + b"\0"
            needles.add(raw)
            for table in (self.strs, self.line_strs):
                at = table.find(raw)
                while at >= 0:
                    offsets.add(at)
                    at = table.find(raw, at + 1)
        needles.update((o & 0xFFFFFFFF).to_bytes(4, "little") for o in offsets)
        if self.str_offsets and offsets:
            bases = self._str_offsets_bases(offsets)
            if bases is None:
                return None
            needles.update(b.to_bytes(4, "little") for b in bases)
        return sorted(needles)

    def _str_offsets_bases(self, offsets: set[int]) -> set[int] | None:
        """The bases (DW_AT_str_offsets_base) of the .debug_str_offsets contributions whose
        slots hold one of `offsets`; None when a unit might read such a slot without naming
        its base (the first contribution, a default's; or a table without DWARF 5 headers)."""
        table = self.str_offsets
        contributions = _contributions(table)
        if contributions is None:
            return None
        starts = [c[0] for c in contributions]
        bases = set()
        for value in offsets:
            pattern = (value & 0xFFFFFFFF).to_bytes(4, "little")
            at = table.find(pattern)
            while at >= 0:
                i = bisect.bisect_right(starts, at) - 1
                if i >= 0 and at < contributions[i][1]:
                    base = contributions[i][0]
                    if base == 8:
                        return None
                    bases.add(base)
                at = table.find(pattern, at + 1)
        return bases

    def _candidates(self, needles: list[bytes] | None) -> Iterator[int]:
        """The numbers of the units that can hold one of `needles` (every unit when None), in
        order, searched for a window at a time as the caller asks for more: windows double
        from FIRST_WINDOW to LAST_WINDOW bytes, since most names are defined early on."""
        spans = self.spans
        i, window = 0, FIRST_WINDOW
        while i < len(spans):
            j = bisect.bisect_left(self.starts, spans[i][0] + window, lo=i + 1)
            yield from range(i, j) if needles is None else self._hits(needles, i, j)
            i, window = j, min(2 * window, LAST_WINDOW)

    def _hits(self, needles: list[bytes], i: int, j: int) -> list[int]:
        """The numbers of units i..j-1 that hold one of `needles`."""
        start, end = self.spans[i][0], self.spans[j - 1][2]
        self._charge(len(needles) * (end - start) * FIND_COST)
        found = set()
        for needle in needles:
            at = self.info.find(needle, start, end)
            while at >= 0:
                k = bisect.bisect_right(self.starts, at, i, j) - 1
                found.add(k)
                nxt = self.spans[k][2]  # one hit is enough for its unit
                at = self.info.find(needle, nxt, end) if nxt < end else -1
        return sorted(found)

    def _charge(self, cost: float) -> None:
        """Count `cost` (scanner-byte equivalents) against the budget; TooCostly past it."""
        if self.spent + cost > BUDGET * self.info.size:
            raise TooCostly(f"finding names one by one would read more than {BUDGET:.0%} of .debug_info")
        self.spent += cost

    def _unit(self, i: int) -> DwarfIndex:
        """What unit number `i` holds, read once."""
        found = self.units.get(i)
        if found is None:
            offset, header, end = self.spans[i]
            self._charge(end - offset)
            found = self.units[i] = self.scanner.scan_apart(self.info.get(offset, end), offset, header, end)
        return found


def _contributions(table: bytes) -> list[tuple[int, int]] | None:
    """[base, end) of each DWARF 5 contribution to .debug_str_offsets (base: its first slot),
    or None when the table does not parse as such (GNU split DWARF 4 has no headers)."""
    out = []
    pos = 0
    while pos < len(table):
        if pos + 8 > len(table):
            return None
        length, = struct.unpack_from("<I", table, pos)
        header = 4
        if length == 0xFFFFFFFF:
            if pos + 16 > len(table):
                return None
            length, = struct.unpack_from("<Q", table, pos + 4)
            header = 12
        version, = struct.unpack_from("<H", table, pos + header)
        end = pos + header + length
        if version != 5 or length < 4 or end > len(table):
            return None
        out.append((pos + header + 4, end))
        pos = end
    return out
