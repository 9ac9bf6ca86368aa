"""A name index of one file's DWARF: which DIE defines `struct foo`, `netstack_t`, `int`, and
which DIEs describe the variable or function `foo`; built once, cached on disk by build-id.

Building it reads every unit's top-level DIEs (and namespaces' children) with a scanner of
its own that decodes only names and flags and jumps over subtrees by DW_AT_sibling: far less
work than pyelftools' full parse, which is kept for converting the few types a command needs.
The same scanner reads single units for dwarf_lookup, which finds one type without the index
and must find what the index would (`scan_apart`, `abbreviations`, `name_places`).
The index lives in `${XDG_CACHE_HOME:-~/.cache}/pmdb/index/<build-id>.dwidx`, written
atomically, so a second open of the same binary reads no DWARF at all to find a name; its
types come first in the file, so that a type lookup need not decode a large file's variables
and functions. A cache file that is corrupt, of another format version, or made from
different DWARF (its fingerprint differs) is ignored and rebuilt.

Malformed DWARF costs the unit it is in: a unit whose header, abbreviations or DIEs do not
parse is recorded in `errors` and scanning goes on with the next one; a unit length that
leaves the section ends the scan. Every loop advances or stops, so no input can hang it.
"""

from __future__ import annotations

import bisect
import marshal
import os
import struct
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from elftools.dwarf.dwarfinfo import DebugSectionDescriptor, DWARFInfo

FORMAT = 4  # bump when the index's content or layout changes
SUFFIX = ".dwidx"
MAX_STEPS = 50_000_000  # DIEs scanned in one file before giving up (a guard, not a limit in practice)

# DWARF constants the scanner needs.
TAG_NAMES = {0x13: "struct", 0x02: "struct", 0x17: "union", 0x04: "enum"}
TAG_TYPEDEF, TAG_BASE, TAG_VARIABLE, TAG_SUBPROGRAM, TAG_NAMESPACE = 0x16, 0x24, 0x34, 0x2E, 0x39
AT_SIBLING, AT_NAME, AT_DECLARATION, AT_SPECIFICATION, AT_STR_OFFSETS_BASE = 0x01, 0x03, 0x3C, 0x47, 0x72
_TYPE_TAGS = frozenset({*TAG_NAMES, TAG_TYPEDEF, TAG_BASE})
_INDEXED = frozenset({*_TYPE_TAGS, TAG_VARIABLE, TAG_SUBPROGRAM, TAG_NAMESPACE})
_WANTED = frozenset({AT_SIBLING, AT_NAME, AT_DECLARATION, AT_SPECIFICATION, AT_STR_OFFSETS_BASE})

# Forms: a fixed size, or a marker for how the value's length is found.
_ULEB, _SLEB, _CSTR, _BLOCK1, _BLOCK2, _BLOCK4, _ULEB_BLOCK, _OFFSET, _ADDR, _REF_ADDR, _INDIRECT = (
    -1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11)
_FORMS: dict[int, int] = {
    0x01: _ADDR, 0x03: _BLOCK2, 0x04: _BLOCK4, 0x05: 2, 0x06: 4, 0x07: 8, 0x08: _CSTR, 0x09: _ULEB_BLOCK,
    0x0A: _BLOCK1, 0x0B: 1, 0x0C: 1, 0x0D: _SLEB, 0x0E: _OFFSET, 0x0F: _ULEB, 0x10: _REF_ADDR, 0x11: 1,
    0x12: 2, 0x13: 4, 0x14: 8, 0x15: _ULEB, 0x16: _INDIRECT, 0x17: _OFFSET, 0x18: _ULEB_BLOCK, 0x19: 0,
    0x1A: _ULEB, 0x1B: _ULEB, 0x1C: 4, 0x1D: _OFFSET, 0x1E: 16, 0x1F: _OFFSET, 0x20: 8, 0x21: 0,
    0x22: _ULEB, 0x23: _ULEB, 0x24: 8, 0x25: 1, 0x26: 2, 0x27: 3, 0x28: 4, 0x29: 1, 0x2A: 2, 0x2B: 3,
    0x2C: 4, 0x1F01: _ULEB, 0x1F02: _ULEB, 0x1F20: _OFFSET, 0x1F21: _OFFSET,
}
_FORM_STRING, _FORM_STRP, _FORM_LINE_STRP, _FORM_IMPLICIT = 0x08, 0x0E, 0x1F, 0x21
_FORM_STRX = {0x1A: 0, 0x25: 1, 0x26: 2, 0x27: 3, 0x28: 4, 0x1F02: 0}  # index size (0: uleb)
_REF_FORMS = {0x11: 1, 0x12: 2, 0x13: 4, 0x14: 8}  # CU-relative references of fixed size


