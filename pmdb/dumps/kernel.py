"""What the kernel dump formats share: from physical memory and notes to a kernel Dump.

An ELF vmcore and a kdump-compressed dump differ in how they store physical pages; both
carry NT_PRSTATUS per CPU, VMCOREINFO and (from QEMU) each vCPU's control registers. This
module turns those into a Dump whose `memory` is the kernel's virtual address space:

- the page-table root is swapper_pg_dir (VMCOREINFO's SYMBOL is its run-time address, KASLR
  included), at physical address symbol - __START_KERNEL_map + phys_base. phys_base comes
  from VMCOREINFO's NUMBER(phys_base), else from the dump format (kdump's sub-header, an ELF
  PT_LOAD of the kernel text); each candidate must pass a self-check — the tables it finds
  must map swapper_pg_dir to itself — and QEMU's sub-header value, which is garbage, fails it;
- without VMCOREINFO, QEMU's CR3 of a vCPU is the root (its kernel half is every process's);
- 5-level paging from NUMBER(pgtable_l5_enabled), else QEMU's CR4.LA57; memory encryption's
  address bit from NUMBER(sme_mask);
- page_offset_base (the direct map, randomized by KASLR) is found in the tables: the lowest
  mapping above its lowest possible value, checked to map physical address 0.

When no root can be trusted the Dump still opens: physical memory is readable, every kernel
address faults, and a warning says why.
"""

from __future__ import annotations

from dataclasses import dataclass

from pmdb.arch import Arch
from pmdb.dumps import Dump, DumpKind, ThreadState
from pmdb.errors import FaultError, FaultReason, PmdbError
from pmdb.formats.kernelnotes import KernelNotes
from pmdb.formats.vmcoreinfo import VmcoreInfo, VmcoreInfoError, parse_vmcoreinfo
from pmdb.memory.paging import DIRECT_MAP_BASE, KernelVirtualSpace, X86_64PageTables
from pmdb.memory.space import AddressSpace

START_KERNEL_MAP = 0xFFFF_FFFF_8000_0000
KERNEL_IMAGE_SIZE = 1 << 30  # the kernel text mapping's extent; VMCOREINFO may say otherwise
_PAGE = 4096


@dataclass(frozen=True)
class KernelLayout:
    """Where the kernel is: what pmdb's kernel virtual space was built from.

    `page_table_root` is the physical address of the top-level table and `root_source` says
    where it came from; `kaslr_offset` is VMCOREINFO's KERNELOFFSET (None when absent or
    absurd), `phys_base` the value that placed swapper_pg_dir, `page_offset_base` the
    direct map's base (None when it could not be found).
    """

    page_table_root: int
    root_source: str
    levels: int
    kaslr_offset: int | None
    phys_base: int | None
    page_offset_base: int | None


class UntranslatedSpace:
    """The kernel virtual space of a dump whose page tables could not be found: every read
    faults (the open's warnings say why)."""

    def read(self, addr: int, size: int) -> bytes:
        """FaultError for any address (nothing for an empty read)."""
        if size <= 0:
            return b""
        raise FaultError(addr, FaultReason.NOT_IN_DUMP, "the kernel page tables could not be read")


def kernel_dump(
    path: str,
    kind: DumpKind,
    arch: Arch,
    phys: AddressSpace,
    notes: KernelNotes,
    vmcoreinfo: bytes | None,
    phys_base_hints: list[tuple[int, str]],
    warnings: list[str],
    extra_notes: dict | None = None,
) -> Dump:
    """The Dump of a kernel: CPUs from NT_PRSTATUS, VMCOREINFO, and the virtual space over `phys`.

    `vmcoreinfo` is the format's own copy when it has one (else the note's is used);
    `phys_base_hints` are (value, where from) candidates the format offers.
    """
    info = _vmcoreinfo(vmcoreinfo if vmcoreinfo is not None else notes.vmcoreinfo, warnings)
    threads = cpu_threads(arch, notes, warnings)
    memory, layout = kernel_virtual_space(phys, info, notes, phys_base_hints, warnings)
    out: dict = dict(extra_notes or {})
    if info is not None:
        out["vmcoreinfo"] = info
    if layout is not None:
        out["kernel_layout"] = layout
    if notes.qemu:
        out["qemu_cpus"] = notes.qemu
    return Dump(path, kind, arch, memory, threads, notes=out, warnings=warnings, physical=phys)


