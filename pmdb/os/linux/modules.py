"""Loaded kernel modules: the `modules` list, each module's core layout, symbols and tables.

A module's text and data live in its core layout (`core_layout` until 6.3, the `mem[]`
array after); its symbols are in `kallsyms` (an ELF symtab, string table and, since 5.x,
nm letters in `typetab`); its ORC tables in `arch` (`orc_unwind_ip`, `orc_unwind`,
`num_orcs`), for the unwinder; its BTF in `btf_data` when it was built with BTF.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from pmdb.errors import BadDumpError, FaultError, MissingDebugInfoError, PmdbError
from pmdb.os.linux.ksyms import KernelSymbol
from pmdb.os.linux.layout import Layout
from pmdb.os.linux.reader import KernelReader

_ELF64_SYM = struct.Struct("<IBBHQQ")
_CORE_MEMORY = ("MOD_TEXT", "MOD_DATA", "MOD_RODATA", "MOD_RO_AFTER_INIT")
_STT_LETTERS = {1: "d", 2: "t"}
MAX_MODULE_SYMBOLS = 1 << 20


@dataclass(frozen=True)
class OrcTables:
    """A module's ORC tables: `count` entries of `ip` (s32 each, relative to their own
    address) and `entries` (struct orc_entry each)."""

    ip: int
    entries: int
    count: int


@dataclass(frozen=True)
class KernelModule:
    """One loaded module: its `struct module` address, name, core layout and tables."""

    address: int
    name: str
    base: int
    size: int
    text_size: int
    state: str
    orc: OrcTables | None
    btf: tuple[int, int] | None  # (address, size) of its BTF, when it has some

    @property
    def end(self) -> int:
        """The end of the core layout."""
        return self.base + self.size

    @property
    def text_end(self) -> int:
        """The end of the module's text."""
        return self.base + (self.text_size or self.size)


class ModuleReader:
    """Reads `struct module`s with offsets from a Layout."""

    def __init__(self, reader: KernelReader, layout: Layout) -> None:
        self.reader = reader
        self.layout = layout

    def walk(self, head: int) -> Iterator[KernelModule]:
        """The modules on the list at `head` (the kernel's `modules`), newest first."""
        link = self.layout.offset("module", "list")
        for node in self.reader.list_entries(head):
            yield self.module(node - link)

    def module(self, addr: int) -> KernelModule:
        """The module whose `struct module` is at `addr`."""
        lay, rd = self.layout, self.reader
        name_size = lay.member_size("module", "name")
        name = rd.cstring(addr + lay.offset("module", "name"), name_size)
        base, size, text_size = self._core(addr)
        return KernelModule(addr, name, base, size, text_size, self._state(addr), self._orc(addr), self._btf(addr))

    def _core(self, addr: int) -> tuple[int, int, int]:
        """(base, size, text size) of the core layout, either kernel generation's."""
        lay, rd = self.layout, self.reader
        if lay.has("module", "core_layout"):
            at = addr + lay.offset("module", "core_layout")
            return (rd.u64(at + lay.offset("module_layout", "base")), rd.u32(at + lay.offset("module_layout", "size")),
                    rd.u32(at + lay.offset("module_layout", "text_size")))
        kinds = self.layout.enum_values("mod_mem_type")
        mem = addr + lay.offset("module", "mem")
        stride = lay.size("module_memory")
        spans = []
        text = (0, 0)
        for kind in _CORE_MEMORY:
            if kind not in kinds:
                continue
            at = mem + kinds[kind] * stride
            span = (rd.u64(at + lay.offset("module_memory", "base")), rd.u32(at + lay.offset("module_memory", "size")))
            if span[0] and span[1]:
                spans.append(span)
                text = span if kind == "MOD_TEXT" else text
        if not spans:
            return 0, 0, 0
        base = min(b for b, _ in spans)
        return base, max(b + s for b, s in spans) - base, text[1] if text[0] == base else 0

    def _state(self, addr: int) -> str:
        value = self.reader.s32(addr + self.layout.offset("module", "state"))
        try:
            names = {v: k for k, v in self.layout.enum_values("module_state").items()}
        except MissingDebugInfoError:
            return str(value)
        return names.get(value, str(value)).removeprefix("MODULE_STATE_")

    def _orc(self, addr: int) -> OrcTables | None:
        lay, rd = self.layout, self.reader
        if not lay.has("module", "arch.num_orcs"):
            return None
        count = rd.u32(addr + lay.offset("module", "arch.num_orcs"))
        if not count:
            return None
        return OrcTables(rd.u64(addr + lay.offset("module", "arch.orc_unwind_ip")),
                         rd.u64(addr + lay.offset("module", "arch.orc_unwind")), count)

    def _btf(self, addr: int) -> tuple[int, int] | None:
        lay, rd = self.layout, self.reader
        if not lay.has("module", "btf_data"):
            return None
        data = rd.u64(addr + lay.offset("module", "btf_data"))
        size = rd.u32(addr + lay.offset("module", "btf_data_size"))
        return (data, size) if data and size else None

    def symbols(self, mod: KernelModule) -> list[KernelSymbol]:
        """The module's symbols from its kallsyms (defined ones, with their ELF sizes)."""
        lay, rd = self.layout, self.reader
        ks = rd.u64(mod.address + lay.offset("module", "kallsyms"))
        if not ks:
            return []
        symtab = rd.u64(ks + lay.offset("mod_kallsyms", "symtab"))
        count = rd.u32(ks + lay.offset("mod_kallsyms", "num_symtab"))
        strtab = rd.u64(ks + lay.offset("mod_kallsyms", "strtab"))
        if count > MAX_MODULE_SYMBOLS:
            raise BadDumpError(f"module {mod.name}: {count} symbols is not a module's count")
        typetab = rd.u64(ks + lay.offset("mod_kallsyms", "typetab")) if lay.has("mod_kallsyms", "typetab") else 0
        raw = rd.read(symtab, count * _ELF64_SYM.size)
        letters = rd.read(typetab, count) if typetab else b""
        rows = []
        for i in range(count):
            name_off, info, _other, shndx, value, size = _ELF64_SYM.unpack_from(raw, i * _ELF64_SYM.size)
            if not name_off or not shndx or not value:
                continue
            try:
                name = rd.cstring(strtab + name_off, 512)
            except FaultError:
                continue
            letter = chr(letters[i]) if letters else _STT_LETTERS.get(info & 0xF, "?")
            if info >> 4 == 1 and not letters:
                letter = letter.upper()
            rows.append(KernelSymbol(value, letter, name, size))
        return rows


def read_modules(reader: KernelReader, layout: Layout, head: int) -> tuple[list[KernelModule], str | None]:
    """The module list, and what stopped it early (None when it was read whole)."""
    out: list[KernelModule] = []
    try:
        for mod in ModuleReader(reader, layout).walk(head):
            out.append(mod)
    except PmdbError as e:
        return out, f"module list: {e}"
    return out, None
