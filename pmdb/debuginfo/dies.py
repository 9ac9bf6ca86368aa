"""A lean reader of DWARF debugging information entries (DIEs), versions 2 to 5.

pyelftools decodes every DIE through construct (tens of microseconds each) and a unit's
whole abbreviation table through construct before its first DIE; finding the function at
a pc walks every top-level DIE of a unit, hundreds in one glibc unit, which made `$c`
pay more for its arguments than for everything else. This reader decodes abbreviation
tables, unit headers and DIEs with struct and LEB128 loops over one read of the unit's
bytes, keeps attribute values raw (string offsets, address indexes) until asked, and
reads range lists and location lists itself. pyelftools still opens the file's DWARF
(its section streams) and decodes line programs.

Every read is bounded by its unit or section: malformed input raises DieError, which
callers turn into a message for that unit; no walk can loop.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Protocol, TypeVar

from pmdb.debuginfo.dwarf_expr import sleb128, uleb128

if TYPE_CHECKING:
    from elftools.dwarf.dwarfinfo import DWARFInfo

T = TypeVar("T")
MAX_DEPTH = 64  # nesting of DIEs (and of reference chains) followed before calling the DWARF malformed
_STRING_CHUNK = 256
_MAX_STRING = 1 << 16

# Tags, attributes and forms pmdb reads (DWARF 5, 7.5).
TAG_array, TAG_class, TAG_enumeration, TAG_formal_parameter, TAG_label = 0x01, 0x02, 0x04, 0x05, 0x0A
TAG_lexical_block, TAG_pointer, TAG_reference, TAG_compile_unit, TAG_structure = 0x0B, 0x0F, 0x10, 0x11, 0x13
TAG_subroutine_type, TAG_typedef, TAG_union, TAG_inlined_subroutine, TAG_module = 0x15, 0x16, 0x17, 0x1D, 0x1E
TAG_ptr_to_member, TAG_subrange, TAG_base_type, TAG_const, TAG_subprogram = 0x1F, 0x21, 0x24, 0x26, 0x2E
TAG_variable, TAG_volatile, TAG_restrict, TAG_namespace, TAG_partial_unit = 0x34, 0x35, 0x37, 0x39, 0x3C
TAG_rvalue_reference, TAG_atomic, TAG_call_site, TAG_call_site_parameter = 0x42, 0x47, 0x48, 0x49
TAG_immutable, TAG_GNU_call_site, TAG_GNU_call_site_parameter = 0x4B, 0x4109, 0x410A

AT_sibling, AT_location, AT_name, AT_byte_size, AT_stmt_list, AT_low_pc = 0x01, 0x02, 0x03, 0x0B, 0x10, 0x11
AT_high_pc, AT_comp_dir, AT_const_value, AT_upper_bound, AT_abstract_origin = 0x12, 0x1B, 0x1C, 0x2F, 0x31
AT_count, AT_declaration, AT_encoding, AT_frame_base, AT_specification, AT_type = 0x37, 0x3C, 0x3E, 0x40, 0x47, 0x49
AT_entry_pc, AT_ranges, AT_call_column, AT_call_file, AT_call_line = 0x52, 0x55, 0x57, 0x58, 0x59
AT_linkage_name, AT_str_offsets_base, AT_addr_base, AT_rnglists_base = 0x6E, 0x72, 0x73, 0x74
AT_call_return_pc, AT_call_value, AT_call_origin, AT_call_tail_call = 0x7D, 0x7E, 0x7F, 0x82
AT_call_target, AT_loclists_base, AT_MIPS_linkage_name = 0x83, 0x8C, 0x2007
AT_GNU_call_site_value, AT_GNU_call_site_target, AT_GNU_tail_call = 0x2111, 0x2113, 0x2115

FORM_addr, FORM_block2, FORM_block4, FORM_data2, FORM_data4, FORM_data8 = 0x01, 0x03, 0x04, 0x05, 0x06, 0x07
FORM_string, FORM_block, FORM_block1, FORM_data1, FORM_flag, FORM_sdata = 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D
FORM_strp, FORM_udata, FORM_ref_addr, FORM_ref1, FORM_ref2, FORM_ref4 = 0x0E, 0x0F, 0x10, 0x11, 0x12, 0x13
FORM_ref8, FORM_ref_udata, FORM_indirect, FORM_sec_offset, FORM_exprloc = 0x14, 0x15, 0x16, 0x17, 0x18
FORM_flag_present, FORM_strx, FORM_addrx, FORM_ref_sup4, FORM_strp_sup = 0x19, 0x1A, 0x1B, 0x1C, 0x1D
FORM_data16, FORM_line_strp, FORM_ref_sig8, FORM_implicit_const, FORM_loclistx = 0x1E, 0x1F, 0x20, 0x21, 0x22
FORM_rnglistx, FORM_ref_sup8, FORM_strx1, FORM_strx2, FORM_strx3, FORM_strx4 = 0x23, 0x24, 0x25, 0x26, 0x27, 0x28
FORM_addrx1, FORM_addrx2, FORM_addrx3, FORM_addrx4 = 0x29, 0x2A, 0x2B, 0x2C
FORM_GNU_addr_index, FORM_GNU_str_index, FORM_GNU_ref_alt, FORM_GNU_strp_alt = 0x1F01, 0x1F02, 0x1F20, 0x1F21

_FIXED = {FORM_data1: 1, FORM_ref1: 1, FORM_flag: 1, FORM_strx1: 1, FORM_addrx1: 1, FORM_data2: 2, FORM_ref2: 2,
          FORM_strx2: 2, FORM_addrx2: 2, FORM_strx3: 3, FORM_addrx3: 3, FORM_data4: 4, FORM_ref4: 4,
          FORM_ref_sup4: 4, FORM_strx4: 4, FORM_addrx4: 4, FORM_data8: 8, FORM_ref8: 8, FORM_ref_sig8: 8,
          FORM_ref_sup8: 8}
_OFFSET_FORMS = frozenset((FORM_strp, FORM_sec_offset, FORM_line_strp, FORM_strp_sup, FORM_GNU_ref_alt,
                           FORM_GNU_strp_alt))
_ULEB_FORMS = frozenset((FORM_udata, FORM_ref_udata, FORM_strx, FORM_addrx, FORM_loclistx, FORM_rnglistx,
                         FORM_GNU_addr_index, FORM_GNU_str_index))
_BLOCK_LEN = {FORM_block1: (1, "<B"), FORM_block2: (2, "<H"), FORM_block4: (4, "<I")}
_LOCAL_REFS = frozenset((FORM_ref1, FORM_ref2, FORM_ref4, FORM_ref8, FORM_ref_udata))
_STRX = frozenset((FORM_strx, FORM_strx1, FORM_strx2, FORM_strx3, FORM_strx4, FORM_GNU_str_index))
_ADDRX = frozenset((FORM_addrx, FORM_addrx1, FORM_addrx2, FORM_addrx3, FORM_addrx4, FORM_GNU_addr_index))
BLOCK_FORMS = frozenset((FORM_block, FORM_block1, FORM_block2, FORM_block4, FORM_exprloc))
CONSTANT_FORMS = frozenset((FORM_data1, FORM_data2, FORM_data4, FORM_data8, FORM_sdata, FORM_udata,
                             FORM_implicit_const))


class DieError(Exception):
    """The DWARF being read is malformed (or uses a form pmdb cannot read)."""


class Sections:
    """Random access to a file's DWARF sections, through the streams pyelftools opened."""

    def __init__(self, info: DWARFInfo) -> None:
        self._secs = {
            "info": info.debug_info_sec, "abbrev": info.debug_abbrev_sec, "str": info.debug_str_sec,
            "line_str": info.debug_line_str_sec, "str_offsets": info.debug_str_offsets_sec,
            "addr": info.debug_addr_sec, "loc": info.debug_loc_sec, "loclists": info.debug_loclists_sec,
            "ranges": info.debug_ranges_sec, "rnglists": info.debug_rnglists_sec,
        }
        self._strings: dict[tuple[str, int], bytes] = {}

    def size(self, name: str) -> int:
        """The section's size (0 when the file has none)."""
        sec = self._secs.get(name)
        return sec.size if sec is not None else 0

    def read(self, name: str, offset: int, size: int) -> bytes:
        """Up to `size` bytes at `offset` of .debug_<name> (fewer at its end); DieError outside it."""
        sec = self._secs.get(name)
        if sec is None:
            raise DieError(f"no .debug_{name} section")
        if not 0 <= offset <= sec.size:
            raise DieError(f"offset {offset:#x} is outside .debug_{name} ({sec.size:#x} bytes)")
        sec.stream.seek(offset)
        return sec.stream.read(max(0, min(size, sec.size - offset)))

    def cstring(self, name: str, offset: int) -> bytes:
        """The NUL-terminated string at `offset` of .debug_<name>."""
        key = (name, offset)
        s = self._strings.get(key)
        if s is None:
            out = b""
            while True:
                chunk = self.read(name, offset + len(out), _STRING_CHUNK)
                end = chunk.find(b"\0")
                if end >= 0:
                    s = out + chunk[:end]
                    break
                out += chunk
                if not chunk or len(out) > _MAX_STRING:
                    raise DieError(f"unterminated string at {offset:#x} of .debug_{name}")
            self._strings[key] = s
        return s


