"""Finding, on this machine, the files a dump names (executables, shared objects, data files).

A core from another machine names paths of that machine: `sysroot` is prepended to them,
and each directory of `search_path` is tried with the file's base name.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Sequence

from pmdb.errors import BadDumpError
from pmdb.formats.elf import ElfFile, is_elf


class FileLocator:
    """Resolves target paths to host paths and opens each file once, read-only."""

    def __init__(self, sysroot: str | None = None, search_path: Sequence[str] = ()) -> None:
        self.sysroot = sysroot
        self.search_path = tuple(search_path)
        self._elves: dict[str, ElfFile | None] = {}
        self._maps: dict[str, mmap.mmap | None] = {}

    def find(self, target_path: str) -> str | None:
        """The host path holding `target_path`, or None."""
        if not target_path.startswith("/") or target_path.endswith(" (deleted)"):
            return None
        first = os.path.join(self.sysroot, target_path.lstrip("/")) if self.sysroot else target_path
        candidates = [first] + [os.path.join(d, os.path.basename(target_path)) for d in self.search_path]
        for c in candidates:
            if os.path.isfile(c):
                return c
        return None

    def elf(self, host_path: str) -> ElfFile | None:
        """The host file parsed as ELF (cached), or None when it is not a readable ELF file."""
        if host_path not in self._elves:
            try:
                self._elves[host_path] = ElfFile(host_path) if is_elf(host_path) else None
            except BadDumpError:
                self._elves[host_path] = None
        return self._elves[host_path]

    def mapping(self, host_path: str) -> mmap.mmap | bytes | None:
        """The host file's bytes, mapped read-only (shared with its ElfFile when it is one)."""
        elf = self.elf(host_path)
        if elf is not None:
            return elf.data
        if host_path not in self._maps:
            try:
                with open(host_path, "rb") as f:
                    self._maps[host_path] = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError):
                self._maps[host_path] = None
        return self._maps[host_path]
