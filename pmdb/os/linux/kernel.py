"""LinuxKernel: the personality of a kernel crash dump, as UserProcess is of a process core.

It answers what Program asks of a personality (threads, symbols, objects and their files, the
code map the unwinder reads: here the kernel's ORC tables) and what the Linux commands show:
CPUs and their current tasks, the panic, tasks, modules, the log, utsname and times.

Everything is read on first use and kept. What cannot be read is a partial answer: the
property falls back (no module symbols, no fault frame) and `problems` says what is missing,
one line each, for the commands to report.

Threads are tasks: a ThreadState's tid is its `struct task_struct` address (as mdb's kernel
threads are kthread_t addresses). The panicking task's registers are the faulting context
(the exception's pt_regs on its stack) when the unwinder finds one; its stack starts from the
panicking CPU's registers, so that `$c` shows the way from the fault to the panic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from pmdb.debuginfo.symbols import ModuleRange, SymbolTable
from pmdb.dumps import Dump, ThreadState
from pmdb.errors import PmdbError, SymbolNotFound
from pmdb.formats.elfnotes import iter_notes, parse_prstatus
from pmdb.os.linux.coreinfo import CoreInfo
from pmdb.os.linux.kallsyms import KallsymsTables, read_kallsyms
from pmdb.os.linux.ksyms import KernelSymbol, TableSymbols
from pmdb.os.linux.layout import Layout
from pmdb.os.linux.modules import KernelModule, ModuleReader, read_modules
from pmdb.os.linux.panic import PanicReport, panic_report
from pmdb.os.linux.printk import LegacyLog, LockLessLog, LogRecord
from pmdb.os.linux.reader import KernelReader
from pmdb.os.linux.tasks import Task, TaskReader
from pmdb.unwind.frames import StackTrace, UnwindMethod

if TYPE_CHECKING:
    from pmdb.debuginfo.btf_types import BtfTypes
    from pmdb.debuginfo.typesystem import TypeSource, TypeSystem
    from pmdb.formats.cfi import CfiRow
    from pmdb.formats.elf import ElfFile
    from pmdb.unwind.orc_kernel import KernelOrc
    from pmdb.unwind.orc_table import OrcEntry

VMLINUX = "vmlinux"
_UTS_FIELDS = ("sysname", "nodename", "release", "version", "machine", "domainname")
_CHECKED_SYMBOLS = ("_stext", "init_uts_ns", "swapper_pg_dir", "prb")


@dataclass(frozen=True)
class KernelObject:
    """vmlinux or a module as a loaded object: its range, the file the user named for it (for
    DWARF), and the load bias that file's link addresses need (KASLR's for vmlinux)."""

    path: str
    host_path: str | None
    start: int
    end: int
    bias: int
    is_main: bool

    @property
    def name(self) -> str:
        """The name symbols are qualified with: `vmlinux` or the module's name."""
        return self.path


@dataclass(frozen=True)
class Utsname:
    """The kernel's `uname`: sysname, nodename, release, version, machine, domainname."""

    sysname: str
    nodename: str
    release: str
    version: str
    machine: str
    domainname: str