@dataclass(frozen=True)
class Abbrev:
    """One abbreviation: the tag, whether DIEs using it have children, (attribute, form, implicit value)s."""

    tag: int
    has_children: bool
    specs: tuple[tuple[int, int, int], ...]


def parse_abbrevs(sections: Sections, offset: int) -> dict[int, Abbrev]:
    """The abbreviation table at `offset` of .debug_abbrev, read in growing chunks."""
    size = 1 << 14
    total = sections.size("abbrev")
    while True:
        data = sections.read("abbrev", offset, size)
        try:
            return _abbrevs(data)
        except IndexError:
            if offset + size >= total:
                raise DieError(f"abbreviation table at {offset:#x} runs past .debug_abbrev") from None
            size *= 4


def _abbrevs(data: bytes) -> dict[int, Abbrev]:
    table: dict[int, Abbrev] = {}
    pos = 0
    while True:
        code, pos = uleb128(data, pos)
        if code == 0:
            return table
        tag, pos = uleb128(data, pos)
        children = data[pos]
        pos += 1
        specs = []
        while True:
            attr, pos = uleb128(data, pos)
            form, pos = uleb128(data, pos)
            if attr == 0 and form == 0:
                break
            implicit = 0
            if form == FORM_implicit_const:
                implicit, pos = sleb128(data, pos)
            specs.append((attr, form, implicit))
        table[code] = Abbrev(tag, bool(children), tuple(specs))


