"""The one type model: C types as frozen dataclasses, whatever their source (DWARF, BTF, CTF,
or `::typedef`).

A type may hold a `Ref` where it would hold another type: a lazy reference that a source
(a TypeSource) resolves on demand, which is how recursive types (`struct list *next`) and
large debug information stay cheap. Everything that walks types goes through a Resolver
(`deref`), so it never needs to know where a type came from.

A TypeTable holds the types defined with `::typedef` in creation order (the order mdb's
`::typedef -l` lists its synthetic CTF container). Layout follows libctf, which mdb uses
for synthetic types: base types align on their size, a struct member goes at the next
multiple of its alignment, and a struct's size is where its last member ends (libctf adds
no tail padding). Member offsets are in bits; `bit_size` marks bit-fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

NBBY = 8


@dataclass(frozen=True)
class Ref:
    """A lazy reference to a type of a source: `source` names it (e.g. `dwarf:<build-id>`),
    `key` identifies the type there (e.g. a DIE offset). Resolvers turn it into the type."""

    source: str
    key: int | str


class Resolver(Protocol):
    """Turns a Ref into the type it names (TypeTable for `::typedef` types, TypeSystem for all)."""

    def deref(self, ref: Ref) -> CType:
        """The type `ref` names."""
        ...


@dataclass(frozen=True)
class IntType:
    """An integer base type (`char`, `unsigned long`, `_Bool`, and `void` as mdb defines it)."""

    name: str
    size: int
    signed: bool = True


@dataclass(frozen=True)
class FloatType:
    """A floating point base type (`double`, `float complex`, ...)."""

    name: str
    size: int


@dataclass(frozen=True)
class PointerType:
    """A pointer to `target`, `size` bytes wide (the data model's pointer size)."""

    target: CType
    size: int


@dataclass(frozen=True)
class ArrayType:
    """`count` elements of `element`; a zero count is a flexible array member."""

    element: CType
    count: int


@dataclass(frozen=True)
class StructRef:
    """A struct or union named by tag before (or while) it is defined: `struct list *next`."""

    keyword: str
    tag: str


@dataclass(frozen=True)
class Member:
    """A struct or union member: its name ("" when anonymous), type, offset in bits, and its
    width in bits when it is a bit-field."""

    name: str
    type: CType
    offset_bits: int
    bit_size: int | None = None


@dataclass(frozen=True)
class StructType:
    """A struct or union (`keyword`); `tag` is None when anonymous."""

    keyword: str
    tag: str | None
    members: tuple[Member, ...]
    size: int


@dataclass(frozen=True)
class Typedef:
    """`typedef target name`."""

    name: str
    target: CType


@dataclass(frozen=True)
class EnumType:
    """An enum: `tag` (None when anonymous), size in bytes, and its (name, value) enumerators."""

    tag: str | None
    size: int
    enumerators: tuple[tuple[str, int], ...]
    signed: bool = True


@dataclass(frozen=True)
class FunctionType:
    """A function type: return type, parameter types, and whether it takes `...`."""

    returns: CType
    params: tuple[CType, ...]
    variadic: bool = False


@dataclass(frozen=True)
class QualifiedType:
    """`const`, `volatile` or `restrict` (in `qualifiers`) applied to `target`."""

    qualifiers: frozenset[str]
    target: CType


CType = (IntType | FloatType | PointerType | ArrayType | StructRef | StructType | Typedef | EnumType
         | FunctionType | QualifiedType | Ref)

# Data models as mdb's `::typedef -c` creates them (mdb_ctf.c synthetics): base types, then typedefs.
_COMMON_BASE: tuple[tuple[str, int, bool], ...] = (
    ("void", 0, True), ("signed", 4, True), ("unsigned", 4, False), ("char", 1, True), ("short", 2, True),
    ("int", 4, True), ("long", -1, True), ("long long", 8, True), ("signed char", 1, True),
    ("signed short", 2, True), ("signed int", 4, True), ("signed long", -1, True), ("signed long long", 8, True),
    ("unsigned char", 1, False), ("unsigned short", 2, False), ("unsigned int", 4, False),
    ("unsigned long", -1, False), ("unsigned long long", 8, False), ("_Bool", 1, False),
)
_FLOATS: tuple[tuple[str, int], ...] = (
    ("float", 4), ("double", 8), ("long double", 16), ("float imaginary", 4), ("double imaginary", 8),
    ("long double imaginary", 16), ("float complex", 8), ("double complex", 16), ("long double complex", 32),
)
_TYPEDEFS: dict[str, tuple[tuple[str, str], ...]] = {
    "ILP32": (("char", "int8_t"), ("short", "int16_t"), ("int", "int32_t"), ("long long", "int64_t"),
              ("int", "intptr_t"), ("unsigned char", "uint8_t"), ("unsigned short", "uint16_t"),
              ("unsigned", "uint32_t"), ("unsigned long long", "uint64_t"), ("unsigned char", "uchar_t"),
              ("unsigned short", "ushort_t"), ("unsigned", "uint_t"), ("unsigned long", "ulong_t"),
              ("unsigned long long", "u_longlong_t"), ("int", "ptrdiff_t"), ("unsigned", "uintptr_t")),
    "LP64": (("char", "int8_t"), ("short", "int16_t"), ("int", "int32_t"), ("long", "int64_t"),
             ("long", "intptr_t"), ("unsigned char", "uint8_t"), ("unsigned short", "uint16_t"),
             ("unsigned", "uint32_t"), ("unsigned long", "uint64_t"), ("unsigned char", "uchar_t"),
             ("unsigned short", "ushort_t"), ("unsigned", "uint_t"), ("unsigned long", "ulong_t"),
             ("unsigned long long", "u_longlong_t"), ("long", "ptrdiff_t"), ("unsigned long", "uintptr_t")),
}
DATA_MODELS = {"LP32": "ILP32", "ILP32": "ILP32", "LP64": "LP64"}
POINTER_SIZE = {"ILP32": 4, "LP64": 8}


def type_name(t: CType) -> str:
    """The type's C spelling as CTF names it: `void **`, `uint8_t [10]`, `struct list`, `struct `."""
    match t:
        case IntType(name=name) | FloatType(name=name) | Typedef(name=name):
            return name
        case PointerType(target=target):
            inner = type_name(target)
            return inner + ("*" if inner.endswith("*") else " *")
        case ArrayType(element=element, count=count):
            return f"{type_name(element)} [{count}]"
        case StructRef(keyword=keyword, tag=tag):
            return f"{keyword} {tag}"
        case StructType(keyword=keyword, tag=tag):
            return f"{keyword} {tag or ''}"
    raise TypeError(t)


def resolve(t: CType, table: TypeTable | None = None) -> CType:
    """`t` without typedefs (and a struct reference replaced by its definition when known)."""
    while True:
        if isinstance(t, Typedef):
            t = t.target
        elif isinstance(t, StructRef) and table is not None and table.lookup(type_name(t)) not in (None, t):
            t = table.lookup(type_name(t))  # type: ignore[assignment]
        else:
            return t


def size_of(t: CType, table: TypeTable | None = None) -> int:
    """The type's size in bytes (an undefined struct reference has size 0, as a CTF forward)."""
    t = resolve(t, table)
    match t:
        case IntType(size=size) | FloatType(size=size) | PointerType(size=size) | StructType(size=size):
            return size
        case ArrayType(element=element, count=count):
            return size_of(element, table) * count
    return 0


def align_of(t: CType, table: TypeTable | None = None) -> int:
    """libctf's alignment: a base type's size, an array's element's, a union's widest member's,
    and (a libctf rule, not C's) a struct's first member's."""
    t = resolve(t, table)
    match t:
        case IntType(size=size) | FloatType(size=size) | PointerType(size=size):
            return max(size, 1)
        case ArrayType(element=element):
            return align_of(element, table)
        case StructType(keyword=keyword, members=members):
            counted = members[:1] if keyword == "struct" else members
            return max((align_of(m.type, table) for m in counted), default=1)
    return 1


def layout(keyword: str, tag: str | None, fields: list[tuple[str, CType]], table: TypeTable) -> StructType:
    """A struct (members one after another, each aligned) or union (all at 0), sized as libctf does."""
    members: list[Member] = []
    size = end = 0
    for name, ftype in fields:
        fsize = size_of(ftype, table)
        if keyword == "union":
            members.append(Member(name, ftype, 0))
            size = max(size, fsize)
            continue
        align = align_of(ftype, table)
        offset = (end + align - 1) // align * align
        members.append(Member(name, ftype, offset * NBBY))
        end = size = offset + fsize
    return StructType(keyword, tag, tuple(members), size)


def find_member(t: CType, name: str, table: TypeTable | None = None) -> Member | None:
    """The member `name` of struct or union `t` (searching anonymous members too), offset from `t`."""
    t = resolve(t, table)
    if not isinstance(t, StructType):
        return None
    for m in t.members:
        if m.name == name:
            return m
        inner = find_member(m.type, name, table) if not m.name else None
        if inner is not None:
            return Member(inner.name, inner.type, m.offset_bits + inner.offset_bits)
    return None


def _normal(name: str) -> str:
    """`void * *` -> `void **`: one blank between words, the stars together after one blank."""
    text = " ".join(name.split())
    base = text.rstrip("* ")
    stars = text[len(base):].count("*")
    return base + (" " + "*" * stars if stars else "")


class TypeTable:
    """Named types in creation order (a synthetic CTF container): lookups by C name."""

    def __init__(self) -> None:
        self.types: list[CType] = []
        self._by_name: dict[str, CType] = {}
        self.pointer_size = 8

    def lookup(self, name: str) -> CType | None:
        """The type spelled `name` (blanks normalised), or None."""
        return self._by_name.get(_normal(name))

    def add(self, t: CType) -> CType:
        """Record `t` (named types become findable by name; the first of a name wins)."""
        self.types.append(t)
        if not isinstance(t, ArrayType) and not (isinstance(t, StructType) and t.tag is None):
            self._by_name.setdefault(type_name(t), t)
        return t

    def replace(self, old: CType, new: CType) -> None:
        """Put `new` where `old` was (a struct completed after its members were added)."""
        self.types[self.types.index(old)] = new
        name = type_name(old)
        if self._by_name.get(name) is old:
            self._by_name[name] = new

    def remove(self, t: CType) -> None:
        """Forget `t`."""
        self.types.remove(t)
        name = type_name(t)
        if self._by_name.get(name) is t:
            del self._by_name[name]

    def pointer_to(self, target: CType) -> PointerType:
        """A new pointer type to `target` (libctf adds one per request, duplicates included)."""
        return self.add(PointerType(target, self.pointer_size))  # type: ignore[return-value]

    def clear(self) -> None:
        """Forget every type (`::typedef -d`)."""
        self.types.clear()
        self._by_name.clear()
        self.pointer_size = 8

    def create_model(self, model: str) -> bool:
        """Add the base types and typedefs of data model `model` (ILP32 or LP64); False if any exists."""
        long_size = 8 if model == "LP64" else 4
        base: list[CType] = [IntType(n, long_size if s < 0 else s, signed) for n, s, signed in _COMMON_BASE]
        base += [FloatType(n, s) for n, s in _FLOATS]
        if any(self.lookup(type_name(t)) for t in base):
            return False
        self.pointer_size = POINTER_SIZE[model]
        for t in base:
            self.add(t)
        for source, name in _TYPEDEFS[model]:
            target = self.lookup(source)
            assert target is not None
            self.add(Typedef(name, target))
        return True
