"""VMCOREINFO: the `KEY=value` lines a Linux kernel publishes for dump readers.

The kernel writes one entry per line: `OSRELEASE=6.1.0`, `PAGESIZE=4096`, `BUILD-ID=<hex>`,
`SYMBOL(name)=<hex address>` (already relocated by KASLR), `OFFSET(struct.member)`,
`SIZE(type)`, `LENGTH(array)` (unsigned decimal), `NUMBER(name)` (signed decimal; a few
kernels print 0x-prefixed hex), `KERNELOFFSET=<hex, no 0x>` (the KASLR offset) and
`CRASHTIME=<decimal seconds>` (only in dumps that kdump took).

Parsing keeps every entry verbatim; values are converted and checked when asked for, so an
entry nobody reads can be malformed without harm, and a malformed one that is needed gives a
VmcoreInfoError naming the key and what is wrong with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pmdb.errors import BadDumpError

MAX_VMCOREINFO_SIZE = 1 << 20  # the kernel's note is one page; anything much larger is not VMCOREINFO

_HEX = re.compile(r"(?:0[xX])?[0-9a-fA-F]{1,16}")
_DEC = re.compile(r"[-+]?[0-9]{1,20}")
_U64 = 1 << 64


class VmcoreInfoError(BadDumpError):
    """A VMCOREINFO entry that a reader needs is missing or malformed."""


@dataclass(frozen=True)
class VmcoreInfo:
    """Every VMCOREINFO entry by key, verbatim, with typed accessors.

    `ignored` holds the lines that were not `KEY=value` (kept for a warning, not fatal).
    """

    entries: dict[str, str]
    ignored: tuple[str, ...] = field(default=())

    # Raw access ------------------------------------------------------------------------

    def get(self, key: str) -> str | None:
        """The verbatim value of `key` (e.g. "SYMBOL(init_uts_ns)"), or None."""
        return self.entries.get(key)

    def require(self, key: str) -> str:
        """The verbatim value of `key`, or VmcoreInfoError saying it is missing."""
        value = self.entries.get(key)
        if value is None:
            raise VmcoreInfoError(f"VMCOREINFO has no {key} entry")
        return value

    # Typed access: None when absent, VmcoreInfoError when malformed ------------------

    def symbol(self, name: str) -> int | None:
        """SYMBOL(name): the symbol's run-time address (KASLR already applied by the kernel)."""
        return self._hex(f"SYMBOL({name})")

    def offset(self, member: str) -> int | None:
        """OFFSET(struct.member): a member's byte offset."""
        return self._unsigned(f"OFFSET({member})")

    def size(self, type_name: str) -> int | None:
        """SIZE(type): a type's size in bytes."""
        return self._unsigned(f"SIZE({type_name})")

    def length(self, name: str) -> int | None:
        """LENGTH(name): an array's number of elements."""
        return self._unsigned(f"LENGTH({name})")

    def number(self, name: str) -> int | None:
        """NUMBER(name): a signed constant (NUMBER(phys_base) is negative on some machines)."""
        key = f"NUMBER({name})"
        raw = self.entries.get(key)
        if raw is None:
            return None
        if raw.lower().startswith("0x"):
            return self._hex(key)
        return self._signed(key, raw)

    # Well-known entries -----------------------------------------------------------------

    @property
    def osrelease(self) -> str | None:
        """OSRELEASE: the kernel release (`uname -r`)."""
        return self.entries.get("OSRELEASE")

    @property
    def build_id(self) -> str | None:
        """BUILD-ID: the vmlinux GNU build-id as hex (kernels 5.8 and later)."""
        raw = self.entries.get("BUILD-ID")
        if raw is not None and not re.fullmatch(r"[0-9a-fA-F]{2,128}", raw):
            raise VmcoreInfoError(f"VMCOREINFO BUILD-ID={raw!r}: not a hexadecimal build-id")
        return raw.lower() if raw else None

    @property
    def page_size(self) -> int:
        """PAGESIZE: a power of two from 1 KiB to 1 MiB, or VmcoreInfoError."""
        value = self._unsigned("PAGESIZE")
        if value is None:
            raise VmcoreInfoError("VMCOREINFO has no PAGESIZE entry")
        if value & (value - 1) or not 1024 <= value <= 1 << 20:
            raise VmcoreInfoError(f"VMCOREINFO PAGESIZE={value}: not a power of two from 1024 to 1048576")
        return value

    @property
    def kernel_offset(self) -> int | None:
        """KERNELOFFSET: how far KASLR moved the kernel image from its link-time address."""
        return self._hex("KERNELOFFSET")

    @property
    def phys_base(self) -> int | None:
        """NUMBER(phys_base): physical minus link-time physical address of the kernel (signed)."""
        return self.number("phys_base")

    @property
    def crash_time(self) -> int | None:
        """CRASHTIME: seconds since the epoch when kdump took the dump (absent in QEMU dumps)."""
        raw = self.entries.get("CRASHTIME")
        return None if raw is None else self._signed("CRASHTIME", raw)

    @property
    def pgtable_l5_enabled(self) -> bool | None:
        """NUMBER(pgtable_l5_enabled): whether x86-64 runs 5-level page tables (None: not said)."""
        value = self.number("pgtable_l5_enabled")
        if value not in (None, 0, 1):
            raise VmcoreInfoError(f"VMCOREINFO NUMBER(pgtable_l5_enabled)={value}: not 0 or 1")
        return None if value is None else bool(value)

    # Conversions -------------------------------------------------------------------------

    def _hex(self, key: str) -> int | None:
        raw = self.entries.get(key)
        if raw is None:
            return None
        if not _HEX.fullmatch(raw):
            raise VmcoreInfoError(f"VMCOREINFO {key}={raw!r}: not a 64-bit hexadecimal number")
        return int(raw, 16)

    def _unsigned(self, key: str) -> int | None:
        raw = self.entries.get(key)
        if raw is None:
            return None
        value = self._signed(key, raw)
        if value < 0:
            raise VmcoreInfoError(f"VMCOREINFO {key}={raw!r}: negative")
        return value

    @staticmethod
    def _signed(key: str, raw: str) -> int:
        if not _DEC.fullmatch(raw):
            raise VmcoreInfoError(f"VMCOREINFO {key}={raw!r}: not a decimal number")
        value = int(raw, 10)
        if not -(1 << 63) <= value < _U64:
            raise VmcoreInfoError(f"VMCOREINFO {key}={raw!r}: out of the 64-bit range")
        return value


def parse_vmcoreinfo(data: bytes | memoryview) -> VmcoreInfo:
    """Parse VMCOREINFO text; trailing NUL padding is ignored, the first of duplicate keys wins."""
    if len(data) > MAX_VMCOREINFO_SIZE:
        raise VmcoreInfoError(f"VMCOREINFO is {len(data):#x} bytes, more than the {MAX_VMCOREINFO_SIZE:#x} allowed")
    text = bytes(data).split(b"\0", 1)[0].decode("ascii", "replace")
    entries: dict[str, str] = {}
    ignored = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        key, eq, value = line.partition("=")
        if not eq or not key:
            ignored.append(line)
            continue
        entries.setdefault(key, value)
    if not entries:
        raise VmcoreInfoError("VMCOREINFO holds no KEY=value entries")
    return VmcoreInfo(entries, tuple(ignored))
