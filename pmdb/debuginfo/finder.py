"""Finding separate debug files the way gdb and drgn do: by build-id, then by .gnu_debuglink."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from pmdb.formats.elf import ElfFile

DEFAULT_DEBUG_ROOT = "/usr/lib/debug"


def debug_file_candidates(host_path: str, elf: ElfFile, debug_dirs: Sequence[str]) -> list[str]:
    """Paths where the separate debug file of `elf` may be, best first."""
    roots = [*debug_dirs, DEFAULT_DEBUG_ROOT]
    out = []
    build_id = elf.build_id()
    if build_id and len(build_id) > 1:
        hexid = build_id.hex()
        out += [os.path.join(r, ".build-id", hexid[:2], hexid[2:] + ".debug") for r in roots]
    link = elf.debuglink()
    if link:
        here = os.path.dirname(os.path.abspath(host_path))
        out += [os.path.join(here, link), os.path.join(here, ".debug", link)]
        out += [os.path.join(r, here.lstrip("/"), link) for r in roots]
        out += [os.path.join(d, link) for d in debug_dirs]
    return out


def find_debug_file(
    host_path: str, elf: ElfFile, debug_dirs: Sequence[str],
    open_elf: Callable[[str], ElfFile | None],
) -> ElfFile | None:
    """The first candidate that is an ELF file whose build-id (if both have one) matches."""
    want = elf.build_id()
    for cand in debug_file_candidates(host_path, elf, debug_dirs):
        if cand == host_path or not os.path.isfile(cand):
            continue
        dbg = open_elf(cand)
        if dbg is None:
            continue
        have = dbg.build_id()
        if want and have and want != have:
            continue
        return dbg
    return None