@dataclass(frozen=True, eq=False)
class Die:
    """A DIE: its unit, offset in .debug_info, tag, and raw attributes {attribute: (form, value)}.

    `end` is where the DIE's own bytes end (its first child, when it has children). A null
    DIE (the end of a list of children) has tag 0.
    """

    unit: Unit
    offset: int
    tag: int
    has_children: bool
    attrs: dict[int, tuple[int, object]]
    end: int

    def __contains__(self, attr: int) -> bool:
        return attr in self.attrs

    def form(self, attr: int) -> int | None:
        """The form of an attribute (None when absent)."""
        v = self.attrs.get(attr)
        return v[0] if v is not None else None

    def int(self, attr: int) -> int | None:
        """A constant, flag, offset or address-index attribute as an integer (None when absent)."""
        v = self.attrs.get(attr)
        if v is None or not isinstance(v[1], int):
            return None
        return v[1]

    def address(self, attr: int) -> int | None:
        """An address attribute (DW_FORM_addr, or an index into .debug_addr)."""
        v = self.attrs.get(attr)
        if v is None:
            return None
        form, value = v
        if form in _ADDRX:
            return self.unit.indexed_address(value)  # type: ignore[arg-type]
        return value if isinstance(value, int) else None

    def string(self, attr: int) -> str | None:
        """A string attribute, wherever its form keeps the text."""
        v = self.attrs.get(attr)
        if v is None:
            return None
        form, value = v
        unit = self.unit
        if form == FORM_string:
            data = value
        elif form == FORM_strp:
            data = unit.sections.cstring("str", value)  # type: ignore[arg-type]
        elif form == FORM_line_strp:
            data = unit.sections.cstring("line_str", value)  # type: ignore[arg-type]
        elif form in _STRX:
            data = unit.sections.cstring("str", unit.indexed_string_offset(value))  # type: ignore[arg-type]
        else:
            return None  # strings in a supplementary (dwz) file, or not a string
        return data.decode("utf-8", "replace")  # type: ignore[union-attr]

    def block(self, attr: int) -> bytes | None:
        """A block or expression attribute's bytes (None when absent or of another form)."""
        v = self.attrs.get(attr)
        return v[1] if v is not None and v[0] in BLOCK_FORMS else None  # type: ignore[return-value]

    def ref(self, attr: int) -> Die | None:
        """The DIE a reference attribute points to (None when absent or not followable)."""
        v = self.attrs.get(attr)
        if v is None:
            return None
        form, value = v
        if form in _LOCAL_REFS:
            return self.unit.die(self.unit.offset + value)  # type: ignore[operator]
        if form == FORM_ref_addr:
            return self.unit.dwarf_die(value)  # type: ignore[arg-type]
        return None


