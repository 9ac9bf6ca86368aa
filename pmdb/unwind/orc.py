"""One ORC unwinding step on x86-64: from a frame's registers and the ORC entry covering its pc,
the caller's registers — through a return address (CALL), or through the pt_regs an interrupt
or exception pushed (REGS), or the iret frame alone (REGS_PARTIAL).

The rules are the kernel's own (arch/x86/kernel/unwind_orc.c): the caller's stack pointer is
a base register plus an offset, possibly read indirectly (a switch back from an IRQ stack);
its frame pointer is unchanged, or saved at an offset from that stack pointer or from rbp.
ORC says nothing about other callee-saved registers, so a caller reached through a return
address knows only rip, rsp and rbp; one reached through pt_regs knows every register the
exception saved — the interrupted context's, e.g. the registers of a faulting instruction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pmdb.unwind.orc_table import OrcEntry, OrcReg, OrcType

WORD = 8
# struct pt_regs (arch/x86/include/asm/ptrace.h), in register names; the kernel ABI since 2.6.
PT_REGS = (
    "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8",
    "rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "rflags", "rsp", "ss",
)
PT_REGS_SIZE = WORD * len(PT_REGS)
# The iret frame the CPU pushes (rip, cs, rflags, rsp, ss) is pt_regs' tail.
IRET_FRAME_OFFSET = WORD * PT_REGS.index("rip")
_IRET_NAMES = PT_REGS[PT_REGS.index("rip"):]
# Base registers ORC may name for the previous sp, other than sp and bp.
_NAMED_BASES = {OrcReg.DX: "rdx", OrcReg.DI: "rdi", OrcReg.R10: "r10", OrcReg.R13: "r13"}


class OrcStop(Exception):
    """The ORC entry ends the unwind: the normal end of a stack when `outermost`, else missing
    or unusable information (the message says which)."""

    def __init__(self, message: str, outermost: bool = False) -> None:
        super().__init__(message)
        self.outermost = outermost


@dataclass(frozen=True)
class OrcStep:
    """The caller's registers, the callee's CFA (the previous sp ORC computed: for a regs
    frame, where pt_regs or the iret frame lies), and how the caller was reached.

    `regs_address` is the address of the pt_regs read (for REGS_PARTIAL, of the pt_regs whose
    tail is the iret frame), None for a return address. `exact_pc` is true when the caller's
    pc is an interrupted instruction rather than a return address. `switches_stack` is true
    when the caller's sp may lie on another stack (IRQ stack to task stack, exception entry),
    so it need not be above the callee's.
    """

    registers: dict[str, int]
    cfa: int
    regs_address: int | None
    exact_pc: bool
    switches_stack: bool


def orc_step(entry: OrcEntry, regs: dict[str, int], read_word: Callable[[int], int]) -> OrcStep:
    """The caller of the frame whose registers are `regs`, by `entry` (the ORC entry at its
    lookup pc). `read_word` reads a 64-bit word of the stack (raising what it raises on a bad
    address). Raises OrcStop when the entry ends the stack or cannot be followed.
    """
    if entry.type is OrcType.END_OF_STACK:
        raise OrcStop("outermost frame (ORC: end of stack)", outermost=True)
    if entry.type is OrcType.UNDEFINED:
        raise OrcStop("ORC has no unwind information at this pc")
    sp, indirect = _previous_sp(entry, regs, read_word)
    if entry.type is OrcType.CALL:
        caller = {"rip": read_word(sp - WORD), "rsp": sp}
        if "rbp" in regs:
            caller["rbp"] = regs["rbp"]
        regs_address = None
    elif entry.type is OrcType.REGS:
        regs_address = sp
        caller = {name: read_word(sp + WORD * i) for i, name in enumerate(PT_REGS)}
    else:
        regs_address = sp - IRET_FRAME_OFFSET
        caller = dict(regs)
        caller.update({name: read_word(sp + WORD * i) for i, name in enumerate(_IRET_NAMES)})
    _previous_bp(entry, regs, sp, caller, read_word)
    if regs_address is not None and caller["cs"] & 3:
        raise OrcStop(f"outermost kernel frame (pt_regs at {regs_address:#x} hold user-mode registers)",
                      outermost=True)
    return OrcStep(caller, sp, regs_address, entry.signal, indirect or regs_address is not None)


def _previous_sp(entry: OrcEntry, regs: dict[str, int],
                 read_word: Callable[[int], int]) -> tuple[int, bool]:
    """(the previous frame's sp, whether it was read indirectly)."""
    reg = entry.sp_reg
    if reg in (OrcReg.SP, OrcReg.SP_INDIRECT):
        base = _need(regs, "rsp", reg)
    elif reg in (OrcReg.BP, OrcReg.BP_INDIRECT):
        base = _need(regs, "rbp", reg)
    elif reg in _NAMED_BASES:
        return _need(regs, _NAMED_BASES[OrcReg(reg)], reg) + entry.sp_offset, False
    else:
        raise OrcStop(f"ORC names an unknown base register {reg} for the previous sp")
    if reg == OrcReg.SP_INDIRECT and entry.offset_after_indirect:
        return read_word(base) + entry.sp_offset, True
    if reg in (OrcReg.SP_INDIRECT, OrcReg.BP_INDIRECT):
        return read_word(base + entry.sp_offset), True
    return base + entry.sp_offset, False


def _previous_bp(entry: OrcEntry, regs: dict[str, int], sp: int, caller: dict[str, int],
                 read_word: Callable[[int], int]) -> None:
    """Set the caller's rbp: unchanged (or from pt_regs, already in `caller`), or saved at an
    offset from the previous sp or from the callee's rbp."""
    reg = entry.bp_reg
    if reg == OrcReg.UNDEFINED:
        return
    if reg == OrcReg.PREV_SP:
        caller["rbp"] = read_word(sp + entry.bp_offset)
    elif reg == OrcReg.BP:
        caller["rbp"] = read_word(_need(regs, "rbp", reg) + entry.bp_offset)
    else:
        raise OrcStop(f"ORC names an unknown base register {reg} for the previous bp")


def _need(regs: dict[str, int], name: str, reg: int) -> int:
    value = regs.get(name)
    if value is None:
        raise OrcStop(f"ORC needs %{name} ({OrcReg(reg).name}), which is not known in this frame")
    return value
