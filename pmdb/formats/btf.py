"""BTF, the BPF Type Format, as the Linux kernel documents it (Documentation/bpf/btf.rst): a
pure parser of a blob of bytes — a file's `.BTF` section, /sys/kernel/btf/vmlinux, or BTF read
out of a dump's memory.

A blob is a header, a type section and a string section. Types are numbered from 1 in the
order they appear (0 is `void`); a split BTF (a kernel module's) continues the numbering and
the string offsets of the base BTF it was built against. Records are variable-sized, so
opening a blob walks the type section once to note where each record starts (and its name's
string offset); a record is decoded only when asked for, because a vmlinux has ~100k types
and a session looks at a handful.

Bad input is expected (a corrupt or truncated dump): the header is checked when the blob is
opened; a record that does not fit (truncated, unknown kind, a vlen past the end) ends the
walk, and that type and every later one report that error while the ones before stay usable;
a record whose strings or type ids are out of range is an error for that record alone. Every
error is a BadDumpError naming the blob and the type; no count read from the blob sizes an
allocation before it has been checked against the bytes that hold it.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import os
import struct
from array import array
from collections.abc import Iterator
from dataclasses import dataclass

from pmdb.errors import BadDumpError

MAGIC = 0xEB9F
HEADER = struct.Struct("<HBBIIIII")  # magic, version, flags, hdr_len, type_off/len, str_off/len
COMMON = struct.Struct("<III")  # name_off, info, size-or-type


class Kind(enum.IntEnum):
    """BTF_KIND_* values (btf.rst section 2.2)."""

    INT = 1
    PTR = 2
    ARRAY = 3
    STRUCT = 4
    UNION = 5
    ENUM = 6
    FWD = 7
    TYPEDEF = 8
    VOLATILE = 9
    CONST = 10
    RESTRICT = 11
    FUNC = 12
    FUNC_PROTO = 13
    VAR = 14
    DATASEC = 15
    FLOAT = 16
    DECL_TAG = 17
    TYPE_TAG = 18
    ENUM64 = 19


# INT encoding bits (BTF_INT_ENCODING).
INT_SIGNED, INT_CHAR, INT_BOOL = 1, 2, 4

# Bytes a record holds after its 12-byte common part: a fixed tail, plus vlen entries of a size.
# FUNC's vlen is its linkage, not a count.
_TAIL: dict[Kind, tuple[int, int]] = {
    Kind.INT: (4, 0), Kind.ARRAY: (12, 0), Kind.STRUCT: (0, 12), Kind.UNION: (0, 12),
    Kind.ENUM: (0, 8), Kind.FUNC_PROTO: (0, 8), Kind.VAR: (4, 0), Kind.DATASEC: (0, 12),
    Kind.DECL_TAG: (4, 0), Kind.ENUM64: (0, 12),
}
_SIZED = frozenset({Kind.INT, Kind.FLOAT, Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64, Kind.DATASEC})
_REFERRING = frozenset({Kind.PTR, Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.FUNC, Kind.FUNC_PROTO,
                        Kind.VAR, Kind.DECL_TAG, Kind.TYPE_TAG})
_FIXED: list[int | None] = [None] * 32
_PER: list[int] = [0] * 32
for _k in Kind:
    _FIXED[_k], _PER[_k] = _TAIL.get(_k, (0, 0))


@dataclass(frozen=True)
class Header:
    """struct btf_header; section offsets are from the end of the header."""

    version: int
    flags: int
    hdr_len: int
    type_off: int
    type_len: int
    str_off: int
    str_len: int


@dataclass(frozen=True)
class Member:
    """struct btf_member, decoded: `offset` in bits, `bit_size` 0 unless the struct's kind_flag
    gives the member a bit-field width."""

    name: str
    type: int
    offset: int
    bit_size: int = 0


@dataclass(frozen=True)
class Enumerator:
    """struct btf_enum or btf_enum64: the value already signed or unsigned as the kind_flag says."""

    name: str
    value: int


@dataclass(frozen=True)
class Param:
    """struct btf_param; the `...` of a variadic prototype is a last param with no name and type 0."""

    name: str
    type: int


@dataclass(frozen=True)
class VarSecInfo:
    """struct btf_var_secinfo: a variable (a VAR's id) at `offset` in a DATASEC, `size` bytes."""

    type: int
    offset: int
    size: int


@dataclass(frozen=True)
class BtfType:
    """One decoded type record. Fields beyond the common ones are set for the kinds they belong to:

    - `size`: INT, FLOAT, STRUCT, UNION, ENUM, ENUM64, DATASEC;
    - `type`: the type referred to by PTR, TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG, FUNC
      (its FUNC_PROTO), VAR, DECL_TAG; a FUNC_PROTO's return type; an ARRAY's element type;
    - INT: `encoding` (INT_SIGNED/CHAR/BOOL bits), `bit_offset`, `bits`;
    - ARRAY: `index_type`, `nelems`;
    - `members` (STRUCT, UNION), `enumerators` (ENUM, ENUM64), `params` (FUNC_PROTO),
      `secinfo` (DATASEC);
    - `linkage`: FUNC (static 0, global 1, extern 2) and VAR (static 0, global 1);
    - `component_idx`: DECL_TAG (-1 for the tagged declaration itself).
    """

    id: int
    kind: Kind
    name: str
    kind_flag: bool
    vlen: int
    size: int = 0
    type: int = 0
    encoding: int = 0
    bit_offset: int = 0
    bits: int = 0
    index_type: int = 0
    nelems: int = 0
    members: tuple[Member, ...] = ()
    enumerators: tuple[Enumerator, ...] = ()
    params: tuple[Param, ...] = ()
    secinfo: tuple[VarSecInfo, ...] = ()
    linkage: int = 0
    component_idx: int = -1


def _signed64(value: int) -> int:
    """`value`, an unsigned 64-bit number, read as two's complement."""
    return value - (1 << 64) if value >> 63 else value


class _RecordError(Exception):
    """A field of one record is out of range; get() turns it into a BadDumpError naming the type."""


class Btf:
    """One BTF blob: its header, the start of each type record, its strings.

    `base` is the BTF a split BTF was built against: this blob's type ids then start after the
    base's last, and string offsets below the base's string section size are the base's.
    `label` names the blob in error messages (a path, or `vmlinux` of a dump); `digest` is a
    hash of its bytes, which identifies it.
    """

    def __init__(self, data: bytes | memoryview, base: Btf | None = None, label: str = "BTF") -> None:
        self.label = label
        self.base = base
        self.header = self._read_header(data)
        self.digest = hashlib.blake2b(data, digest_size=16).hexdigest()
        h = self.header
        types_start = h.hdr_len + h.type_off
        strings_start = h.hdr_len + h.str_off
        self._types = data[types_start : types_start + h.type_len]
        self._strings = bytes(data[strings_start : strings_start + h.str_len])
        if base is not None:
            if base.error is not None:
                raise BadDumpError(f"{label}: its base BTF is unreadable in part: {base.error}")
            self.start_id = base.end_id
            self.str_start = base.str_start + len(base._strings)
        else:
            self.start_id, self.str_start = 1, 0
        self.error: str | None = None  # why the walk stopped early, if it did
        self._stopped = ""
        self._offsets = array("I")
        self._name_offs = array("I")
        self._name_set: set[int] | None = None
        self._name_bytes: bytes | None = None
        if not self._load_walk():
            self._walk()
            self._save_walk()
        self.end_id = self.start_id + len(self._offsets)

    # Opening ----------------------------------------------------------------------

    def _read_header(self, data: bytes | memoryview) -> Header:
        """The header, checked: magic, version, and both sections within `data`."""
        if len(data) < HEADER.size:
            raise BadDumpError(f"{self.label}: BTF header truncated ({len(data)} bytes, need {HEADER.size})")
        magic, version, flags, hdr_len, type_off, type_len, str_off, str_len = HEADER.unpack_from(data)
        if magic != MAGIC:
            swapped = magic == int.from_bytes(MAGIC.to_bytes(2, "little"), "big")
            raise BadDumpError(f"{self.label}: " + ("big-endian BTF is not supported" if swapped
                                                     else f"not BTF (magic {magic:#06x}, expected {MAGIC:#06x})"))
        if version != 1:
            raise BadDumpError(f"{self.label}: BTF version {version} is not supported (only version 1)")
        if not HEADER.size <= hdr_len <= len(data):
            raise BadDumpError(f"{self.label}: BTF header length {hdr_len} is outside 24..{len(data)}")
        for what, off, length in (("type", type_off, type_len), ("string", str_off, str_len)):
            if hdr_len + off + length > len(data):
                raise BadDumpError(
                    f"{self.label}: BTF {what} section [{off:#x}, {off + length:#x}) after the header extends "
                    f"past the end of the data ({len(data) - hdr_len:#x} bytes after the header): truncated")
        return Header(version, flags, hdr_len, type_off, type_len, str_off, str_len)

    def _walk(self) -> None:
        """Note where each record starts; stop, recording `error`, at the first that does not fit."""
        data, end = self._types, len(self._types)
        unpack, fixed, per = COMMON.unpack_from, _FIXED, _PER
        offsets, names = self._offsets, self._name_offs
        off = 0
        while off < end:
            if end - off < COMMON.size:
                self._stop(off, f"record truncated ({end - off} bytes left, a record needs {COMMON.size})")
                return
            name_off, info, _ = unpack(data, off)
            kind = (info >> 24) & 0x1F
            tail = fixed[kind]
            if tail is None:
                self._stop(off, f"unknown kind {kind}")
                return
            size = COMMON.size + tail + (info & 0xFFFF) * per[kind]
            if off + size > end:
                self._stop(off, f"{Kind(kind).name} with vlen {info & 0xFFFF} needs {size} bytes, "
                                f"only {end - off} are left in the type section")
                return
            offsets.append(off)
            names.append(name_off)
            off += size

    def _walk_cache(self) -> str:
        root = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
        return os.path.join(root, "pmdb", "btf", f"{self.digest}.walk")

    def _load_walk(self) -> bool:
        """Take the walk's record and name offsets from the cache (keyed by the blob's digest):
        a kernel's BTF has 100,000 records, and noting where each starts costs tens of ms."""
        try:
            with open(self._walk_cache(), "rb") as f:
                raw = f.read()
        except OSError:
            return False
        if len(raw) < 4:
            return False
        (count,) = struct.unpack_from("<I", raw)
        if len(raw) != 4 + 8 * count:
            return False
        self._offsets.frombytes(raw[4 : 4 + 4 * count])
        self._name_offs.frombytes(raw[4 + 4 * count :])
        if self._offsets and (self._offsets[-1] >= len(self._types) or any(
                a >= b for a, b in zip(self._offsets[:64], self._offsets[1:65], strict=False))):
            self._offsets, self._name_offs = array("I"), array("I")  # not this blob's: walk again
            return False
        return True

    def _save_walk(self) -> None:
        """Keep a complete walk for the next open of the same blob (best effort, atomic)."""
        if self.error is not None or len(self._offsets) < 1024:
            return
        path = self._walk_cache()
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(struct.pack("<I", len(self._offsets)) + self._offsets.tobytes() + self._name_offs.tobytes())
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def _stop(self, off: int, reason: str) -> None:
        """Record why the walk stopped at the record at `off` (an offset in the type section)."""
        self._stopped = f"type {self.start_id + len(self._offsets)} at type section offset {off:#x}: {reason}"
        self.error = f"{self.label}: BTF {self._stopped}"

    # Access -----------------------------------------------------------------------

    def __len__(self) -> int:
        """The number of readable type records of this blob (not counting the base's or void)."""
        return len(self._offsets)

    def _check_id(self, type_id: int) -> None:
        """Raise BadDumpError unless `type_id` names a readable record of this blob or its base."""
        if type_id >= self.end_id and self.error is not None:
            raise BadDumpError(self.error if type_id == self.end_id else
                               f"{self.label}: BTF type {type_id} cannot be found past the unreadable {self._stopped}")
        if not 1 <= type_id < self.end_id:
            raise BadDumpError(f"{self.label}: BTF type id {type_id} is out of range (1..{self.end_id - 1})")

    def kind(self, type_id: int) -> Kind:
        """The kind of type `type_id`, without decoding the record."""
        if type_id < self.start_id and self.base is not None:
            return self.base.kind(type_id)
        self._check_id(type_id)
        info = COMMON.unpack_from(self._types, self._offsets[type_id - self.start_id])[1]
        return Kind((info >> 24) & 0x1F)

    def get(self, type_id: int) -> BtfType:
        """Decode the record of type `type_id` (a BadDumpError if it is out of range or malformed)."""
        if type_id < self.start_id and self.base is not None:
            return self.base.get(type_id)
        self._check_id(type_id)
        off = self._offsets[type_id - self.start_id]
        name_off, info, size_type = COMMON.unpack_from(self._types, off)
        kind = Kind((info >> 24) & 0x1F)
        try:
            return self._decode(type_id, kind, name_off, info, size_type, off + COMMON.size)
        except _RecordError as e:
            raise BadDumpError(f"{self.label}: BTF type {type_id} ({kind.name}): {e}") from None

    def _decode(self, tid: int, kind: Kind, name_off: int, info: int, st: int, at: int) -> BtfType:
        """The record's fields by kind; `at` is where the kind-specific data starts (the walk has
        checked that the record's vlen entries lie within the type section)."""
        data, vlen, kflag = self._types, info & 0xFFFF, bool(info >> 31)

        def entries(fmt: str) -> Iterator[tuple[int, ...]]:
            return struct.iter_unpack(fmt, data[at : at + struct.calcsize(fmt) * vlen])

        common: dict = {"id": tid, "kind": kind, "name": self.string(name_off), "kind_flag": kflag, "vlen": vlen}
        if kind in _SIZED:
            common["size"] = st
        elif kind in _REFERRING:
            common["type"] = self._ref(st)
        match kind:
            case Kind.INT:
                (word,) = struct.unpack_from("<I", data, at)
                return BtfType(**common, encoding=(word >> 24) & 0xF, bit_offset=(word >> 16) & 0xFF,
                               bits=word & 0xFF)
            case Kind.ARRAY:
                elem, index, nelems = struct.unpack_from("<III", data, at)
                return BtfType(**common, type=self._ref(elem), index_type=self._ref(index), nelems=nelems)
            case Kind.STRUCT | Kind.UNION:
                return BtfType(**common, members=tuple(
                    Member(self.string(n), self._ref(t), off & 0xFFFFFF, off >> 24) if kflag
                    else Member(self.string(n), self._ref(t), off) for n, t, off in entries("<III")))
            case Kind.ENUM:
                return BtfType(**common, enumerators=tuple(
                    Enumerator(self.string(n), v) for n, v in entries("<Ii" if kflag else "<II")))
            case Kind.ENUM64:
                return BtfType(**common, enumerators=tuple(
                    Enumerator(self.string(n), _signed64(hi << 32 | lo) if kflag else hi << 32 | lo)
                    for n, lo, hi in entries("<III")))
            case Kind.FUNC_PROTO:
                return BtfType(**common, params=tuple(Param(self.string(n), self._ref(t)) for n, t in entries("<II")))
            case Kind.FUNC:
                return BtfType(**common, linkage=vlen)
            case Kind.VAR:
                return BtfType(**common, linkage=struct.unpack_from("<I", data, at)[0])
            case Kind.DATASEC:
                return BtfType(**common, secinfo=tuple(VarSecInfo(self._ref(t), o, n) for t, o, n in entries("<III")))
            case Kind.DECL_TAG:
                return BtfType(**common, component_idx=struct.unpack_from("<i", data, at)[0])
        return BtfType(**common)

    def _ref(self, type_id: int) -> int:
        """`type_id` checked to name void or a type of this blob (or its base)."""
        if type_id >= self.end_id:
            raise _RecordError(f"refers to type {type_id}, past the last type {self.end_id - 1}")
        return type_id

    def string(self, offset: int) -> str:
        """The NUL-terminated string at `offset` of the string section (the base's below its size)."""
        if offset < self.str_start and self.base is not None:
            return self.base.string(offset)
        rel = offset - self.str_start
        strings = self._strings
        if rel >= len(strings):
            raise _RecordError(f"string offset {offset:#x} is past the end of the string section "
                               f"({self.str_start + len(strings):#x})")
        end = strings.find(b"\0", rel)
        if end < 0:
            raise _RecordError(f"string at offset {offset:#x} runs off the end of the string section")
        return strings[rel:end].decode("utf-8", "replace")

    # Names ------------------------------------------------------------------------

    def _string_offsets(self, key: bytes) -> list[int]:
        """Every offset (base's included) at which the string `key` (NUL included) can be read."""
        found = self.base._string_offsets(key) if self.base is not None else []
        at = self._strings.find(key)
        while at >= 0:
            found.append(self.str_start + at)
            at = self._strings.find(key, at + 1)
        return found

    def ids_named(self, name: str) -> list[int]:
        """Ids of the types called `name`, in id order (the base's first), without decoding any.

        The strings are searched for the name (a short one is also the tail of many longer
        strings), the places kept that some type's name starts at, and the names' offsets noted
        by the walk are searched for those: scans in C rather than a dictionary of every name.
        """
        if not name:
            return []
        key = name.encode() + b"\0"
        ids = self.base.ids_named(name) if self.base is not None else []
        mine: list[int] = []
        names = self._name_offs
        if self._name_set is None:
            self._name_set = set(names)
        if self._name_bytes is None:
            self._name_bytes = names.tobytes()
        packed_names = self._name_bytes
        for offset in self._name_set.intersection(self._string_offsets(key)):
            needle = struct.pack("<I", offset)
            at = packed_names.find(needle)
            while at >= 0:  # a match off a 4-byte boundary straddles two entries: not a name
                if at % 4 == 0:
                    mine.append(self.start_id + at // 4)
                at = packed_names.find(needle, at + 1)
        return ids + sorted(mine)
