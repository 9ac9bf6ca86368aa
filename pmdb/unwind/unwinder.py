"""The unwinding strategy loop: ORC (kernel code), DWARF CFI, then the frame pointer, with the
"called a bad pc" step for a frame 0 whose pc is not code, a stack scan as the last resort where
the code has ORC (the guess marked as such), and guards against loops and runaway depth.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from pmdb.arch import Arch
from pmdb.debuginfo.dwarf_expr import evaluate
from pmdb.errors import FaultError, PmdbError
from pmdb.formats.cfi import CfiRow, RuleKind
from pmdb.memory.space import AddressSpace, read_u64
from pmdb.unwind.frames import Frame, StackTrace, UnwindMethod
from pmdb.unwind.orc import OrcStop, orc_step
from pmdb.unwind.orc_table import OrcEntry, OrcType
from pmdb.unwind.scan import return_address_above

MAX_FRAMES = 1 << 20


class CodeMap(Protocol):
    """Where the unwinder gets the CFI for a run-time pc (the OS personality provides it)."""

    def cfi_row(self, pc: int) -> CfiRow | None:
        """The CFI row covering run-time `pc`, if any object's CFI covers it."""
        ...


@runtime_checkable
class OrcCodeMap(CodeMap, Protocol):
    """A code map of kernel text with ORC: the unwinder tries ORC before CFI, and scans the
    stack when nothing else can unwind a frame."""

    def orc_entry(self, pc: int) -> OrcEntry | None:
        """The ORC entry covering `pc`, None where no ORC table covers it; FaultError when the
        covering table cannot be read."""
        ...


class _Stop(Exception):
    """Unwinding cannot go past the current frame; the message says why, `outermost` whether
    that is the normal end of a stack rather than something missing or corrupt.
    """

    def __init__(self, message: str, outermost: bool = False, cfa: int | None = None) -> None:
        super().__init__(message)
        self.outermost = outermost
        self.cfa = cfa


