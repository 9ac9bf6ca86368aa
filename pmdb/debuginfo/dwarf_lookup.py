"""One type name's DIE, found without indexing every unit: the lookups on a file whose name
index is not cached yet.

Indexing all of a large file's DWARF takes seconds (7 s for a Debian vmlinux's 164 MB of
.debug_info); one name is found far faster by letting a search that runs at C speed pick the
few units that can hold it. A unit that defines `struct task_struct` names it through
DW_AT_name, whose form puts the text in one of three places:

- DW_FORM_strp / line_strp: a 4-byte (DWARF64: 8-byte, little-endian) offset into .debug_str
  or .debug_line_str. Every place the text `task_struct\\0` occurs there is a possible offset
  (linkers merge strings by their tails: the kernel's is the tail of `free_task_struct`), and
  the unit holds that offset's bytes;
- DW_FORM_strx*: an index into the unit's slice of .debug_str_offsets, whose slot holds such
  an offset; the unit's root DIE holds that slice's base (DW_AT_str_offsets_base) as bytes;
- DW_FORM_string: the text itself, in the unit.

Where such a needle lies in a unit, the unit's abbreviations say whether a DIE of a tag the
name is filed under (a struct's for `struct x`, a typedef's or base type's for `x`) can keep
its name there, as a definition or as a declaration. The units where one can define it are
read in section order with the index's own scanner (dwarf_index.Scanner) until one does: that
is the name's first definition; when none does, those where one can declare it are read for
its first declaration. That is exactly what the full index records, which the tests check
name by name. Names made of C integer words (`unsigned long`) also match base types spelt
otherwise (`long unsigned int`), so every unit is read in turn for them; the first units
define them. The lookups of one finder may together spend a share of what indexing costs
(a common word is the tail of hundreds of strings, a typo's tag the name of structs in most
units); past it they give up with TooCostly, and the caller builds the index instead.
"""

from __future__ import annotations

import bisect
import functools
import mmap
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pmdb.debuginfo.dwarf_index import (
    TAG_BASE,
    TAG_TYPEDEF,
    DwarfIndex,
    NamePlace,
    ScanError,
    Scanner,
    ctf_int_name,
    name_places,
    tables,
    unit_header,
    unit_spans,
)
from pmdb.formats.dwarf import ET_REL, SHF_COMPRESSED
from pmdb.formats.elf import SHT_NOBITS

if TYPE_CHECKING:
    from elftools.dwarf.dwarfinfo import DWARFInfo

    from pmdb.formats.elf import ElfFile

LAZY_FROM = 1 << 19  # a .debug_info smaller than this is indexed whole at once (some 20 ms)
BUDGET = 0.25  # share of the cost of indexing .debug_info the lookups may spend before indexing is cheaper
FIND_COST = 1 / 60  # a search's cost per byte and needle, in units of the scanner's cost per byte
ABBREV_COST = 1 / 5  # reading a unit's abbreviations, in units of the cost of reading its DIEs
FIRST_WINDOW, LAST_WINDOW = 1 << 20, 16 << 20  # bytes of .debug_info searched at a time (doubling)
_NAMED_TAGS = frozenset({TAG_TYPEDEF, TAG_BASE})  # DIEs filed under a bare name
_KEYWORDS = {"struct ": frozenset({0x13, 0x02}), "union ": frozenset({0x17}), "enum ": frozenset({0x04})}
_OFFSET, _INLINE, _EITHER = 1, 2, 3  # a name kept as a string's offset, in line, or either (DW_FORM_indirect)
_FORM_KINDS = {0x0E: _OFFSET, 0x1F: _OFFSET, 0x1F21: _OFFSET, 0x08: _INLINE, 0x16: _EITHER}


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
        found = literal(needle).search(self.data, self.base + start, self.base + end)
        return found.start() - self.base if found is not None else -1

    def get(self, start: int, end: int) -> bytes:
        """The bytes at [start, end) of the section."""
        return bytes(self.data[self.base + start : self.base + end])

    def byte(self, at: int) -> int:
        """The byte at section offset `at`."""
        return self.data[self.base + at]


@functools.lru_cache(maxsize=1024)
def literal(needle: bytes) -> re.Pattern[bytes]:
    """A pattern that finds `needle`. re looks for a literal's first byte with memchr, which in
    DWARF (needles that start with a string offset's low byte, or a name's first letter) runs
    three times as fast as bytes.find, whose search keys on the last byte: mostly a 0 here."""
    return re.compile(re.escape(needle))


def info_section(elf: ElfFile, dwarf: DWARFInfo) -> Section | None:
    """The file's .debug_info as pmdb reads it: straight from the file's map when stored plainly
    (a relocatable file's needs relocating, a compressed one inflating: read those out)."""
    sec = elf.section(".debug_info")
    if sec is not None and not sec.flags & SHF_COMPRESSED and elf.type != ET_REL and sec.type != SHT_NOBITS:
        return Section(elf.data, sec.offset, max(0, min(sec.size, elf.size - sec.offset)))
    desc = dwarf.debug_info_sec
    if desc is None:
        return None
    desc.stream.seek(0)
    data = desc.stream.read(desc.size)
    return Section(data, 0, len(data))