class UnitOwner(Protocol):
    """The file a unit belongs to: how messages name it, and DIEs of its other units."""

    label: str

    def die_at(self, offset: int) -> Die:
        """The DIE at `offset` of .debug_info, in whichever unit holds it."""
        ...


class Unit:
    """One unit of .debug_info: its header, its bytes (read once), its abbreviations and DIEs."""

    def __init__(self, owner: UnitOwner, sections: Sections, offset: int,
                 abbrevs: dict[int, dict[int, Abbrev]]) -> None:
        self.owner = owner
        self.sections = sections
        self.offset = offset
        try:
            abbrev_offset = self._header(sections.read("info", offset, 32))
        except (IndexError, struct.error):
            raise DieError(f"unit header at {offset:#x} runs past .debug_info") from None
        self.end = offset + self.size
        self.data = sections.read("info", offset, self.size)
        if len(self.data) < self.size:
            raise DieError(f"unit at {offset:#x} runs past the end of .debug_info")
        if abbrev_offset not in abbrevs:
            abbrevs[abbrev_offset] = parse_abbrevs(sections, abbrev_offset)
        self.abbrevs = abbrevs[abbrev_offset]
        self._dies: dict[int, Die] = {}
        self._parents: dict[int, Die] = {}
        self.location_lists: dict[int, list[LocationEntry]] = {}
        self._fixed: dict[int, int] = {}  # abbreviation code -> size of a leaf DIE using it (0: varies)

    def _header(self, head: bytes) -> int:
        """Decode the unit header (sizes, version, where the DIEs start); its abbreviation offset."""
        offset = self.offset
        (length,) = struct.unpack_from("<I", head, 0)
        pos, self.offset_size = 4, 4
        if length == 0xFFFFFFFF:
            (length,) = struct.unpack_from("<Q", head, 4)
            pos, self.offset_size = 12, 8
        elif length >= 0xFFFFFFF0:
            raise DieError(f"unit at {offset:#x} has a reserved length {length:#x}")
        self.size = pos + length
        (self.version,) = struct.unpack_from("<H", head, pos)
        pos += 2
        off_fmt = "<I" if self.offset_size == 4 else "<Q"
        if self.version >= 5:
            unit_type, self.address_size = head[pos], head[pos + 1]
            (abbrev_offset,) = struct.unpack_from(off_fmt, head, pos + 2)
            pos += 2 + self.offset_size
            if unit_type in (2, 6):  # type units: signature and type offset
                pos += 8 + self.offset_size
            elif unit_type in (4, 5):  # skeleton and split units: dwo id
                pos += 8
        elif 2 <= self.version <= 4:
            (abbrev_offset,) = struct.unpack_from(off_fmt, head, pos)
            self.address_size = head[pos + self.offset_size]
            pos += self.offset_size + 1
        else:
            raise DieError(f"unit at {offset:#x} has DWARF version {self.version}")
        if self.address_size not in (4, 8):
            raise DieError(f"unit at {offset:#x} has {self.address_size}-byte addresses")
        self.die_offset = offset + pos
        return abbrev_offset  # type: ignore[no-any-return]

    @cached_property
    def top(self) -> Die:
        """The unit's DW_TAG_compile_unit (or partial unit) DIE."""
        return self.die(self.die_offset)

    @cached_property
    def name(self) -> str:
        """The unit's DW_AT_name (its primary source file), "" when it has none."""
        return self.top.string(AT_name) or ""

    @cached_property
    def comp_dir(self) -> str:
        """The unit's compilation directory, "" when it has none."""
        return self.top.string(AT_comp_dir) or ""

    @cached_property
    def base(self) -> int:
        """The unit's base address (DW_AT_low_pc) for range and location lists."""
        return self.top.address(AT_low_pc) or 0

    @property
    def where(self) -> str:
        """How messages name the unit: `file (unit seed.c at 0x0)`."""
        try:
            name = self.name or "?"
        except DieError:
            name = "?"
        return f"{self.owner.label} (unit {name} at {self.offset:#x})"

    def die(self, offset: int) -> Die:
        """The DIE at .debug_info `offset` inside this unit (parsed once)."""
        d = self._dies.get(offset)
        if d is None:
            if not self.die_offset <= offset < self.end:
                raise DieError(f"DIE offset {offset:#x} is outside its unit at {self.offset:#x}")
            d = self._dies[offset] = self._parse(offset)
        return d

    def dwarf_die(self, offset: int) -> Die:
        """A DIE anywhere in .debug_info (DW_FORM_ref_addr)."""
        if self.die_offset <= offset < self.end:
            return self.die(offset)
        return self.owner.die_at(offset)

    def children(self, die: Die, depth: int = 0, only: frozenset[int] | None = None) -> Iterator[Die]:
        """The DIE's children in order (with `only`, just those with these tags: the others
        are stepped over without being decoded when their size is fixed). Walks forward
        only: a sibling pointer that does not move forward, or nesting deeper than
        MAX_DEPTH, is a DieError."""
        yield from self._walk(die, depth, only)

    def subtree_end(self, die: Die, depth: int = 0) -> int:
        """Offset just past the DIE and its children: its DW_AT_sibling, else found by walking."""
        if not die.has_children:
            return die.end
        sib = die.attrs.get(AT_sibling)
        if sib is not None and sib[0] in _LOCAL_REFS:
            return self.offset + sib[1]  # type: ignore[operator]
        walk = self._walk(die, depth)
        while True:
            try:
                next(walk)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]

    def _walk(self, die: Die, depth: int, only: frozenset[int] | None = None) -> Generator[Die, None, int]:
        """Yield the DIE's children; return the offset just past its null terminator."""
        if not die.has_children:
            return die.end
        if depth > MAX_DEPTH:
            raise DieError(f"DIEs nested more than {MAX_DEPTH} deep")
        pos = die.end
        while pos < self.end:
            if only is not None and pos not in self._dies:
                skip = self._fixed_skip(pos, only)
                if skip:
                    pos += skip
                    continue
            child = self.die(pos)
            if child.tag == 0:
                return child.end
            self._parents.setdefault(child.offset, die)
            yield child
            nxt = self.subtree_end(child, depth + 1)
            if nxt <= pos:
                raise DieError(f"DIE at {pos:#x} points back to {nxt:#x}")
            pos = nxt
        raise DieError(f"children of the DIE at {die.offset:#x} run past the end of the unit")

    def _fixed_skip(self, pos: int, only: frozenset[int]) -> int:
        """The size of the leaf DIE at `pos` when its tag is not in `only` and all its
        attributes have fixed sizes; 0 when it must be decoded."""
        data = self.data
        rel = pos - self.offset
        code = data[rel] if rel < len(data) else 0
        if code == 0 or code & 0x80:
            return 0  # a null DIE, or a multi-byte code: decode it
        size = self._fixed.get(code, -1)
        if size == -1:
            ab = self.abbrevs.get(code)
            size = self._fixed[code] = self._fixed_size(ab) if ab is not None and ab.tag not in only else 0
        return size and 1 + size

    def _fixed_size(self, ab: Abbrev) -> int:
        if ab.has_children:
            return 0
        total = 0
        for _attr, form, _implicit in ab.specs:
            if form in _FIXED:
                total += _FIXED[form]
            elif form in _OFFSET_FORMS or (form == FORM_ref_addr and self.version >= 3):
                total += self.offset_size
            elif form == FORM_addr:
                total += self.address_size
            elif form not in (FORM_flag_present, FORM_implicit_const):
                return 0
        return total

    def parent(self, die: Die) -> Die | None:
        """The DIE's parent (found by walking down from the unit's top when not yet seen)."""
        if die.offset in self._parents or die is self.top:
            return self._parents.get(die.offset)
        node = self.top
        for _ in range(MAX_DEPTH):
            for child in self.children(node):
                if child.offset == die.offset:
                    return node
                if child.offset < die.offset < self.subtree_end(child):
                    node = child
                    break
            else:
                return None
        return None

    def _parse(self, offset: int) -> Die:
        data, base = self.data, self.offset
        pos = offset - base
        try:
            code, pos = uleb128(data, pos)
            if code == 0:
                return Die(self, offset, 0, False, {}, base + pos)
            ab = self.abbrevs.get(code)
            if ab is None:
                raise DieError(f"DIE at {offset:#x} uses abbreviation {code}, which its table lacks")
            attrs: dict[int, tuple[int, object]] = {}
            for attr, form, implicit in ab.specs:
                value, pos = self._value(form, implicit, pos, 0)
                attrs[attr] = (form, value)
        except (IndexError, struct.error):
            raise DieError(f"DIE at {offset:#x} runs past the end of its unit") from None
        if pos > len(data):
            raise DieError(f"DIE at {offset:#x} runs past the end of its unit")
        return Die(self, offset, ab.tag, ab.has_children, attrs, base + pos)

    def _value(self, form: int, implicit: int, pos: int, depth: int) -> tuple[object, int]:
        """One attribute value in `form` at `pos`: (raw value, next position)."""
        data = self.data
        size = _FIXED.get(form)
        if size is not None:
            return int.from_bytes(data[pos : pos + size], "little"), pos + size
        if form in _OFFSET_FORMS or (form == FORM_ref_addr and self.version >= 3):
            size = self.offset_size
            return int.from_bytes(data[pos : pos + size], "little"), pos + size
        if form == FORM_addr or form == FORM_ref_addr:
            size = self.address_size
            return int.from_bytes(data[pos : pos + size], "little"), pos + size
        if form in _ULEB_FORMS:
            return uleb128(data, pos)
        if form == FORM_sdata:
            return sleb128(data, pos)
        if form == FORM_exprloc or form == FORM_block:
            n, pos = uleb128(data, pos)
            return self._bytes(pos, n), pos + n
        if form in _BLOCK_LEN:
            width, fmt = _BLOCK_LEN[form]
            (n,) = struct.unpack_from(fmt, data, pos)
            return self._bytes(pos + width, n), pos + width + n
        if form == FORM_string:
            end = data.find(b"\0", pos)
            if end < 0:
                raise DieError("unterminated string in .debug_info")
            return data[pos:end], end + 1
        if form == FORM_flag_present:
            return 1, pos
        if form == FORM_implicit_const:
            return implicit, pos
        if form == FORM_data16:
            return data[pos : pos + 16], pos + 16
        if form == FORM_indirect and depth < 4:
            real, pos = uleb128(data, pos)
            return self._value(real, implicit, pos, depth + 1)
        raise DieError(f"attribute form {form:#x} is not one pmdb reads")

    def _bytes(self, pos: int, n: int) -> bytes:
        if pos + n > len(self.data):
            raise DieError("a block runs past the end of its unit")
        return self.data[pos : pos + n]

    # Indexed values (DWARF 5) --------------------------------------------------------

    def _base(self, attr: int, default: int) -> int:
        value = self.top.int(attr)
        return default if value is None else value

    def indexed_address(self, index: int) -> int:
        """Address number `index` of the unit's .debug_addr table."""
        at = self._base(AT_addr_base, 8) + index * self.address_size
        return int.from_bytes(self._exact("addr", at, self.address_size), "little")

    def indexed_string_offset(self, index: int) -> int:
        """The .debug_str offset of string number `index` of the unit's .debug_str_offsets table."""
        at = self._base(AT_str_offsets_base, 8) + index * self.offset_size
        return int.from_bytes(self._exact("str_offsets", at, self.offset_size), "little")

    def list_offset(self, section: str, form: int, value: int) -> int:
        """The section offset of a range or location list: DW_FORM_sec_offset as is, an
        rnglistx/loclistx index through the unit's offsets table."""
        if form not in (FORM_rnglistx, FORM_loclistx):
            return value
        base = self._base(AT_rnglists_base if section == "rnglists" else AT_loclists_base, 12)
        at = base + value * self.offset_size
        return base + int.from_bytes(self._exact(section, at, self.offset_size), "little")

    def _exact(self, section: str, offset: int, size: int) -> bytes:
        data = self.sections.read(section, offset, size)
        if len(data) != size:
            raise DieError(f"offset {offset:#x} is past the end of .debug_{section}")
        return data


