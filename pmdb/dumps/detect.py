"""Sniffing a dump's format from its first bytes and opening it with the right reader.

- ELF ET_CORE with a VMCOREINFO or QEMU note: a kernel vmcore (dumps/vmcore.py);
  any other ELF core: a process core (dumps/elfcore.py);
- "KDUMP   " (or the old "DISKDUMP"): kdump-compressed (dumps/kdump.py);
- "makedumpfile": makedumpfile's flattened stream of a kdump-compressed dump, read in place.
"""

from __future__ import annotations

import os

from pmdb.dumps import Dump
from pmdb.dumps.locate import FileLocator
from pmdb.errors import BadDumpError

_KDUMP_SIGNATURES = (b"KDUMP   ", b"DISKDUMP")


def open_dump(path: str, locator: FileLocator) -> Dump:
    """Open any supported dump read-only; BadDumpError says what is wrong otherwise."""
    if os.path.isdir(path):
        raise BadDumpError(f"{path}: is a directory")
    try:
        with open(path, "rb") as f:
            magic = f.read(16)
    except OSError as e:
        raise BadDumpError(f"{path}: {e.strerror}") from None
    if magic[:4] == b"\x7fELF":
        return _open_elf(path, locator)
    if magic[:8] in _KDUMP_SIGNATURES or magic.startswith(b"makedumpfile\0"):
        from pmdb.dumps.kdump import open_kdump

        return open_kdump(path)
    if not magic:
        raise BadDumpError(f"{path}: empty file")
    raise BadDumpError(f"{path}: not a dump pmdb can read (unrecognized format)")


def _open_elf(path: str, locator: FileLocator) -> Dump:
    """A kernel vmcore or a process core, told apart by the notes only kernels write."""
    from pmdb.dumps.elfcore import open_core
    from pmdb.formats.elf import ET_CORE, ElfFile

    elf = ElfFile(path)
    if elf.type == ET_CORE:
        from pmdb.dumps.vmcore import is_kernel_core, open_vmcore

        if is_kernel_core(elf):
            return open_vmcore(elf)
    return open_core(path, locator)
