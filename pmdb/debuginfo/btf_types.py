"""BTF as a type source: C types of a kernel (or any BTF blob) in pmdb's type model, on demand.

A BtfTypes answers the type-source protocol: `name`, `lookup(C name)` and `deref(Ref)`. A type
that refers to another holds `Ref(self.name, type_id)`, so looking up `struct task_struct`
decodes that one record, not the ~100k of a vmlinux; decoded types are kept.

How BTF kinds become model types:
- INT -> IntType (signed when the encoding says so), FLOAT -> FloatType, PTR -> PointerType,
  ARRAY -> ArrayType (0 elements: a flexible array), STRUCT/UNION -> StructType, ENUM and
  ENUM64 -> EnumType (an ENUM without enumerators is an enum's forward declaration), FWD ->
  StructRef, TYPEDEF -> Typedef, CONST/VOLATILE/RESTRICT -> QualifiedType, FUNC_PROTO ->
  FunctionType (a trailing void parameter means `...`), type 0 -> `void`;
- a struct member's bit-field width comes from the member's offset word when the struct's
  kind_flag is set, else (the older encoding) from the INT it has as type, whose bit offset
  is added to the member's;
- not types, but resolved through to one: TYPE_TAG (its tagged type), FUNC (its prototype),
  VAR (the variable's type); DATASEC and DECL_TAG are not types at all.

A reference chain that loops without passing through a struct or union (a typedef of itself,
a pointer to itself) would hang whatever follows it, so a type is checked before it is handed
out: such a cycle is a BadDumpError for the types on it.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from pmdb.debuginfo.ctypes import (
    ArrayType,
    CType,
    EnumType,
    FloatType,
    FunctionType,
    IntType,
    Member,
    PointerType,
    QualifiedType,
    Ref,
    StructRef,
    StructType,
    Typedef,
)
from pmdb.errors import BadDumpError, MissingDebugInfoError, TypeNotFound
from pmdb.formats.btf import INT_SIGNED, Btf, BtfType, Kind

if TYPE_CHECKING:  # only its methods are used: opening raw BTF needs no ELF parser
    from pmdb.formats.elf import ElfFile

VOID = IntType("void", 0)

_QUALIFIERS = {Kind.CONST: "const", Kind.VOLATILE: "volatile", Kind.RESTRICT: "restrict"}
# Kinds whose references a cycle check follows: all but the struct/union member edges (the
# one legitimate way back to a type) and the kinds that refer to nothing.
_CHAINED = frozenset({Kind.PTR, Kind.ARRAY, Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT,
                      Kind.TYPE_TAG, Kind.FUNC, Kind.FUNC_PROTO, Kind.VAR})
# Kinds that are not types but stand for the one they refer to.
_PASSED_THROUGH = frozenset({Kind.TYPE_TAG, Kind.FUNC, Kind.VAR})
# Kinds a legacy bit-field member's type may pass through on the way to its INT.
_TRANSPARENT = frozenset({Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG})
_TAGGED = {"struct": (Kind.STRUCT, Kind.FWD), "union": (Kind.UNION, Kind.FWD), "enum": (Kind.ENUM, Kind.ENUM64)}
_PLAIN = (Kind.TYPEDEF, Kind.INT, Kind.FLOAT)
# The spellings compilers give C's integer types (gcc's DWARF names first, then clang's), by the
# words that make the type: `unsigned long` is found as gcc's `long unsigned int`.
_INT_SPELLINGS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "char"): ("char",), ("signed", "char"): ("signed char",), ("unsigned", "char"): ("unsigned char",),
    ("", "short"): ("short int", "short"), ("unsigned", "short"): ("short unsigned int", "unsigned short"),
    ("", "int"): ("int",), ("unsigned", "int"): ("unsigned int",),
    ("", "long"): ("long int", "long"), ("unsigned", "long"): ("long unsigned int", "unsigned long"),
    ("", "long long"): ("long long int", "long long"),
    ("unsigned", "long long"): ("long long unsigned int", "unsigned long long"),
    ("", "__int128"): ("__int128",), ("unsigned", "__int128"): ("__int128 unsigned", "unsigned __int128"),
}
_INT_WORDS = frozenset({"signed", "unsigned", "short", "long", "int", "char", "__int128"})


def _int_spellings(name: str) -> tuple[str, ...]:
    """The compilers' spellings of integer type `name` (`unsigned long` -> `long unsigned int`, ...)."""
    words = name.split()
    if not words or not set(words) <= _INT_WORDS:
        return ()
    for base in ("char", "short", "__int128"):
        if base in words:
            break
    else:
        base = {0: "int", 1: "long", 2: "long long"}.get(words.count("long"), "")
    sign = "unsigned" if "unsigned" in words else "signed" if "signed" in words and base == "char" else ""
    return _INT_SPELLINGS.get((sign, base), ())