def unit_headers(sections: Sections) -> Iterator[tuple[int, int]]:
    """(offset, size) of every unit in .debug_info, from the headers alone."""
    pos, total = 0, sections.size("info")
    while pos + 11 <= total:
        head = sections.read("info", pos, 12)
        (length,) = struct.unpack_from("<I", head, 0)
        size = 4 + length
        if length == 0xFFFFFFFF:
            size = 12 + struct.unpack_from("<Q", head, 4)[0]
        elif length >= 0xFFFFFFF0 or length < 7:
            raise DieError(f"unit header at {pos:#x} is malformed")
        yield pos, size
        pos += size


def address_ranges(die: Die) -> list[tuple[int, int]]:
    """The DIE's [low, high) pc ranges: DW_AT_low_pc/high_pc or DW_AT_ranges; empty when none."""
    unit = die.unit
    low = die.address(AT_low_pc)
    high_attr = die.attrs.get(AT_high_pc)
    if low is not None and high_attr is not None:
        high = die.address(AT_high_pc) if high_attr[0] not in CONSTANT_FORMS else low + high_attr[1]  # type: ignore[operator]
        return [(low, high)] if high is not None and high > low else []
    rng = die.attrs.get(AT_ranges)
    if rng is None:
        return []
    form, value = rng
    base = unit.base
    if unit.version >= 5:
        return _rnglist(unit, unit.list_offset("rnglists", form, value), base)  # type: ignore[arg-type]
    return _ranges_v4(unit, value, base)  # type: ignore[arg-type]


