"""mdb's variable table: `<name` values, `>name` assignments, the built-ins and the registers.

The table keeps mdb's own layout (mdb_nv.c: a 211-bucket hash of PJW string hashes, new
names at the head of their chain, doubled when it holds more names than buckets) because
`$v` and `::vars` list variables in that order. A variable may have a discipline: a getter
(and setter) computing its value from the session, as `.`, `thread` and the registers do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from pmdb.errors import CommandError

MASK64 = (1 << 64) - 1
INITIAL_BUCKETS = 211
MAX_NAME = 31  # MDB_NV_NAMELEN - 1
_BAD_CHARS = set("#%^&*-+=,:$/\\?<>;|!`'\"[]\n\t() {}")

Getter = Callable[[], int]
Setter = Callable[[int], None]


def pjw_hash(name: str) -> int:
    """mdb's nv_hashstring (the ELF/PJW hash) of a variable name."""
    h = 0
    for ch in name.encode("latin-1", "replace"):
        h = (h << 4) + (ch - 256 if ch >= 128 else ch)  # C `char` is signed on x86
        h &= MASK64
        g = h & 0xF0000000
        if g:
            h ^= g >> 24
            h ^= g
    return h


def bad_identifier_char(name: str) -> str | None:
    """The first character mdb's strbadid rejects in a variable name (operators, quotes, blanks)."""
    return next((ch for ch in name if ch in _BAD_CHARS), None)


@dataclass
class Variable:
    """One variable: its stored value, attributes, and optional discipline."""

    name: str
    stored: int = 0
    persistent: bool = False
    readonly: bool = False
    tagged: bool = False
    getter: Getter | None = None
    setter: Setter | None = None

    @property
    def value(self) -> int:
        """The current value (through the getter when there is one)."""
        return (self.getter() if self.getter else self.stored) & MASK64

    def assign(self, value: int) -> None:
        """Set the value, or CommandError in mdb's words when the variable is read-only."""
        if self.readonly:
            raise CommandError(f"cannot modify read-only variable '{self.name}'")
        if self.setter:
            self.setter(value & MASK64)
        else:
            self.stored = value & MASK64


class VariableTable:
    """Variables by name, iterated in mdb's hash order; `table[name]` reads and assigns values."""

    def __init__(self) -> None:
        self._buckets: list[list[Variable]] = [[] for _ in range(INITIAL_BUCKETS)]
        self._count = 0

    def lookup(self, name: str) -> Variable | None:
        """The variable called `name`, or None."""
        return next((v for v in self._chain(name) if v.name == name), None)

    def insert(self, name: str, value: int = 0, *, persistent: bool = False, readonly: bool = False,
               getter: Getter | None = None, setter: Setter | None = None) -> Variable:
        """Define `name` (mdb_nv_insert): a new variable goes to the head of its hash chain."""
        existing = self.lookup(name)
        if existing is not None:
            existing.assign(value)
            return existing
        if self._count > len(self._buckets):
            self._grow()
        var = Variable(name, value & MASK64, persistent, readonly, False, getter, setter)
        self._chain(name).insert(0, var)
        self._count += 1
        return var

    def remove(self, name: str) -> None:
        """Undefine `name`; persistent variables stay (CommandError, in mdb's words)."""
        var = self.lookup(name)
        if var is None:
            raise CommandError(f"variable '{name}' not defined")
        if var.persistent:
            raise CommandError(f"cannot remove persistent variable '{name}'")
        self._chain(name).remove(var)
        self._count -= 1

    def __iter__(self) -> Iterator[Variable]:
        """Every variable in mdb's listing order: bucket by bucket, newest first in each."""
        for chain in self._buckets:
            yield from chain

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.lookup(name) is not None

    def __getitem__(self, name: str) -> int:
        var = self.lookup(name)
        if var is None:
            raise KeyError(name)
        return var.value

    def __setitem__(self, name: str, value: int) -> None:
        """`value>name`: assign, creating the variable when it is new."""
        var = self.lookup(name)
        if var is None:
            self.insert(name, value)
        else:
            var.assign(value)

    def _chain(self, name: str) -> list[Variable]:
        return self._buckets[pjw_hash(name) % len(self._buckets)]

    def _grow(self) -> None:
        """nv_resize: 2n-1 buckets, refilled bucket by bucket, each name pushed on its new chain."""
        old = self._buckets
        self._buckets = [[] for _ in range(2 * len(old) - 1)]
        for chain in old:
            for var in chain:
                self._chain(var.name).insert(0, var)