def _vmcoreinfo(raw: bytes | None, warnings: list[str]) -> VmcoreInfo | None:
    """The parsed VMCOREINFO, or None with a warning."""
    if raw is None:
        warnings.append("the dump has no VMCOREINFO: kernel symbols and layout must come from elsewhere")
        return None
    try:
        info = parse_vmcoreinfo(raw)
    except VmcoreInfoError as e:
        warnings.append(f"{e}: ignored")
        return None
    if info.ignored:
        warnings.append(f"VMCOREINFO has {len(info.ignored)} lines that are not KEY=value: ignored")
    try:
        if info.page_size != _PAGE:
            warnings.append(f"VMCOREINFO PAGESIZE={info.page_size}, but x86-64 pages are {_PAGE} bytes: ignored")
    except VmcoreInfoError as e:
        warnings.append(f"{e}: ignored")
    return info


def cpu_threads(arch: Arch, notes: KernelNotes, warnings: list[str]) -> list[ThreadState]:
    """One ThreadState per NT_PRSTATUS, in the dump's order, which is CPU order."""
    threads = []
    for cpu, st in enumerate(notes.prstatus):
        try:
            regs = arch.decode_gregset(st.gregs)
        except PmdbError as e:
            warnings.append(f"NT_PRSTATUS of CPU {cpu} skipped: {e}")
            continue
        threads.append(ThreadState(st.pid, regs, st.cursig, cpu=cpu))
    if not threads:
        warnings.append("the dump has no NT_PRSTATUS notes: no CPU registers")
    elif notes.qemu and any(t.tid != t.cpu + 1 for t in threads if t.cpu is not None):
        warnings.append("QEMU dump whose NT_PRSTATUS pids are not cpu+1: CPU numbers are the notes' order")
    return threads


_UNREADABLE = "kernel virtual addresses are unreadable (physical memory still is)"


def kernel_virtual_space(
    phys: AddressSpace,
    info: VmcoreInfo | None,
    notes: KernelNotes,
    phys_base_hints: list[tuple[int, str]],
    warnings: list[str],
) -> tuple[AddressSpace, KernelLayout | None]:
    """The kernel's virtual address space over `phys`, and what it was built from."""
    levels, sme_mask = _paging_mode(info, notes, warnings)
    kaslr = _kaslr_offset(info, warnings)
    try:
        found = _root_from_vmcoreinfo(phys, info, levels, sme_mask, phys_base_hints, warnings)
        reason = None
    except VmcoreInfoError as e:
        found, reason = None, str(e)
    if found is None:
        found = _root_from_qemu(phys, notes, levels, sme_mask)
        if found is None:
            warnings.append(f"{reason or 'the dump does not say where the kernel page tables are'}: {_UNREADABLE}")
            return UntranslatedSpace(), None
        warnings.append(f"{reason or 'no VMCOREINFO'}: kernel page tables taken from {found[1]}")
    tables, source, phys_base = found
    layout = KernelLayout(tables.root, source, levels, kaslr, phys_base, _direct_map_base(tables))
    if layout.page_offset_base is None:
        warnings.append("the direct map (page_offset_base) was not found in the page tables")
    return KernelVirtualSpace(tables), layout


def _paging_mode(info: VmcoreInfo | None, notes: KernelNotes, warnings: list[str]) -> tuple[int, int]:
    """(page-table levels, sme_mask): VMCOREINFO first, then QEMU's CR4, else 4 levels and no
    encryption bit. A wrong guess is caught by the page tables' self-check."""
    l5 = sme = None
    if info is not None:
        try:
            l5 = info.pgtable_l5_enabled
        except VmcoreInfoError as e:
            warnings.append(f"{e}: ignored")
        try:
            sme = info.number("sme_mask")
            if sme and (sme & (sme - 1) or not 1 << 32 <= sme < 1 << 52):
                raise VmcoreInfoError(f"VMCOREINFO NUMBER(sme_mask)={sme:#x}: not one address bit from 32 to 51")
        except VmcoreInfoError as e:
            warnings.append(f"{e}: ignored")
            sme = None
    if l5 is None and notes.qemu:
        l5 = notes.qemu[0].la57
    return (5 if l5 else 4), (sme or 0)