def _grown(unit: Unit, section: str, offset: int, parse: Callable[[bytes], T]) -> T:
    """parse(bytes at offset), reading more of the section while the parse runs out of bytes."""
    size, total = 1 << 12, unit.sections.size(section)
    while True:
        data = unit.sections.read(section, offset, size)
        try:
            return parse(data)
        except IndexError:
            if offset + size >= total:
                raise DieError(f"list at {offset:#x} runs past .debug_{section}") from None
            size *= 8


def _rnglist(unit: Unit, offset: int, base: int) -> list[tuple[int, int]]:
    """A DWARF 5 range list (DW_RLE_*)."""
    asz = unit.address_size

    def parse(data: bytes) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        pos, b = 0, base
        for _ in range(1 << 16):
            kind = data[pos]
            pos += 1
            if kind == 0:
                return out
            if kind == 1:
                i, pos = uleb128(data, pos)
                b = unit.indexed_address(i)
            elif kind in (2, 3):
                i, pos = uleb128(data, pos)
                j, pos = uleb128(data, pos)
                lo = unit.indexed_address(i)
                out.append((lo, unit.indexed_address(j) if kind == 2 else lo + j))
            elif kind == 4:
                x, pos = uleb128(data, pos)
                y, pos = uleb128(data, pos)
                out.append((b + x, b + y))
            elif kind == 5:
                b, pos = _addr(data, pos, asz)
            elif kind in (6, 7):
                lo, pos = _addr(data, pos, asz)
                if kind == 6:
                    hi, pos = _addr(data, pos, asz)
                else:
                    n, pos = uleb128(data, pos)
                    hi = lo + n
                out.append((lo, hi))
            else:
                raise DieError(f"range list entry kind {kind} at {offset + pos - 1:#x}")
        raise DieError(f"range list at {offset:#x} has no end")

    return _grown(unit, "rnglists", offset, parse)


