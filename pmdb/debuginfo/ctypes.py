"""The one type model: C types as frozen dataclasses, whatever their source (DWARF, BTF, CTF,
or `::typedef`), and the helpers every command uses on them.

A type may hold a `Ref` where it would hold another type: a lazy reference that a source
(a TypeSource) resolves on demand, which is how recursive types (`struct list *next`) and
large debug information stay cheap. Everything that walks types goes through a Resolver
(`deref` for Refs, `lookup` to complete a forward declaration), so it never needs to know
where a type came from. Walks are bounded: a chain of references longer than MAX_CHAIN (a
cyclic typedef in corrupt debug information) is a BadTypeError, not a hang.

Names follow libctf's ctf_type_name, which mdb prints: `char *`, `int [2][3]`, `int (*)()`,
`const char *`, `struct foo`, and `struct ` for an anonymous struct. A bit-field member's
type is named as ctfconvert names the integer it makes for it: `unsigned int:3`.

A TypeTable holds the types defined with `::typedef` in creation order (the order mdb's
`::typedef -l` lists its synthetic CTF container). Layout follows libctf, which mdb uses
for synthetic types: base types align on their size, a struct member goes at the next
multiple of its alignment, and a struct's size is where its last member ends (libctf adds
no tail padding). Member offsets are in bits; `bit_size` marks bit-fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pmdb.errors import PmdbError

NBBY = 8
MAX_CHAIN = 64  # references, typedefs and nested members followed before giving up


class BadTypeError(PmdbError):
    """A type that cannot be followed: a reference loop or a reference nothing resolves."""


@dataclass(frozen=True)
class Ref:
    """A lazy reference to a type of a source: `source` names it (e.g. `dwarf:<build-id>`),
    `key` identifies the type there (e.g. a DIE offset). Resolvers turn it into the type."""

    source: str
    key: int | str


class Resolver(Protocol):
    """What type walks need: Refs turned into types, and C names looked up (TypeTable for
    `::typedef` types, a TypeSystem for every source)."""

    def deref(self, ref: Ref) -> CType:
        """The type `ref` names."""
        ...

    def lookup(self, name: str) -> CType | None:
        """The type C calls `name`, or None."""
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
    """A struct or union named by tag before (or while) it is defined: `struct list *next`, or a
    forward declaration in debug information; resolved by looking the tag up."""

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


# Following references ----------------------------------------------------------------------


def direct(t: CType, types: Resolver | None) -> CType:
    """`t` itself when it is not a Ref, else the type the Ref names (through Refs to Refs)."""
    for _ in range(MAX_CHAIN):
        if not isinstance(t, Ref):
            return t
        if types is None:
            raise BadTypeError(f"type reference {t.source}:{t.key} cannot be resolved here")
        t = types.deref(t)
    raise BadTypeError(f"type reference {t.source}:{t.key} is part of a loop of references")


def resolve(t: CType, types: Resolver | None = None) -> CType:
    """`t` without Refs, typedefs and qualifiers, and a forward declaration replaced by its
    definition when one is known (libctf's ctf_type_resolve, as mdb uses it)."""
    last = "a type"
    for _ in range(MAX_CHAIN):
        t = direct(t, types)
        if isinstance(t, Typedef | QualifiedType):
            last = f"typedef {t.name}" if isinstance(t, Typedef) else last
            t = t.target
        elif isinstance(t, StructRef):
            found = types.lookup(f"{t.keyword} {t.tag}") if types is not None else None
            found = direct(found, types) if found is not None else None
            return found if isinstance(found, StructType) else t
        else:
            return t
    raise BadTypeError(f"{last} refers to itself through a loop of typedefs or qualifiers")


def size_of(t: CType, types: Resolver | None = None) -> int:
    """The type's size in bytes (a function, or an undefined struct reference, has size 0)."""
    count = 1
    for _ in range(MAX_CHAIN):
        t = resolve(t, types)
        if isinstance(t, ArrayType):
            count *= t.count
            t = t.element
            continue
        if isinstance(t, IntType | FloatType | PointerType | StructType | EnumType):
            return count * t.size
        return 0
    raise BadTypeError("arrays nest too deeply")


def align_of(t: CType, types: Resolver | None = None, depth: int = 0) -> int:
    """libctf's alignment: a base type's size, an array's element's, a union's widest member's,
    and (a libctf rule, not C's) a struct's first member's."""
    if depth > MAX_CHAIN:
        raise BadTypeError("types nest too deeply")
    t = resolve(t, types)
    match t:
        case IntType(size=size) | FloatType(size=size) | PointerType(size=size) | EnumType(size=size):
            return max(size, 1)
        case ArrayType(element=element):
            return align_of(element, types, depth + 1)
        case StructType(keyword=keyword, members=members):
            counted = members[:1] if keyword == "struct" else members
            return max((align_of(m.type, types, depth + 1) for m in counted), default=1)
    return 1


def layout(keyword: str, tag: str | None, fields: list[tuple[str, CType]], types: Resolver) -> StructType:
    """A struct (members one after another, each aligned) or union (all at 0), sized as libctf does."""
    members: list[Member] = []
    size = end = 0
    for name, ftype in fields:
        fsize = size_of(ftype, types)
        if keyword == "union":
            members.append(Member(name, ftype, 0))
            size = max(size, fsize)
            continue
        align = align_of(ftype, types)
        offset = (end + align - 1) // align * align
        members.append(Member(name, ftype, offset * NBBY))
        end = size = offset + fsize
    return StructType(keyword, tag, tuple(members), size)


def find_member(t: CType, name: str, types: Resolver | None = None, depth: int = 0) -> Member | None:
    """The member `name` of struct or union `t`, searching anonymous members too, with its
    offset from the start of `t`."""
    if depth > MAX_CHAIN:
        raise BadTypeError("anonymous members nest too deeply")
    t = resolve(t, types)
    if not isinstance(t, StructType):
        return None
    for m in t.members:
        if m.name == name:
            return m
        inner = find_member(m.type, name, types, depth + 1) if not m.name else None
        if inner is not None:
            return Member(inner.name, inner.type, m.offset_bits + inner.offset_bits, inner.bit_size)
    return None


def is_char(t: CType) -> bool:
    """mdb's IS_CHAR: a signed one-byte integer of a char kind (`char`, `signed char`)."""
    return isinstance(t, IntType) and t.signed and t.size == 1 and "char" in t.name.split()


# Names -------------------------------------------------------------------------------------

_BASE, _POINTER, _ARRAY, _FUNCTION = range(4)  # libctf's declarator precedences
_QUALIFIER_ORDER = ("const", "volatile", "restrict")


@dataclass(frozen=True)
class _Node:
    """One declarator piece of a type name: its text, and whether it is a `*` or `[n]`."""

    text: str
    tight: bool


class _Decl:
    """libctf's ctf_decl: a type's pieces sorted by precedence, for ctf_type_name."""

    def __init__(self) -> None:
        self.nodes: list[list[_Node]] = [[], [], [], []]
        self.order = [-1, -1, -1, -1]
        self.next_order = 0
        self.qualp = _BASE

    def push(self, t: CType, types: Resolver | None, depth: int = 0) -> None:
        """ctf_decl_push: `t`'s pieces, innermost first, each at its precedence."""
        if depth > MAX_CHAIN:
            raise BadTypeError("type names nest too deeply")
        t = direct(t, types)
        match t:
            case ArrayType(element=element, count=count):
                self.push(element, types, depth + 1)
                prec, node = _ARRAY, _Node(f"[{count}]", True)
            case FunctionType(returns=returns):
                self.push(returns, types, depth + 1)
                prec, node = _FUNCTION, _Node("()", False)
            case PointerType(target=target):
                self.push(target, types, depth + 1)
                prec, node = _POINTER, _Node("*", True)
            case Typedef(name="", target=target):  # a nameless typedef is what it names
                self.push(target, types, depth + 1)
                return
            case QualifiedType(qualifiers=quals, target=target):
                self.push(target, types, depth + 1)
                words = [q for q in _QUALIFIER_ORDER if q in quals]
                # qualifiers of a base type are put in front of it one by one: the last goes first
                for word in reversed(words) if self.qualp == _BASE else words:
                    self._add(self.qualp, _Node(word, False), True)
                return
            case _:
                prec, node = _BASE, _Node(_base_name(t), False)
        self._add(prec, node, False)

    def _add(self, prec: int, node: _Node, qualifier: bool) -> None:
        """File a piece: arrays and a base type's qualifiers go in front of their level."""
        if not self.nodes[prec]:
            self.order[prec] = self.next_order
            self.next_order += 1
        if self.qualp < prec < _ARRAY:
            self.qualp = prec
        if node.text.startswith("[") or (qualifier and prec == _BASE):
            self.nodes[prec].insert(0, node)
        else:
            self.nodes[prec].append(node)

    def text(self) -> str:
        """ctf_type_qlname's output: the pieces by precedence, parenthesized where the order of
        pointers and arrays in the type differs from C's precedence."""
        ptr = self.order[_POINTER] > _POINTER
        arr = self.order[_ARRAY] > _ARRAY
        rp = _ARRAY if arr else _POINTER if ptr else -1
        lp = _POINTER if ptr else _ARRAY if arr else -1
        out: list[str] = []
        tight = True  # no blank before the first piece, nor after `*` or `[n]`
        for prec in range(_FUNCTION + 1):
            for node in self.nodes[prec]:
                if not tight:
                    out.append(" ")
                if lp == prec:
                    out.append("(")
                    lp = -1
                out.append(node.text)
                tight = node.tight
            if rp == prec:
                out.append(")")
        return "".join(out)


def _base_name(t: CType) -> str:
    match t:
        case IntType(name=name) | FloatType(name=name) | Typedef(name=name):
            return name
        case StructType(keyword=keyword, tag=tag):
            return f"{keyword} {tag or ''}"
        case StructRef(keyword=keyword, tag=tag):
            return f"{keyword} {tag}"
        case EnumType(tag=tag):
            return f"enum {tag or ''}"
    raise BadTypeError(f"not a type: {t!r}")


def type_name(t: CType, types: Resolver | None = None) -> str:
    """The type's C spelling as libctf (and so mdb) names it: `void **`, `uint8_t [10]`,
    `struct list`, `struct ` (anonymous), `const char *`, `int (*)()`."""
    decl = _Decl()
    decl.push(t, types)
    return decl.text()


def member_type_name(m: Member, types: Resolver | None = None) -> str:
    """The name mdb shows for a member's type: a bit-field's is the integer ctfconvert makes
    for it, named after its base type and width (`unsigned int:3`, `color:3` for an enum)."""
    if m.bit_size is None:
        return type_name(m.type, types)
    base = resolve(m.type, types)
    if isinstance(base, EnumType):
        return f"{base.tag or ''}:{m.bit_size}"
    return f"{type_name(base, types)}:{m.bit_size}"


def _normal(name: str) -> str:
    """`void * *` -> `void **`: one blank between words, the stars together after one blank."""
    text = " ".join(name.split())
    base = text.rstrip("* ")
    stars = text[len(base):].count("*")
    return base + (" " + "*" * stars if stars else "")


class TypeTable:
    """Named types in creation order (a synthetic CTF container): lookups by C name. A type
    source (`name`, `lookup`, `deref`) that holds no Refs of its own."""

    name = "mdb:synthetic"

    def __init__(self) -> None:
        self.types: list[CType] = []
        self._by_name: dict[str, CType] = {}
        self.pointer_size = 8

    def lookup(self, name: str) -> CType | None:
        """The type spelled `name` (blanks normalised), or None."""
        return self._by_name.get(_normal(name))

    def deref(self, ref: Ref) -> CType:
        """Synthetic types hold their types directly; a Ref is never this table's."""
        raise BadTypeError(f"type reference {ref.source}:{ref.key} is not a synthetic type")

    def add(self, t: CType) -> CType:
        """Record `t` (named types become findable by name; the first of a name wins)."""
        self.types.append(t)
        if not isinstance(t, ArrayType) and not (isinstance(t, StructType) and t.tag is None):
            self._by_name.setdefault(type_name(t, self), t)
        return t

    def replace(self, old: CType, new: CType) -> None:
        """Put `new` where `old` was (a struct completed after its members were added)."""
        self.types[self.types.index(old)] = new
        name = type_name(old, self)
        if self._by_name.get(name) is old:
            self._by_name[name] = new

    def remove(self, t: CType) -> None:
        """Forget `t`."""
        self.types.remove(t)
        name = type_name(t, self)
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
