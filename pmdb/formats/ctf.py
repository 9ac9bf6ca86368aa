"""illumos CTF (Compact C Type Format) containers, versions 2 and 3: a pure, bounds-checked parser.

A container is a 36-byte header followed by a body (zlib-compressed when CTF_F_COMPRESS is
set) of five sections: labels, data objects, function signatures, types and strings. Type
records are variable-length, so opening a container walks the type section once to note
where each record starts; a record is decoded only when asked for.

Versions 2 and 3 differ only in field widths: version 3 widens type ids, `ctt_info` and the
size field to 32 bits (kind in bits 31-26, root flag bit 25, vlen in bits 23-0), array and
member type ids to 32 bits, and raises the large-member threshold to 1 << 29 bytes. A child
container (one whose header names a parent) numbers its own types from the child bit up
(0x8001, or 0x80000001 in version 3); ids below that are the parent's.

Format facts come from illumos-gate's sys/ctf.h, ctf(5) and libctf (ctf_open.c, ctf_types.c,
ctf_lookup.c); version 3 as FreeBSD's sys/ctf.h and libctf define it. Every read is checked
against the data: a malformed header or type section is a BadDumpError for the container, a
malformed record one for that type; no size field is trusted before it is checked.
"""

from __future__ import annotations

import re
import struct
import zlib
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

from pmdb.errors import BadDumpError

MAGIC = 0xCFF1
F_COMPRESS = 0x1
HEADER = struct.Struct("<HBBIIIIIIII")

K_UNKNOWN, K_INTEGER, K_FLOAT, K_POINTER, K_ARRAY, K_FUNCTION = 0, 1, 2, 3, 4, 5
K_STRUCT, K_UNION, K_ENUM, K_FORWARD, K_TYPEDEF, K_VOLATILE, K_CONST, K_RESTRICT = 6, 7, 8, 9, 10, 11, 12, 13
REF_KINDS = frozenset({K_POINTER, K_TYPEDEF, K_VOLATILE, K_CONST, K_RESTRICT})
QUALIFIERS = {K_CONST: "const", K_VOLATILE: "volatile", K_RESTRICT: "restrict"}

INT_SIGNED = 0x1  # an integer encoding's format flag; the others (char, bool, varargs) only affect display

STT_OBJECT, STT_FUNC = 1, 2
SHN_UNDEF, SHN_ABS = 0, 0xFFF1

_BITFIELD_NAME = re.compile(r"^(.*):(\d+)$")


@dataclass(frozen=True)
class Layout:
    """The field widths of one CTF version."""

    version: int
    id_width: int  # bytes per type id in arrays, members, functions and the object section
    stype: struct.Struct  # ctt_name, ctt_info, ctt_size/ctt_type
    lsize: struct.Struct  # ctt_lsizehi, ctt_lsizelo, after the short form
    array: struct.Struct  # cta_contents, cta_index, cta_nelems
    member: struct.Struct  # ctm_name, ctm_type, ctm_offset
    lmember: struct.Struct  # ctlm_name, ctlm_type, [pad,] ctlm_offsethi, ctlm_offsetlo
    kind_shift: int
    kind_mask: int
    root_bit: int
    vlen_mask: int
    lsize_sent: int
    lstruct_thresh: int
    child_bit: int  # type ids at or above this belong to a child container

    def kind(self, info: int) -> int:
        """CTF_INFO_KIND."""
        return (info >> self.kind_shift) & self.kind_mask

    def vlen(self, info: int) -> int:
        """CTF_INFO_VLEN."""
        return info & self.vlen_mask

    def lmember_fields(self, raw: tuple[int, ...]) -> tuple[int, int, int]:
        """(name, type, offset) of an unpacked large member (version 2 has a pad field)."""
        return raw[0], raw[1], raw[-2] << 32 | raw[-1]


LAYOUTS = {
    2: Layout(2, 2, struct.Struct("<IHH"), struct.Struct("<II"), struct.Struct("<HHI"), struct.Struct("<IHH"),
              struct.Struct("<IHHII"), 11, 0x1F, 0x400, 0x3FF, 0xFFFF, 1 << 13, 0x8000),
    3: Layout(3, 4, struct.Struct("<III"), struct.Struct("<II"), struct.Struct("<III"), struct.Struct("<III"),
              struct.Struct("<IIII"), 26, 0x3F, 1 << 25, 0xFFFFFF, 0xFFFFFFFF, 1 << 29, 0x80000000),
}


@dataclass(frozen=True)
class Header:
    """The container header; the offsets are relative to the end of the header."""

    version: int
    flags: int
    parlabel: int
    parname: int
    lbloff: int
    objtoff: int
    funcoff: int
    typeoff: int
    stroff: int
    strlen: int


