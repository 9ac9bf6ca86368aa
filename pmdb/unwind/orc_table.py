"""ORC tables as the x86-64 Linux kernel lays them out (arch/x86/include/asm/orc_types.h,
arch/x86/kernel/unwind_orc.c), read lazily from any AddressSpace: a dump's kernel memory, or a
vmlinux file's sections.

A table is two parallel arrays sorted by address: `.orc_unwind_ip`, 32-bit offsets each
relative to its own address (so the table needs no relocation under KASLR), and
`.orc_unwind`, one 6-byte entry per ip saying how to find the caller's stack pointer, frame
pointer and return address at every instruction from that ip up to the next one. vmlinux
also has `orc_lookup`, filled at boot: for each 256-byte block of [_stext, _etext), the index
of the entry covering the block's start, so a lookup searches only a few entries.

The entry's bit-fields changed with the kernel (OrcLayout): a table is always decoded with
the layout of the kernel that built it.
"""

from __future__ import annotations

import bisect
import dataclasses
import enum
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass

from pmdb.errors import PmdbError
from pmdb.memory.space import AddressSpace

IP_SIZE = 4
ENTRY_SIZE = 6
LOOKUP_BLOCK_SIZE = 256
_I32 = struct.Struct("<i")
_ENTRY = struct.Struct("<hhH")
_LOOKUP_PAIR = struct.Struct("<II")
# Slices of the ip table up to this many entries are read in one go; wider ranges are probed.
_SLICE_ENTRIES = 512


class OrcReg(enum.IntEnum):
    """ORC_REG_*: the base a value is computed from (orc_types.h, unchanged since 4.14)."""

    UNDEFINED = 0
    PREV_SP = 1
    DX = 2
    DI = 3
    BP = 4
    SP = 5
    R10 = 6
    R13 = 7
    BP_INDIRECT = 8
    SP_INDIRECT = 9


class OrcType(enum.Enum):
    """What the caller's frame looks like at an ip, whatever the layout's numbering.

    UNDEFINED: no information (the kernel calls the unwind an error); END_OF_STACK: the
    outermost frame; CALL: a return address at the previous sp - 8; REGS: a full pt_regs at
    the previous sp; REGS_PARTIAL: an iret frame (ip, cs, flags, sp, ss) ending at it.
    """

    UNDEFINED = "undefined"
    END_OF_STACK = "end of stack"
    CALL = "call"
    REGS = "regs"
    REGS_PARTIAL = "partial regs"


@dataclass(frozen=True)
class OrcEntry:
    """One decoded orc_entry. `signal` means the caller's ip is the interrupted instruction
    itself (look it up at ip, not ip - 1), as after an interrupt or exception frame.
    `offset_after_indirect`: an ORC_REG_SP_INDIRECT previous sp is the word at sp plus
    sp_offset (since 5.12), not the word at sp + sp_offset (before)."""

    sp_offset: int
    bp_offset: int
    sp_reg: int
    bp_reg: int
    type: OrcType
    signal: bool
    offset_after_indirect: bool = True


_V1_TYPES = {0: OrcType.CALL, 1: OrcType.REGS, 2: OrcType.REGS_PARTIAL}
_V3_TYPES = {0: OrcType.UNDEFINED, 1: OrcType.END_OF_STACK, 2: OrcType.CALL, 3: OrcType.REGS,
             4: OrcType.REGS_PARTIAL}


def _decode_v1(sp_offset: int, bp_offset: int, flags: int) -> OrcEntry:
    """4.14 to 6.2: sp_reg:4 bp_reg:4 type:2 end:1; an undefined sp_reg with `end` set is the
    end of the stack; the signal flag is implied by the regs types (REGS_PARTIAL was REGS_IRET
    before 5.x, with the same meaning)."""
    sp_reg = flags & 0xF
    if sp_reg == OrcReg.UNDEFINED:
        kind = OrcType.END_OF_STACK if flags >> 10 & 1 else OrcType.UNDEFINED
    else:
        kind = _V1_TYPES.get(flags >> 8 & 3, OrcType.UNDEFINED)
    return OrcEntry(sp_offset, bp_offset, sp_reg, flags >> 4 & 0xF, kind,
                    kind in (OrcType.REGS, OrcType.REGS_PARTIAL))


def _decode_v2(sp_offset: int, bp_offset: int, flags: int) -> OrcEntry:
    """6.3: sp_reg:4 bp_reg:4 type:2 signal:1 end:1 (the signal bit made explicit)."""
    sp_reg = flags & 0xF
    if sp_reg == OrcReg.UNDEFINED:
        kind = OrcType.END_OF_STACK if flags >> 11 & 1 else OrcType.UNDEFINED
    else:
        kind = _V1_TYPES.get(flags >> 8 & 3, OrcType.UNDEFINED)
    return OrcEntry(sp_offset, bp_offset, sp_reg, flags >> 4 & 0xF, kind, bool(flags >> 10 & 1))


