"""ELF symbols of every loaded object, relocated to run-time addresses; lookup by name and address.

Each object's table is read on first use (from its separate debug file's .symtab when one is
found, plus the object's own .symtab and .dynsym), so opening a dump costs nothing here.
"""

from __future__ import annotations

import bisect
import dataclasses
import enum
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from pmdb.errors import SymbolNotFound
from pmdb.formats.elf import ElfFile, RawSymbol

STT_NOTYPE, STT_OBJECT, STT_FUNC, STT_TLS, STT_GNU_IFUNC = 0, 1, 2, 6, 10
STB_LOCAL, STB_GLOBAL, STB_WEAK = 0, 1, 2
SHN_UNDEF, SHN_LORESERVE = 0, 0xFF00


class SymbolKind(enum.Enum):
    """What a symbol names."""

    FUNC = "FUNC"
    OBJECT = "OBJT"
    NOTYPE = "NOTY"


class SymbolBinding(enum.Enum):
    """ELF symbol binding, spelled as mdb's ::nm spells it."""

    LOCAL = "LOCL"
    GLOBAL = "GLOB"
    WEAK = "WEAK"


_KINDS = {STT_FUNC: SymbolKind.FUNC, STT_GNU_IFUNC: SymbolKind.FUNC, STT_OBJECT: SymbolKind.OBJECT,
          STT_NOTYPE: SymbolKind.NOTYPE}
_BINDS = {STB_LOCAL: SymbolBinding.LOCAL, STB_GLOBAL: SymbolBinding.GLOBAL, STB_WEAK: SymbolBinding.WEAK}


@dataclass(frozen=True)
class Symbol:
    """A symbol at its run-time address, in the object `module` (the object's base name)."""

    name: str
    address: int
    size: int
    kind: SymbolKind
    binding: SymbolBinding
    module: str

    def contains(self, addr: int) -> bool:
        """True when addr lies in [address, address+size) (or is the address of a sizeless symbol)."""
        return self.address <= addr < self.address + max(self.size, 1)


def _preference(raw: RawSymbol) -> tuple:
    """Sort key choosing one name among aliases at one address: lower is better."""
    kind = 0 if raw.type in (STT_FUNC, STT_GNU_IFUNC) else 1 if raw.type == STT_OBJECT else 2
    bind = {STB_GLOBAL: 0, STB_WEAK: 1}.get(raw.bind, 2)
    name = raw.name
    return (kind, raw.size == 0, bind, name.startswith("__GI_"), len(name) - len(name.lstrip("_")), len(name), name)


class ObjectSymbols:
    """The symbols of one loaded object: sorted by address, indexed by name, built lazily."""

    def __init__(self, module: str, bias: int, files: Sequence[ElfFile]) -> None:
        self.module = module
        self.bias = bias
        self._files = files
        self._addrs: list[int] | None = None
        self._syms: list[Symbol] = []
        self._by_name: dict[str, Symbol] = {}

    def _load(self) -> None:
        best: dict[int, RawSymbol] = {}
        named: dict[str, RawSymbol] = {}
        for raw in _useful(self._files):
            cur = best.get(raw.value)
            if cur is None or _preference(raw) < _preference(cur):
                best[raw.value] = raw
            prev = named.get(raw.name)
            if prev is None or _preference(raw) < _preference(prev):
                named[raw.name] = raw
        self._syms = [self._make(best[v]) for v in sorted(best)]
        self._addrs = [s.address for s in self._syms]
        self._by_name = {name: self._make(raw) for name, raw in named.items()}

    def _make(self, raw: RawSymbol) -> Symbol:
        return Symbol(raw.name, raw.value + self.bias, raw.size, _KINDS[raw.type], _BINDS[raw.bind], self.module)

    def by_address(self, addr: int) -> Symbol | None:
        """The symbol covering `addr`: the nearest one at or below it, unless its size ends before."""
        if self._addrs is None:
            self._load()
        assert self._addrs is not None
        i = bisect.bisect_right(self._addrs, addr) - 1
        if i < 0:
            return None
        sym = self._syms[i]
        if sym.size and addr >= sym.address + sym.size:
            return None
        return sym

    def by_name(self, name: str) -> Symbol | None:
        """The symbol called `name`, if this object has one."""
        if self._addrs is None:
            self._load()
        return self._by_name.get(name)

    def table(self) -> Iterator[RawSymbol]:
        """Every entry of the object's richest symbol table, in table order, values relocated."""
        for elf in self._files:
            for name in (".symtab", ".dynsym"):
                entries = list(elf.symbols(name))
                if entries:
                    yield from (self._relocated(r) for r in entries)
                    return

    def _relocated(self, raw: RawSymbol) -> RawSymbol:
        if raw.shndx == SHN_UNDEF or raw.shndx >= SHN_LORESERVE or raw.type == STT_TLS:
            return raw
        return dataclasses.replace(raw, value=raw.value + self.bias)


def _useful(files: Iterable[ElfFile]) -> Iterable[RawSymbol]:
    """Defined function, object and untyped symbols of `.symtab` and `.dynsym` of each file."""
    for elf in files:
        for table in (".symtab", ".dynsym"):
            for raw in elf.symbols(table):
                if raw.name and raw.type in _KINDS and raw.bind in _BINDS and 0 < raw.shndx < SHN_LORESERVE:
                    yield raw


@dataclass(frozen=True)
class ModuleRange:
    """Where one object is mapped: [start, end) and its symbols."""

    start: int
    end: int
    symbols: ObjectSymbols


class SymbolTable:
    """Symbols of the whole target: every object's table, chosen by address range."""

    def __init__(self, modules: Sequence[ModuleRange]) -> None:
        """`modules` in name-search order (the executable first, as the dynamic linker searches)."""
        self.search_order = list(modules)
        self.modules = sorted(modules, key=lambda m: m.start)
        self._starts = [m.start for m in self.modules]

    def module_at(self, addr: int) -> ModuleRange | None:
        """The object mapped at `addr`, if any."""
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0 and addr < self.modules[i].end:
            return self.modules[i]
        return None

    def lookup_address(self, addr: int) -> Symbol | None:
        """The symbol covering `addr`, searching only the object mapped there."""
        mod = self.module_at(addr)
        return mod.symbols.by_address(addr) if mod else None

    def lookup_name(self, name: str) -> Symbol:
        """The symbol `name` or `object`name` (mdb's scoping); the main object is searched first."""
        if "`" in name:
            obj, _, sym = name.rpartition("`")
            mods = [m for m in self.modules if m.symbols.module == obj or m.symbols.module.startswith(obj + ".")]
        else:
            sym, mods = name, self.search_order
        for m in mods:
            found = m.symbols.by_name(sym)
            if found is not None:
                return found
        raise SymbolNotFound(f"failed to dereference symbol: unknown symbol name '{name}'")