@dataclass(frozen=True)
class Encoding:
    """An integer's or float's encoding word: format flags (or float kind), bit offset and width."""

    format: int
    offset: int
    bits: int


@dataclass(frozen=True)
class RawMember:
    """A struct or union member as recorded: name, type id, offset in bits."""

    name: str
    type: int
    offset: int


@dataclass(frozen=True)
class RawType:
    """One type record, decoded.

    `size` is set for sized kinds (integer, float, struct, union, enum; arrays record 0);
    `ref` is the referenced type of pointers, typedefs and qualifiers, a function's return
    type, or a forward's tag kind (CTF_K_STRUCT, CTF_K_UNION or CTF_K_ENUM).
    """

    id: int
    kind: int
    name: str
    root: bool
    size: int = 0
    ref: int = 0
    encoding: Encoding | None = None
    array: tuple[int, int, int] | None = None  # contents, index type, element count
    members: tuple[RawMember, ...] = ()
    enumerators: tuple[tuple[str, int], ...] = ()
    args: tuple[int, ...] = ()


@dataclass(frozen=True)
class FuncInfo:
    """A function symbol's signature from the function section (type ids)."""

    returns: int
    args: tuple[int, ...]
    variadic: bool


@dataclass(frozen=True)
class NameIndex:
    """The container's named types: struct, union and enum tags, and other names (base types,
    typedefs), each mapped to its type id. A definition wins over a forward of the same tag;
    a full-width integer over a bit-field integer of the same name."""

    structs: dict[str, int]
    unions: dict[str, int]
    enums: dict[str, int]
    names: dict[str, int]
    forwards: frozenset[int]


class _Record(NamedTuple):
    """The fixed part of a type record: kind, name reference, vlen, root flag, size (long form
    resolved), the raw ctt_size/ctt_type field, and the length of the fixed part."""

    kind: int
    name: int
    vlen: int
    root: bool
    size: int
    ref: int
    inc: int


Symbol = tuple[str, int, int, int]
"""An ELF symbol as the object and function sections need it: name, STT_ type, shndx, value."""


