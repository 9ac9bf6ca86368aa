"""One type system over many type sources: the session's `::typedef` types, then the target's
(the DWARF of every loaded object, the executable first; BTF and CTF the same way).

A source is anything with `name: str`, `lookup(name) -> CType | None` for C names (`struct
foo`, `union u`, `enum e`, `netstack_t`, `int`) and `deref(ref) -> CType` for the Refs its
types hold; it is duck-typed, so a source need not import this module. The TypeSystem sends
each Ref to the source its `ref.source` names. A name is parsed as a C type name (`struct
netstack *`, `uint64_t[4]`, `int (*)(void *)`): its base is asked of the sources in order (a
definition wins over a forward declaration found earlier, as mdb's lookup keeps searching past
a CTF forward), and its pointers, arrays and functions are built here, so that `struct foo *`
costs one lookup of `struct foo`, not a search of every source for the whole text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pmdb.debuginfo.cdecl import Array, CDeclError, Function, Pointer, TypeName, parse_type_name
from pmdb.debuginfo.ctypes import (
    ArrayType,
    BadTypeError,
    CType,
    FunctionType,
    PointerType,
    QualifiedType,
    Ref,
    StructRef,
    direct,
)

_INT_WORDS = frozenset({"signed", "unsigned", "short", "long", "int", "char"})


class TypeSource(Protocol):
    """Where types come from: a name for its Refs, lookups by C name, and Ref resolution."""

    name: str

    def lookup(self, name: str) -> CType | None:
        """The type C calls `name` (`struct foo`, `netstack_t`, `int`), or None."""
        ...

    def deref(self, ref: Ref) -> CType:
        """The type `ref` (one of this source's) names."""
        ...


class TypeSystem:
    """Ordered type sources behind one lookup and one Ref resolver."""

    def __init__(self, sources: Sequence[TypeSource] = (), pointer_size: int = 8) -> None:
        """`sources` in search order; `pointer_size` sizes the pointers built from type names."""
        self.sources = tuple(sources)
        self.pointer_size = pointer_size
        self._by_name = {s.name: s for s in reversed(self.sources)}

    def deref(self, ref: Ref) -> CType:
        """The type `ref` names, from the source it belongs to."""
        source = self._by_name.get(ref.source)
        if source is None:
            raise BadTypeError(f"no type source {ref.source} for type reference {ref.key}")
        return source.deref(ref)

    def lookup(self, name: str) -> CType | None:
        """The type C type name `name` names, its base from the first source that defines it;
        None when no source does (or `name` is not C)."""
        try:
            return self.find(name)
        except CDeclError:
            return None

    def find(self, name: str) -> CType | None:
        """lookup(), but a name that is not C is a CDeclError (mdb's "Syntax error in type name")."""
        plain = " ".join(name.split())
        try:
            parsed = parse_type_name(plain)
        except CDeclError:
            found = self._named(plain)  # a name only a source knows how to read (`ns::type`)
            if found is None:
                raise
            return found
        return self.build(parsed)  # the base looked up once, not the whole name in every source

    def build(self, parsed: TypeName) -> CType | None:
        """The type a parsed type name describes, or None when its base (or a parameter's) is unknown."""
        base = self._named(parsed.base)
        if base is None:
            base = self._named(_canonical_int(parsed.base))
        if base is None:
            return None
        t: CType = QualifiedType(parsed.qualifiers, base) if parsed.qualifiers else base
        for step in parsed.derivations:
            match step:
                case Pointer(qualifiers=quals):
                    t = PointerType(t, self.pointer_size)
                    if quals:
                        t = QualifiedType(quals, t)
                case Array(count=count):
                    t = ArrayType(t, count)
                case Function(params=params, variadic=variadic):
                    built = [self.build(p) for p in params]
                    if any(p is None for p in built):
                        return None
                    t = FunctionType(t, tuple(p for p in built if p is not None), variadic)
        return t

    def declaration(self, name: str) -> CType | None:
        """The type of the variable or function called `name`, from the first source that can say
        (sources without a `declaration` method are skipped)."""
        for source in self.sources:
            declared = getattr(source, "declaration", None)
            found = declared(name) if declared is not None else None
            if found is not None:
                return found
        return None

    def _named(self, name: str) -> CType | None:
        """The first definition of `name` among the sources; a forward declaration only when no
        source defines it."""
        forward = None
        for source in self.sources:
            found = source.lookup(name)
            if found is None:
                continue
            if not isinstance(direct(found, self), StructRef):
                return found
            forward = forward or found
        return forward


def _canonical_int(name: str) -> str:
    """An integer type's name in C's usual order (`long unsigned int` -> `unsigned long`), the
    spelling ctfconvert gives and ::typedef -c uses."""
    words = name.split()
    if not words or not set(words) <= _INT_WORDS:
        return name
    sign = "unsigned " if "unsigned" in words else ""
    if "char" in words:
        base = "char"
        sign = "signed " if "signed" in words else sign
    elif "short" in words:
        base = "short"
    elif "long" in words:
        base = "long long" if words.count("long") > 1 else "long"
    else:
        base = "int"
    return sign + base
