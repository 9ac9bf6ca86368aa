"""Typed reads of kernel memory: integers, pointers, C strings and lists, with bounds.

Every read goes through the dump's AddressSpace, so a missing page is a FaultError naming
the address; list walks stop at a bound rather than loop forever on a corrupt list.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from pmdb.errors import BadDumpError, FaultError
from pmdb.memory.space import AddressSpace

MAX_LIST = 1 << 20  # entries a list walk follows before calling the list corrupt


class KernelReader:
    """Little-endian reads of a 64-bit kernel's virtual memory."""

    def __init__(self, memory: AddressSpace) -> None:
        self.memory = memory

    def read(self, addr: int, size: int) -> bytes:
        """Exactly `size` bytes, or FaultError."""
        return self.memory.read(addr, size)

    def read_upto(self, addr: int, size: int) -> bytes:
        """Up to `size` bytes at `addr`: as many as are readable before a hole, at least one
        (else FaultError) -- for a table whose end is not known."""
        try:
            return self.memory.read(addr, size)
        except FaultError as e:
            if e.address <= addr:
                raise
            return self.memory.read(addr, e.address - addr)

    def u16(self, addr: int) -> int:
        """An unsigned 16-bit integer."""
        return struct.unpack("<H", self.memory.read(addr, 2))[0]

    def u32(self, addr: int) -> int:
        """An unsigned 32-bit integer."""
        return struct.unpack("<I", self.memory.read(addr, 4))[0]

    def s32(self, addr: int) -> int:
        """A signed 32-bit integer."""
        return struct.unpack("<i", self.memory.read(addr, 4))[0]

    def u64(self, addr: int) -> int:
        """An unsigned 64-bit integer (and pointers)."""
        return struct.unpack("<Q", self.memory.read(addr, 8))[0]

    def uint(self, addr: int, size: int) -> int:
        """An unsigned integer of `size` bytes."""
        return int.from_bytes(self.memory.read(addr, size), "little")

    def cstring(self, addr: int, limit: int = 256) -> str:
        """The NUL-terminated string at `addr`, at most `limit` bytes, read a page at a time."""
        out = bytearray()
        while len(out) < limit:
            chunk = min(limit - len(out), 4096 - (addr + len(out)) % 4096)
            data = self.memory.read(addr + len(out), chunk)
            end = data.find(b"\0")
            if end >= 0:
                out += data[:end]
                break
            out += data
        return out.decode("utf-8", "replace")

    def list_entries(self, head: int, next_offset: int = 0) -> Iterator[int]:
        """The addresses of the `struct list_head`s on the list whose head is at `head` (not the
        head itself); BadDumpError when the list does not come back within MAX_LIST entries."""
        node = self.u64(head + next_offset)
        for _ in range(MAX_LIST):
            if node == head:
                return
            if node == 0:
                raise BadDumpError(f"list at {head:#x} is broken: a NULL next pointer")
            yield node
            node = self.u64(node + next_offset)
        raise BadDumpError(f"list at {head:#x} does not end after {MAX_LIST} entries")