class Container:
    """One CTF container: the header checked, the body inflated, the type records indexed.

    `what` names the container in error messages (e.g. `prog: .SUNW_ctf`); `ext_strings` is
    the ELF string table that string-table-1 names refer to (the symbol table's strings).
    """

    def __init__(self, data: bytes | memoryview, *, what: str = "CTF data", ext_strings: bytes = b"") -> None:
        self.what = what
        buf = memoryview(data).cast("B")
        if len(buf) < 4:
            raise BadDumpError(f"{what}: truncated CTF preamble ({len(buf)} bytes)")
        magic, version = struct.unpack_from("<HB", buf)
        if magic != MAGIC:
            swapped = " (big-endian CTF is not supported)" if magic == 0xF1CF else ""
            raise BadDumpError(f"{what}: bad CTF magic {magic:#06x}{swapped}")
        if version not in LAYOUTS:
            raise BadDumpError(f"{what}: unsupported CTF version {version} (2 and 3 are supported)")
        if len(buf) < HEADER.size:
            raise BadDumpError(f"{what}: truncated CTF header ({len(buf)} of {HEADER.size} bytes)")
        self.header = Header(*HEADER.unpack_from(buf)[1:])
        self.layout = LAYOUTS[version]
        self._body = self._load_body(buf[HEADER.size :])
        h = self.header
        self._strings = bytes(self._body[h.stroff : h.stroff + h.strlen])
        self._ext = ext_strings
        self.is_child = h.parname != 0
        self.parent_name = self.string(h.parname, "parent name") if h.parname else None
        self.parent_label = self.string(h.parlabel, "parent label") if h.parlabel else None
        self._offsets, self._kinds, self._name_refs = self._index_types()

    # Opening ------------------------------------------------------------------------

    def _load_body(self, rest: memoryview) -> memoryview:
        """Check the section offsets and return the (inflated) body they describe."""
        h, what = self.header, self.what
        size = h.stroff + h.strlen
        offsets = (h.lbloff, h.objtoff, h.funcoff, h.typeoff, h.stroff)
        if any(off > size for off in offsets) or list(offsets) != sorted(offsets):
            raise BadDumpError(f"{what}: CTF section offsets out of order or past the end "
                               f"(label {h.lbloff:#x}, object {h.objtoff:#x}, function {h.funcoff:#x}, "
                               f"type {h.typeoff:#x}, string {h.stroff:#x}+{h.strlen:#x})")
        if h.lbloff & 3 or h.objtoff & 1 or h.funcoff & 1 or h.typeoff & 3:
            raise BadDumpError(f"{what}: misaligned CTF section offsets")
        if not h.flags & F_COMPRESS:
            if len(rest) < size:
                raise BadDumpError(f"{what}: truncated CTF data ({len(rest)} of {size} bytes after the header)")
            return rest[:size]
        return memoryview(_inflate(rest, size, what))

    def _index_types(self) -> tuple[array, array, array]:
        """Walk the type section once: each record's offset, kind and name reference, by index
        (index 0 unused). A record that cannot be walked past is an error for the container."""
        h, lay, body, what = self.header, self.layout, self._body, self.what
        offsets, kinds, names = array("Q", [0]), array("B", [0]), array("L", [0])
        unpack, short = lay.stype.unpack_from, lay.stype.size
        unpack_lsize, long_ = lay.lsize.unpack_from, lay.stype.size + lay.lsize.size
        fixed = {K_INTEGER: 4, K_FLOAT: 4, K_ARRAY: lay.array.size, **dict.fromkeys(REF_KINDS, 0),
                 K_FORWARD: 0, K_UNKNOWN: 0}
        child = lay.child_bit if self.is_child else 0
        pos, end, index = h.typeoff, h.stroff, 1
        while pos < end:
            if index >= lay.child_bit:
                raise BadDumpError(f"{what}: more than {lay.child_bit - 1} types in a version {lay.version} container")
            if pos + short > end:
                raise BadDumpError(f"{what}: type {index | child:#x} at offset {pos:#x} is truncated")
            name, info, size = unpack(body, pos)
            kind, vlen, inc = (info >> lay.kind_shift) & lay.kind_mask, info & lay.vlen_mask, short
            if size == lay.lsize_sent:
                if pos + long_ > end:
                    raise BadDumpError(f"{what}: type {index | child:#x} at offset {pos:#x} is truncated")
                hi, lo = unpack_lsize(body, pos + short)
                size, inc = hi << 32 | lo, long_
            vbytes = fixed.get(kind)
            if vbytes is None:
                if kind in (K_STRUCT, K_UNION):
                    vbytes = vlen * (lay.member.size if size < lay.lstruct_thresh else lay.lmember.size)
                elif kind == K_FUNCTION:
                    vbytes = (lay.id_width * vlen + 3) & ~3
                elif kind == K_ENUM:
                    vbytes = 8 * vlen
                else:
                    raise BadDumpError(f"{what}: type {index | child:#x}: invalid kind {kind}")
            if pos + inc + vbytes > end:
                raise BadDumpError(f"{what}: type {index | child:#x} at offset {pos:#x} ({vlen} entries) "
                                   f"runs past the end of the type section ({end:#x})")
            offsets.append(pos)
            kinds.append(kind)
            names.append(name)
            pos += inc + vbytes
            index += 1
        return offsets, kinds, names

    def _record(self, pos: int, end: int, tid: int) -> _Record:
        """The fixed part of the record at `pos`, which must end by `end`."""
        lay = self.layout
        if pos + lay.stype.size > end:
            raise BadDumpError(f"{self.what}: type {tid:#x} at offset {pos:#x} is truncated")
        name, info, size_or_type = lay.stype.unpack_from(self._body, pos)
        inc = lay.stype.size
        size = size_or_type
        if size_or_type == lay.lsize_sent:
            if pos + inc + lay.lsize.size > end:
                raise BadDumpError(f"{self.what}: type {tid:#x} at offset {pos:#x} is truncated")
            hi, lo = lay.lsize.unpack_from(self._body, pos + inc)
            size, inc = hi << 32 | lo, inc + lay.lsize.size
        return _Record(lay.kind(info), name, lay.vlen(info), bool(info & lay.root_bit), size, size_or_type, inc)

    # Type ids -----------------------------------------------------------------------

    @property
    def count(self) -> int:
        """How many type records the container holds."""
        return len(self._offsets) - 1

    def type_id(self, index: int) -> int:
        """The type id of the record at `index` (1-based)."""
        return index | (self.layout.child_bit if self.is_child else 0)

    def owns(self, tid: int) -> bool:
        """Whether type id `tid` names a type of this container rather than of its parent."""
        return bool(tid & self.layout.child_bit) == self.is_child

    def _index(self, tid: int) -> int:
        """The record index of type id `tid`, which must be this container's and in range."""
        index = tid & (self.layout.child_bit - 1)
        if not self.owns(tid) or tid >> (8 * self.layout.id_width) or not 1 <= index <= self.count:
            first, last = self.type_id(1), self.type_id(self.count)
            raise BadDumpError(f"{self.what}: type id {tid:#x} is out of range "
                               f"({f'{first:#x}-{last:#x}' if self.count else 'no types'})")
        return index

    # Records ------------------------------------------------------------------------

    def string(self, ref: int, what: str) -> str:
        """The string a name reference points at (table 0: ours; table 1: the ELF's)."""
        table, offset = (self._ext, ref & 0x7FFFFFFF) if ref >> 31 else (self._strings, ref)
        if offset >= len(table):
            which = "external (ELF)" if ref >> 31 else "CTF"
            raise BadDumpError(f"{self.what}: {what}: name offset {offset:#x} is past the end of the "
                               f"{which} string table ({len(table)} bytes)")
        end = table.find(b"\0", offset)
        if end < 0:
            raise BadDumpError(f"{self.what}: {what}: unterminated name at offset {offset:#x}")
        return table[offset:end].decode("utf-8", "replace")

    def link(self, tid: int) -> tuple[int, int]:
        """(kind, next id) of type `tid`: the referenced type of a pointer, typedef or qualifier,
        an array's element type, else 0. Cheap: decodes no names or members."""
        pos = self._offsets[self._index(tid)]
        rec = self._record(pos, self.header.stroff, tid)
        if rec.kind == K_ARRAY:
            return rec.kind, self.layout.array.unpack_from(self._body, pos + rec.inc)[0]
        return rec.kind, rec.ref if rec.kind in REF_KINDS else 0

    def type(self, tid: int) -> RawType:
        """Decode type record `tid` (BadDumpError if the id or the record is bad)."""
        pos = self._offsets[self._index(tid)]
        lay, body = self.layout, self._body
        kind, name_ref, vlen, root, size, ref, inc = self._record(pos, self.header.stroff, tid)
        base = {"id": tid, "kind": kind, "name": self.string(name_ref, f"type {tid:#x}"), "root": root}
        vpos = pos + inc
        if kind in (K_INTEGER, K_FLOAT):
            (word,) = struct.unpack_from("<I", body, vpos)
            return RawType(**base, size=size, encoding=Encoding(word >> 24, (word >> 16) & 0xFF, word & 0xFFFF))
        if kind == K_ARRAY:
            return RawType(**base, array=tuple(lay.array.unpack_from(body, vpos)))
        if kind == K_FUNCTION:
            fmt = f"<{vlen}{'H' if lay.id_width == 2 else 'I'}"
            return RawType(**base, ref=ref, args=struct.unpack_from(fmt, body, vpos))
        if kind in (K_STRUCT, K_UNION):
            return RawType(**base, size=size, members=self._members(tid, vpos, vlen, size))
        if kind == K_ENUM:
            values = struct.iter_unpack("<Ii", body[vpos : vpos + 8 * vlen])
            return RawType(**base, size=size,
                           enumerators=tuple((self.string(n, f"type {tid:#x} enumerator"), v) for n, v in values))
        if kind in REF_KINDS or kind == K_FORWARD:
            return RawType(**base, ref=ref)
        return RawType(**base)

    def _members(self, tid: int, vpos: int, vlen: int, size: int) -> tuple[RawMember, ...]:
        """The member list of a struct or union (small or large form by its size)."""
        lay = self.layout
        what = f"type {tid:#x} member"
        if size < lay.lstruct_thresh:
            raw = lay.member.iter_unpack(self._body[vpos : vpos + lay.member.size * vlen])
            return tuple(RawMember(self.string(n, what), t, off) for n, t, off in raw)
        large = lay.lmember.iter_unpack(self._body[vpos : vpos + lay.lmember.size * vlen])
        return tuple(RawMember(self.string(n, what), t, off)
                     for n, t, off in (lay.lmember_fields(m) for m in large))

    # Names --------------------------------------------------------------------------

    @cached_property
    def names(self) -> NameIndex:
        """The name index, built on first use; types whose names are unreadable are left out."""
        structs: dict[str, int] = {}
        unions: dict[str, int] = {}
        enums: dict[str, int] = {}
        names: dict[str, int] = {}
        partial: set[str] = set()  # integer names so far held by a bit-field (partial-width) type
        forwards: dict[int, tuple[dict[str, int], str]] = {}
        tags = {K_STRUCT: structs, K_UNION: unions, K_ENUM: enums}
        end = self.header.stroff
        for index, (kind, name_ref) in enumerate(zip(self._kinds, self._name_refs, strict=True)):
            if not name_ref or kind == K_UNKNOWN:
                continue
            tid = self.type_id(index)
            try:
                name = self.string(name_ref, f"type {tid:#x}")
            except BadDumpError:
                continue
            if not name:
                continue
            if kind in tags:
                tags[kind].setdefault(name, tid)
            elif kind == K_FORWARD:
                forwards[tid] = (tags.get(self._record(self._offsets[index], end, tid).ref, structs), name)
            elif kind in (K_INTEGER, K_FLOAT):
                rec = self._record(self._offsets[index], end, tid)
                (word,) = struct.unpack_from("<I", self._body, self._offsets[index] + rec.inc)
                full = (word & 0xFFFF) == 8 * rec.size and not (word >> 16) & 0xFF
                if name not in names or (name in partial and full):
                    names[name] = tid
                    partial.discard(name)
                    if not full:
                        partial.add(name)
            else:
                names.setdefault(name, tid)
        for tid, (table, name) in forwards.items():
            table.setdefault(name, tid)
        return NameIndex(structs, unions, enums, names, frozenset(forwards))

    def labels(self) -> list[tuple[str, int]]:
        """The label section: (label name, last type id of the label)."""
        h = self.header
        raw = self._body[h.lbloff : h.objtoff]
        if len(raw) % 8:
            raise BadDumpError(f"{self.what}: label section length {len(raw)} is not a multiple of 8")
        return [(self.string(name, "label"), last) for name, last in struct.iter_unpack("<II", raw)]

    # Symbols ------------------------------------------------------------------------

    def data_objects(self, symbols: Iterable[Symbol]) -> dict[int, int]:
        """Symbol index -> type id of each data object the object section describes."""
        h, width = self.header, self.layout.id_width
        fmt = "<H" if width == 2 else "<I"
        out: dict[int, int] = {}
        pos = h.objtoff
        for index, sym in enumerate(symbols):
            if pos + width > h.funcoff:
                break
            if _described(sym, STT_OBJECT):
                (tid,) = struct.unpack_from(fmt, self._body, pos)
                if tid:
                    out[index] = tid
                pos += width
        return out

    def functions(self, symbols: Iterable[Symbol]) -> dict[int, FuncInfo]:
        """Symbol index -> signature of each function the function section describes."""
        h, lay = self.header, self.layout
        width = lay.id_width
        fmt = "H" if width == 2 else "I"
        out: dict[int, FuncInfo] = {}
        pos = h.funcoff
        for index, sym in enumerate(symbols):
            if pos + width > h.typeoff:
                break
            if not _described(sym, STT_FUNC):
                continue
            (info,) = struct.unpack_from("<" + fmt, self._body, pos)
            kind, vlen = lay.kind(info), lay.vlen(info)
            if kind == K_UNKNOWN and vlen == 0:
                pos += width
                continue
            words = vlen + 2
            if kind != K_FUNCTION or pos + width * words > h.typeoff:
                raise BadDumpError(f"{self.what}: function section entry for symbol {sym[0]!r} at offset "
                                   f"{pos:#x} is {'corrupt' if kind != K_FUNCTION else 'truncated'}")
            ret, *args = struct.unpack_from(f"<{vlen + 1}{fmt}", self._body, pos + width)
            variadic = bool(args) and args[-1] == 0
            out[index] = FuncInfo(ret, tuple(args[:-1] if variadic else args), variadic)
            pos += width * words
        return out


