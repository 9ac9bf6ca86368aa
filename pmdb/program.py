"""Program: the facade commands and scripts use — memory, arch, symbols, threads, stacks, code.

It delegates to the dump (bytes), the OS personality (objects, symbols, CFI) and the unwinder;
it holds caches, not logic.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from pmdb.arch import Arch
from pmdb.debuginfo.symbols import Symbol, SymbolKind
from pmdb.dumps import Dump, ThreadState
from pmdb.errors import FaultError, PmdbError, SymbolNotFound
from pmdb.mdb.text import num, signed_num
from pmdb.os.userspace import UserProcess
from pmdb.unwind.frames import StackTrace
from pmdb.unwind.unwinder import Unwinder

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pmdb.arch.disasm import Disassembler, Instruction
    from pmdb.debuginfo.ctypes import CType
    from pmdb.debuginfo.sourceinfo import SourceInfo
    from pmdb.debuginfo.typesystem import TypeSource, TypeSystem
    from pmdb.formats.elf import ElfFile
    from pmdb.os.linux.kernel import LinuxKernel
    from pmdb.values import Value


@dataclass(frozen=True)
class SymbolicAddress:
    """An address and the symbol covering it; `qualified` when the symbol is outside the executable.

    str() gives mdb's spelling: `sym+0x1c`, `libc.so.6`sym`, or the bare number.
    """

    address: int
    symbol: Symbol | None
    qualified: bool = False

    @property
    def offset(self) -> int:
        """Distance from the symbol's start."""
        return self.address - self.symbol.address if self.symbol else 0

    def __str__(self) -> str:
        if self.symbol is None:
            return num(self.address)
        name = f"{self.symbol.module}`{self.symbol.name}" if self.qualified else self.symbol.name
        return name + (signed_num(self.offset) if self.offset else "")