def type_names(key: str) -> list[tuple[str, frozenset[int]]] | None:
    """The DW_AT_name texts a DIE filed under `key` can have, each with the tags of such DIEs:
    the name without its keyword (and the key itself, as a typedef's name), and the tails after
    each `::` (a namespace's members are filed as `ns::name`); None for C integer words, which
    base types of other spellings are filed under too (and for a name some DIE's undecodable
    bytes may have become)."""
    if ctf_int_name(key) is not None or "\ufffd" in key:
        return None
    out = []
    tags = _NAMED_TAGS
    for keyword, keyword_tags in _KEYWORDS.items():
        if key.startswith(keyword):
            out.append((key, _NAMED_TAGS))
            key, tags = key[len(keyword):], keyword_tags
            break
    out.append((key, tags))
    at = key.find("::")
    while at >= 0:
        out.append((key[at + 2:], tags))
        at = key.find("::", at + 1)
    return [(text, tags) for text, tags in out if text]


class NameFinder:
    """Lookups of type names in one file's DWARF, each reading only the units that can hold the
    name; units once read are kept (per unit) for the lookups that follow.

    A unit that holds a needle (a name's string offset or text) is a candidate only if a type
    DIE there can keep its name where the needle lies: the unit's abbreviations say which codes
    are those of DIEs of the tags wanted, and how far after its code each keeps its name, so
    the bytes before that distance must end such a code. The hits of a struct's name in a unit
    that only points to the struct (a declaration), of a member's or a function's name, are
    passed over this way without reading the unit's DIEs.
    """

    def __init__(self, info: Section, abbrev: bytes, strs: bytes, line_strs: bytes, str_offsets: bytes,
                 budget: float | None = None) -> None:
        """A finder over `info` (.debug_info) and the sections its DIEs refer to; its lookups
        together may spend `budget` (default BUDGET) times what indexing all of `info` costs."""
        self.info = info
        self.budget = BUDGET if budget is None else budget
        self.strs, self.line_strs, self.str_offsets = strs, line_strs, str_offsets
        self.scanner = Scanner(b"", abbrev, strs, line_strs, str_offsets, DwarfIndex())
        self.spans, self.error = unit_spans(info.data, info.base, info.size)
        self.starts = [span[0] for span in self.spans]
        self.units: dict[int, DwarfIndex] = {}  # what each unit read so far holds, by its number
        self.places: dict[int, tuple[int, list[NamePlace]] | None] = {}  # where units' type DIEs keep names
        self.spent = 0.0  # scanner-byte equivalents this finder has spent

    @classmethod
    def of(cls, elf: ElfFile, dwarf: DWARFInfo, budget: float | None = None) -> NameFinder | None:
        """A finder over `elf`'s DWARF (None when it has no .debug_info)."""
        info = info_section(elf, dwarf)
        return None if info is None else cls(info, *tables(dwarf), budget=budget)

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
        texts = type_names(name)
        needles = None if texts is None else self._needles(texts)
        if needles is not None and len(needles) * FIND_COST > 1 / 2:
            needles = None  # so many searches cost more than reading the units they would pick
        if needles is None:
            return self._find_everywhere(name)
        declaring: list[int] = []
        for i in self._candidates(needles, declaring):
            found = self._unit(i).types.get(name)
            if found is not None:
                return found
        for i in declaring:  # no unit defines the name: the first that declares it
            found = self._unit(i).forwards.get(name)
            if found is not None:
                return found
        return None

    def _find_everywhere(self, name: str) -> int | None:
        """find, reading every unit in turn until one defines `name`."""
        canonical = ctf_int_name(name)
        declared = of_canonical = None
        for i in range(len(self.spans)):
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

    def _needles(self, texts: list[tuple[str, frozenset[int]]]) -> dict[bytes, frozenset[tuple[int, int]]] | None:
        """The byte strings of .debug_info one of which a unit naming a DIE with one of `texts`
        holds, each with what a hit can be: (how the name is kept, the DIE's tag) pairs, empty
        for the base of a string offsets table (a unit that names it is read whatever the hit);
        None when any unit may (string offsets tables of a form read through defaults)."""
        needles: dict[bytes, set[tuple[int, int]]] = {}
        offsets: set[int] = set()
        for text, tags in texts:
            raw = text.encode() + b"\0"
            needles.setdefault(raw, set()).update((_INLINE, tag) for tag in tags)
            for table in (self.strs, self.line_strs):
                for found in literal(raw).finditer(table):
                    if table is self.strs:
                        offsets.add(found.start())
                    needles.setdefault((found.start() & 0xFFFFFFFF).to_bytes(4, "little"), set()).update(
                        (_OFFSET, tag) for tag in tags)
        if self.str_offsets and offsets:  # offsets into .debug_str a DW_FORM_strx slot may hold
            bases = self._str_offsets_bases(offsets)
            if bases is None:
                return None
            for base in bases:
                needles[base.to_bytes(4, "little")] = set()
        return {needle: frozenset(roles) for needle, roles in needles.items()}

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

    def _candidates(self, needles: dict[bytes, frozenset[tuple[int, int]]], declaring: list[int]) -> Iterator[int]:
        """The numbers of the units where a needle may be the name of a DIE that defines a type,
        in order, searched for a window at a time as the caller asks for more (windows double
        from FIRST_WINDOW to LAST_WINDOW bytes, since most names are defined early on); those
        where it may be a declaration's are added to `declaring`, in order, as windows go by."""
        spans = self.spans
        i, window = 0, FIRST_WINDOW
        while i < len(spans):
            j = bisect.bisect_left(self.starts, spans[i][0] + window, lo=i + 1)
            defining, declares = self._hits(needles, i, j)
            declaring += declares
            yield from defining
            i, window = j, min(2 * window, LAST_WINDOW)

    def _hits(self, needles: dict[bytes, frozenset[tuple[int, int]]], i: int, j: int) -> tuple[list[int], list[int]]:
        """The numbers of units i..j-1 holding a needle where a type DIE may be defined, and
        those where one may be declared."""
        start, end = self.spans[i][0], self.spans[j - 1][2]
        self._charge(len(needles) * (end - start) * FIND_COST)
        defining: set[int] = set()
        declaring: set[int] = set()
        for needle, roles in needles.items():
            at = self.info.find(needle, start, end)
            while at >= 0:
                k = bisect.bisect_right(self.starts, at, i, j) - 1
                defines, declares = self._may_name(k, at, roles)
                if defines:
                    defining.add(k)
                if declares:
                    declaring.add(k)
                nxt = self.spans[k][2] if k in defining and k in declaring else at + 1
                at = self.info.find(needle, nxt, end) if nxt < end else -1
        return sorted(defining), sorted(declaring)

    def _may_name(self, i: int, at: int, roles: frozenset[tuple[int, int]]) -> tuple[bool, bool]:
        """Whether the needle at `at` of unit number `i` may be the name of a DIE that defines
        a type, and of one that declares it, as `roles` say it could be kept (none: a string
        offsets base, which any DIE of the unit may read through)."""
        found = self._name_places(i)
        if found is None or not roles:
            return True, True
        first_die, places = found
        defines = declares = False
        for place in places:
            how = _FORM_KINDS.get(place.form)
            if how is None or not ((how, place.tag) in roles or (how == _EITHER and (
                    (_INLINE, place.tag) in roles or (_OFFSET, place.tag) in roles))):
                continue
            if place.offset is not None and how != _EITHER and not self._code_ends(at - place.offset, first_die,
                                                                                   place.code):
                continue
            defines = defines or place.declaration is not True
            declares = declares or place.declaration is not False
        return defines, declares

    def _code_ends(self, at: int, first_die: int, code: int) -> bool:
        """Whether a DIE's code `code` (ULEB128, in as many bytes as a producer pleases) may end
        just before section offset `at`, within the unit's DIEs starting at `first_die`."""
        for n in range(1, min(5, at - first_die) + 1):
            raw = self.info.get(at - n, at)
            if raw[-1] >= 0x80 or any(b < 0x80 for b in raw[:-1]):
                return False
            if sum((b & 0x7F) << (7 * k) for k, b in enumerate(raw)) == code:
                return True
        return False

    def _name_places(self, i: int) -> tuple[int, list[NamePlace]] | None:
        """Where unit number `i` starts its DIEs, and where its type DIEs keep their names (read
        once from its abbreviations); None when its header or abbreviations do not parse (then
        reading the unit says what is wrong)."""
        if i not in self.places:
            offset, header, end = self.spans[i]
            self._charge(ABBREV_COST * (end - offset))
            try:
                head = self.info.get(offset, min(end, offset + header + 40))
                version, offset_size, address_size, abbrev_offset, first = unit_header(head, 0, header)
                table = self.scanner.abbreviations(abbrev_offset, version, offset_size, address_size)
                self.places[i] = (offset + first, name_places(table, version, offset_size, address_size))
            except (ScanError, IndexError, struct.error, ValueError, KeyError):
                self.places[i] = None
        return self.places[i]

    def _charge(self, cost: float) -> None:
        """Count `cost` (scanner-byte equivalents) against the budget; TooCostly past it."""
        if self.spent + cost > self.budget * self.info.size:
            raise TooCostly(f"finding names one by one would cost more than {self.budget:.0%} of indexing")
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
