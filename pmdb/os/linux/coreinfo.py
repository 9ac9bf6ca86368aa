"""VMCOREINFO as the personality reads it: symbols, offsets and sizes by name, None when an
entry is missing or malformed (the personality then says what it could not read).

The dump reader parses the note (pmdb.formats.vmcoreinfo.VmcoreInfo, whose accessors raise
on a malformed entry); this view takes its entries, or any KEY=value mapping (tests).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _entries(record: Any) -> dict[str, str]:
    """The KEY=value pairs of a VmcoreInfo (its `entries`) or of a mapping; none for None."""
    entries = getattr(record, "entries", record)
    return {str(k): str(v) for k, v in entries.items()} if isinstance(entries, Mapping) else {}


class CoreInfo:
    """Typed lookups in one VMCOREINFO record; a missing or malformed entry is None."""

    def __init__(self, record: Any) -> None:
        self.entries = _entries(record)

    def text(self, key: str) -> str | None:
        """The entry's value as written (`OSRELEASE`, `BUILD-ID`, `CRASHTIME`)."""
        return self.entries.get(key)

    def _int(self, key: str, base: int) -> int | None:
        value = self.entries.get(key)
        if value is None:
            return None
        try:
            return int(value.strip(), base)
        except ValueError:
            return None

    def symbol(self, name: str) -> int | None:
        """`SYMBOL(name)`: a run-time address (hex in the note)."""
        return self._int(f"SYMBOL({name})", 16)

    def offset(self, struct: str, member: str) -> int | None:
        """`OFFSET(struct.member)` in bytes."""
        return self._int(f"OFFSET({struct}.{member})", 10)

    def size(self, struct: str) -> int | None:
        """`SIZE(struct)` in bytes."""
        return self._int(f"SIZE({struct})", 10)

    @property
    def kaslr_offset(self) -> int:
        """`KERNELOFFSET`: how far KASLR moved the kernel from its link address (0 without)."""
        return self._int("KERNELOFFSET", 16) or 0

    @property
    def crash_time(self) -> int | None:
        """`CRASHTIME`: seconds since the epoch, written by a kdump kernel (None for QEMU's dumps)."""
        return self._int("CRASHTIME", 10)
