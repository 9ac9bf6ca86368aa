"""Dump formats: each module opens one format and produces a Dump (bytes, notes, registers)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from pmdb.arch import Arch
from pmdb.memory.space import AddressSpace


class DumpKind(enum.Enum):
    """What a dump is a dump of."""

    PROCESS_CORE = "core file"
    RAW_FILE = "raw file"
    KERNEL_ELF = "kernel crash dump (ELF)"
    KDUMP = "kernel crash dump (kdump-compressed)"


@dataclass(frozen=True)
class ThreadState:
    """One thread as the dump recorded it: its id, its registers, the signal it had, and its
    floating point state when the dump has it (an arch-specific record).

    In a kernel dump each ThreadState is one CPU: `cpu` is its index and `tid` the pr_pid of
    its NT_PRSTATUS (the task running there for kdump; cpu+1 in QEMU's dumps, not a task id).
    """

    tid: int
    registers: dict[str, int]
    signal: int = 0
    fpregs: Any = None
    cpu: int | None = None


@dataclass(frozen=True)
class Mapping:
    """A mapping of the dumped address space: [start, end), permissions like `r-x`, its file."""

    start: int
    end: int
    perms: str
    path: str = ""
    offset: int = 0


@dataclass
class Dump:
    """A dump knows bytes, not operating systems: address space, threads' registers, notes.

    `notes` holds the format's decoded records by name (e.g. "psinfo", "siginfo", "files";
    for kernel dumps "vmcoreinfo" and "kernel_layout"); `warnings` are one-line messages about
    what could not be read, shown once at open. For kernel dumps `memory` is the kernel's
    virtual address space and `physical` the physical one (None for other dumps).
    """

    path: str
    kind: DumpKind
    arch: Arch
    memory: AddressSpace
    threads: list[ThreadState]
    mappings: list[Mapping] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    physical: AddressSpace | None = None
