"""One object file's DWARF, read lazily for source lines and variables: which compilation unit
covers an address (.debug_aranges, else the units' own ranges), each unit's functions by
address, and helpers over DIEs (names through abstract origins and specifications).

Nothing here reads a unit before an address inside it is asked for. DIEs come from the
lean reader in `dies.py`; every failure (a DieError, or pyelftools' when it opens the file or
decodes a line program) becomes a DwarfError that names the file and the unit, so that one
bad unit costs one answer, not the session.
"""

from __future__ import annotations

import bisect
import contextlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from elftools.common.exceptions import DWARFError, ELFParseError
from elftools.construct.core import ConstructError

from pmdb.debuginfo.dies import (
    CONSTANT_FORMS,
    MAX_DEPTH,
    AT_abstract_origin,
    AT_entry_pc,
    AT_linkage_name,
    AT_low_pc,
    AT_MIPS_linkage_name,
    AT_name,
    AT_specification,
    Die,
    DieError,
    Sections,
    TAG_class,
    TAG_module,
    TAG_namespace,
    TAG_structure,
    TAG_subprogram,
    TAG_union,
    Unit,
    address_ranges,
    unit_headers,
)
from pmdb.errors import PmdbError
from pmdb.formats.dwarf import DWARF_ERRORS, open_dwarf

if TYPE_CHECKING:
    from elftools.dwarf.dwarfinfo import DWARFInfo

    from pmdb.formats.elf import ElfFile

ERRORS = (*DWARF_ERRORS, DWARFError, DieError, NotImplementedError)
_SCOPE_PARENTS = frozenset((TAG_namespace, TAG_module))
_FUNCTION_SCAN = frozenset((TAG_subprogram, *_SCOPE_PARENTS))
_NAMED_PARENTS = frozenset((TAG_namespace, TAG_class, TAG_structure, TAG_union, TAG_module))


class DwarfError(PmdbError):
    """The DWARF of one file (or one unit of it) is malformed or uses what pmdb cannot read."""


@contextlib.contextmanager
def guard(where: str) -> Iterator[None]:
    """Turn a failure while reading `where`'s DWARF into a one-line DwarfError."""
    try:
        yield
    except DwarfError:
        raise
    except PmdbError as e:
        raise DwarfError(f"bad DWARF in {where}: {e}") from None
    except ERRORS as e:
        parse = isinstance(e, (ConstructError, ELFParseError, struct.error, EOFError))
        detail = "data ends early or is malformed" if parse else str(e) or type(e).__name__
        raise DwarfError(f"bad DWARF in {where}: {detail}") from None


@dataclass(frozen=True)
class Function:
    """A function's concrete DIE (DW_TAG_subprogram with code) and its pc ranges (link-time)."""

    unit: Unit
    die: Die
    ranges: tuple[tuple[int, int], ...]

    @property
    def entry(self) -> int:
        """The function's entry address: DW_AT_entry_pc (an address, or an offset from the
        start), else DW_AT_low_pc, else the start of its first range (a function split into
        hot and cold parts lists the hot one first)."""
        die = self.die
        start = die.address(AT_low_pc)
        start = self.ranges[0][0] if start is None else start
        if die.form(AT_entry_pc) in CONSTANT_FORMS:
            return start + (die.int(AT_entry_pc) or 0)
        entry = die.address(AT_entry_pc)
        return start if entry is None else entry


