"""The user-process personality: loaded objects from NT_FILE and the auxv, their symbols, threads.

Knows how a Linux process lays out its executable and shared objects; knows nothing of the
core file format (that is dumps/) nor of commands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from pmdb.debuginfo.finder import find_debug_file
from pmdb.debuginfo.symbols import ModuleRange, ObjectSymbols, SymbolTable
from pmdb.dumps import Dump, ThreadState
from pmdb.dumps.locate import FileLocator
from pmdb.errors import PmdbError
from pmdb.formats.cfi import CfiRow, FrameTable
from pmdb.formats.elf import PT_LOAD, ElfFile
from pmdb.formats.elfnotes import FileMapping

AT_PHDR, AT_ENTRY, AT_SYSINFO_EHDR, AT_EXECFN = 3, 9, 33, 31


@dataclass(frozen=True)
class LoadedObject:
    """One ELF object mapped into the process: where, with what load bias, from which host file."""

    path: str
    host_path: str | None
    start: int
    end: int
    bias: int
    is_main: bool

    @property
    def name(self) -> str:
        """The object's base name, as mdb names objects in `obj`sym."""
        return self.path.rsplit("/", 1)[-1]


class UserProcess:
    """What a process core means: its objects, symbols and threads."""

    def __init__(
        self, dump: Dump, locator: FileLocator, executable: str | None = None, debug_dirs: Sequence[str] = ()
    ) -> None:
        self.dump = dump
        self.locator = locator
        self.executable = executable
        self.debug_dirs = tuple(debug_dirs)
        self._debug: dict[str, ElfFile | None] = {}
        self._tables: dict[str, list[FrameTable]] = {}

    @property
    def threads(self) -> list[ThreadState]:
        """Threads in the order the core lists them; the first one took the fatal signal."""
        return self.dump.threads

    @cached_property
    def objects(self) -> list[LoadedObject]:
        """The executable and shared objects mapped from files, the executable first."""
        files: list[FileMapping] = self.dump.notes.get("files", [])
        auxv: dict[int, int] = self.dump.notes.get("auxv", {})
        phdr = auxv.get(AT_PHDR)
        spans: dict[str, list[FileMapping]] = {}
        for fm in files:
            spans.setdefault(fm.path, []).append(fm)
        out = []
        for path, maps in spans.items():
            first = min(maps, key=lambda m: m.start)
            if first.offset != 0:
                continue
            is_main = phdr is not None and any(m.start <= phdr < m.end for m in maps)
            host = self.executable if is_main and self.executable else self.locator.find(path)
            bias = self._bias(host, first.start)
            if bias is None:
                continue
            out.append(LoadedObject(path, host, first.start, max(m.end for m in maps), bias, is_main))
        out.sort(key=lambda o: not o.is_main)
        return out

    def _bias(self, host: str | None, start: int) -> int | None:
        """Load bias from the object's lowest PT_LOAD (host file, else the image in the core)."""
        elf = self.locator.elf(host) if host else None
        if elf is None:
            try:
                elf = ElfFile(f"image at {start:#x}", self.dump.memory.read(start, 4096))
            except PmdbError:
                return None
        try:
            loads = [p for p in elf.program_headers() if p.type == PT_LOAD]
        except PmdbError:
            return None
        if not loads:
            return None
        return start - (min(p.vaddr for p in loads) & ~0xFFF)

    @property
    def vdso_base(self) -> int | None:
        """Where the kernel mapped the vDSO (AT_SYSINFO_EHDR), if the core says."""
        return self.dump.notes.get("auxv", {}).get(AT_SYSINFO_EHDR)

    @property
    def pid(self) -> int:
        """The process id (from NT_PRPSINFO, else the first thread's)."""
        ps = self.dump.notes.get("psinfo")
        if ps is not None:
            return ps.pid
        return self.threads[0].tid if self.threads else 0

    @property
    def main(self) -> LoadedObject | None:
        """The executable, when the core says which object it is."""
        return next((o for o in self.objects if o.is_main), None)

    def object_at(self, addr: int) -> LoadedObject | None:
        """The loaded object whose mapping contains `addr`."""
        return next((o for o in self.objects if o.start <= addr < o.end), None)

    def elf_of(self, obj: LoadedObject) -> ElfFile | None:
        """The object's own file on this machine (for .eh_frame and dynamic symbols)."""
        return self.locator.elf(obj.host_path) if obj.host_path else None

    def debug_elf_of(self, obj: LoadedObject) -> ElfFile | None:
        """The object's separate debug file (for .symtab and .debug_frame), if one is found."""
        if obj.path not in self._debug:
            elf = self.elf_of(obj)
            self._debug[obj.path] = (
                find_debug_file(obj.host_path, elf, self.debug_dirs, self.locator.elf)
                if elf is not None and obj.host_path
                else None
            )
        return self._debug[obj.path]

    @cached_property
    def symbols(self) -> SymbolTable:
        """Every object's symbols, relocated; the executable's are searched first by name."""
        mods = []
        for obj in self.objects:
            files = [f for f in (self.debug_elf_of(obj), self.elf_of(obj)) if f is not None]
            mods.append(ModuleRange(obj.start, obj.end, ObjectSymbols(obj.name, obj.bias, files)))
        return SymbolTable(mods)

    def cfi_row(self, pc: int) -> CfiRow | None:
        """The CFI row for run-time `pc`: the object's .eh_frame, then its .debug_frame."""
        obj = self.object_at(pc)
        if obj is None:
            return None
        for table in self._frame_tables(obj):
            row = table.row_for(pc - obj.bias)
            if row is not None:
                return row
        return None

    def _frame_tables(self, obj: LoadedObject) -> list[FrameTable]:
        tables = self._tables.get(obj.path)
        if tables is None:
            elf, dbg = self.elf_of(obj), self.debug_elf_of(obj)
            found = [
                FrameTable.for_elf(elf, ".eh_frame") if elf else None,
                FrameTable.for_elf(dbg, ".debug_frame") if dbg else None,
                FrameTable.for_elf(elf, ".debug_frame") if elf else None,
            ]
            tables = self._tables[obj.path] = [t for t in found if t is not None]
        return tables