class Unwinder:
    """Unwinds one thread's stack from its registers."""

    def __init__(self, arch: Arch, memory: AddressSpace, code: CodeMap, max_frames: int = MAX_FRAMES) -> None:
        self.arch = arch
        self.memory = memory
        self.code = code
        self.max_frames = max_frames
        self._orc: Callable[[int], OrcEntry | None] | None = (
            code.orc_entry if isinstance(code, OrcCodeMap) else None)

    def unwind(self, registers: dict[str, int], exact_pc: bool = True) -> StackTrace:
        """Every frame from the innermost out, stopping at the outermost frame or a guard.
        `exact_pc` false says the pc is a return address (a sleeping kernel task's saved
        context), so its function is looked up at pc - 1."""
        arch = self.arch
        return self._walk(
            Frame(0, registers[arch.pc], registers[arch.sp], dict(registers), UnwindMethod.DUMP, exact_pc))

    def unwind_from_frame_pointer(self, fp: int) -> StackTrace:
        """The stack whose innermost frame pointer is `fp` (mdb's `addr$c`): [fp] is the saved
        frame pointer and [fp+8] the return address into the first frame shown.
        """
        arch = self.arch
        try:
            regs = {arch.fp: self._read(fp), arch.pc: self._read(fp + 8), arch.sp: fp + 16}
        except _Stop as stop:
            raise PmdbError(str(stop)) from None
        return self._walk(Frame(0, regs[arch.pc], regs[arch.sp], regs, UnwindMethod.FRAME_POINTER, False))

    def _walk(self, frame: Frame) -> StackTrace:
        frames: list[Frame] = []
        seen: set[tuple[int, int]] = set()
        while True:
            try:
                nxt, frame = self._step(frame)
            except _Stop as stop:
                frames.append(dataclasses.replace(frame, cfa=stop.cfa) if stop.cfa is not None else frame)
                return StackTrace(tuple(frames), str(stop), complete=stop.outermost)
            frames.append(frame)
            if len(frames) >= self.max_frames:
                return StackTrace(tuple(frames), f"stopped after {self.max_frames} frames", complete=False)
            key = (nxt.pc, nxt.sp)
            if key in seen:
                return StackTrace(tuple(frames), "stack loops back on itself", complete=False)
            seen.add(key)
            frame = nxt

    def _step(self, f: Frame) -> tuple[Frame, Frame]:
        """(the caller of f, f completed with its CFA and whether it is a signal frame)."""
        if self._orc is not None and f.level == 0 and f.registers.get("cs", 0) & 3:
            raise _Stop("the thread was running in user mode", outermost=True)
        if f.level == 0 and not self._is_code(f.pc):
            caller = self._bad_pc_step(f)
            return caller, dataclasses.replace(f, cfa=caller.sp)
        entry = self._orc_entry(f.lookup_pc) if self._orc is not None else None
        if entry is not None and entry.type is not OrcType.UNDEFINED:
            return self._orc_step(f, entry)
        row = self.code.cfi_row(f.lookup_pc)
        if row is not None:
            f = dataclasses.replace(f, signal_frame=row.signal_frame)
            caller, cfa = self._cfi_step(f, row)
            return caller, dataclasses.replace(f, cfa=cfa)
        if self._orc is not None:
            return self._orc_fallback(f, entry)
        caller = self._fp_step(f)
        return caller, dataclasses.replace(f, cfa=caller.sp)

    def _orc_fallback(self, f: Frame, entry: OrcEntry | None) -> tuple[Frame, Frame]:
        """Kernel code that neither ORC nor CFI unwinds: where no ORC table covers the pc (e.g.
        a BPF program), a frame pointer that leads back into ORC code; else a stack scan."""
        if entry is None:
            caller = self._checked_fp_step(f)
            if caller is not None:
                return caller, dataclasses.replace(f, cfa=caller.sp)
        why = "no ORC or CFI covers this pc" if entry is None else "ORC has no unwind information at this pc"
        return self._guess_step(f, why), f

    def _orc_entry(self, pc: int) -> OrcEntry | None:
        assert self._orc is not None
        try:
            return self._orc(pc)
        except FaultError as e:
            raise _Stop(f"cannot read the ORC table at {e.address:#x}: {e}") from None

    def _orc_step(self, f: Frame, entry: OrcEntry) -> tuple[Frame, Frame]:
        """(the caller, f completed) by the kernel's ORC entry for f's pc."""
        try:
            step = orc_step(entry, f.registers, self._read)
        except OrcStop as stop:
            raise _Stop(str(stop), outermost=stop.outermost) from None
        f = dataclasses.replace(f, cfa=step.cfa, signal_frame=step.regs_address is not None)
        if not step.registers[self.arch.pc]:
            raise _Stop("outermost frame (return address 0)", outermost=True, cfa=step.cfa)
        method = UnwindMethod.ORC if step.regs_address is None else UnwindMethod.PT_REGS
        return self._caller(f, step.registers, method, step.exact_pc, step.switches_stack), f

    def _checked_fp_step(self, f: Frame) -> Frame | None:
        """The frame-pointer step, if it leads to a return address into code with ORC."""
        try:
            caller = self._fp_step(f)
        except _Stop:
            return None
        return caller if self._has_orc(caller.pc - 1) else None

    def _has_orc(self, pc: int) -> bool:
        assert self._orc is not None
        try:
            entry = self._orc(pc)
        except FaultError:
            return False
        return entry is not None and entry.type is not OrcType.UNDEFINED

    def _guess_step(self, f: Frame, why: str) -> Frame:
        """Nothing says where f's caller is: take the first word above sp that is a return
        address into code with ORC, right after a call instruction (as the kernel's own
        "? " guesses), its callee-saved registers unknown."""
        found = return_address_above(self.memory, f.sp, lambda addr: self._has_orc(addr - 1))
        if found is None:
            raise _Stop(f"{why}, and no return address was found on the stack above it")
        slot, ra = found
        regs = {self.arch.pc: ra, self.arch.sp: slot + 8}
        return self._caller(f, regs, UnwindMethod.GUESSED, exact=False)

    def _is_code(self, pc: int) -> bool:
        try:
            self.memory.read(pc, 1)
        except FaultError:
            return False
        return pc != 0

    def _read(self, addr: int) -> int:
        try:
            return read_u64(self.memory, addr)
        except FaultError as e:
            raise _Stop(f"cannot read the stack at {e.address:#x}: {e}") from None

    def _bad_pc_step(self, f: Frame) -> Frame:
        """Frame 0 jumped to a non-code address: its return address is the word at sp."""
        regs = dict(f.registers)
        regs[self.arch.pc] = self._read(f.sp)
        regs[self.arch.sp] = f.sp + 8
        return self._caller(f, regs, UnwindMethod.BAD_PC, exact=False)

    def _cfi_step(self, f: Frame, row: CfiRow) -> tuple[Frame, int]:
        """(the caller, f's CFA) by the CFI row covering f's pc."""
        arch = self.arch

        def reg(n: int) -> int | None:
            name = arch.dwarf_name(n)
            return f.registers.get(name) if name else None

        if row.cfa_expr is not None:
            cfa = evaluate(row.cfa_expr, reg, self._read)
        else:
            base = reg(row.cfa_reg) if row.cfa_reg is not None else None
            cfa = None if base is None else base + row.cfa_offset
        if cfa is None:
            raise _Stop("the frame's CFA cannot be computed")
        ra_rule = row.rules.get(row.ra_column)
        if ra_rule is None or ra_rule.kind is RuleKind.UNDEFINED:
            raise _Stop("outermost frame (return address undefined)", outermost=True, cfa=cfa)
        regs = {n: f.registers[n] for n in arch.callee_saved if n in f.registers}
        regs[arch.sp] = cfa
        for regno, rule in row.rules.items():
            name = arch.dwarf_name(regno)
            if name is None:
                continue
            value = self._apply(regno, rule.kind, rule.arg, cfa, reg)
            if value is None:
                regs.pop(name, None)
            else:
                regs[name] = value
        ra = regs.get(arch.dwarf_name(row.ra_column) or "")
        if not ra:
            raise _Stop("outermost frame (return address 0)", outermost=True)
        regs[arch.pc] = ra
        method = UnwindMethod.SIGNAL if f.signal_frame else UnwindMethod.CFI
        return self._caller(f, regs, method, exact=f.signal_frame), cfa

    def _apply(self, regno: int, kind: RuleKind, arg: int | bytes | None, cfa: int,
               reg: Callable[[int], int | None]) -> int | None:
        """The caller's value of one register under one CFI rule (None: not recoverable)."""
        if kind is RuleKind.OFFSET:
            return self._read(cfa + arg)
        if kind is RuleKind.VAL_OFFSET:
            return cfa + arg
        if kind is RuleKind.REGISTER:
            return reg(arg)
        if kind is RuleKind.SAME:
            return reg(regno)
        if kind in (RuleKind.EXPRESSION, RuleKind.VAL_EXPRESSION):
            value = evaluate(arg, reg, self._read, initial=(cfa,))
            if value is None or kind is RuleKind.VAL_EXPRESSION:
                return value
            return self._read(value)
        return None

    def _fp_step(self, f: Frame) -> Frame:
        """No CFI: follow the saved frame pointer (rbp -> [saved rbp, return address])."""
        fp = f.registers.get(self.arch.fp)
        if fp is None or fp <= f.sp or fp % 8:
            raise _Stop("no unwind information and no usable frame pointer")
        regs = {self.arch.fp: self._read(fp), self.arch.pc: self._read(fp + 8), self.arch.sp: fp + 16}
        if regs[self.arch.pc] == 0:
            raise _Stop("outermost frame (return address 0)", outermost=True)
        return self._caller(f, regs, UnwindMethod.FRAME_POINTER, exact=False)

    def _caller(self, f: Frame, regs: dict[str, int], method: UnwindMethod, exact: bool,
                switches_stack: bool = False) -> Frame:
        """The caller frame, unless its sp fails to rise on the same stack (a signal frame or a
        switch of stacks may go anywhere)."""
        if regs[self.arch.sp] <= f.sp and not (f.signal_frame or switches_stack):
            raise _Stop("stack pointer does not increase: corrupt stack")
        return Frame(f.level + 1, regs[self.arch.pc], regs[self.arch.sp], regs, method, exact)