class ObjectDwarf:
    """The DWARF of one ELF file, opened on first use; units and their functions cached."""

    def __init__(self, elf: ElfFile, label: str) -> None:
        self.elf = elf
        self.label = label
        self._units: dict[int, Unit | DwarfError] = {}
        self._abbrevs: dict[int, dict] = {}
        self._functions: dict[int, tuple[list[int], list[tuple[int, int, Function]]] | DwarfError] = {}

    @cached_property
    def info(self) -> DWARFInfo | None:
        """pyelftools' DWARFInfo over the file (None when it has no DWARF): its section
        streams, and line programs."""
        with guard(self.label):
            return open_dwarf(self.elf)

    @cached_property
    def sections(self) -> Sections:
        """Random access to the DWARF sections (DwarfError when the file has none)."""
        info = self.info
        if info is None:
            raise DwarfError(f"{self.label}: no DWARF")
        return Sections(info)

    @cached_property
    def _aranges(self) -> tuple[list[int], list[tuple[int, int, int]]] | None:
        """(starts, [(start, end, unit offset)]) from .debug_aranges, None when it is absent."""
        info = self.info
        sec = info.debug_aranges_sec if info is not None else None
        if sec is None:
            return None
        with guard(f"{self.label} .debug_aranges"):
            sec.stream.seek(0)
            rows = sorted(parse_aranges(sec.stream.read(sec.size)))
        return [r[0] for r in rows], rows

    @cached_property
    def _unit_ranges(self) -> tuple[list[int], list[tuple[int, int, int]]]:
        """The same table built from every unit's own ranges (files without .debug_aranges)."""
        rows = []
        with guard(self.label):
            for offset, _size in unit_headers(self.sections):
                unit = self.unit(offset)
                rows.extend((lo, hi, offset) for lo, hi in address_ranges(unit.top))
        rows.sort()
        return [r[0] for r in rows], rows

    def unit_at(self, addr: int) -> Unit | None:
        """The unit whose code covers link-time `addr`, if any."""
        if self.info is None:
            return None
        starts, rows = self._aranges or self._unit_ranges
        i = bisect.bisect_right(starts, addr)
        for start, end, offset in reversed(rows[max(0, i - 8) : i]):  # a few back: ranges may nest
            if start <= addr < end:
                return self.unit(offset)
        return None

    def unit(self, offset: int) -> Unit:
        """The unit whose header is at `offset` in .debug_info (a DwarfError, once found, is
        remembered: a bad unit is read once)."""
        unit = self._units.get(offset)
        if unit is None:
            try:
                with guard(f"{self.label} (unit at {offset:#x})"):
                    unit = self._units[offset] = Unit(self, self.sections, offset, self._abbrevs)
            except DwarfError as e:
                self._units[offset] = e
                raise
        if isinstance(unit, DwarfError):
            raise unit
        return unit

    def die_at(self, offset: int) -> Die:
        """The DIE at `offset` of .debug_info, in whichever unit holds it (DW_FORM_ref_addr)."""
        for unit in self._units.values():
            if isinstance(unit, Unit) and unit.die_offset <= offset < unit.end:
                return unit.die(offset)
        for start, size in unit_headers(self.sections):
            if start <= offset < start + size:
                return self.unit(start).die(offset)
        raise DieError(f"no unit holds the DIE offset {offset:#x}")

    def function_at(self, addr: int) -> Function | None:
        """The concrete function (DW_TAG_subprogram) whose code covers link-time `addr`."""
        unit = self.unit_at(addr)
        if unit is None:
            return None
        starts, rows = self._unit_functions(unit)
        i = bisect.bisect_right(starts, addr)
        for lo, hi, fn in reversed(rows[max(0, i - 8) : i]):  # a few back: a function may hold another
            if lo <= addr < hi:
                return fn
        return None

    def _unit_functions(self, unit: Unit) -> tuple[list[int], list[tuple[int, int, Function]]]:
        """Every range of every function with code in the unit, by address (one walk per unit)."""
        cached = self._functions.get(unit.offset)
        if cached is None:
            found: list[Function] = []
            try:
                with guard(unit.where):
                    self._collect_functions(unit, unit.top, found, 0)
            except DwarfError as e:
                self._functions[unit.offset] = e
                raise
            rows = sorted(((lo, hi, fn) for fn in found for lo, hi in fn.ranges), key=lambda r: r[0])
            cached = self._functions[unit.offset] = ([r[0] for r in rows], rows)
        if isinstance(cached, DwarfError):
            raise cached
        return cached

    def _collect_functions(self, unit: Unit, parent: Die, out: list[Function], depth: int) -> None:
        for die in unit.children(parent, depth, _FUNCTION_SCAN):
            if die.tag == TAG_subprogram:
                ranges = address_ranges(die)
                if ranges:
                    out.append(Function(unit, die, tuple(ranges)))
            elif die.tag in _SCOPE_PARENTS:
                self._collect_functions(unit, die, out, depth + 1)