class LinuxKernel:
    """What a kernel crash dump means: symbols, types, CPUs, tasks, modules, the log."""

    def __init__(self, dump: Dump, vmlinux: str | None = None, module_files: Sequence[str] = (),
                 system_map: str | None = None) -> None:
        """`vmlinux` and `module_files` (.ko) are ELF files with DWARF the user named; `system_map`
        a System.map to take vmlinux's symbols from (checked against the dump here)."""
        from pmdb.formats.elf import ElfFile

        self.dump = dump
        self.info = CoreInfo(dump.notes.get("vmcoreinfo"))
        self.reader = KernelReader(dump.memory)
        self.problems: list[str] = []
        self._reported = 0
        self.system_map = system_map
        self._files: dict[str, ElfFile] = {}
        if vmlinux:
            self._files[VMLINUX] = ElfFile(vmlinux)
        for path in module_files:
            elf = ElfFile(path)
            self._files[_module_name_of(elf, path)] = elf
        self._tasks: dict[int, Task] = {}
        self._threads: dict[int, ThreadState] = {}
        if system_map:
            _ = self.vmlinux_symbols  # a map that does not fit the dump is an error at open

    def note(self, problem: str) -> None:
        """Record what could not be read (once)."""
        if problem not in self.problems:
            self.problems.append(problem)

    def new_problems(self) -> list[str]:
        """The problems noted since the last call: each is reported once."""
        new = self.problems[self._reported:]
        self._reported = len(self.problems)
        return new

    # Symbols -----------------------------------------------------------------------

    @cached_property
    def vmlinux_symbols(self) -> TableSymbols:
        """vmlinux's symbols: from the System.map the user named, else kallsyms in memory, else
        the named vmlinux's .symtab; empty (and a problem noted) when none is to be had."""
        if self.system_map:
            return TableSymbols.from_rows(VMLINUX, self._system_map_rows(self.system_map))
        tables, missing = KallsymsTables.from_coreinfo(self.info)
        if tables is not None:
            try:
                ks = read_kallsyms(self.reader, tables)
                return TableSymbols(VMLINUX, ks.addresses, ks.letters, ks.names)
            except PmdbError as e:
                self.note(f"kallsyms cannot be read: {e}")
        else:
            self.note(f"no kallsyms: VMCOREINFO lacks {', '.join(missing)}")
        elf = self._files.get(VMLINUX)
        if elf is not None:
            return TableSymbols.from_rows(VMLINUX, _elf_rows(elf, self.info.kaslr_offset))
        self.note("no kernel symbols: give the dump's System.map (--system-map) or its vmlinux")
        return TableSymbols(VMLINUX, [], [], [])

    def _system_map_rows(self, path: str) -> list[KernelSymbol]:
        from pmdb.os.linux.sysmap import check_against_dump, read_system_map

        rows = read_system_map(path, self.info.kaslr_offset)
        known = {name: addr for name in _CHECKED_SYMBOLS if (addr := self.info.symbol(name)) is not None}
        check_against_dump(path, rows, self.info.text("OSRELEASE"), lambda a: self.reader.cstring(a, 256), known)
        return rows

    @cached_property
    def symbols(self) -> SymbolTable:
        """vmlinux's symbols and each module's, by address range; vmlinux searched first by name."""
        vm = self.vmlinux_symbols
        start = self.address_of("_text") or self.address_of("_stext")
        end = self.address_of("_end")
        placed = vm.placed_range
        ranges = []
        if placed is not None:
            ranges.append(ModuleRange(start or placed[0], end or placed[1] + 1, vm))
        reader = ModuleReader(self.reader, self.layout)
        for mod in self.modules:
            try:
                rows = reader.symbols(mod)
            except PmdbError as e:
                self.note(f"module {mod.name}: symbols cannot be read: {e}")
                rows = []
            ranges.append(ModuleRange(mod.base, mod.end, TableSymbols.from_rows(mod.name, rows)))
        return SymbolTable(ranges)

    def address_of(self, name: str) -> int | None:
        """vmlinux's symbol `name` (kallsyms or System.map first, VMCOREINFO's SYMBOL() else)."""
        sym = self.vmlinux_symbols.by_name(name)
        return sym.address if sym is not None else self.info.symbol(name)

    def need(self, name: str) -> int:
        """address_of(), or SymbolNotFound naming the symbol."""
        addr = self.address_of(name)
        if addr is None:
            raise SymbolNotFound(f"the kernel's symbols have no {name}")
        return addr

    # Types -------------------------------------------------------------------------

    @cached_property
    def vmlinux_btf(self) -> BtfTypes | None:
        """vmlinux's BTF, read out of memory (None, with the reason noted, when it cannot be)."""
        from pmdb.os.linux.ktypes import memory_btf

        try:
            return memory_btf(self.reader, self.address_of("__start_BTF"), self.address_of("__stop_BTF"))
        except PmdbError as e:
            self.note(str(e))
            return None

    @cached_property
    def _dwarf_sources(self) -> dict[str, TypeSource]:
        from pmdb.os.linux.ktypes import dwarf_source

        return {name: src for name, elf in self._files.items() if (src := dwarf_source(elf)) is not None}

    @cached_property
    def type_sources(self) -> list[TypeSource]:
        """The DWARF of the vmlinux and .ko files named, vmlinux's BTF, then each module's BTF."""
        from pmdb.os.linux.ktypes import module_btf

        sources = list(self._dwarf_sources.values())
        btf = self.vmlinux_btf
        if btf is None:
            return sources
        sources.append(btf)
        for mod in self.modules:
            if mod.btf is not None:
                try:
                    sources.append(module_btf(self.reader, mod.name, mod.btf, btf))
                except PmdbError as e:
                    self.note(f"module {mod.name}: BTF cannot be read: {e}")
        return sources

    @cached_property
    def types(self) -> TypeSystem:
        """The kernel's C types and its modules' (see type_sources)."""
        from pmdb.debuginfo.typesystem import TypeSystem

        return TypeSystem(self.type_sources, pointer_size=8)

    @cached_property
    def layout(self) -> Layout:
        """Struct offsets from vmlinux's types (its BTF, else its DWARF), else VMCOREINFO."""
        from pmdb.debuginfo.typesystem import TypeSystem

        btf = self.vmlinux_btf
        dwarf = self._dwarf_sources.get(VMLINUX)
        sources = [btf] if btf is not None else [dwarf] if dwarf is not None else []
        return Layout(TypeSystem(sources, pointer_size=8) if sources else None, self.info)

    # Modules -----------------------------------------------------------------------

    @cached_property
    def modules(self) -> list[KernelModule]:
        """The loaded modules, newest first (as the `modules` list holds them)."""
        head = self.address_of("modules")
        if head is None:
            self.note("no module list: the kernel's symbols have no `modules`")
            return []
        mods, problem = read_modules(self.reader, self.layout, head)
        if problem:
            self.note(problem)
        return mods

    # Objects, for Program and SourceInfo ---------------------------------------------------

    @cached_property
    def objects(self) -> list[KernelObject]:
        """vmlinux, then each module, as loaded objects."""
        table = self.symbols
        out = []
        for rng in table.search_order:
            name = rng.symbols.module
            elf = self._files.get(name)
            bias = self.info.kaslr_offset if name == VMLINUX else 0
            out.append(KernelObject(name, elf.path if elf is not None else None, rng.start, rng.end, bias,
                                    name == VMLINUX))
        return out

    @property
    def main(self) -> KernelObject | None:
        """vmlinux: its symbols are shown unqualified, a module's as `module`sym`."""
        return next((o for o in self.objects if o.is_main), None)

    def object_at(self, addr: int) -> KernelObject | None:
        """The object (vmlinux or a module) holding `addr`."""
        return next((o for o in self.objects if o.start <= addr < o.end), None)

    def elf_of(self, obj: KernelObject) -> ElfFile | None:
        """The vmlinux or .ko file named for `obj` (only vmlinux's link addresses are a bias away
        from its run-time ones; a module's file serves for types only)."""
        return self._files.get(obj.name) if obj.name == VMLINUX else None

    def debug_elf_of(self, obj: KernelObject) -> ElfFile | None:
        """The same file: a kernel's debug file is the vmlinux itself."""
        return self.elf_of(obj)

    # The unwinder's code map ----------------------------------------------------------

    def cfi_row(self, pc: int) -> CfiRow | None:
        """No DWARF CFI: the kernel unwinds by ORC."""
        return None

    def orc_entry(self, pc: int) -> OrcEntry | None:
        """The ORC entry covering kernel `pc` (vmlinux's table, or its module's)."""
        orc = self._orc
        return orc.orc_entry(pc) if orc is not None else None

    @cached_property
    def _orc(self) -> KernelOrc | None:
        from pmdb.unwind.orc_kernel import KernelOrc, ModuleOrc

        def module_tables() -> list[ModuleOrc]:
            return [ModuleOrc(m.base, m.text_end, m.orc.ip, m.orc.entries, m.orc.count)
                    for m in self.modules if m.orc is not None]

        try:
            return KernelOrc.for_kernel(self.dump.memory, self.address_of,
                                        self.info.text("OSRELEASE") or self.utsname.release, module_tables)
        except PmdbError as e:
            self.note(str(e))
            return None

    # CPUs ----------------------------------------------------------------------------

    @cached_property
    def cpus(self) -> list[int]:
        """The possible CPUs (nr_cpu_ids of them, as the possible mask says)."""
        count = self.reader.u32(self.need("nr_cpu_ids"))
        return self._mask("__cpu_possible_mask", count) or list(range(count))

    @cached_property
    def online_cpus(self) -> list[int]:
        """The CPUs online when the dump was taken (a panic takes the others offline)."""
        return self._mask("__cpu_online_mask", len(self.cpus))

    def _mask(self, name: str, count: int) -> list[int]:
        addr = self.address_of(name)
        if addr is None:
            return []
        bits = int.from_bytes(self.reader.read(addr, (count + 63) // 64 * 8), "little")
        return [cpu for cpu in range(count) if bits >> cpu & 1]

    def per_cpu(self, name: str, cpu: int) -> int:
        """The address of CPU `cpu`'s instance of per-CPU variable `name`."""
        offsets = self.need("__per_cpu_offset")
        return self.need(name) + self.reader.u64(offsets + 8 * cpu)

    def current_task(self, cpu: int) -> int:
        """The task running on `cpu` (`current_task`, or `pcpu_hot.current_task` from 6.2)."""
        if self.address_of("current_task") is not None:
            return self.reader.u64(self.per_cpu("current_task", cpu))
        at = self.per_cpu("pcpu_hot", cpu) + self.layout.offset("pcpu_hot", "current_task")
        return self.reader.u64(at)

    @cached_property
    def panic_cpu(self) -> int | None:
        """The CPU that called panic(); None when no CPU did (the dump was not of a panic)."""
        addr = self.address_of("panic_cpu")
        value = self.reader.s32(addr) if addr is not None else -1
        return value if value >= 0 else None

    def cpu_registers(self, cpu: int) -> dict[str, int] | None:
        """CPU `cpu`'s registers: from its crash_notes when kdump took the dump (CRASHTIME), else
        the dump's NT_PRSTATUS of that CPU (its `cpu`, else QEMU's pr_pid = cpu + 1)."""
        if self.info.crash_time is not None:
            regs = self._crash_notes(cpu)
            if regs is not None:
                return regs
        threads = self.dump.threads
        found = next((t for t in threads if getattr(t, "cpu", None) == cpu), None)
        if found is None and all(t.tid == i + 1 for i, t in enumerate(threads)):  # QEMU's pr_pid
            found = next((t for t in threads if t.tid == cpu + 1), None)
        return found.registers if found is not None else None

    def _crash_notes(self, cpu: int) -> dict[str, int] | None:
        """The NT_PRSTATUS kdump's crash_save_cpu() left in CPU `cpu`'s note buffer."""
        try:
            pointer = self.reader.u64(self.need("crash_notes"))
            buf = self.reader.read(pointer + self.reader.u64(self.need("__per_cpu_offset") + 8 * cpu), 1024)
        except PmdbError as e:
            self.note(f"CPU {cpu}: crash_notes cannot be read: {e}")
            return None
        for owner, ntype, desc in iter_notes(memoryview(buf)):
            if owner == "CORE" and ntype == 1:
                return self.dump.arch.decode_gregset(parse_prstatus(desc).gregs)
        return None

    # Tasks ---------------------------------------------------------------------------

    @cached_property
    def task_reader(self) -> TaskReader:
        """Reads task_structs with this kernel's offsets."""
        return TaskReader(self.reader, self.layout)

    def task(self, addr: int) -> Task:
        """The task whose task_struct is at `addr` (read once)."""
        task = self._tasks.get(addr)
        if task is None:
            task = self._tasks[addr] = self.task_reader.task(addr)
        return task

    @cached_property
    def current_tasks(self) -> dict[int, int]:
        """Each possible CPU's current task address, by CPU."""
        out = {}
        for cpu in self.cpus:
            try:
                out[cpu] = self.current_task(cpu)
            except PmdbError as e:
                self.note(f"CPU {cpu}: current task cannot be read: {e}")
        return out

    @cached_property
    def crashed_cpu(self) -> int:
        """The panicking CPU, else (no panic) the first the dump has registers for."""
        return self.panic_cpu if self.panic_cpu is not None else 0

    @cached_property
    def task_addresses(self) -> list[int]:
        """Every task: each CPU's idle task (not on the task list), then the list's tasks."""
        idle = []
        for cpu in self.cpus:
            try:
                rq = self.per_cpu("runqueues", cpu)
                idle.append(self.reader.u64(rq + self.layout.offset("rq", "idle")))
            except PmdbError as e:
                self.note(f"CPU {cpu}: idle task cannot be read: {e}")
        listed = []
        try:
            for addr in self.task_reader.all_tasks(self.need("init_task")):
                listed.append(addr)
        except PmdbError as e:
            self.note(f"task list: {e}")
        return list(dict.fromkeys(idle + listed))

    # Threads, for Program --------------------------------------------------------------

    @property
    def threads(self) -> list[ThreadState]:
        """Every task as a thread, idle tasks first (tid: the task_struct address); one whose
        registers cannot be read is left out, and noted."""
        out = []
        for addr in self.task_addresses:
            try:
                out.append(self.thread(addr))
            except PmdbError as e:
                self.note(str(e))
        return out

    @property
    def pid(self) -> int:
        """The panicking task's pid."""
        thread = self.crashed_thread
        return self.task(thread.tid).pid if thread is not None else 0

    @cached_property
    def crashed_thread(self) -> ThreadState | None:
        """The task running on the panicking CPU, with the faulting registers when it took an
        exception (else its CPU's)."""
        try:
            addr = self.current_tasks.get(self.crashed_cpu)
        except PmdbError as e:
            self.note(f"the panicking task cannot be found: {e}")
            addr = None
        if addr is None:
            regs = self.cpu_registers(self.crashed_cpu)
            return ThreadState(0, regs) if regs is not None else None
        return self.thread(addr)

    def thread(self, addr: int) -> ThreadState:
        """The task at `addr` as a thread: its registers where it stopped (see stack_start)."""
        thread = self._threads.get(addr)
        if thread is None:
            thread = self._threads[addr] = ThreadState(addr, self._registers_of(addr))
        return thread

    def _cpu_of_current(self, addr: int) -> int | None:
        try:
            currents = self.current_tasks
        except PmdbError:
            return None
        return next((cpu for cpu, task in currents.items() if task == addr), None)

    def _registers_of(self, addr: int) -> dict[str, int]:
        cpu = self._cpu_of_current(addr)
        if cpu is None:
            try:
                return self.task_reader.saved_registers(addr)
            except PmdbError as e:
                raise PmdbError(f"task {addr:x}: its saved registers cannot be read: {e}") from None
        regs = self.cpu_registers(cpu) or {}
        if cpu == self.crashed_cpu and self.panic_cpu is not None:
            fault = self.fault_registers(regs)
            if fault is not None:
                return fault
        return regs

    def stack_start(self, thread: ThreadState) -> tuple[dict[str, int], bool]:
        """Where to unwind `thread` from, and whether its pc is exact (not a return address):
        a running task from its CPU's registers, a sleeping one from its saved context."""
        cpu = self._cpu_of_current(thread.tid)
        if cpu is not None:
            regs = self.cpu_registers(cpu)
            if regs is not None:
                return regs, True
        return thread.registers, False

    def fault_registers(self, cpu_regs: dict[str, int]) -> dict[str, int] | None:
        """The registers of the exception the panicking CPU took: those of the first frame its
        unwinder reached through a pt_regs (None when there is none)."""
        from pmdb.unwind.unwinder import Unwinder

        if not cpu_regs:
            return None
        trace: StackTrace = Unwinder(self.dump.arch, self.dump.memory, self).unwind(cpu_regs)
        frame = next((f for f in trace.frames if f.method is UnwindMethod.PT_REGS), None)
        if frame is None:
            self.note("no exception frame on the panicking task's stack: its registers are its CPU's at dump time")
            return None
        return dict(frame.registers)

    # The log, the panic, the system -------------------------------------------------------

    @cached_property
    def log(self) -> list[LogRecord]:
        """The kernel log, oldest record first (empty, with a problem noted, when unreadable)."""
        try:
            prb = self.address_of("prb")
            if prb is not None:
                return LockLessLog(self.reader, self.layout, self.reader.u64(prb)).records()
            return self._legacy_log().records()
        except PmdbError as e:
            self.note(f"kernel log cannot be read: {e}")
            return []

    def _legacy_log(self) -> LegacyLog:
        rd = self.reader
        buf = rd.u64(self.need("log_buf"))
        size = rd.u32(self.need("log_buf_len"))
        first, nxt = rd.u32(self.need("log_first_idx")), rd.u32(self.need("log_next_idx"))
        seq = self.address_of("log_first_seq")
        return LegacyLog(rd, self.layout, buf, size, first, nxt, rd.u64(seq) if seq is not None else 0)

    @cached_property
    def panic(self) -> PanicReport:
        """The panic line and its cause, as the log tells them."""
        return panic_report(self.log)

    @cached_property
    def utsname(self) -> Utsname:
        """The kernel's utsname (init_uts_ns.name); VMCOREINFO's release when it is unreadable."""
        try:
            base = self.need("init_uts_ns") + self.layout.offset("uts_namespace", "name")
            values = [self.reader.cstring(base + self.layout.offset("new_utsname", f),
                                          self.layout.member_size("new_utsname", f)) for f in _UTS_FIELDS]
            return Utsname(*values)
        except PmdbError as e:
            self.note(f"utsname cannot be read: {e}")
            release = self.info.text("OSRELEASE") or ""
            return Utsname("Linux", "", release, "", self.dump.arch.name, "")

    @cached_property
    def times(self) -> tuple[int | None, int | None]:
        """(seconds since boot, wall-clock seconds since the epoch) at the crash: from the
        timekeeper's last update (`shadow_timekeeper`, the copy timekeeping keeps of
        tk_core's), the wall clock from CRASHTIME when kdump wrote it."""
        crash = self.info.crash_time
        try:
            tk = self.need("shadow_timekeeper")
            mono = self.reader.u64(tk + self.layout.offset("timekeeper", "ktime_sec"))
            boot = self.reader.u64(tk + self.layout.offset("timekeeper", "offs_boot"))
            wall = self.reader.u64(tk + self.layout.offset("timekeeper", "xtime_sec"))
        except PmdbError as e:
            self.note(f"uptime cannot be read: {e}")
            return None, crash
        return mono + boot // 1_000_000_000, crash if crash is not None else wall


def _module_name_of(elf: ElfFile, path: str) -> str:
    """A .ko's module name: its .modinfo `name=`, else the file name (dashes as underscores)."""
    sec = elf.section(".modinfo")
    if sec is not None:
        for entry in bytes(elf.section_data(sec)).split(b"\0"):
            if entry.startswith(b"name="):
                return entry[5:].decode("utf-8", "replace")
    return path.rsplit("/", 1)[-1].split(".", 1)[0].replace("-", "_")


def _elf_rows(elf: ElfFile, bias: int) -> list[KernelSymbol]:
    """A vmlinux's .symtab as kernel symbols, at run-time addresses."""
    from pmdb.os.linux.sysmap import START_KERNEL_MAP

    rows = []
    for sym in elf.symbols(".symtab"):
        if not sym.name or not sym.shndx or sym.type not in (0, 1, 2):
            continue
        letter = {2: "t", 1: "d"}.get(sym.type, "?")
        letter = letter.upper() if sym.bind == 1 else letter
        if sym.value >= START_KERNEL_MAP:
            rows.append(KernelSymbol(sym.value + bias, letter, sym.name, sym.size))
        else:
            rows.append(KernelSymbol(sym.value, "A", sym.name))
    return rows

