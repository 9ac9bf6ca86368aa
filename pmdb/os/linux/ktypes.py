"""The kernel's types: its BTF read out of dump memory, each module's split BTF, and DWARF
from a vmlinux or module file the user names.

vmlinux's BTF lies in its rodata between the linker symbols `__start_BTF` and `__stop_BTF`
(CONFIG_DEBUG_INFO_BTF); a module built with BTF keeps its own, split over vmlinux's, at
`struct module`'s `btf_data`. A blob is read once and copied out of the dump, so the types
outlive no mapping.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pmdb.errors import BadDumpError, FaultError, MissingDebugInfoError, PmdbError
from pmdb.os.linux.reader import KernelReader

if TYPE_CHECKING:
    from pmdb.debuginfo.btf_types import BtfTypes
    from pmdb.debuginfo.typesystem import TypeSource
    from pmdb.formats.elf import ElfFile

MAX_BTF = 64 << 20  # a vmlinux BTF is a few MiB; more is not BTF


def memory_btf(reader: KernelReader, start: int | None, stop: int | None) -> BtfTypes:
    """vmlinux's BTF between `__start_BTF` and `__stop_BTF`: MissingDebugInfoError without the
    symbols, BadDumpError when the blob is absurd or not in the dump."""
    from pmdb.debuginfo.btf_types import BtfTypes

    if start is None or stop is None:
        raise MissingDebugInfoError("no kernel BTF: the kernel's symbols lack __start_BTF/__stop_BTF "
                                    "(a kernel built without CONFIG_DEBUG_INFO_BTF)")
    if not 0 < stop - start <= MAX_BTF:
        raise BadDumpError(f"kernel BTF from {start:#x} to {stop:#x}: not a BTF blob's size")
    try:
        data = reader.read(start, stop - start)
    except FaultError as e:
        raise BadDumpError(f"kernel BTF at {start:#x} is not in the dump: {e}") from None
    return BtfTypes.from_bytes(data, f"kernel BTF at {start:#x}")


def module_btf(reader: KernelReader, name: str, where: tuple[int, int], base: BtfTypes) -> BtfTypes:
    """A module's split BTF at `where` (address, size) over vmlinux's `base`."""
    from pmdb.debuginfo.btf_types import BtfTypes

    addr, size = where
    if not 0 < size <= MAX_BTF:
        raise BadDumpError(f"module {name}: BTF of {size} bytes is not a BTF blob's size")
    return BtfTypes.from_bytes(reader.read(addr, size), f"module {name} BTF", base)


def dwarf_source(elf: ElfFile) -> TypeSource | None:
    """The DWARF of a vmlinux or .ko file as a type source (None when it has no DWARF)."""
    from pmdb.debuginfo.dwarf_types import DwarfTypes
    from pmdb.formats.dwarf import has_dwarf

    try:
        if not has_dwarf(elf):
            return None
        build_id = elf.build_id()
    except PmdbError:
        return None
    return DwarfTypes(elf, build_id.hex() if build_id else None)