def parse_aranges(data: bytes) -> list[tuple[int, int, int]]:
    """(start, end, unit offset) of every range in a .debug_aranges section (64-bit addresses).

    A set whose header is malformed ends the parse there; what came before it stands.
    """
    rows: list[tuple[int, int, int]] = []
    view = memoryview(data)
    pos, total = 0, len(data)
    while pos + 4 <= total:
        (length,) = struct.unpack_from("<I", data, pos)
        if length == 0xFFFFFFFF:
            if pos + 24 > total:
                break
            length, _version, unit_offset, addr_size, seg_size = struct.unpack_from("<QHQBB", data, pos + 4)
            head = 12 + 2 + 8 + 2
        else:
            if pos + 12 > total:
                break
            _version, unit_offset, addr_size, seg_size = struct.unpack_from("<HIBB", data, pos + 4)
            head = 4 + 2 + 4 + 2
        end = min(total, pos + (12 if head > 12 else 4) + length)
        if end < pos + head:
            break
        if addr_size == 8 and seg_size == 0:
            t = pos + -(-head // 16) * 16
            count = max(0, (end - t) // 16)
            for start, size in struct.iter_unpack("<QQ", view[t : t + 16 * count]):
                if start == 0 and size == 0:
                    break
                if size:
                    rows.append((start, start + size, unit_offset))
        pos = end if end > pos else total
    return rows


def origin(die: Die) -> Die:
    """The DIE that describes `die`'s source entity: through DW_AT_abstract_origin and
    DW_AT_specification, as far as they go (at most MAX_DEPTH steps)."""
    for _ in range(MAX_DEPTH):
        nxt = die.ref(AT_abstract_origin) or die.ref(AT_specification)
        if nxt is None:
            return die
        die = nxt
    raise DieError("abstract origins loop")


def inherited(die: Die, attr: int) -> Die | None:
    """The first DIE on the abstract origin / specification chain that has `attr`."""
    for _ in range(MAX_DEPTH):
        if attr in die:
            return die
        nxt = die.ref(AT_abstract_origin) or die.ref(AT_specification)
        if nxt is None:
            return None
        die = nxt
    raise DieError("abstract origins loop")


def die_name(die: Die) -> str | None:
    """The DIE's name, from it or its abstract origin / specification."""
    named = inherited(die, AT_name)
    return named.string(AT_name) if named is not None else None


def linkage_name(die: Die) -> str | None:
    """The DIE's symbol name (DW_AT_linkage_name), else its name."""
    for attr in (AT_linkage_name, AT_MIPS_linkage_name):
        named = inherited(die, attr)
        if named is not None:
            return named.string(attr)
    return die_name(die)


def function_name(die: Die) -> str | None:
    """A function's name as gdb shows it: its symbol name when DWARF gives one that is not
    mangled (C functions renamed by an asm label, like glibc's `__GI___libc_read`), else its
    name with its namespaces and classes (`Config::lookup`)."""
    for attr in (AT_linkage_name, AT_MIPS_linkage_name):
        named = inherited(die, attr)
        symbol = named.string(attr) if named is not None else None
        if symbol and not symbol.startswith("_Z"):
            return symbol
    return qualified_name(die)


def qualified_name(die: Die) -> str | None:
    """A function's name with its namespaces and classes (`Config::lookup`)."""
    name = die_name(die)
    if name is None:
        return None
    decl = origin(die)
    parts = [name]
    parent = decl.unit.parent(decl)
    for _ in range(MAX_DEPTH):
        if parent is None or parent.tag not in _NAMED_PARENTS:
            break
        parts.append(parent.string(AT_name) or "(anonymous namespace)")
        parent = parent.unit.parent(parent)
    return "::".join(reversed(parts))
