"""Kernel symbol tables in nm's letters: kallsyms, a System.map, a module's symtab.

All three give (address, type letter, name) rows and no sizes (a module's symtab has them);
a symbol's size is then the distance to the next symbol, as kallsyms reports it. A
TableSymbols answers the SymbolTable's SymbolSource protocol over such rows.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from pmdb.debuginfo.symbols import (
    STB_GLOBAL,
    STB_LOCAL,
    STB_WEAK,
    STT_FUNC,
    STT_NOTYPE,
    STT_OBJECT,
    Symbol,
    SymbolBinding,
    SymbolKind,
)
from pmdb.formats.elf import RawSymbol

SHN_ABS = 0xFFF1
_FUNCS = frozenset("tTwW")
_DATA = frozenset("dDbBrRvVgGsS")
_WEAK = frozenset("wWvV")
_LOOKBACK = 8  # aliases and labels looked past for the best name at one address


@dataclass(frozen=True)
class KernelSymbol:
    """One row: run-time address, nm's type letter, name, and the size when the table knows it."""

    address: int
    letter: str
    name: str
    size: int | None = None

    @property
    def kind(self) -> SymbolKind:
        """FUNC for text, OBJT for data, NOTY for the rest (absolute, unknown)."""
        if self.letter in _FUNCS:
            return SymbolKind.FUNC
        return SymbolKind.OBJECT if self.letter in _DATA else SymbolKind.NOTYPE

    @property
    def binding(self) -> SymbolBinding:
        """Upper-case letters are global, w/W/v/V weak, the rest local."""
        if self.letter in _WEAK:
            return SymbolBinding.WEAK
        return SymbolBinding.GLOBAL if self.letter.isupper() else SymbolBinding.LOCAL

    @property
    def absolute(self) -> bool:
        """An `A` symbol: a number (per-CPU offsets), not an address in the image."""
        return self.letter in "aA"


def _preference(letter: str, name: str) -> tuple:
    """Sort key among symbols at one address or of one name: functions, then data; global;
    fewer leading underscores; shorter."""
    rank = 0 if letter in _FUNCS else 1 if letter in _DATA else 2
    binding = 1 if letter in _WEAK else 0 if letter.isupper() else 2
    return (rank, binding, len(name) - len(name.lstrip("_")), len(name), name)


class TableSymbols:
    """The symbols of one kernel object (`vmlinux` or a module) from nm-style rows, kept as
    columns (a kernel has ~100,000 symbols: no object per symbol until one is looked up).

    Absolute symbols are found by name (per-CPU variables are offsets) but never cover an
    address. Sizes the rows lack are distances to the next address.
    """

    def __init__(self, module: str, addresses: Sequence[int], letters: Sequence[str], names: Sequence[str],
                 sizes: Sequence[int | None] | None = None) -> None:
        """Columns of equal length; rows are sorted by address here unless they already are."""
        order = range(len(addresses))
        if any(addresses[i] > addresses[i + 1] for i in range(len(addresses) - 1)):
            order = sorted(order, key=addresses.__getitem__)
        self.module = module
        self.addresses = [addresses[i] for i in order]
        self.letters = [letters[i] for i in order]
        self.names = [names[i] for i in order]
        self.sizes = [sizes[i] for i in order] if sizes is not None else None
        self._placed = [i for i, letter in enumerate(self.letters) if letter not in "aA"]
        self._addrs = [self.addresses[i] for i in self._placed]
        self._by_name: dict[str, int] | None = None

    @classmethod
    def from_rows(cls, module: str, rows: Sequence[KernelSymbol]) -> TableSymbols:
        """A table of KernelSymbol rows."""
        return cls(module, [r.address for r in rows], [r.letter for r in rows], [r.name for r in rows],
                   [r.size for r in rows])

    def __len__(self) -> int:
        return len(self.addresses)

    def row(self, i: int) -> KernelSymbol:
        """Row i (in address order)."""
        return KernelSymbol(self.addresses[i], self.letters[i], self.names[i],
                            self.sizes[i] if self.sizes is not None else None)

    @property
    def placed_range(self) -> tuple[int, int] | None:
        """The lowest and highest address of a symbol that is not absolute."""
        return (self._addrs[0], self._addrs[-1]) if self._addrs else None

    def _size(self, k: int) -> int:
        """Placed row k's size: its own, else the distance to the next higher address (0 last)."""
        i = self._placed[k]
        own = self.sizes[i] if self.sizes is not None else None
        if own is not None:
            return own
        j = bisect.bisect_right(self._addrs, self._addrs[k])
        return self._addrs[j] - self._addrs[k] if j < len(self._addrs) else 0

    def _symbol(self, i: int, size: int) -> Symbol:
        row = self.row(i)
        return Symbol(row.name, row.address, size, row.kind, row.binding, self.module)

    def by_address(self, addr: int) -> Symbol | None:
        """The symbol covering `addr`: the best-named row at the highest address <= addr whose
        size (or distance to the next symbol) reaches past addr."""
        k = bisect.bisect_right(self._addrs, addr) - 1
        if k < 0:
            return None
        first = max(bisect.bisect_left(self._addrs, self._addrs[k]), k - _LOOKBACK)
        placed, letters, names = self._placed, self.letters, self.names
        best = min(range(first, k + 1), key=lambda j: _preference(letters[placed[j]], names[placed[j]]))
        size = self._size(best)
        if addr - self._addrs[best] < max(size, 1):
            return self._symbol(self._placed[best], size)
        return None

    def by_name(self, name: str) -> Symbol | None:
        """The symbol called `name` (a global before a local of the same name)."""
        if self._by_name is None:
            self._by_name = self._name_index()
        i = self._by_name.get(name)
        if i is None:
            return None
        if self.letters[i] in "aA":
            return self._symbol(i, (self.sizes[i] if self.sizes is not None else None) or 0)
        return self._symbol(i, self._size(bisect.bisect_left(self._placed, i)))

    def _name_index(self) -> dict[str, int]:
        """Name -> row, the preferred row where a name repeats. Built with C-speed dict and
        Counter passes, ranking only the repeated names (a kernel has 100,000 names)."""
        names, letters = self.names, self.letters
        index = dict(zip(names, range(len(names)), strict=True))
        if len(index) == len(names):
            return index
        repeated = {nm for nm, n in Counter(names).items() if n > 1}
        for i, nm in enumerate(names):
            if nm in repeated:
                cur = index[nm]
                if cur == i or _preference(letters[i], nm) < _preference(letters[cur], nm) or (
                        _preference(letters[i], nm) == _preference(letters[cur], nm) and i < cur):
                    index[nm] = i
        return index

    def table(self) -> Iterator[RawSymbol]:
        """Every row as ::nm shows it, in address order."""
        sizes = {self._placed[k]: self._size(k) for k in range(len(self._placed))}
        for i in range(len(self.addresses)):
            row = self.row(i)
            kind = {SymbolKind.FUNC: STT_FUNC, SymbolKind.OBJECT: STT_OBJECT}.get(row.kind, STT_NOTYPE)
            bind = {SymbolBinding.GLOBAL: STB_GLOBAL, SymbolBinding.WEAK: STB_WEAK}.get(row.binding, STB_LOCAL)
            size = row.size if row.size is not None else sizes.get(i, 0)
            yield RawSymbol(row.name, row.address, size, kind, bind, SHN_ABS if row.absolute else 1)
