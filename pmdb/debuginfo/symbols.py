"""ELF symbols of every loaded object, relocated to run-time addresses; lookup by name and address.

Each object's table is read on first use (from its separate debug file's .symtab when one is
found, plus the object's own .symtab and .dynsym), so opening a dump costs nothing here.
"""

from __future__ import annotations

import bisect
import dataclasses
import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from pmdb.errors import SymbolNotFound
from pmdb.formats.elf import ElfFile, RawSymbol, cstring_at

STT_NOTYPE, STT_OBJECT, STT_FUNC, STT_TLS, STT_GNU_IFUNC = 0, 1, 2, 6, 10
STB_LOCAL, STB_GLOBAL, STB_WEAK = 0, 1, 2
SHN_UNDEF, SHN_LORESERVE = 0, 0xFF00
_LOOKBACK = 8  # sizeless labels to step over when looking for the function that covers an address


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


# A symbol-table row kept for lookups: (value, size, type, bind, name offset, string table index).
_Row = tuple[int, int, int, int, int, int]


class ObjectSymbols:
    """The symbols of one loaded object: sorted by address, indexed by name, built lazily.

    Names are decoded only for symbols a lookup returns (and for aliases competing for one
    address), so the first address lookup in a large table costs a sort, not a decode.
    """

    def __init__(self, module: str, bias: int, files: Sequence[ElfFile]) -> None:
        self.module = module
        self.bias = bias
        self._files = files
        self._strtabs: list[bytes] = []
        self._addrs: list[int] | None = None
        self._rows: list[_Row] = []
        self._by_name: dict[str, _Row] | None = None

    def _load(self) -> None:
        rows: list[_Row] = []
        for entries, strtab in self._tables():
            idx = len(self._strtabs)
            self._strtabs.append(strtab)
            for name_off, info, _other, shndx, value, size in entries:
                kind, bind = info & 0xF, info >> 4
                if name_off and kind in _KINDS and bind in _BINDS and 0 < shndx < SHN_LORESERVE:
                    rows.append((value, size, kind, bind, name_off, idx))
        rows.sort()
        self._rows, self._addrs = rows, [r[0] for r in rows]

    def _tables(self) -> list[tuple[list, bytes]]:
        """The first .symtab among the files (a debug file's holds every symbol), else the .dynsyms;
        plus the PLT stubs, named `PLT:function` as mdb names an unbound stub.
        """
        for elf in self._files:
            entries, strtab = elf.symbol_entries(".symtab")
            if entries:
                return [(entries, strtab), _plt_table(self._files)]
        return [*(elf.symbol_entries(".dynsym") for elf in self._files), _plt_table(self._files)]

    def _name(self, row: _Row) -> str:
        return cstring_at(self._strtabs[row[5]], row[4])

    def _preference(self, row: _Row) -> tuple:
        """Sort key choosing one name among aliases: functions, sized, unversioned, global, plain
        names first (`__libc_start_main_impl` over `__libc_start_main@@GLIBC_2.34`).
        """
        _value, size, kind, bind, _off, _idx = row
        name = self._name(row)
        rank = 0 if kind in (STT_FUNC, STT_GNU_IFUNC) else 1 if kind == STT_OBJECT else 2
        binding = {STB_GLOBAL: 0, STB_WEAK: 1}.get(bind, 2)
        underscores = len(name) - len(name.lstrip("_"))
        return (rank, size == 0, "@" in name, binding, name.startswith("__GI_"), underscores, len(name), name)

    def _make(self, row: _Row) -> Symbol:
        value, size, kind, bind, _off, _idx = row
        return Symbol(self._name(row), value + self.bias, size, _KINDS[kind], _BINDS[bind], self.module)

    def by_address(self, addr: int) -> Symbol | None:
        """The symbol covering `addr` (mdb's rule: addr - value < max(size, 1)); a label without
        size between a function's start and `addr` does not hide the function. Among aliases at
        one address the preferred name is chosen here, when it is looked up.
        """
        if self._addrs is None:
            self._load()
        addrs = self._addrs
        assert addrs is not None
        link = addr - self.bias
        i = bisect.bisect_right(addrs, link) - 1
        for _ in range(_LOOKBACK):
            if i < 0:
                return None
            first = bisect.bisect_left(addrs, addrs[i])
            row = min(self._rows[first : i + 1], key=self._preference) if first < i else self._rows[i]
            if link - row[0] < max(row[1], 1):
                return self._make(row)
            if row[1]:
                return None
            i = first - 1
        return None

    def by_name(self, name: str) -> Symbol | None:
        """The symbol called `name`, if this object has one (the index is built on first use)."""
        if self._by_name is None:
            if self._addrs is None:
                self._load()
            index: dict[str, _Row] = {}
            for row in self._rows:
                nm = self._name(row)
                cur = index.get(nm)
                if cur is None or self._preference(row) < self._preference(cur):
                    index[nm] = row
            self._by_name = index
        row = self._by_name.get(name)
        return self._make(row) if row else None

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


def _plt_table(files: Sequence[ElfFile]) -> tuple[list, bytes]:
    """Synthetic symbol-table rows for the PLT stubs of the first file that has them."""
    for elf in files:
        stubs = elf.plt_entries()
        if stubs:
            strtab = bytearray(b"\0")
            entries = []
            for addr, name in stubs:
                entries.append((len(strtab), STB_LOCAL << 4 | STT_FUNC, 0, 1, addr, 16))
                strtab += f"PLT:{name}".encode() + b"\0"
            return entries, bytes(strtab)
    return [], b""


class SymbolSource(Protocol):
    """What a SymbolTable needs of one object's symbols: an ELF object's (ObjectSymbols) or a
    table read from elsewhere (a kernel's kallsyms or System.map, a module's symtab)."""

    module: str

    def by_address(self, addr: int) -> Symbol | None:
        """The symbol covering run-time `addr`."""
        ...

    def by_name(self, name: str) -> Symbol | None:
        """The symbol called `name`."""
        ...

    def table(self) -> Iterator[RawSymbol]:
        """Every entry, run-time values, for ::nm."""
        ...


@dataclass(frozen=True)
class ModuleRange:
    """Where one object is mapped: [start, end) and its symbols."""

    start: int
    end: int
    symbols: SymbolSource


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