def _addr(data: bytes, pos: int, size: int) -> tuple[int, int]:
    if pos + size > len(data):
        raise IndexError
    return int.from_bytes(data[pos : pos + size], "little"), pos + size


def _ranges_v4(unit: Unit, offset: int, base: int) -> list[tuple[int, int]]:
    """A DWARF 2-4 .debug_ranges list."""
    asz = unit.address_size
    top = (1 << (8 * asz)) - 1
    out: list[tuple[int, int]] = []
    for i in range(1 << 16):
        data = unit.sections.read("ranges", offset + i * 2 * asz, 2 * asz)
        if len(data) < 2 * asz:
            raise DieError(f"range list at {offset:#x} runs past .debug_ranges")
        lo, hi = int.from_bytes(data[:asz], "little"), int.from_bytes(data[asz:], "little")
        if lo == 0 and hi == 0:
            return out
        if lo == top:
            base = hi
        elif hi > lo:
            out.append((base + lo, base + hi))
    raise DieError(f"range list at {offset:#x} has no end")


@dataclass(frozen=True)
class LocationEntry:
    """One entry of a location list: [low, high) (None for DW_LLE_default_location) and its expression."""

    low: int | None
    high: int | None
    expr: bytes


def location_list(unit: Unit, form: int, value: int) -> list[LocationEntry]:
    """The location list an attribute of `form` points to (.debug_loclists or .debug_loc),
    decoded once per unit."""
    found = unit.location_lists.get(value if form != FORM_loclistx else ~value)
    if found is None:
        if unit.version >= 5:
            found = _loclist(unit, unit.list_offset("loclists", form, value), unit.base)
        else:
            found = _loc_v4(unit, value, unit.base)
        unit.location_lists[value if form != FORM_loclistx else ~value] = found
    return found