class BtfTypes:
    """The C types of one BTF blob (a split blob's `base` is the BtfTypes of its base BTF).

    When the blob is readable only in part, `btf.error` says where it stops, for the opener to
    report once: lookup() finds only the types before that point (returning None for the rest,
    so that a type system goes on to its other sources), and asking for a later type by id is
    that error.
    """

    def __init__(self, btf: Btf, base: BtfTypes | None = None, pointer_size: int = 8) -> None:
        """Types of parsed `btf`; `name` is unique to its bytes (and its base's), so two dumps of one
        kernel share types and two kernels never mix."""
        if (btf.base is None) != (base is None) or (base is not None and base.btf is not btf.base):
            raise ValueError("a split BTF's BtfTypes needs the BtfTypes of its base")
        self.btf = btf
        self.base = base
        self.pointer_size = pointer_size
        digest = hashlib.blake2b(btf.digest.encode(), digest_size=8)
        if base is not None:
            digest.update(base.name.encode())
        self.name = f"btf:{digest.hexdigest()}"
        self._types: dict[int, CType] = {}
        self._acyclic: set[int] = set()
        self._names: dict[str, CType | None] = {}

    @classmethod
    def from_bytes(cls, data: bytes | memoryview, label: str = "BTF", base: BtfTypes | None = None,
                   pointer_size: int = 8) -> BtfTypes:
        """Types of a raw BTF blob (/sys/kernel/btf/vmlinux, BTF read from a dump); a module's split
        BTF with the BtfTypes of its `base` (vmlinux)."""
        return cls(Btf(data, base.btf if base is not None else None, label), base, pointer_size)

    @classmethod
    def from_elf(cls, elf: ElfFile, base: BtfTypes | None = None) -> BtfTypes:
        """Types of an ELF file's .BTF section (a vmlinux, a module's .ko with `base`)."""
        sec = elf.section(".BTF")
        if sec is None:
            raise MissingDebugInfoError(f"{elf.path}: no .BTF section")
        data = bytes(elf.section_data(sec))  # a copy: the types outlive the file's mapping
        return cls.from_bytes(data, f"{elf.path} .BTF", base, elf.elfclass // 8)

    # The type-source protocol -------------------------------------------------------

    def lookup(self, name: str) -> CType | None:
        """The type C calls `name`: `struct task_struct`, `union x`, `enum e`, a typedef's name, a
        base type (`int`, `unsigned long`, `double`), or `void`; None if this BTF has none.

        A definition is preferred to a forward declaration; of several definitions, the first.
        A malformed record of that name is a BadDumpError (see `_check_acyclic` for cycles).
        """
        name = " ".join(name.split())
        if name not in self._names:
            self._names[name] = self._find(name)
        return self._names[name]

    def deref(self, ref: Ref) -> CType:
        """The type `ref` names (a Ref made by this source or its base)."""
        if ref.source == self.name and isinstance(ref.key, int):
            return self.type_by_id(ref.key)
        if self.base is not None and ref.source == self.base.name:
            return self.base.deref(ref)
        raise TypeNotFound(f"{ref.source} type {ref.key} is not a type of {self.name}")

    # Beyond the protocol ------------------------------------------------------------

    def declaration(self, name: str) -> CType | None:
        """The type of the function (a FunctionType) or variable called `name`, or None."""
        for tid in self.btf.ids_named(name):
            if self.btf.kind(tid) in (Kind.FUNC, Kind.VAR):
                return self.type_by_id(tid)
        return None

    def type_by_id(self, type_id: int) -> CType:
        """The model type of BTF type `type_id` (0 is void)."""
        found = self._types.get(type_id)
        if found is not None:
            return found
        if type_id == 0:
            return VOID
        if type_id < self.btf.start_id and self.base is not None:
            return self.base.type_by_id(type_id)
        self._check_acyclic(type_id)
        record = self.btf.get(type_id)
        if record.kind in _PASSED_THROUGH:
            target = record.type
            while target >= self.btf.start_id and self.btf.kind(target) in _PASSED_THROUGH:  # a loop, not recursion
                target = self.btf.get(target).type
            found = self.type_by_id(target)
        else:
            found = self._convert(record)
        self._types[type_id] = found
        return found

    # Decoding -----------------------------------------------------------------------

    def _find(self, name: str) -> CType | None:
        """lookup() without the cache."""
        keyword, _, tag = name.partition(" ")
        if keyword in _TAGGED and tag and " " not in tag:
            kinds = _TAGGED[keyword]
            candidates = [t for t in self.btf.ids_named(tag) if self.btf.kind(t) in kinds]
            if keyword != "enum":
                want_union = keyword == "union"
                candidates = [t for t in candidates if self.btf.kind(t) != Kind.FWD
                              or self.btf.get(t).kind_flag == want_union]
            complete = [t for t in candidates if self._is_complete(t)]
            chosen = (complete or candidates)[:1]
        elif name == "void":
            return VOID
        else:
            chosen = []
            for spelling in (name, *_int_spellings(name)):
                chosen = [t for t in self.btf.ids_named(spelling) if self.btf.kind(t) in _PLAIN][:1]
                if chosen:
                    break
        return self.type_by_id(chosen[0]) if chosen else None

    def _is_complete(self, type_id: int) -> bool:
        """False for a forward declaration: a FWD, or an enum without enumerators."""
        kind = self.btf.kind(type_id)
        return kind != Kind.FWD and not (kind in (Kind.ENUM, Kind.ENUM64) and self.btf.get(type_id).vlen == 0)

    def _ref(self, type_id: int) -> CType:
        """What a type holds for a reference to `type_id`: void, or a Ref of this source or its base."""
        if type_id == 0:
            return VOID
        if type_id < self.btf.start_id and self.base is not None:
            return Ref(self.base.name, type_id)
        return Ref(self.name, type_id)

    def _convert(self, t: BtfType) -> CType:
        """The model type of one decoded record."""
        ref = self._ref
        match t.kind:
            case Kind.INT:
                return IntType(t.name, t.size, bool(t.encoding & INT_SIGNED))
            case Kind.FLOAT:
                return FloatType(t.name, t.size)
            case Kind.PTR:
                return PointerType(ref(t.type), self.pointer_size)
            case Kind.ARRAY:
                return ArrayType(ref(t.type), t.nelems)
            case Kind.STRUCT | Kind.UNION:
                members = tuple(self._member(t, m.name, m.type, m.offset, m.bit_size) for m in t.members)
                return StructType(t.kind.name.lower(), t.name or None, members, t.size)
            case Kind.ENUM | Kind.ENUM64:
                return EnumType(t.name or None, t.size, tuple((e.name, e.value) for e in t.enumerators), t.kind_flag)
            case Kind.FWD:
                return StructRef("union" if t.kind_flag else "struct", t.name)
            case Kind.TYPEDEF:
                return Typedef(t.name, ref(t.type))
            case Kind.CONST | Kind.VOLATILE | Kind.RESTRICT:
                return QualifiedType(frozenset({_QUALIFIERS[t.kind]}), ref(t.type))
            case Kind.FUNC_PROTO:
                params = t.params
                variadic = bool(params) and params[-1].type == 0
                return FunctionType(ref(t.type), tuple(ref(p.type) for p in params[: len(params) - variadic]),
                                    variadic)
        raise TypeNotFound(f"{self.btf.label}: BTF type {t.id} is a {t.kind.name}, not a C type")

    def _member(self, owner: BtfType, name: str, type_id: int, offset: int, bit_size: int) -> Member:
        """A struct member; without the owner's kind_flag a bit-field's width is its INT type's."""
        if not owner.kind_flag:
            base = self._underlying_int(type_id)
            if base is not None and (base.bit_offset or base.bits != base.size * 8):
                offset, bit_size = offset + base.bit_offset, base.bits
        return Member(name, self._ref(type_id), offset, bit_size or None)

    def _underlying_int(self, type_id: int) -> BtfType | None:
        """The INT record `type_id` is, through typedefs, qualifiers and tags; None if it is none."""
        seen = set()
        while type_id and type_id not in seen:
            seen.add(type_id)
            kind = self.btf.kind(type_id)
            if kind == Kind.INT:
                return self.btf.get(type_id)
            if kind not in _TRANSPARENT:
                return None
            type_id = self.btf.get(type_id).type
        return None

    def _check_acyclic(self, type_id: int) -> None:
        """Raise BadDumpError if references from `type_id` can come back to a type without passing
        through a struct or union member (which no C type can do). Types found safe are remembered,
        so each is walked once."""
        path: list[int] = []
        on_path: set[int] = set()
        stack: list[tuple[int, bool]] = [(type_id, False)]
        while stack:
            tid, leaving = stack.pop()
            if leaving:
                path.pop()
                on_path.discard(tid)
                self._acyclic.add(tid)
                continue
            if tid == 0 or tid in self._acyclic or tid < self.btf.start_id:
                continue  # a base's types cannot refer back into this blob
            if tid in on_path:
                loop = [*path[path.index(tid):], tid]
                raise BadDumpError(f"{self.btf.label}: BTF type {type_id}: its references loop without a "
                                   f"struct or union: {' -> '.join(map(str, loop))}")
            if self.btf.kind(tid) not in _CHAINED:
                self._acyclic.add(tid)
                continue
            path.append(tid)
            on_path.add(tid)
            stack.append((tid, True))
            t = self.btf.get(tid)
            stack.extend((p.type, False) for p in t.params)
            stack.append((t.type, False))