class ScanError(Exception):
    """A unit whose DWARF does not parse (caught per unit; never leaves this module)."""


@dataclass(frozen=True)
class DwarfIndex:
    """Where names are defined in one file's .debug_info (offsets are section offsets).

    `types` maps a C type name (`struct foo`, `union u`, `enum e`, a typedef's or base type's
    name, base types also under ctfconvert's spelling: `unsigned long`) to the DIE of its first
    definition; `forwards` to a declaration, for names no unit defines; `variables` and
    `functions` to every DIE of that name (statics repeat across units). `errors` says which
    units could not be read.
    """

    cu_offsets: list[int] = field(default_factory=list)
    types: dict[str, int] = field(default_factory=dict)
    forwards: dict[str, int] = field(default_factory=dict)
    variables: dict[str, list[int]] = field(default_factory=dict)
    functions: dict[str, list[int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def unit_of(self, die_offset: int) -> int:
        """The offset of the unit holding the DIE at `die_offset` (its header's offset)."""
        i = bisect.bisect_right(self.cu_offsets, die_offset) - 1
        if i < 0:
            raise KeyError(die_offset)
        return self.cu_offsets[i]

    def to_bytes(self, fingerprint: str) -> bytes:
        """The index serialised with its format version and the fingerprint of its DWARF: the
        length of its first part (8 bytes), the part type lookups read (units, types, errors),
        then variables and functions, which the type lookups of a large file need not decode."""
        head = marshal.dumps((FORMAT, fingerprint, self.cu_offsets, self.types, self.forwards, self.errors))
        return struct.pack("<Q", len(head)) + head + marshal.dumps((self.variables, self.functions))

    @classmethod
    def from_bytes(cls, data: bytes, fingerprint: str, symbols: bool = True) -> DwarfIndex | None:
        """The index in `data`, or None when it is damaged, of another format or other DWARF.
        Without `symbols`, `data` may end after the first part, and the index has no variables
        and no functions (an index for type lookups only)."""
        try:
            n, = struct.unpack_from("<Q", data)
            fields = marshal.loads(data[8:8 + n])
            tail = marshal.loads(data[8 + n:]) if symbols else ({}, {})
        except (ValueError, EOFError, TypeError, struct.error):
            return None
        if not (isinstance(fields, tuple) and len(fields) == 6 and fields[0] == FORMAT and fields[1] == fingerprint
                and isinstance(tail, tuple) and len(tail) == 2):
            return None
        cu_offsets, types, forwards, errors = fields[2:]
        variables, functions = tail
        tables = (types, forwards, variables, functions)
        if not (isinstance(cu_offsets, list) and isinstance(errors, list) and all(isinstance(d, dict) for d in tables)):
            return None
        return cls(cu_offsets, types, forwards, variables, functions, errors)


def cache_dir() -> Path:
    """Where indexes are kept: $XDG_CACHE_HOME/pmdb/index, else ~/.cache/pmdb/index."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pmdb" / "index"


def fingerprint(dwarf: DWARFInfo) -> str:
    """What ties an index to its DWARF: the sizes of .debug_info, .debug_abbrev and .debug_str
    and a checksum of .debug_info's first and last 64 KiB."""
    info = dwarf.debug_info_sec
    parts = [str(_size(info)), str(_size(dwarf.debug_abbrev_sec)), str(_size(dwarf.debug_str_sec))]
    if info is not None:
        head = _read(info, 0, 1 << 16)
        tail = _read(info, max(0, info.size - (1 << 16)), 1 << 16)
        parts.append(f"{zlib.crc32(head + tail):08x}")
    return "/".join(parts)


def load_or_build(dwarf: DWARFInfo, key: str | None) -> DwarfIndex:
    """The index of `dwarf`: from the cache file named by `key` (a build-id) when it holds a
    valid one, else built and written there. No key: built, not cached."""
    cached = load_cached(dwarf, key)
    if cached is not None:
        return cached
    index = build_index(dwarf)
    if key:
        _write_atomically(cache_path(key), index.to_bytes(fingerprint(dwarf)))
    return index


def cache_path(key: str) -> Path:
    """Where the index of the DWARF with build-id `key` is cached."""
    return cache_dir() / f"{key}{SUFFIX}"


def load_cached(dwarf: DWARFInfo, key: str | None, symbols: bool = True) -> DwarfIndex | None:
    """The index of `dwarf` cached under `key`, or None (no key, no file, or not a valid
    index of this DWARF). Without `symbols`, only what type lookups need is read and decoded
    (no variables, no functions): 7% of a vmlinux's index."""
    if not key:
        return None
    try:
        with cache_path(key).open("rb") as f:
            if symbols:
                data = f.read()
            else:
                head = f.read(8)
                n = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
                data = head + f.read(n) if 0 <= n <= os.fstat(f.fileno()).st_size else b""
    except OSError:
        return None
    return DwarfIndex.from_bytes(data, fingerprint(dwarf), symbols)


def _write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` by renaming a finished temporary file; failures are ignored (the
    index is only a cache)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass


def _size(sec: DebugSectionDescriptor | None) -> int:
    return sec.size if sec is not None else 0


def _read(sec: DebugSectionDescriptor, offset: int, size: int) -> bytes:
    sec.stream.seek(offset)
    return sec.stream.read(size)


def build_index(dwarf: DWARFInfo) -> DwarfIndex:
    """Scan every unit of `dwarf` for named top-level DIEs."""
    index = DwarfIndex()
    info = dwarf.debug_info_sec
    if info is None:
        return index
    data = _read(info, 0, info.size)
    scanner = Scanner(data, *tables(dwarf), index)
    spans, error = unit_spans(data, 0, len(data))
    for pos, header, end in spans:
        scanner.scan_unit(pos, header, end)
    if error:
        index.errors.append(error)
    scanner.resolve_specifications()
    return index


def tables(dwarf: DWARFInfo) -> tuple[bytes, bytes, bytes, bytes]:
    """The sections a Scanner reads besides .debug_info: .debug_abbrev, .debug_str,
    .debug_line_str and .debug_str_offsets (empty when absent)."""
    return tuple(_read(sec, 0, sec.size) if sec is not None else b""  # type: ignore[return-value]
                 for sec in (dwarf.debug_abbrev_sec, dwarf.debug_str_sec, dwarf.debug_line_str_sec,
                             dwarf.debug_str_offsets_sec))


def unit_spans(data: object, base: int, size: int) -> tuple[list[tuple[int, int, int]], str | None]:
    """Every unit of the .debug_info at [base, base + size) of `data` (bytes or an mmap), from
    the headers alone: (offset, header length, end) in section offsets, and the error that
    ended the walk early (a unit length that leaves the section), if one did."""
    spans = []
    pos = 0
    while pos + 4 <= size:
        length, = struct.unpack_from("<I", data, base + pos)  # type: ignore[arg-type]
        header = 4
        if length == 0xFFFFFFFF:
            if pos + 12 > size:
                return spans, f"unit at {pos:#x}: its header goes past the section end"
            length, = struct.unpack_from("<Q", data, base + pos + 4)  # type: ignore[arg-type]
            header = 12
        end = pos + header + length
        if length == 0 or end > size:
            return spans, f"unit at {pos:#x}: length {length:#x} goes past the section end"
        spans.append((pos, header, end))
        pos = end
    return spans, None


def unit_header(data: bytes, pos: int, header: int) -> tuple[int, int, int, int, int]:
    """The header of the unit at `pos` of `data` (`header`: 4 or 12, its length field's size):
    its version, offset size, address size, abbreviation table's offset, and where its DIEs
    start. ScanError for a version pmdb cannot read or a header cut short."""
    offset_size = 8 if header == 12 else 4
    p = pos + header
    version, = struct.unpack_from("<H", data, p)
    p += 2
    if version >= 5:
        unit_type, address_size = data[p], data[p + 1]
        abbrev_offset = int.from_bytes(data[p + 2:p + 2 + offset_size], "little")
        p += 2 + offset_size
        if unit_type in (4, 5):  # skeleton, split_compile: a dwo id
            p += 8
        elif unit_type in (2, 6):  # type units: a signature and a type offset
            p += 8 + offset_size
    elif 2 <= version <= 4:
        abbrev_offset = int.from_bytes(data[p:p + offset_size], "little")
        address_size = data[p + offset_size]
        p += offset_size + 1
    else:
        raise ScanError(f"DWARF version {version} is not supported")
    if p > len(data):
        raise ScanError(f"the unit header at {pos:#x} is cut short")
    return version, offset_size, address_size, abbrev_offset, p


@dataclass(frozen=True)
class NamePlace:
    """Where a DIE of a type tag (one the index files names of) keeps its DW_AT_name, by its
    abbreviation: `offset`, the bytes from the end of the DIE's code to the name's value (None
    when attributes of varying size come first); `form`, the name's form; `declaration`, True
    when every such DIE is a declaration, False when none is, None when the data says."""

    code: int
    tag: int
    offset: int | None
    form: int
    declaration: bool | None


def name_places(abbrevs: dict[int, _Abbrev], version: int, offset_size: int, address_size: int) -> list[NamePlace]:
    """The places of the names of type DIEs, for a unit of this shape using `abbrevs` (one per
    DW_AT_name an abbreviation has: the scanner keeps the last)."""
    sizes = {_OFFSET: offset_size, _ADDR: address_size, _REF_ADDR: address_size if version == 2 else offset_size}
    places = []
    for code, entry in abbrevs.items():
        if entry.tag not in _TYPE_TAGS:
            continue
        names = []
        declared: list[bool | None] = []
        at: int | None = 0
        for attr, form, const in entry.attrs:
            if attr == AT_NAME:
                names.append((at, form))
            elif attr == AT_DECLARATION:
                declared.append(True if form == 0x19 else bool(const) if form == _FORM_IMPLICIT else None)
            size = _FORMS[form]
            size = sizes.get(size, size)
            at = at + size if at is not None and size >= 0 else None
        declaration = declared[0] if len(declared) == 1 else None if declared else False
        places += [NamePlace(code, entry.tag, offset, form, declaration) for offset, form in names]
    return places


@dataclass(frozen=True)
class _Abbrev:
    """One abbreviation, planned for its unit: the attributes, and for DIEs whose attributes all
    have fixed sizes, their total size and where DW_AT_sibling (if a 4-byte reference) lies."""

    tag: int
    children: bool
    attrs: tuple[tuple[int, int, int], ...]
    fixed: int | None
    sibling_at: int | None


@dataclass
class _Unit:
    """The header facts a unit's DIEs are read with."""

    offset: int
    end: int
    version: int
    offset_size: int
    address_size: int
    abbrevs: dict[int, _Abbrev]
    str_offsets_base: int = 0


class Scanner:
    """Reads units of .debug_info into a DwarfIndex: all of them in order (build_index), or
    only those a lookup picked (dwarf_lookup). `info` holds the section from section offset
    `origin` on (the whole section, or one unit's bytes), so positions in it are section
    offsets minus `origin`; what the index records are section offsets."""

    def __init__(self, info: bytes, abbrev: bytes, strs: bytes, line_strs: bytes, str_offsets: bytes,
                 index: DwarfIndex) -> None:
        self.info, self.abbrev, self.strs, self.line_strs, self.str_offsets = info, abbrev, strs, line_strs, str_offsets
        self.index = index
        self.origin = 0
        self.abbrev_tables: dict[tuple[int, int, int, int], dict[int, _Abbrev]] = {}
        self.strings: dict[int, str] = {}  # names by their tagged place in a shared string table
        self.steps = 0
        self.specifications: list[tuple[int, int, int]] = []  # (tag, DIE, the DIE it completes)
        self.declarations: dict[int, tuple[_Unit, int]] = {}  # unnamed-so-far declarations: DIE -> name

    def scan_unit(self, offset: int, header: int, end: int) -> None:
        """Index the unit at section offset `offset` (whose bytes `info` must hold); a unit that
        fails is recorded in the index's errors, and what it gave before failing is kept."""
        self.index.cu_offsets.append(offset)
        try:
            self._unit(offset - self.origin, header, end - self.origin)
        except (ScanError, IndexError, struct.error, ValueError, KeyError) as e:
            self.index.errors.append(f"unit at {offset:#x}: {e or type(e).__name__}")

    def scan_apart(self, data: bytes, offset: int, header: int, end: int) -> DwarfIndex:
        """Index one unit on its own, from `data`, its bytes (section offset `offset` on), into
        an index of its own (this scanner's tables of abbreviations and names are shared)."""
        self.info, self.origin, self.index = data, offset, DwarfIndex()
        self.scan_unit(offset, header, end)
        found, self.info = self.index, b""
        return found

    def _unit(self, pos: int, header: int, end: int) -> None:
        version, offset_size, address_size, abbrev_offset, p = unit_header(self.info, pos, header)
        abbrevs = self.abbreviations(abbrev_offset, version, offset_size, address_size)
        self._dies(_Unit(pos, end, version, offset_size, address_size, abbrevs), p)

    def abbreviations(self, offset: int, version: int, offset_size: int, address_size: int) -> dict[int, _Abbrev]:
        """The abbreviation table at `offset` of .debug_abbrev, each entry planned for units of this
        shape (read once)."""
        key = (offset, version, offset_size, address_size)
        table = self.abbrev_tables.get(key)
        if table is not None:
            return table
        table = {}
        data = self.abbrev
        p = offset
        if p >= len(data):
            raise ScanError(f"abbreviations at {offset:#x} are past the end of .debug_abbrev")
        sizes = {_OFFSET: offset_size, _ADDR: address_size,
                 _REF_ADDR: address_size if version == 2 else offset_size}
        forms = _FORMS
        while True:  # one byte is the usual length of every number here: read it inline
            code = data[p]
            p += 1
            if code >= 0x80:
                code, p = _uleb(data, p - 1)
            if code == 0:
                break
            tag = data[p]
            p += 1
            if tag >= 0x80:
                tag, p = _uleb(data, p - 1)
            children = data[p] != 0
            p += 1
            attrs = []
            fixed: int | None = 0
            sibling_at = None
            while True:
                attr, form = data[p], data[p + 1]
                p += 2
                if attr >= 0x80 or form >= 0x80:
                    attr, p = _uleb(data, p - 2)
                    form, p = _uleb(data, p)
                const = 0
                if form == _FORM_IMPLICIT:
                    const, p = _sleb(data, p)
                if attr == 0 and form == 0:
                    break
                size = forms.get(form)
                if size is None:
                    raise ScanError(f"unknown attribute form {form:#x}")
                attrs.append((attr, form, const))
                if fixed is not None:
                    if size < 0:
                        size = sizes.get(size, size)
                    if attr == AT_SIBLING and form == 0x13:
                        sibling_at = fixed
                    fixed = fixed + size if size >= 0 else None
            table[code] = _Abbrev(tag, children, tuple(attrs), fixed, sibling_at)
        self.abbrev_tables[key] = table
        return table

    def _dies(self, unit: _Unit, p: int) -> None:
        """Walk the unit's DIEs: index the top level (and namespaces' children), jump over the
        rest by their siblings where the producer gave them."""
        depth = 0
        scopes: list[tuple[int, str]] = []  # (depth of a namespace's children, its name prefix)
        info, origin = self.info, self.origin
        abbrevs = unit.abbrevs
        while p < unit.end:
            self.steps += 1
            if self.steps > MAX_STEPS:
                raise ScanError("too many DIEs")
            die = p
            code = info[p]
            if code < 0x80:
                p += 1
            else:
                code, p = _uleb(info, p)
            if code == 0:
                depth -= 1
                if scopes and depth < scopes[-1][0]:
                    scopes.pop()
                if depth < 0:
                    return
                continue
            entry = abbrevs.get(code)
            if entry is None:
                raise ScanError(f"DIE at {die + origin:#x} uses undefined abbreviation {code}")
            indexed = (depth == 1 or bool(scopes and depth == scopes[-1][0])) and entry.tag in _INDEXED
            if not indexed and depth > 0 and entry.fixed is not None:  # the fast way past a DIE
                sibling = None
                if entry.sibling_at is not None:
                    at = p + entry.sibling_at
                    sibling = unit.offset + int.from_bytes(info[at:at + 4], "little")
                p += entry.fixed
                if p > unit.end:
                    raise ScanError(f"DIE at {die + origin:#x} runs past the end of its unit")
                if entry.children:
                    if sibling is not None and p <= sibling <= unit.end:
                        p = sibling
                    else:
                        depth += 1
                continue
            values, p = self._attributes(unit, entry.attrs, p, indexed or depth == 0)
            if depth == 0 and AT_STR_OFFSETS_BASE in values:
                unit.str_offsets_base = values[AT_STR_OFFSETS_BASE]
            prefix = scopes[-1][1] if scopes else ""
            if indexed:
                self._record(unit, entry.tag, die + origin, values, prefix)
            if not entry.children:
                continue
            if entry.tag == TAG_NAMESPACE and indexed:
                name = self._name(unit, values.get(AT_NAME, 0)) or "(anonymous namespace)"
                scopes.append((depth + 1, f"{prefix}{name}::"))
            elif depth >= 1 and AT_SIBLING in values:
                sibling = values[AT_SIBLING]
                if p <= sibling <= unit.end:  # a sibling that goes backwards would loop: walk instead
                    p = sibling
                    continue
            depth += 1

    def _attributes(self, unit: _Unit, attrs: tuple, p: int, wanted: bool) -> tuple[dict[int, int], int]:
        """Skip a DIE's attribute values; keep those the index needs (a string's offset into its
        table, tagged, or an inline string's position) when `wanted`, and the sibling always."""
        values: dict[int, int] = {}
        info = self.info
        for attr, form, const in attrs:
            size = _FORMS[form]
            if form == 0x16:  # indirect: the form is in the data
                form, p = _uleb(info, p)
                size = _FORMS.get(form, None)
                if size is None:
                    raise ScanError(f"unknown indirect form {form:#x}")
            keep = attr == AT_SIBLING or (wanted and attr in _WANTED)
            start = p
            if size >= 0:
                p += size
            elif size == _ULEB or size == _SLEB:
                while info[p] & 0x80:
                    p += 1
                p += 1
            elif size == _CSTR:
                p = info.index(b"\0", p) + 1
            elif size == _OFFSET or size == _REF_ADDR:
                p += unit.address_size if size == _REF_ADDR and unit.version == 2 else unit.offset_size
            elif size == _ADDR:
                p += unit.address_size
            elif size == _BLOCK1:
                p += 1 + info[p]
            elif size == _BLOCK2:
                p += 2 + int.from_bytes(info[p:p + 2], "little")
            elif size == _BLOCK4:
                p += 4 + int.from_bytes(info[p:p + 4], "little")
            else:  # uleb-sized block or expression
                n, p = _uleb(info, p)
                p += n
            if p > unit.end:
                raise ScanError(f"attribute at {start + self.origin:#x} runs past the end of its unit")
            if keep:
                value = self._value(form, start, p, const, attr)
                if attr in (AT_SIBLING, AT_SPECIFICATION):  # a reference, made a position in `info`
                    value += unit.offset if form != 0x10 else -self.origin
                values[attr] = value
        return values, p

    def _value(self, form: int, start: int, end: int, const: int, attr: int) -> int:
        """An attribute's value as the index keeps it; strings as tagged positions."""
        if attr == AT_NAME:
            if form == _FORM_STRING:
                return start << 3 | 1
            if form in (_FORM_STRP, 0x1F21):
                return self._little(start, end) << 3 | 2
            if form == _FORM_LINE_STRP:
                return self._little(start, end) << 3 | 3
            if form in _FORM_STRX:
                index = self._little(start, end) if _FORM_STRX[form] else _uleb(self.info, start)[0]
                return index << 3 | 4
            return 0
        if form == _FORM_IMPLICIT:
            return const
        if form == 0x19:  # flag_present
            return 1
        if form in (0x15, 0x0F):
            return _uleb(self.info, start)[0]
        return self._little(start, end)

    def _little(self, start: int, end: int) -> int:
        return int.from_bytes(self.info[start:end], "little")

    def _name(self, unit: _Unit, tagged: int) -> str | None:
        """A DW_AT_name, decoded from wherever its form put it (names in the shared string tables
        decoded once)."""
        if not tagged:
            return None
        kind, where = tagged & 7, tagged >> 3
        if kind in (2, 3):
            known = self.strings.get(tagged)
            if known is not None:
                return known
            table, start = (self.strs if kind == 2 else self.line_strs), where
        elif kind == 1:
            table, start = self.info, where
        else:
            base = unit.str_offsets_base or (8 if unit.version >= 5 else 0)
            slot = base + where * unit.offset_size
            table, start = self.strs, int.from_bytes(self.str_offsets[slot:slot + unit.offset_size], "little")
        end = table.find(b"\0", start)
        if start >= len(table) or end < 0:
            raise ScanError(f"a name's string offset {start:#x} is outside its string table")
        name = table[start:end].decode("utf-8", "replace")
        if kind in (2, 3):
            self.strings[tagged] = name
        return name

    def _record(self, unit: _Unit, tag: int, die: int, values: dict[int, int], prefix: str) -> None:
        declared = values.get(AT_DECLARATION)
        if tag in (TAG_VARIABLE, TAG_SUBPROGRAM):
            if declared:  # not a definition: only a definition's DW_AT_specification may need its name
                if AT_NAME in values:
                    self.declarations[die] = (unit, values[AT_NAME])
                return
            if AT_NAME not in values:
                spec = values.get(AT_SPECIFICATION)
                if spec is not None:
                    self.specifications.append((tag, die, spec + self.origin))
                return
        name = self._name(unit, values.get(AT_NAME, 0))
        if name is None:
            return
        name = prefix + name
        index = self.index
        if tag == TAG_VARIABLE:
            index.variables.setdefault(name, []).append(die)
        elif tag == TAG_SUBPROGRAM:
            index.functions.setdefault(name, []).append(die)
        elif tag != TAG_NAMESPACE:
            keyword = TAG_NAMES.get(tag)
            names = [f"{keyword} {name}"] if keyword else [name]
            if tag == TAG_BASE:
                canonical = ctf_int_name(name)
                if canonical is not None and canonical != name:
                    names.append(canonical)
            for key in names:
                if key in index.types:
                    continue
                if declared:
                    index.forwards.setdefault(key, die)
                else:
                    index.types[key] = die
                    index.forwards.pop(key, None)

    def resolve_specifications(self) -> None:
        """A definition that names no one (DW_AT_specification) is filed under its declaration's name."""
        for tag, die, declared in self.specifications:
            found = self.declarations.get(declared)
            if found is None:
                continue
            try:
                name = self._name(*found)
            except (ScanError, IndexError) as e:
                self.index.errors.append(f"declaration at {declared:#x}: {e}")
                continue
            if name is not None:
                table = self.index.variables if tag == TAG_VARIABLE else self.index.functions
                table.setdefault(name, []).append(die)


def ctf_int_name(name: str) -> str | None:
    """ctfconvert's spelling of an integer base type (ctf_dwarf_parse_int): `long unsigned int`
    -> `unsigned long`, `short int` -> `short`, `signed char` -> `char`; None when the words are
    not all C integer words (`_Bool`, `__int128`), which keep their own name."""
    counts = {"long": 0, "short": 0, "char": 0, "int": 0}
    signed = True
    for word in name.split():
        if word == "signed":
            signed = True
        elif word == "unsigned":
            signed = False
        elif word in counts:
            counts[word] += 1
        else:
            return None
    if counts["char"] > 1 or counts["short"] > 1 or counts["int"] > 1 or counts["long"] > 2:
        return None
    if counts["char"]:
        if counts["long"] or counts["short"] or counts["int"]:
            return None
        base = "char"
    elif counts["short"]:
        if counts["long"]:
            return None
        base = "short"
    else:
        base = "long" if counts["long"] else "int"
    return ("" if signed else "unsigned ") + ("long " if counts["long"] > 1 else "") + base


def _uleb(data: bytes, p: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[p]
        p += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, p
        shift += 7


def _sleb(data: bytes, p: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[p]
        p += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            if byte & 0x40:
                value -= 1 << shift
            return value, p