def _loclist(unit: Unit, offset: int, base: int) -> list[LocationEntry]:
    """A DWARF 5 location list (DW_LLE_*)."""
    asz = unit.address_size

    def parse(data: bytes) -> list[LocationEntry]:
        out: list[LocationEntry] = []
        pos, b = 0, base
        for _ in range(1 << 16):
            kind = data[pos]
            pos += 1
            lo: int | None
            hi: int | None
            if kind == 0:
                return out
            if kind == 1:
                i, pos = uleb128(data, pos)
                b = unit.indexed_address(i)
                continue
            if kind == 6:
                b, pos = _addr(data, pos, asz)
                continue
            if kind in (2, 3):
                i, pos = uleb128(data, pos)
                j, pos = uleb128(data, pos)
                lo = unit.indexed_address(i)
                hi = unit.indexed_address(j) if kind == 2 else lo + j
            elif kind == 4:
                x, pos = uleb128(data, pos)
                y, pos = uleb128(data, pos)
                lo, hi = b + x, b + y
            elif kind == 5:
                lo = hi = None
            elif kind in (7, 8):
                lo, pos = _addr(data, pos, asz)
                if kind == 7:
                    hi, pos = _addr(data, pos, asz)
                else:
                    n, pos = uleb128(data, pos)
                    hi = lo + n
            else:
                raise DieError(f"location list entry kind {kind} at {offset + pos - 1:#x}")
            n, pos = uleb128(data, pos)
            if pos + n > len(data):
                raise IndexError
            out.append(LocationEntry(lo, hi, data[pos : pos + n]))
            pos += n
        raise DieError(f"location list at {offset:#x} has no end")

    return _grown(unit, "loclists", offset, parse)


def _loc_v4(unit: Unit, offset: int, base: int) -> list[LocationEntry]:
    """A DWARF 2-4 .debug_loc list."""
    asz = unit.address_size
    top = (1 << (8 * asz)) - 1
    out: list[LocationEntry] = []
    pos = offset
    for _ in range(1 << 16):
        data = unit.sections.read("loc", pos, 2 * asz + 2)
        if len(data) < 2 * asz:
            raise DieError(f"location list at {offset:#x} runs past .debug_loc")
        lo, hi = int.from_bytes(data[:asz], "little"), int.from_bytes(data[asz : 2 * asz], "little")
        pos += 2 * asz
        if lo == 0 and hi == 0:
            return out
        if lo == top:
            base = hi
            continue
        if len(data) < 2 * asz + 2:
            raise DieError(f"location list at {offset:#x} runs past .debug_loc")
        (n,) = struct.unpack_from("<H", data, 2 * asz)
        expr = unit.sections.read("loc", pos + 2, n)
        if len(expr) != n:
            raise DieError(f"location list at {offset:#x} runs past .debug_loc")
        pos += 2 + n
        out.append(LocationEntry(base + lo, base + hi, expr))
    raise DieError(f"location list at {offset:#x} has no end")