class Program:
    """A debugged target: one dump and what it means."""

    def __init__(self, dump: Dump, process: UserProcess | LinuxKernel, source_path: Sequence[str] = ()) -> None:
        """`process` is the dump's personality: a UserProcess for a process core, a LinuxKernel
        for a kernel crash dump (then also `self.kernel`)."""
        self.dump = dump
        self.source_path = tuple(source_path)
        self.process = process
        self.kernel: LinuxKernel | None = None if isinstance(process, UserProcess) else process
        self.arch: Arch = dump.arch
        self.memory = dump.memory
        self._unwinder = Unwinder(dump.arch, dump.memory, process)
        self._stacks: dict[int, StackTrace] = {}

    # Memory ----------------------------------------------------------------------

    def read(self, addr: int, size: int) -> bytes:
        """Target memory, or FaultError."""
        return self.memory.read(addr, size)

    def read_word(self, addr: int, size: int = 8) -> int:
        """An unsigned little-endian integer of `size` bytes at `addr`."""
        return int.from_bytes(self.memory.read(addr, size), "little")

    def read_u64(self, addr: int) -> int:
        """One 64-bit word."""
        return struct.unpack("<Q", self.memory.read(addr, 8))[0]

    # Threads -----------------------------------------------------------------------

    @property
    def threads(self) -> list[ThreadState]:
        """Every thread; the first is the one that took the fatal signal."""
        return self.process.threads

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    @property
    def crashed_thread(self) -> ThreadState | None:
        """The thread the dump was taken for (the first NT_PRSTATUS of a core; a kernel's
        panicking task)."""
        if self.kernel is not None:
            return self.kernel.crashed_thread
        return self.threads[0] if self.threads else None

    def thread(self, tid: int) -> ThreadState:
        """The thread with id `tid` (a kernel's: the task_struct address)."""
        if self.kernel is not None:
            return self._kernel_thread(tid)
        for t in self.threads:
            if t.tid == tid:
                return t
        raise PmdbError(f"no thread with id {tid}")

    def _kernel_thread(self, addr: int) -> ThreadState:
        assert self.kernel is not None
        try:
            return self.kernel.thread(addr)
        except PmdbError as e:
            raise PmdbError(f"no task at {addr:x}: {e}") from None

    def stack(self, thread: ThreadState) -> StackTrace:
        """The thread's stack trace (computed once); a kernel task's starts where it stopped
        running, which for the panicking task is above its exception frame."""
        st = self._stacks.get(thread.tid)
        if st is None:
            regs, exact = self.kernel.stack_start(thread) if self.kernel is not None else (thread.registers, True)
            st = self._stacks[thread.tid] = self._unwinder.unwind(regs, exact)
        return st

    def stack_from_frame_pointer(self, fp: int) -> StackTrace:
        """The stack found by starting at frame pointer `fp` (PmdbError when it is unreadable)."""
        try:
            return self._unwinder.unwind_from_frame_pointer(fp)
        except PmdbError as e:
            raise PmdbError(f"cannot start a stack at frame pointer {fp:x}: {e}") from None

    # Symbols -----------------------------------------------------------------------

    def symbol_at(self, addr: int) -> Symbol | None:
        """The symbol covering `addr`, if any."""
        return self.process.symbols.lookup_address(addr)

    def symbolize(self, addr: int, lookup: int | None = None) -> SymbolicAddress:
        """`addr` with its symbol; `lookup` is where to search (pc-1 for return addresses)."""
        sym = self.symbol_at(addr if lookup is None else lookup)
        main = self.process.main
        return SymbolicAddress(addr, sym, sym is not None and (main is None or sym.module != main.name))

    def lookup(self, name: str) -> Symbol:
        """The symbol called `name` (or `object`name`), or SymbolNotFound."""
        return self.process.symbols.lookup_name(name)

    def try_lookup(self, name: str) -> Symbol | None:
        """The symbol called `name`, or None."""
        try:
            return self.lookup(name)
        except SymbolNotFound:
            return None

    # Code --------------------------------------------------------------------------

    @cached_property
    def disassembler(self) -> Disassembler:
        """The arch's disassembler, annotating addresses with mdb-style symbols."""
        from pmdb.arch.disasm import Disassembler

        def annotate(addr: int) -> str | None:
            sym = self.symbolize(addr)
            return str(sym) if sym.symbol else None

        return Disassembler(annotate)

    def instruction_at(self, addr: int) -> Instruction:
        """The instruction at `addr` (FaultError when its first byte is unreadable)."""
        return self.disassembler.decode_one(self.read_available(addr, 15), addr)

    def disassemble(self, addr: int, count: int) -> list[Instruction]:
        """`count` instructions from `addr` (fewer when memory ends)."""
        out: list[Instruction] = []
        for _ in range(count):
            try:
                insn = self.instruction_at(addr)
            except FaultError:
                if not out:
                    raise
                break
            out.append(insn)
            addr += insn.size
        return out

    def read_available(self, addr: int, size: int) -> bytes:
        """Up to `size` bytes at `addr`: as many as are readable, at least one (else FaultError)."""
        try:
            return self.read(addr, size)
        except FaultError as e:
            if e.address <= addr:
                raise
            return self.read(addr, e.address - addr)

    # Types (DWARF) -------------------------------------------------------------------

    @cached_property
    def types(self) -> TypeSystem:
        """The target's C types: each loaded object's DWARF (or, lacking it, CTF or BTF), the
        executable first. Making it reads nothing; the first lookup opens one object's types."""
        from pmdb.debuginfo.typesystem import TypeSystem

        if self.kernel is not None:
            return self.kernel.types
        return TypeSystem(list(self._type_sources.values()), pointer_size=8)

    @cached_property
    def _type_sources(self) -> dict[str, TypeSource]:
        """Each loaded object's type source, by object name: DWARF from its debug file or itself,
        else its .SUNW_ctf (CTF), else its .BTF."""
        sources: dict[str, TypeSource] = {}
        for obj in self.process.objects:
            own = self.process.elf_of(obj)
            files = [f for f in (self.process.debug_elf_of(obj), own) if f is not None]
            for make in (_dwarf_source, _ctf_source, _btf_source):
                source = next((src for f in files if (src := make(f, own)) is not None), None)
                if source is not None:
                    sources[obj.name] = source
                    break
        return sources

    def symbol_type(self, sym: Symbol) -> CType | None:
        """The C type of the variable or function `sym` names, from its object's debug
        information (None when the object has none or no entry for it)."""
        if self.kernel is not None:
            return self.kernel.types.declaration(sym.name)
        source = self._type_sources.get(sym.module)
        obj = next((o for o in self.process.objects if o.name == sym.module), None)
        if source is None or obj is None:
            return None
        if sym.kind is not SymbolKind.FUNC and hasattr(source, "variable_at"):
            return source.variable_at(sym.name, sym.address - obj.bias)
        declaration = getattr(source, "declaration", None)
        return declaration(sym.name) if declaration is not None else None

    def __getitem__(self, name: str) -> Value:
        """The variable (or function) `name` as a typed Value: `prog['netstacks']`."""
        from pmdb.values import object_named

        return object_named(self, name)

    # Source and variables (DWARF) ----------------------------------------------------

    @cached_property
    def source(self) -> SourceInfo:
        """Source lines, inline chains and frame variables from the objects' DWARF, read lazily;
        source text from `source_path`, then where it was compiled."""
        from pmdb.debuginfo.sourceinfo import SourceInfo

        return SourceInfo(self.process, self.read, self.arch, self.try_lookup, self.source_path)


def _dwarf_source(elf: ElfFile, own: ElfFile | None) -> TypeSource | None:
    """The file's DWARF as a type source, named by the object's build-id (None without DWARF)."""
    from pmdb.debuginfo.dwarf_types import DwarfTypes
    from pmdb.formats.dwarf import has_dwarf

    try:
        if not has_dwarf(elf):
            return None
        build_id = (own or elf).build_id() or elf.build_id()
    except PmdbError:  # a file whose headers do not parse has no types to give
        return None
    return DwarfTypes(elf, build_id.hex() if build_id else None)


def _ctf_source(elf: ElfFile, own: ElfFile | None) -> TypeSource | None:
    """The file's .SUNW_ctf as a type source (illumos objects), if it has one that opens."""
    from pmdb.debuginfo.ctf_types import SECTION, CtfTypes

    if elf.section(SECTION) is None:
        return None
    try:
        return CtfTypes.from_elf(elf)
    except PmdbError:
        return None


def _btf_source(elf: ElfFile, own: ElfFile | None) -> TypeSource | None:
    """The file's .BTF as a type source (a vmlinux or a BPF-built object), if it has one."""
    from pmdb.debuginfo.btf_types import BtfTypes

    if elf.section(".BTF") is None:
        return None
    try:
        return BtfTypes.from_elf(elf)
    except PmdbError:
        return None
