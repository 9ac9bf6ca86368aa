"""ELF kernel crash dumps (vmcores): physical memory from PT_LOADs, CPUs and VMCOREINFO from notes.

Made by kexec/kdump (/proc/vmcore, `makedumpfile -E`) or by QEMU's `dump-guest-memory`.
Each PT_LOAD holds a physical range at p_paddr (p_vaddr is a kernel virtual address for
kexec, the physical one again for QEMU with paging off). QEMU writes its program headers
at e_phoff 192 after the section headers and sets e_ehsize to 8: the reader honours
e_phoff and never checks e_ehsize.

kexec's vmcores describe some physical memory twice (the kernel text segment lies within a
System RAM segment); the first segment to cover an address serves it, and a segment the file
holds goes before one that was cut off. A file cut short keeps what it has: the missing tail
of each segment reads as "not in the dump", with a warning.
"""

from __future__ import annotations

import heapq
import itertools

from pmdb.arch import arch_for_elf_machine
from pmdb.dumps import Dump, DumpKind
from pmdb.dumps.kernel import START_KERNEL_MAP, kernel_dump
from pmdb.errors import PmdbError
from pmdb.formats.elf import PT_LOAD, PT_NOTE, ElfFile, ProgramHeader
from pmdb.formats.kernelnotes import KernelNotes, read_kernel_notes
from pmdb.memory.space import BufferSource, Region, SegmentMap

KERNEL_NOTE_OWNERS = ("VMCOREINFO", "QEMU")


def is_kernel_core(elf: ElfFile) -> bool:
    """Whether an ET_CORE file is a kernel dump: it has a VMCOREINFO or QEMU note."""
    try:
        return any(owner in KERNEL_NOTE_OWNERS for owner, _type, _desc in elf.notes())
    except PmdbError:  # a note table too broken to walk is the process-core reader's to report
        return False


def open_vmcore(elf: ElfFile) -> Dump:
    """Describe an ELF vmcore as a kernel Dump (memory: the kernel's virtual address space)."""
    arch = arch_for_elf_machine(elf.machine)
    phdrs = elf.program_headers()
    warnings: list[str] = []
    notes = _notes(elf, [p for p in phdrs if p.type == PT_NOTE], warnings)
    loads = [p for p in phdrs if p.type == PT_LOAD]
    phys = SegmentMap(_physical_regions(elf, loads, warnings))
    hints = [(p.paddr - (p.vaddr - START_KERNEL_MAP), "the PT_LOAD of the kernel text")
             for p in loads if p.vaddr >= START_KERNEL_MAP][:1]
    return kernel_dump(elf.path, DumpKind.KERNEL_ELF, arch, phys, notes, None, hints, warnings)


def _notes(elf: ElfFile, segs: list[ProgramHeader], warnings: list[str]) -> KernelNotes:
    """The kernel notes of every PT_NOTE segment (the first segment's VMCOREINFO wins)."""
    merged = KernelNotes()
    vmcoreinfo = None
    for seg in segs:
        buf = elf.bytes_at(seg.offset, seg.filesz)
        if len(buf) < seg.filesz:
            warnings.append(f"vmcore is truncated: notes have {len(buf):#x} of {seg.filesz:#x} bytes")
        part = read_kernel_notes(buf, warnings)
        merged.prstatus.extend(part.prstatus)
        merged.qemu.extend(part.qemu)
        vmcoreinfo = vmcoreinfo or part.vmcoreinfo
    return KernelNotes(merged.prstatus, merged.qemu, vmcoreinfo)


def _physical_regions(elf: ElfFile, loads: list[ProgramHeader], warnings: list[str]) -> list[Region]:
    """Regions of physical memory, without overlaps; the part of a segment past the end of
    the file is absent."""
    present, absent = [], []
    short = 0
    for p in loads:
        have = max(0, min(p.filesz, elf.size - p.offset))
        if have:
            src = BufferSource(memoryview(elf.data)[p.offset : p.offset + have])
            present.append(Region(p.paddr, p.paddr + have, src, 0, "vmcore"))
        if have < p.filesz:
            short += 1
            absent.append(Region(p.paddr + have, p.paddr + p.filesz, None, 0, "the vmcore file is truncated"))
        if p.memsz > p.filesz:
            absent.append(Region(p.paddr + p.filesz, p.paddr + p.memsz, None, 0, "not in the vmcore"))
    if short:
        warnings.append(f"vmcore is truncated: {short} of {len(loads)} memory segments are incomplete")
    return _first_covers(present + absent)


def _first_covers(regions: list[Region]) -> list[Region]:
    """The regions cut so that none overlaps: where several cover an address, the earliest in
    the list keeps it. One sweep over the boundaries with a heap of the regions in force, so
    that a file with thousands of segments costs n log n."""
    bounds = sorted({b for r in regions for b in (r.start, r.end)})
    by_start = sorted(range(len(regions)), key=lambda i: regions[i].start)
    active: list[int] = []
    pieces: list[list] = []  # [index, start, end]
    j = 0
    for lo, hi in itertools.pairwise(bounds):
        while j < len(by_start) and regions[by_start[j]].start <= lo:
            heapq.heappush(active, by_start[j])
            j += 1
        while active and regions[active[0]].end <= lo:
            heapq.heappop(active)
        if not active:
            continue
        if pieces and pieces[-1][0] == active[0] and pieces[-1][2] == lo:
            pieces[-1][2] = hi
        else:
            pieces.append([active[0], lo, hi])
    out = []
    for i, a, b in pieces:
        r = regions[i]
        out.append(Region(a, b, r.source, r.offset + a - r.start, r.name, r.absent))
    return out