def _decode_v3(sp_offset: int, bp_offset: int, flags: int) -> OrcEntry:
    """6.4 on: sp_reg:4 bp_reg:4 type:3 signal:1, with undefined and end-of-stack as types."""
    kind = _V3_TYPES.get(flags >> 8 & 7, OrcType.UNDEFINED)
    return OrcEntry(sp_offset, bp_offset, flags & 0xF, flags >> 4 & 0xF, kind, bool(flags >> 11 & 1))


@dataclass(frozen=True)
class OrcLayout:
    """How one range of kernel versions packs an orc_entry's bit-fields (`unpack`), and reads
    an ORC_REG_SP_INDIRECT base: since 5.12 the word at sp plus sp_offset, before it the word
    at sp + sp_offset. `since` is the first (major, minor) release using it."""

    name: str
    since: tuple[int, int]
    unpack: Callable[[int, int, int], OrcEntry]
    offset_after_indirect: bool = True

    def decode(self, sp_offset: int, bp_offset: int, flags: int) -> OrcEntry:
        """The entry whose fields are sp_offset, bp_offset and the 16 bits of flags."""
        entry = self.unpack(sp_offset, bp_offset, flags)
        return entry if self.offset_after_indirect else dataclasses.replace(entry, offset_after_indirect=False)


LAYOUTS = (
    OrcLayout("4.14-5.11 (type:2 end:1, sp_offset inside an indirect sp)", (4, 14), _decode_v1, False),
    OrcLayout("5.12-6.2 (type:2 end:1)", (5, 12), _decode_v1),
    OrcLayout("6.3 (type:2 signal:1 end:1)", (6, 3), _decode_v2),
    OrcLayout("6.4+ (type:3 signal:1)", (6, 4), _decode_v3),
)


def layout_for_release(release: str) -> OrcLayout:
    """The layout of the kernel whose `uname -r` is `release` (e.g. 6.1.0-56-cloud-amd64)."""
    m = re.match(r"(\d+)\.(\d+)", release)
    if m is None:
        raise PmdbError(f"cannot tell the ORC layout of kernel release {release!r}")
    version = (int(m.group(1)), int(m.group(2)))
    if version < LAYOUTS[0].since:
        raise PmdbError(f"kernel {release} predates ORC (4.14)")
    return [layout for layout in LAYOUTS if layout.since <= version][-1]


@dataclass(frozen=True)
class OrcLookup:
    """vmlinux's fast lookup table: `count` u32 entry indexes at `address`, one per
    LOOKUP_BLOCK_SIZE bytes of [start, stop) plus one for `stop`."""

    address: int
    count: int
    start: int
    stop: int


class OrcTable:
    """One sorted ORC table in `memory`: `count` ips at `ip_table`, entries at `entries`.

    Nothing is read up front; a lookup reads the lookup table's pair for the block (when
    there is one), the slice of ips it bounds, and the one entry found.
    """

    def __init__(self, memory: AddressSpace, ip_table: int, entries: int, count: int, layout: OrcLayout,
                 lookup: OrcLookup | None = None) -> None:
        self.memory = memory
        self.ip_table = ip_table
        self.entries = entries
        self.count = count
        self.layout = layout
        self.lookup = lookup

    def __len__(self) -> int:
        return self.count

    def ip(self, index: int) -> int:
        """The address entry `index` starts at."""
        at = self.ip_table + IP_SIZE * index
        return at + _I32.unpack(self.memory.read(at, IP_SIZE))[0]

    def entry(self, index: int) -> OrcEntry:
        """Entry `index`, decoded."""
        return self.layout.decode(*_ENTRY.unpack(self.memory.read(self.entries + ENTRY_SIZE * index, ENTRY_SIZE)))

    def find(self, pc: int) -> OrcEntry | None:
        """The entry covering `pc`, as the kernel finds it: the last one whose ip is <= pc (so a
        real entry wins over the weak terminator at the same ip); None below the first ip.
        Raises FaultError when the table cannot be read."""
        index = self.index(pc)
        return None if index is None else self.entry(index)

    def index(self, pc: int) -> int | None:
        """The index of the entry covering `pc` (see find)."""
        lo, hi = 0, self.count
        lk = self.lookup
        if lk is not None and lk.start <= pc < lk.stop:
            block = (pc - lk.start) // LOOKUP_BLOCK_SIZE
            if block + 1 < lk.count:
                first, last = _LOOKUP_PAIR.unpack(self.memory.read(lk.address + 4 * block, 8))
                if first <= last < self.count:
                    lo, hi = first, last + 1
        found = self._search(lo, hi, pc)
        return None if found < 0 else found

    def _search(self, lo: int, hi: int, pc: int) -> int:
        """The last index in [lo, hi) whose ip is <= pc (lo - 1 when none is): probe single ips
        while the range is wide, then read the remaining slice in one go."""
        while hi - lo > _SLICE_ENTRIES:
            mid = (lo + hi) // 2
            if self.ip(mid) <= pc:
                lo = mid + 1
            else:
                hi = mid
        if hi <= lo:
            return lo - 1
        base = self.ip_table + IP_SIZE * lo
        rel = self.memory.read(base, IP_SIZE * (hi - lo))
        n = bisect.bisect_right(range(hi - lo), pc,
                                key=lambda i: base + IP_SIZE * i + _I32.unpack_from(rel, IP_SIZE * i)[0])
        return lo + n - 1
