"""kdump-compressed kernel dumps (makedumpfile's and QEMU's), plain or flattened, as Dumps.

The format itself is read by formats/kdump.py (and formats/flattened.py for a stream that
was never reassembled); this module adds what a Dump needs: the physical address space
(pages decompressed on demand into a bounded cache), the architecture (the header's
utsname.machine, which QEMU fills although it leaves the rest of the utsname empty), the
notes (NT_PRSTATUS per CPU, QEMU's CPU states) and, through dumps/kernel.py, the kernel's
virtual address space.

The sub-header's phys_base is offered as a candidate only: QEMU parses VMCOREINFO's signed
decimal NUMBER(phys_base) as hex and writes garbage there, so VMCOREINFO's value comes first
and every candidate must pass the page-table self-check.
"""

from __future__ import annotations

from dataclasses import dataclass

from pmdb.arch import Arch, arch_for_elf_machine
from pmdb.dumps import Dump, DumpKind
from pmdb.dumps.kernel import kernel_dump
from pmdb.errors import BadDumpError
from pmdb.formats.elf import EM_X86_64
from pmdb.formats.flattened import FlattenedFile, is_flattened
from pmdb.formats.kdump import DiskDumpHeader, KdumpFile, KdumpSubHeader
from pmdb.formats.kernelnotes import KernelNotes, read_kernel_notes
from pmdb.formats.mapped import MappedFile
from pmdb.memory.pages import PagedSpace

_MACHINES = {"x86_64": EM_X86_64}


@dataclass(frozen=True)
class KdumpInfo:
    """The dump's own description, for `::status` and friends: headers and container."""

    header: DiskDumpHeader
    sub_header: KdumpSubHeader
    flattened: bool
    dumped_pages: int

    @property
    def compression(self) -> str | None:
        """The compression the header announces ("zlib", "lzo", "snappy", "zstd"), or None."""
        return self.header.compression

    @property
    def dump_level(self) -> int | None:
        """makedumpfile's -d level (QEMU writes 1 but excludes nothing)."""
        return self.sub_header.dump_level


def open_kdump(path: str) -> Dump:
    """Open a kdump-compressed dump, reading a flattened one in place."""
    mapped = MappedFile(path)
    flat = is_flattened(mapped.read(0, 16))
    source = FlattenedFile(mapped) if flat else mapped
    kdump = KdumpFile(source)
    notes_raw = kdump.notes_bytes()
    vmcoreinfo = kdump.vmcoreinfo_bytes()
    warnings = [*(source.warnings if isinstance(source, FlattenedFile) else []), *kdump.warnings]
    notes = read_kernel_notes(memoryview(notes_raw), warnings) if notes_raw is not None else KernelNotes()
    arch = _arch(kdump.header, vmcoreinfo or notes.vmcoreinfo, path)
    phys = PagedSpace(kdump.page_size, kdump.page)
    info = KdumpInfo(kdump.header, kdump.sub, flat, kdump.descriptors)
    hints = [(kdump.sub.phys_base, "the kdump sub-header")]
    return kernel_dump(path, DumpKind.KDUMP, arch, phys, notes, vmcoreinfo, hints, warnings, {"kdump": info})


def _arch(header: DiskDumpHeader, vmcoreinfo: bytes | None, path: str) -> Arch:
    """The architecture from utsname.machine; when that is empty, x86-64 if VMCOREINFO names
    a symbol only x86-64 has."""
    machine = header.machine
    if machine in _MACHINES:
        return arch_for_elf_machine(_MACHINES[machine])
    if not machine and vmcoreinfo is not None and b"SYMBOL(init_top_pgt)=" in vmcoreinfo:
        return arch_for_elf_machine(EM_X86_64)
    raise BadDumpError(f"{path}: kdump header names machine {machine!r}: pmdb reads x86-64 dumps")
