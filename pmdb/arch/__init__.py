"""Architectures: register tables, gregset layouts and the frame conventions of each CPU."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pmdb.errors import BadDumpError


@dataclass(frozen=True)
class Arch:
    """What pmdb knows of a CPU: register names in mdb's spelling, and how dumps lay them out.

    `gregset` names the 64-bit words of the ELF core's NT_PRSTATUS register block, in order;
    `dwarf` maps DWARF register numbers to names; `callee_saved` registers keep their values
    in callers; `register_views` are the registers and narrower views (`eax`) mdb names as
    variables, as (variable, register, shift, bits) in mdb's table order.
    """

    name: str
    elf_machine: int
    pointer_size: int
    pc: str
    sp: str
    fp: str
    gregset: tuple[str, ...]
    dwarf: tuple[str, ...]
    return_address_column: int
    callee_saved: tuple[str, ...] = ()
    register_views: tuple[tuple[str, str, int, int], ...] = ()

    def decode_gregset(self, raw: bytes) -> dict[str, int]:
        """Register values from an NT_PRSTATUS register block."""
        need = 8 * len(self.gregset)
        if len(raw) < need:
            raise BadDumpError(f"{self.name} register block is {len(raw)} bytes, expected {need}")
        return dict(zip(self.gregset, struct.unpack_from(f"<{len(self.gregset)}Q", raw), strict=True))

    def dwarf_name(self, regno: int) -> str | None:
        """The register name for a DWARF register number, if it is one pmdb tracks."""
        return self.dwarf[regno] if 0 <= regno < len(self.dwarf) else None


def arch_for_elf_machine(machine: int) -> Arch:
    """The Arch for an ELF e_machine value, or BadDumpError naming it."""
    from pmdb.arch.x86_64 import X86_64

    if machine == X86_64.elf_machine:
        return X86_64
    raise BadDumpError(f"unsupported machine type {machine} (pmdb reads x86-64 dumps)")