def _kaslr_offset(info: VmcoreInfo | None, warnings: list[str]) -> int | None:
    """KERNELOFFSET, when present and within the kernel image mapping (page-aligned)."""
    if info is None:
        return None
    try:
        offset = info.kernel_offset
        limit = info.number("KERNEL_IMAGE_SIZE") or KERNEL_IMAGE_SIZE
    except VmcoreInfoError as e:
        warnings.append(f"{e}: ignored")
        return None
    if offset is not None and (offset % _PAGE or offset >= limit):
        warnings.append(f"VMCOREINFO KERNELOFFSET={offset:x}: not a page-aligned offset within the kernel image "
                        f"mapping ({limit:#x} bytes): ignored")
        return None
    return offset


def _root_from_vmcoreinfo(
    phys: AddressSpace, info: VmcoreInfo | None, levels: int, sme_mask: int,
    hints: list[tuple[int, str]], warnings: list[str],
) -> tuple[X86_64PageTables, str, int] | None:
    """swapper_pg_dir's tables, placed by the first phys_base candidate that maps it to itself."""
    if info is None:
        return None
    name = "swapper_pg_dir" if info.symbol("swapper_pg_dir") is not None else "init_top_pgt"
    pgd = info.symbol(name)
    if pgd is None:
        raise VmcoreInfoError("VMCOREINFO has no SYMBOL(swapper_pg_dir)")
    if pgd % _PAGE or not START_KERNEL_MAP <= pgd < START_KERNEL_MAP + 2 * KERNEL_IMAGE_SIZE:
        raise VmcoreInfoError(f"VMCOREINFO SYMBOL({name})={pgd:x}: not a page of the kernel image mapping")
    candidates = []
    try:
        declared = info.phys_base
    except VmcoreInfoError as e:
        warnings.append(f"{e}: trying the phys_base the dump format gives")
        declared = None
    if declared is not None:
        candidates.append((declared, "VMCOREINFO NUMBER(phys_base)"))
    candidates += [h for h in hints if h[0] != declared]
    if not candidates:
        raise VmcoreInfoError("VMCOREINFO has no NUMBER(phys_base) and the dump gives no other")
    problems = []
    for phys_base, source in candidates:
        root = pgd - START_KERNEL_MAP + phys_base
        problem = _self_check(phys, root, pgd, levels, sme_mask)
        if problem is None:
            warnings.extend(problems)  # the candidates before this one, which were wrong
            return X86_64PageTables(phys, root, levels, sme_mask), f"SYMBOL({name}), phys_base from {source}", phys_base
        problems.append(f"{name} placed by phys_base {phys_base:#x} from {source}: {problem}")
    raise VmcoreInfoError("; ".join(problems))


def _self_check(phys: AddressSpace, root: int, pgd: int, levels: int, sme_mask: int) -> str | None:
    """None when the tables at physical `root` map their own virtual address `pgd` to `root`."""
    if root < 0 or root % _PAGE:
        return f"physical address {root:#x} is not a page"
    try:
        phys.read(root, _PAGE)
    except FaultError as e:
        return f"its page at physical {root:#x} cannot be read ({e})"
    try:
        got, _ = X86_64PageTables(phys, root, levels, sme_mask).translate(pgd)
    except FaultError as e:
        return f"the tables at physical {root:#x} do not map it ({e}): phys_base is wrong"
    return None if got == root else f"the tables at physical {root:#x} map it to {got:#x}: phys_base is wrong"


def _root_from_qemu(
    phys: AddressSpace, notes: KernelNotes, levels: int, sme_mask: int
) -> tuple[X86_64PageTables, str, None] | None:
    """The page tables a vCPU was using, from QEMU's CR3 (the kernel half is every process's)."""
    for cpu, state in enumerate(notes.qemu):
        tables = X86_64PageTables(phys, state.cr3 & ~0xFFF, levels, sme_mask)
        if _direct_map_base(tables) is not None:
            return tables, f"CR3 of CPU {cpu} (QEMU note)", None
    return None


def _direct_map_base(tables: X86_64PageTables) -> int | None:
    """page_offset_base: the lowest mapped 1 GiB above its lowest possible value, if it maps
    physical address 0 (as the direct map does)."""
    base = tables.first_mapped(DIRECT_MAP_BASE[tables.levels])
    if base is None:
        return None
    try:
        return base if tables.translate(base)[0] == 0 else None
    except FaultError:
        return None
