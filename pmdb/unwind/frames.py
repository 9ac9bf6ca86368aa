"""Frame and StackTrace records: what an unwinder found, and how it found each frame."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class UnwindMethod(enum.Enum):
    """How a frame's registers were recovered from its callee (frame 0: from the dump)."""

    DUMP = "registers from the dump"
    CFI = "DWARF CFI"
    SIGNAL = "signal frame (CFI)"
    FRAME_POINTER = "frame pointer"
    BAD_PC = "return address at [sp] (called a bad pc)"
    ORC = "ORC"
    PT_REGS = "ORC, registers from pt_regs (interrupt or exception)"
    GUESSED = "guessed: return address found by scanning the stack"


@dataclass(frozen=True)
class Frame:
    """One frame: its pc, stack pointer, the registers known in it, and how it was found.

    `exact_pc` is true when pc is the address of the instruction that was executing (frame 0,
    or a frame a signal interrupted) rather than a return address; symbols are looked up at
    pc-1 otherwise, as a return address may lie past the end of its call's function.
    `cfa` is the canonical frame address (the caller's sp before the call), when known.
    `signal_frame` marks a frame whose caller was interrupted rather than called: a signal
    trampoline, or kernel entry code that saved the interrupted registers in a pt_regs.
    """

    level: int
    pc: int
    sp: int
    registers: dict[str, int]
    method: UnwindMethod
    exact_pc: bool
    signal_frame: bool = False
    cfa: int | None = None

    @property
    def lookup_pc(self) -> int:
        """The address to look the frame's function up at."""
        return self.pc if self.exact_pc else self.pc - 1


@dataclass(frozen=True)
class StackTrace:
    """The frames of one thread, innermost first, and why unwinding stopped; `complete` is false
    when it stopped for want of data (unreadable stack, no unwind information, a loop).
    """

    frames: tuple[Frame, ...]
    stop_reason: str
    complete: bool = True
