"""Where a running kernel keeps its ORC tables, found in a dump's kernel memory: vmlinux's
between linker symbols (with the boot-time `orc_lookup` fast table), and each module's through
`struct module`'s arch fields. The Linux personality supplies symbols, the release and each
module's table (it reads struct module with offsets from BTF); KernelOrc answers the
unwinder's `orc_entry(pc)`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from pmdb.errors import FaultError, PmdbError
from pmdb.memory.space import AddressSpace
from pmdb.unwind.orc_table import (
    ENTRY_SIZE,
    IP_SIZE,
    LAYOUTS,
    LOOKUP_BLOCK_SIZE,
    OrcEntry,
    OrcLayout,
    OrcLookup,
    OrcTable,
    layout_for_release,
)

Symbol = Callable[[str], "int | None"]

# The most entries a module table may claim; a larger count is taken for corruption.
MAX_MODULE_ORCS = 1 << 22


@dataclass(frozen=True)
class OrcRange:
    """[start, end) of kernel text whose ORC entries are in `table`."""

    start: int
    end: int
    table: OrcTable


def vmlinux_orc(memory: AddressSpace, symbol: Symbol, layout: OrcLayout) -> list[OrcRange]:
    """vmlinux's ORC table, for its text and init text, from the kernel's own symbols.

    Uses the `orc_lookup` table when kallsyms has it, else the one the linker script places
    right after the entries (4-aligned), once its first and last blocks are seen to point at
    the entries covering _stext and _etext; without it, lookups search the whole table.
    Raises PmdbError when a needed symbol is missing or the table's bounds make no sense.
    """
    names = ("__start_orc_unwind_ip", "__stop_orc_unwind_ip", "__start_orc_unwind", "_stext", "_etext")
    found = {name: symbol(name) for name in names}
    missing = [name for name, value in found.items() if value is None]
    if missing:
        raise PmdbError(f"no ORC table: the kernel's symbols lack {', '.join(missing)}")
    ip_start, ip_stop, entries, stext, etext = (int(found[name] or 0) for name in names)
    count, rest = divmod(ip_stop - ip_start, IP_SIZE)
    if count <= 0 or rest or not stext < etext:
        raise PmdbError(f"no ORC table: its bounds {ip_start:#x}-{ip_stop:#x} make no sense")
    table = OrcTable(memory, ip_start, entries, count, layout)
    lookup = _lookup(table, symbol, stext, etext)
    if lookup is not None:
        table = OrcTable(memory, ip_start, entries, count, layout, lookup)
    ranges = [OrcRange(stext, etext, table)]
    sinit, einit = symbol("_sinittext"), symbol("_einittext")
    if sinit is not None and einit is not None and sinit < einit:
        ranges.append(OrcRange(sinit, einit, table))
    return ranges


def _lookup(table: OrcTable, symbol: Symbol, stext: int, etext: int) -> OrcLookup | None:
    """The fast lookup table, if it is where the symbols (or the linker script) put it and its
    first and last blocks name the entries covering _stext and _etext."""
    start, end = symbol("orc_lookup"), symbol("orc_lookup_end")
    if start is None:
        start = (table.entries + ENTRY_SIZE * table.count + 3) & ~3
        end = None
    count = (end - start) // 4 if end is not None else -(-(etext - stext) // LOOKUP_BLOCK_SIZE) + 1
    if count < 2:
        return None
    try:
        first, last = (struct.unpack("<I", table.memory.read(start + 4 * i, 4))[0] for i in (0, count - 1))
        if not (_covers(table, first, stext) and _covers(table, last, etext)):
            return None
    except FaultError:
        return None
    return OrcLookup(start, count, stext, etext)


def _covers(table: OrcTable, index: int, pc: int) -> bool:
    """Whether entry `index` is the one a search for `pc` finds (the last whose ip <= pc)."""
    if not 0 <= index < table.count or table.ip(index) > pc:
        return False
    return index + 1 == table.count or table.ip(index + 1) > pc


@dataclass(frozen=True)
class ModuleOrc:
    """Where one loaded module's ORC table is (struct module's arch.orc_unwind_ip, orc_unwind and
    num_orcs, sorted by the kernel at load) and the [start, end) of the module it covers."""

    start: int
    end: int
    ip_table: int
    entries: int
    count: int


class KernelOrc:
    """The ORC entry for any kernel pc: vmlinux's ranges first, then the modules', which are
    asked for only when a pc falls outside vmlinux (reading the module list costs reads)."""

    def __init__(self, memory: AddressSpace, layout: OrcLayout, vmlinux: Sequence[OrcRange],
                 modules: Callable[[], Iterable[ModuleOrc]]) -> None:
        self.memory = memory
        self.layout = layout
        self.vmlinux = tuple(vmlinux)
        self._modules_of = modules
        self._modules: tuple[OrcRange, ...] | None = None
        self.module_error: str | None = None

    @classmethod
    def for_kernel(cls, memory: AddressSpace, symbol: Symbol, release: str,
                   modules: Callable[[], Iterable[ModuleOrc]]) -> KernelOrc:
        """The kernel's ORC from its memory, its symbols by name, its release (`uname -r`,
        which decides the entry layout) and, called when first needed, its modules' tables.
        A kernel with an ORC version header (`.orc_header`, 6.5 on) has at least the 6.4
        layout whatever its release says, as a vendor kernel that backported the header did.
        Raises PmdbError when vmlinux's table cannot be found."""
        layout = layout_for_release(release)
        if symbol("__start_orc_header") is not None and layout.since < LAYOUTS[-1].since:
            layout = LAYOUTS[-1]
        return cls(memory, layout, vmlinux_orc(memory, symbol, layout), modules)

    def _module_ranges(self) -> tuple[OrcRange, ...]:
        """Each module's range and table, read once; none when the module list cannot be read
        (`module_error` says why)."""
        if self._modules is None:
            try:
                found = list(self._modules_of())
            except PmdbError as e:
                self.module_error = str(e)
                found = []
            self._modules = tuple(
                OrcRange(m.start, m.end, OrcTable(self.memory, m.ip_table, m.entries, m.count, self.layout))
                for m in found if 0 < m.count <= MAX_MODULE_ORCS and m.ip_table and m.entries)
        return self._modules

    def table_for(self, pc: int) -> OrcTable | None:
        """The table whose text range holds `pc`."""
        for r in self.vmlinux:
            if r.start <= pc < r.end:
                return r.table
        for r in self._module_ranges():
            if r.start <= pc < r.end:
                return r.table
        return None

    def orc_entry(self, pc: int) -> OrcEntry | None:
        """The entry covering `pc`, None when no table covers it. Raises FaultError when the
        covering table cannot be read."""
        table = self.table_for(pc)
        return None if table is None else table.find(pc)
