"""pmdb: a post-mortem debugger for crash dumps that speaks the illumos mdb language.

`pmdb.open(path)` opens a dump and returns a Program (threads, registers, memory, symbols,
disassembly, stack traces).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pmdb.program import Program

__all__ = ["open"]


def open(
    path: str,
    executable: str | None = None,
    *,
    sysroot: str | None = None,
    search_path: Sequence[str] = (),
    debug_dirs: Sequence[str] = (),
    raw: bool = False,
    source_path: Sequence[str] = (),
    modules: Sequence[str] = (),
    system_map: str | None = None,
) -> Program:
    """Open a dump read-only. `executable` overrides the program file the core names;
    `sysroot` and `search_path` find mapped files of a core from another machine;
    `debug_dirs` are searched for separate debug files before /usr/lib/debug; `raw` opens
    any file as plain bytes at address 0 (mdb's -f); `source_path` directories are searched
    for source files before the directories they were compiled in.

    A Linux kernel crash dump needs nothing more: symbols come from its kallsyms, types from
    its BTF. `executable` may name its vmlinux (DWARF types and source) and `modules` its
    modules' .ko files (their DWARF types); `system_map` a System.map for vmlinux's symbols.
    """
    from pmdb.dumps.detect import open_dump
    from pmdb.dumps.locate import FileLocator
    from pmdb.os.userspace import UserProcess
    from pmdb.program import Program

    locator = FileLocator(sysroot, search_path)
    if raw:
        from pmdb.dumps.raw import open_raw

        dump = open_raw(path)
    else:
        dump = open_dump(path, locator)
    if dump.notes.get("vmcoreinfo") is not None:
        from pmdb.os.linux.kernel import LinuxKernel

        return Program(dump, LinuxKernel(dump, executable, modules, system_map), source_path)
    if modules or system_map:
        from pmdb.errors import UsageError

        raise UsageError(f"{path} is not a kernel crash dump: module files and a System.map are for kernel dumps")
    return Program(dump, UserProcess(dump, locator, executable, debug_dirs), source_path)