def _described(sym: Symbol, stt: int) -> bool:
    """Whether the object (or function) section has an entry for this symbol (ctf(5)'s rules)."""
    name, typ, shndx, value = sym
    if typ != stt or not name or shndx == SHN_UNDEF or name in ("_START_", "_END_"):
        return False
    return not (stt == STT_OBJECT and shndx == SHN_ABS and value == 0)


def bitfield_base(name: str) -> str:
    """The declared type's name of a bit-field integer (`unsigned int:3` -> `unsigned int`)."""
    m = _BITFIELD_NAME.match(name)
    return m.group(1) if m else name


def _inflate(data: memoryview, size: int, what: str) -> bytes:
    """Inflate a zlib body that must come out exactly `size` bytes (never more is produced)."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, max(size, 1))  # a max_length of 0 would mean "no limit"
        extra = inflater.decompress(inflater.unconsumed_tail, 1) if len(out) >= size else b""
    except zlib.error as e:
        raise BadDumpError(f"{what}: compressed CTF data is corrupt: {e}") from None
    if extra or len(out) > size:
        raise BadDumpError(f"{what}: compressed CTF data inflates to more than the {size} bytes its header says")
    if len(out) < size:
        state = "is truncated" if not inflater.eof else "ends early"
        raise BadDumpError(f"{what}: compressed CTF data {state}: {len(out)} of {size} bytes")
    return out
