"""x86-64 page tables: the kernel's virtual address space, translated by walking its own tables.

A kernel dump holds physical memory; kernel addresses (the text mapping at
__START_KERNEL_map + KASLR, the direct map at page_offset_base, vmalloc and module space)
become physical ones through the page tables the dump holds, starting from swapper_pg_dir.
Four levels (PGD, PUD, PMD, PTE: 48-bit addresses) or five (an extra P4D: 57-bit), with
1 GiB pages at the PUD level and 2 MiB pages at the PMD level (the PS bit).

Translations are cached per 4 KiB page in a bounded LRU; a read that crosses pages is split.
A failed read is a FaultError at the virtual address: not mapped (an entry not present, or a
non-canonical address), or the physical fault of the page or of a page table (filtered out,
not in the dump) with the physical address in its detail.
"""

from __future__ import annotations

import struct

from pmdb.errors import FaultError, FaultReason
from pmdb.memory.lru import LruCache
from pmdb.memory.space import AddressSpace

PRESENT = 1 << 0
PAGE_SIZE_BIT = 1 << 7  # PS: this PUD or PMD entry maps a 1 GiB or 2 MiB page
ADDRESS_MASK = 0x000F_FFFF_FFFF_F000  # bits 12-51 of an entry: the next table or the page
PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
DIRECT_MAP_BASE = {4: 0xFFFF_8880_0000_0000, 5: 0xFF11_0000_0000_0000}  # lowest page_offset_base
_LEVEL_NAMES = {48: "PGD", 39: "P4D", 30: "PUD", 21: "PMD", 12: "PTE"}
_TABLE = struct.Struct("<512Q")
DEFAULT_CACHED_TRANSLATIONS = 8192


class X86_64PageTables:
    """The page tables rooted at physical address `root`, read from `phys`.

    `levels` is 4 or 5; `sme_mask` is the memory-encryption bit (VMCOREINFO NUMBER(sme_mask))
    that entries carry and that is not part of the address.
    """

    def __init__(self, phys: AddressSpace, root: int, levels: int = 4, sme_mask: int = 0) -> None:
        if levels not in (4, 5):
            raise ValueError(f"x86-64 has 4- or 5-level page tables, not {levels}")
        self.phys = phys
        self.root = root & ADDRESS_MASK & ~sme_mask
        self.levels = levels
        self.sme_mask = sme_mask
        self._shifts = (48, 39, 30, 21, 12) if levels == 5 else (39, 30, 21, 12)
        self._va_bits = 57 if levels == 5 else 48

    def canonical(self, vaddr: int) -> bool:
        """Whether `vaddr` is canonical: its top bits copy bit 47 (or 56)."""
        top = vaddr >> (self._va_bits - 1)
        return top == 0 or top == (1 << (65 - self._va_bits)) - 1

    def sign_extend(self, vaddr: int) -> int:
        """The canonical form of an address built from table indexes."""
        if vaddr >> (self._va_bits - 1) & 1:
            return vaddr | ((1 << 64) - (1 << self._va_bits))
        return vaddr

    def translate(self, vaddr: int) -> tuple[int, int]:
        """(physical address, size of the page mapping it) for `vaddr`, or FaultError."""
        if not 0 <= vaddr < 1 << 64 or not self.canonical(vaddr):
            raise FaultError(vaddr, FaultReason.UNMAPPED, "not a canonical address")
        table = self.root
        for shift in self._shifts:
            entry = self._entry(vaddr, table, (vaddr >> shift) & 0x1FF, shift) & ~self.sme_mask
            if not entry & PRESENT:
                raise FaultError(vaddr, FaultReason.UNMAPPED, f"{_LEVEL_NAMES[shift]} entry not present")
            if shift in (30, 21) and entry & PAGE_SIZE_BIT:
                size = 1 << shift
                return (entry & ADDRESS_MASK & ~(size - 1)) | (vaddr & (size - 1)), size
            table = entry & ADDRESS_MASK
        return table | (vaddr & (PAGE_SIZE - 1)), PAGE_SIZE

    def _entry(self, vaddr: int, table: int, index: int, shift: int) -> int:
        """One entry of a table, or the physical fault of reading it, reported at `vaddr`."""
        where = table + 8 * index
        try:
            return struct.unpack("<Q", self.phys.read(where, 8))[0]
        except FaultError as e:
            raise FaultError(vaddr, e.reason, f"its {_LEVEL_NAMES[shift]} table at physical "
                                              f"{table:#x}: {e.detail or e.reason.value}") from None

    def first_mapped(self, start: int, granule_shift: int = 30) -> int | None:
        """The lowest address >= `start`, aligned to 2**granule_shift (a PUD or PMD), under which
        some mapping exists; None when nothing above `start` is mapped."""
        return self._first_mapped(self.root, 0, start, 0, granule_shift)

    def _first_mapped(self, table: int, depth: int, low: int | None, prefix: int, granule: int) -> int | None:
        shift = self._shifts[depth]
        first = (low >> shift) & 0x1FF if low is not None else 0
        try:
            entries = _TABLE.unpack(self.phys.read(table, PAGE_SIZE))
        except FaultError:
            return None
        for i in range(first, 512):
            entry = entries[i] & ~self.sme_mask
            if not entry & PRESENT:
                continue
            va = prefix | (i << shift)
            if shift <= granule or (shift in (30, 21) and entry & PAGE_SIZE_BIT):
                return self.sign_extend(va)
            found = self._first_mapped(entry & ADDRESS_MASK, depth + 1, low if i == first else None, va, granule)
            if found is not None:
                return found
        return None


class KernelVirtualSpace:
    """The AddressSpace of kernel virtual addresses: page-table translation, then physical reads."""

    def __init__(self, tables: X86_64PageTables, cached: int = DEFAULT_CACHED_TRANSLATIONS) -> None:
        self.tables = tables
        self.phys = tables.phys
        self._cache: LruCache[int, int] = LruCache(cached)

    def translate(self, vaddr: int) -> int:
        """The physical address of `vaddr`, or FaultError (cached per 4 KiB page)."""
        vpn = vaddr >> PAGE_SHIFT
        base = self._cache.get(vpn)
        if base is None:
            paddr, _size = self.tables.translate(vaddr & ~(PAGE_SIZE - 1))
            base = paddr
            self._cache.put(vpn, base)
        return base | (vaddr & (PAGE_SIZE - 1))

    def read(self, addr: int, size: int) -> bytes:
        """Exactly `size` bytes at virtual `addr`, or FaultError at the first unreadable address."""
        if size <= 0:
            return b""
        parts = []
        cur, end = addr, addr + size
        while cur < end:
            n = min(end - cur, PAGE_SIZE - (cur & (PAGE_SIZE - 1)))
            paddr = self.translate(cur)
            try:
                parts.append(self.phys.read(paddr, n))
            except FaultError as e:
                at = cur + e.address - paddr if paddr <= e.address < paddr + n else cur
                why = e.detail or e.reason.value
                raise FaultError(at, e.reason, f"physical address {e.address:#x}: {why}") from None
            cur += n
        return parts[0] if len(parts) == 1 else b"".join(parts)
