"""Test stand-ins for the kernel dump reader and the Linux personality, so the ORC unwinder can
be checked on real dumps independently of them: the kernel's virtual address space of a QEMU
ELF vmcore (physical PT_LOADs) through the kernel's own 4-level page tables (init_top_pgt from
VMCOREINFO), symbols from the -dbg package's System.map moved by KASLR, struct offsets from the
-dbg vmlinux's BTF, and the module list walked from `modules`.
"""

from __future__ import annotations

import bisect
import functools
import struct

from pmdb.errors import FaultError, FaultReason
from pmdb.formats.btf import Btf, Kind
from pmdb.formats.elf import PT_LOAD, ElfFile
from pmdb.unwind.orc_kernel import KernelOrc, ModuleOrc
from pmdb.unwind.orc_table import OrcEntry

START_KERNEL_MAP = 0xFFFFFFFF80000000
_ADDR_MASK = 0x000FFFFFFFFFF000


class ElfVmcoreMemory:
    """Kernel virtual memory of an ELF vmcore whose PT_LOADs give physical addresses."""

    def __init__(self, path: str) -> None:
        self.elf = ElfFile(path)
        loads = sorted((p for p in self.elf.program_headers() if p.type == PT_LOAD), key=lambda p: p.paddr)
        self._loads = [(p.paddr, p.paddr + p.filesz, p.offset) for p in loads]
        self._starts = [start for start, _, _ in self._loads]
        self.vmcoreinfo = self._vmcoreinfo()
        self.phys_base = int(self.vmcoreinfo["NUMBER(phys_base)"])
        self.kaslr_offset = int(self.vmcoreinfo.get("KERNELOFFSET", "0"), 16)
        self._pgd = self._kernel_phys(int(self.vmcoreinfo["SYMBOL(init_top_pgt)"], 16))
        self._pages: dict[int, int | None] = {}

    def _vmcoreinfo(self) -> dict[str, str]:
        for owner, _type, desc in self.elf.notes():
            if owner == "VMCOREINFO":
                text = bytes(desc).decode(errors="replace")
                return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        raise AssertionError("no VMCOREINFO note")

    def _kernel_phys(self, vaddr: int) -> int:
        return vaddr - START_KERNEL_MAP + self.phys_base

    def read_phys(self, paddr: int, size: int) -> bytes:
        """Bytes of physical memory, all in one PT_LOAD."""
        i = bisect.bisect_right(self._starts, paddr) - 1
        if i < 0 or paddr + size > self._loads[i][1]:
            raise FaultError(paddr, FaultReason.NOT_IN_DUMP, "physical address not in the dump")
        start, _, offset = self._loads[i]
        return bytes(self.elf.bytes_at(offset + paddr - start, size))

    def _u64_phys(self, paddr: int) -> int:
        return struct.unpack("<Q", self.read_phys(paddr, 8))[0]

    def translate(self, vaddr: int) -> int | None:
        """The physical address of `vaddr`, or None when it is not mapped."""
        page = vaddr & ~0xFFF
        if page not in self._pages:
            self._pages[page] = self._walk(page)
        base = self._pages[page]
        return None if base is None else base + (vaddr & 0xFFF)

    def _walk(self, vaddr: int) -> int | None:
        table = self._pgd
        for shift in (39, 30, 21, 12):
            entry = self._u64_phys(table + 8 * ((vaddr >> shift) & 0x1FF))
            if not entry & 1:
                return None
            if shift in (30, 21) and entry & 0x80:  # a 1 GiB or 2 MiB page
                size = 1 << shift
                return (entry & _ADDR_MASK & ~(size - 1)) + (vaddr & (size - 1))
            table = entry & _ADDR_MASK
        return table

    def read(self, addr: int, size: int) -> bytes:
        """Kernel virtual memory, page by page."""
        out = bytearray()
        while size > 0:
            n = min(size, 0x1000 - (addr & 0xFFF))
            paddr = self.translate(addr)
            if paddr is None:
                raise FaultError(addr, FaultReason.UNMAPPED)
            out += self.read_phys(paddr, n)
            addr += n
            size -= n
        return bytes(out)


class StructOffsets:
    """offsetof(struct, member) in bytes, from a vmlinux's .BTF section."""

    def __init__(self, vmlinux: ElfFile) -> None:
        sec = vmlinux.section(".BTF")
        assert sec is not None, "vmlinux has no .BTF"
        self.btf = Btf(vmlinux.section_data(sec))

    @functools.cache  # noqa: B019 - one instance per test session
    def __call__(self, struct_name: str, member: str) -> int | None:
        for tid in self.btf.ids_named(struct_name):
            t = self.btf.get(tid)
            if t.kind is Kind.STRUCT:
                return next((m.offset // 8 for m in t.members if m.name == member), None)
        return None


class StandInKernel:
    """What the Linux personality gives the unwinder, rebuilt independently of pmdb's dump
    readers: memory, symbols by name, each module's range and ORC table (an OrcCodeMap)."""

    def __init__(self, vmcore: str, system_map: str, vmlinux: str) -> None:
        self.memory = ElfVmcoreMemory(vmcore)
        self.symbols: dict[str, int] = {}
        with open(system_map) as f:
            for line in f:
                addr, _kind, name = line.split()[:3]
                self.symbols.setdefault(name, int(addr, 16) + self.memory.kaslr_offset)
        self.offsetof = StructOffsets(ElfFile(vmlinux))
        self.orc = KernelOrc.for_kernel(self.memory, self.symbols.get, self.memory.vmcoreinfo["OSRELEASE"],
                                        self.module_orcs)

    def u64(self, addr: int) -> int:
        return struct.unpack("<Q", self.memory.read(addr, 8))[0]

    def modules(self) -> list[int]:
        """Addresses of each loaded struct module, in list order."""
        head = self.symbols["modules"]
        list_off = self.offsetof("module", "list")
        assert list_off is not None
        out, node = [], self.u64(head)
        while node != head:
            out.append(node - list_off)
            node = self.u64(node)
        return out

    def module_orcs(self) -> list[ModuleOrc]:
        """Each module's core layout and ORC table, from struct module."""
        off = self.offsetof
        core, base, size, arch = (off(*f) for f in (("module", "core_layout"), ("module_layout", "base"),
                                                    ("module_layout", "size"), ("module", "arch")))
        num, ips, entries = (off("mod_arch_specific", m) for m in ("num_orcs", "orc_unwind_ip", "orc_unwind"))
        assert None not in (core, base, size, arch, num, ips, entries)
        out = []
        for mod in self.modules():
            start = self.u64(mod + core + base)
            length = struct.unpack("<I", self.memory.read(mod + core + size, 4))[0]
            count = struct.unpack("<I", self.memory.read(mod + arch + num, 4))[0]
            out.append(ModuleOrc(start, start + length, self.u64(mod + arch + ips), self.u64(mod + arch + entries),
                                 count))
        return out

    def cfi_row(self, pc: int) -> None:
        """No DWARF CFI in this stand-in."""
        return None

    def orc_entry(self, pc: int) -> OrcEntry | None:
        """The ORC entry at `pc`."""
        return self.orc.orc_entry(pc)
