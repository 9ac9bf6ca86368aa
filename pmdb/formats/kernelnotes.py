"""The ELF notes of a kernel crash dump: NT_PRSTATUS per CPU, QEMU's CPU state, VMCOREINFO.

The same notes appear in an ELF vmcore's PT_NOTE segment and, copied, in a kdump-compressed
dump (the sub-header's offset_note). kexec's vmcores and makedumpfile's carry one
"CORE"/NT_PRSTATUS per CPU and a "VMCOREINFO" note; QEMU's `dump-guest-memory` adds a
"QEMU" note per vCPU holding that vCPU's full state, control registers included.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from pmdb.errors import BadDumpError
from pmdb.formats import elfnotes as nt

QEMU_CPU_STATE_SIZE = 440  # QEMUCPUState on x86-64, with kernel_gs_base
_QEMU_CR_OFFSET = 8 + 18 * 8 + 10 * 24  # version, size, 16 GPRs, rip, rflags, 10 segment records
_QEMU_GS_BASE_OFFSET = 8 + 18 * 8 + 4 * 24 + 16  # gs is the 5th segment record; base after 4 words
CR4_LA57 = 1 << 12


@dataclass(frozen=True)
class QemuCpuState:
    """What QEMU's note says of one vCPU beyond its general registers: control registers and
    the GS bases (the kernel's per-CPU base is in `gs_base` or, in user mode, `kernel_gs_base`)."""

    cr0: int
    cr2: int
    cr3: int
    cr4: int
    gs_base: int
    kernel_gs_base: int | None

    @property
    def la57(self) -> bool:
        """Whether the vCPU ran with 5-level paging (CR4.LA57)."""
        return bool(self.cr4 & CR4_LA57)


def parse_qemu_cpu_state(desc: memoryview) -> QemuCpuState:
    """Decode an x86-64 QEMUCPUState note (version 1)."""
    if len(desc) < _QEMU_CR_OFFSET + 40:
        raise BadDumpError(f"QEMU CPU state note too short ({len(desc)} bytes)")
    version, size = struct.unpack_from("<II", desc, 0)
    if version != 1 or size > len(desc):
        raise BadDumpError(f"QEMU CPU state note has version {version} and size {size}: not one pmdb knows")
    cr0, _cr1, cr2, cr3, cr4 = struct.unpack_from("<5Q", desc, _QEMU_CR_OFFSET)
    (gs_base,) = struct.unpack_from("<Q", desc, _QEMU_GS_BASE_OFFSET)
    kgs = struct.unpack_from("<Q", desc, _QEMU_CR_OFFSET + 40)[0] if size >= QEMU_CPU_STATE_SIZE else None
    return QemuCpuState(cr0, cr2, cr3, cr4, gs_base, kgs)


@dataclass(frozen=True)
class KernelNotes:
    """The notes a kernel dump reader uses, in the order the dump lists them (one per CPU)."""

    prstatus: list[nt.PrStatus] = field(default_factory=list)
    qemu: list[QemuCpuState] = field(default_factory=list)
    vmcoreinfo: bytes | None = None


def read_kernel_notes(buf: memoryview, warnings: list[str]) -> KernelNotes:
    """Decode the notes of one note segment; a bad note is skipped (or ends parsing) with a warning."""
    out = KernelNotes()
    vmcoreinfo = None
    for owner, ntype, desc in nt.notes_or_warn(buf, warnings):
        try:
            if owner == "CORE" and ntype == nt.NT_PRSTATUS:
                out.prstatus.append(nt.parse_prstatus(desc))
            elif owner == "QEMU" and ntype == 0:
                out.qemu.append(parse_qemu_cpu_state(desc))
            elif owner == "VMCOREINFO" and vmcoreinfo is None:
                vmcoreinfo = bytes(desc)
        except BadDumpError as e:
            warnings.append(f"bad {owner} note skipped: {e}")
    return KernelNotes(out.prstatus, out.qemu, vmcoreinfo)
