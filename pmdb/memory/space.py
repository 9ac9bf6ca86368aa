"""The one memory interface: an AddressSpace maps virtual addresses to bytes or a FaultError.

A SegmentMap is an address space built from regions, each backed by a ByteSource (a slice
of the dump file or of a mapped file on disk), or nothing when the dump left the pages out.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pmdb.errors import FaultError, FaultReason


class AddressSpace(Protocol):
    """Anything that reads target memory; the whole debugger reads through this."""

    def read(self, addr: int, size: int) -> bytes:
        """Exactly `size` bytes at `addr`, or FaultError naming the first unreadable address."""
        ...


class ByteSource(Protocol):
    """Backing store of a region: bytes by offset, or a FaultReason when absent."""

    def read(self, offset: int, size: int) -> bytes:
        """Bytes [offset, offset+size) of the source; shorter only at its end."""
        ...


@dataclass(frozen=True)
class BufferSource:
    """A region backed by a buffer (an mmap of the dump, or bytes)."""

    buf: Sequence[int] | bytes | memoryview

    def read(self, offset: int, size: int) -> bytes:
        """Bytes from the buffer."""
        return bytes(self.buf[offset : offset + size])


@dataclass(frozen=True)
class Region:
    """[start, end) of the address space, read from `source` at `offset + (addr - start)`.

    `source` None means the dump records the mapping but not its contents (`absent` says why).
    """

    start: int
    end: int
    source: ByteSource | None
    offset: int = 0
    name: str = ""
    absent: FaultReason = FaultReason.NOT_IN_DUMP


class SegmentMap:
    """An AddressSpace made of non-overlapping regions, looked up by binary search."""

    def __init__(self, regions: list[Region]) -> None:
        self.regions = sorted((r for r in regions if r.end > r.start), key=lambda r: r.start)
        self._starts = [r.start for r in self.regions]

    def region_at(self, addr: int) -> Region | None:
        """The region containing `addr`, if any."""
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0 and addr < self.regions[i].end:
            return self.regions[i]
        return None

    def read(self, addr: int, size: int) -> bytes:
        """Read across regions; the first gap or absent region raises FaultError."""
        if size <= 0:
            return b""
        parts = []
        cur, end = addr, addr + size
        while cur < end:
            reg = self.region_at(cur)
            if reg is None:
                raise FaultError(cur, FaultReason.UNMAPPED)
            if reg.source is None:
                raise FaultError(cur, reg.absent, reg.name)
            n = min(end, reg.end) - cur
            data = reg.source.read(reg.offset + cur - reg.start, n)
            if len(data) < n:
                raise FaultError(cur + len(data), FaultReason.NOT_IN_DUMP, f"{reg.name} is truncated")
            parts.append(data)
            cur += n
        return parts[0] if len(parts) == 1 else b"".join(parts)


def read_u64(space: AddressSpace, addr: int) -> int:
    """One little-endian 64-bit word of target memory."""
    return struct.unpack("<Q", space.read(addr, 8))[0]
