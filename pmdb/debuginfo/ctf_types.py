"""CTF as a type source: illumos CTF containers seen through pmdb's one type model.

A CtfTypes answers the type-source protocol: `name`, `lookup(C name)` and `deref(Ref)`, and
`declaration(symbol)` from the container's object and function sections when it has the
ELF symbol table they follow.
Types come out as ctypes dataclasses whose references to other types are `Ref(source name,
type id)`, decoded one record at a time and remembered. A child container (an illumos kernel
module uniquified against genunix) is given its parent; references to the parent's types
are the child's Refs too (the child decodes the parent's records), and names not found in
the child are looked up in the parent.

Where CTF says a thing differently from the model:
- a bit-field member's type is an integer named `base:bits` (or, from older converters, a
  narrow integer named like its base) holding the width; the member comes out with the
  declared type (found by that name) and `bit_size`, as DWARF describes it;
- a forward declaration is a StructRef, resolved by name by whoever holds the definition;
- chained qualifiers (`const volatile`) fold into one QualifiedType;
- an enum is signed when one of its values is negative (compilers pick `unsigned int` for
  the others), and `void` (a zero-size integer, or type id 0: no type) is the model's VOID.
A typedef, qualifier or array chain that loops is a BadDumpError for that type; pointers and
members are never followed when a type is decoded, so other loops cannot hang a lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

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
from pmdb.formats import ctf
from pmdb.formats.elf import SHT_DYNSYM, SHT_SYMTAB, ElfFile, cstring_at

SECTION = ".SUNW_ctf"
VOID = IntType("void", 0)
_KEYWORDS = {ctf.K_STRUCT: "struct", ctf.K_UNION: "union", ctf.K_ENUM: "enum"}
_CHAIN_KINDS = frozenset({ctf.K_TYPEDEF, ctf.K_CONST, ctf.K_VOLATILE, ctf.K_RESTRICT, ctf.K_ARRAY})
_IGNORED_WORDS = frozenset({"const", "volatile", "restrict"})


class CtfTypes:
    """The types of one CTF container (and, for a child, of its parent's)."""

    def __init__(self, container: ctf.Container, name: str, *, parent: CtfTypes | None = None,
                 pointer_size: int = 8, symbols: Callable[[], Sequence[ctf.Symbol]] | None = None) -> None:
        """`name` is the source's name in Refs (unique among sources); `symbols` gives the ELF
        symbol table that the container's object and function sections follow."""
        self.container = container
        self.name = name
        self.parent = parent
        self.pointer_size = pointer_size
        self._symbols = symbols
        self._cache: dict[int, CType] = {}
        self._objects: dict[str, int] | None = None
        self._functions: dict[str, ctf.FuncInfo] | None = None

    @classmethod
    def from_bytes(cls, data: bytes | memoryview, name: str, *, parent: CtfTypes | None = None,
                   pointer_size: int = 8, ext_strings: bytes = b"") -> CtfTypes:
        """A source over raw CTF data (e.g. read out of a dump); `ext_strings` is the ELF string
        table that external names refer to."""
        return cls(ctf.Container(data, what=name, ext_strings=ext_strings), name, parent=parent,
                   pointer_size=pointer_size)

    @classmethod
    def from_elf(cls, elf: ElfFile, *, parent: CtfTypes | None = None, name: str | None = None) -> CtfTypes:
        """A source over an ELF file's .SUNW_ctf section, its names in the symbol table's strings.

        The symbol table is the one the section links to, else .symtab, else .dynsym.
        """
        sec = elf.section(SECTION)
        if sec is None or sec.size == 0:
            raise MissingDebugInfoError(f"{elf.path}: no {SECTION} section")
        sections = elf.sections()
        linked = sections[sec.link] if 0 < sec.link < len(sections) else None
        symtab = next((s for s in (linked, elf.section(".symtab"), elf.section(".dynsym"))
                       if s is not None and s.type in (SHT_SYMTAB, SHT_DYNSYM)), None)
        strings = b""
        if symtab is not None and 0 < symtab.link < len(sections):
            strings = bytes(elf.section_data(sections[symtab.link]))

        def symbols() -> list[ctf.Symbol]:
            if symtab is None:
                return []
            entries, strtab = elf.symbol_entries(symtab.name)
            return [(cstring_at(strtab, n) if n else "", info & 0xF, shndx, value)
                    for n, info, _other, shndx, value, _size in entries]

        name = name or f"ctf:{elf.path}"
        container = ctf.Container(elf.section_data(sec), what=f"{elf.path}: {SECTION}", ext_strings=strings)
        return cls(container, name, parent=parent, pointer_size=elf.elfclass // 8, symbols=symbols)

    # The type-source protocol -----------------------------------------------------------

    def lookup(self, name: str) -> CType | None:
        """The type a C name spells: `struct foo`, `union u`, `enum e`, a typedef or base type
        name, any of them followed by `*`s; qualifiers are ignored. None when unknown."""
        words = [w for w in name.replace("*", " * ").split() if w not in _IGNORED_WORDS]
        stars = words.count("*")
        base = words[: len(words) - stars]
        if not base or "*" in base:
            return None
        found = self._find(base)
        if found is None:
            return None
        tid = found[0]
        if not stars:
            return self._type(tid)
        t: CType = Ref(self.name, tid)
        for _ in range(stars):
            t = PointerType(t, self.pointer_size)
        return t

    def deref(self, ref: Ref) -> CType:
        """The type one of this source's Refs names; BadDumpError when its record is malformed,
        MissingDebugInfoError when it is in a parent container that was not given."""
        if ref.source != self.name or not isinstance(ref.key, int):
            raise TypeNotFound(f"{ref.source}: not a type of CTF source {self.name}")
        return self._type(ref.key)

    # Symbols --------------------------------------------------------------------------

    def object_type(self, symbol: str) -> CType | None:
        """The type of data object `symbol`, from the object section (None if not described)."""
        if self._objects is None:
            syms = self._symbol_table()
            self._objects = {}
            for index, tid in self.container.data_objects(syms).items():
                self._objects.setdefault(syms[index][0], tid)
        tid = self._objects.get(symbol)
        return None if tid is None else self._type(tid)

    def function_type(self, symbol: str) -> FunctionType | None:
        """The signature of function `symbol`, from the function section (None if not described)."""
        if self._functions is None:
            syms = self._symbol_table()
            self._functions = {}
            for index, info in self.container.functions(syms).items():
                self._functions.setdefault(syms[index][0], info)
        info = self._functions.get(symbol)
        if info is None:
            return None
        return FunctionType(self._ref(info.returns), tuple(self._ref(a) for a in info.args), info.variadic)

    def declaration(self, name: str) -> CType | None:
        """The type of the variable or function `name` (None when the container does not say, or
        there is no symbol table to say it with)."""
        if self._symbols is None:
            return None
        return self.object_type(name) or self.function_type(name)

    def _symbol_table(self) -> Sequence[ctf.Symbol]:
        if self._symbols is None:
            raise MissingDebugInfoError(f"{self.name}: no symbol table for the CTF object and function sections")
        return self._symbols()

    # Decoding -------------------------------------------------------------------------

    def _holder(self, tid: int) -> ctf.Container:
        """The container holding type `tid`'s record: ours, or (for a child) a parent's. Either
        way the type is decoded here, so that every Ref this source gives out is its own."""
        source = self
        while not source.container.owns(tid) and source.container.is_child:
            if source.parent is None:
                raise MissingDebugInfoError(f"{self.name}: type {tid:#x} is in the parent CTF container "
                                            f"{source.container.parent_name!r}, which is not loaded")
            source = source.parent
        return source.container  # (a child's id in a parent container is out of range: type() says so)

    def _ref(self, tid: int) -> CType:
        """A lazy reference to type `tid` (void for id 0)."""
        return VOID if tid == 0 else Ref(self.name, tid)

    def _link(self, tid: int) -> tuple[int, int]:
        """(kind, next id) of type `tid`, wherever it lives."""
        return self._holder(tid).link(tid)

    def _type(self, tid: int) -> CType:
        """Type `tid` decoded (remembered once decoded)."""
        if tid == 0:
            return VOID
        cached = self._cache.get(tid)
        if cached is None:
            cached = self._cache[tid] = self._convert(self._holder(tid).type(tid))
        return cached

    def _convert(self, raw: ctf.RawType) -> CType:
        """One record as a model type."""
        kind = raw.kind
        if kind in _CHAIN_KINDS:
            self._check_chain(raw.id)
        if kind == ctf.K_INTEGER:
            assert raw.encoding is not None
            if raw.name == "void" and raw.size == 0:
                return VOID  # as the DWARF and BTF sources spell it, whatever its encoding says
            return IntType(raw.name, raw.size, bool(raw.encoding.format & ctf.INT_SIGNED))
        if kind == ctf.K_FLOAT:
            return FloatType(raw.name, raw.size)
        if kind == ctf.K_POINTER:
            return PointerType(self._ref(raw.ref), self.pointer_size)
        if kind == ctf.K_ARRAY:
            assert raw.array is not None
            return ArrayType(self._ref(raw.array[0]), raw.array[2])
        if kind == ctf.K_FUNCTION:
            variadic = bool(raw.args) and raw.args[-1] == 0
            params = raw.args[:-1] if variadic else raw.args
            return FunctionType(self._ref(raw.ref), tuple(self._ref(a) for a in params), variadic)
        if kind in (ctf.K_STRUCT, ctf.K_UNION):
            members = tuple(self._member(m) for m in raw.members)
            return StructType(_KEYWORDS[kind], raw.name or None, members, raw.size)
        if kind == ctf.K_ENUM:
            return EnumType(raw.name or None, raw.size, raw.enumerators, any(v < 0 for _, v in raw.enumerators))
        if kind == ctf.K_FORWARD:
            return StructRef(_KEYWORDS.get(raw.ref, "struct"), raw.name)
        if kind == ctf.K_TYPEDEF:
            return Typedef(raw.name, self._ref(raw.ref))
        if kind in ctf.QUALIFIERS:
            return self._qualified(raw)
        raise BadDumpError(f"{self.name}: type {raw.id:#x} is an unused (CTF_K_UNKNOWN) slot")

    def _qualified(self, raw: ctf.RawType) -> QualifiedType:
        """A qualifier and those directly under it (`const volatile int`) as one QualifiedType."""
        quals = {ctf.QUALIFIERS[raw.kind]}
        tid = raw.ref
        while tid:
            try:
                kind, next_tid = self._link(tid)
            except (MissingDebugInfoError, BadDumpError):
                break  # the target's own deref reports it
            if kind not in ctf.QUALIFIERS:
                break
            quals.add(ctf.QUALIFIERS[kind])
            tid = next_tid
        return QualifiedType(frozenset(quals), self._ref(tid))

    def _check_chain(self, tid: int) -> None:
        """Follow typedefs, qualifiers and array elements from `tid`; BadDumpError if they loop."""
        seen: list[int] = []
        while tid and tid not in seen:
            seen.append(tid)
            try:
                kind, tid = self._link(tid)
            except MissingDebugInfoError:
                return
            if kind not in _CHAIN_KINDS:
                return
        if tid:
            loop = " -> ".join(f"{t:#x}" for t in (*seen, tid))
            raise BadDumpError(f"{self.name}: type {seen[0]:#x}: reference cycle {loop}")

    def _member(self, m: ctf.RawMember) -> Member:
        """A member; a bit-field integer becomes its declared type plus `bit_size`. A member whose
        type cannot be read keeps a Ref, so that only its own deref fails."""
        plain = Member(m.name, self._ref(m.type), m.offset)
        try:
            if m.type == 0 or self._link(m.type)[0] != ctf.K_INTEGER:
                return plain
            raw = self._holder(m.type).type(m.type)
        except (MissingDebugInfoError, BadDumpError):
            return plain
        assert raw.encoding is not None
        base_name = ctf.bitfield_base(raw.name)
        enc = raw.encoding
        if base_name == raw.name and enc.bits == 8 * raw.size and enc.offset == 0:
            return plain
        base = self._declared(base_name, raw)
        return Member(m.name, base, m.offset + enc.offset, enc.bits)

    def _declared(self, name: str, raw: ctf.RawType) -> CType:
        """The full-width integer or enum a bit-field was declared with, found by name."""
        words = name.split()
        for candidate in (words, ["enum", *words]) if words else ():
            found = self._find(candidate)
            try:
                if found is not None and self._link(found[0])[0] in (ctf.K_INTEGER, ctf.K_ENUM):
                    return Ref(self.name, found[0])
            except BadDumpError:
                continue
        assert raw.encoding is not None
        return IntType(name, raw.size, bool(raw.encoding.format & ctf.INT_SIGNED))

    # Names ----------------------------------------------------------------------------

    def _find(self, words: list[str]) -> tuple[int, bool] | None:
        """(type id, whether it is a forward) of a name given as words, looked up here and then in
        the parent; a forward gives way to a parent's definition."""
        index = self.container.names
        if words[0] in ("struct", "union", "enum"):
            table = {"struct": index.structs, "union": index.unions, "enum": index.enums}[words[0]]
            key = " ".join(words[1:])
        else:
            table, key = index.names, " ".join(words)
        tid = table.get(key)
        if self.parent is not None and (tid is None or tid in index.forwards):
            found = self.parent._find(words)
            if found is not None and (tid is None or not found[1]):
                return found
        return None if tid is None else (tid, tid in index.forwards)
