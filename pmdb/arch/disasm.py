"""x86-64 disassembly: capstone decodes, this module renders instructions as mdb's libdisasm does.

mdb's AT&T dialect: the mnemonic padded to 6 and a blank, operands joined by `,` with no
blank, hex everywhere (`0x8(%r13)`, `$0x10`), branch and call targets as the signed distance
from the next instruction (`+0x57`), and a TAB then `<symbol>` for addresses that name
something. This is the only module that imports capstone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import capstone
from capstone import x86

_GRP_JUMP, _GRP_CALL, _GRP_BRANCH_RELATIVE = 1, 2, 7
_MNEMONICS = {"callq": "call", "retq": "ret", "leaveq": "leave", "jmpq": "jmp"}
_UNSIGNED_IMM = ("and", "or", "xor", "test", "in", "out", "rol", "ror", "rcl", "rcr", "shl", "shr", "sal", "sar")
_MAX_INSN = 15


@dataclass(frozen=True)
class Instruction:
    """One decoded instruction: where, how long, its bytes, and its mdb-style text."""

    address: int
    size: int
    raw: bytes
    text: str
    branch_target: int | None = None


Symbolic = Callable[[int], str | None]


class Disassembler:
    """Decodes x86-64 code read through a callback and renders it mdb's way."""

    def __init__(self, symbolic: Symbolic) -> None:
        """`symbolic(addr)` gives `sym+0x..` for an address inside a symbol, else None."""
        self._cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
        self._cs.syntax = capstone.CS_OPT_SYNTAX_ATT
        self._cs.detail = True
        self._symbolic = symbolic

    def decode(self, code: bytes, address: int) -> Iterator[Instruction]:
        """Instructions from the start of `code` until it ends or stops decoding."""
        for insn in self._cs.disasm(code, address):
            yield self._render(insn)

    def decode_one(self, code: bytes, address: int) -> Instruction:
        """The instruction at the start of `code` (undecodable bytes render as mdb's error text)."""
        for insn in self._cs.disasm(code[:_MAX_INSN], address, 1):
            return self._render(insn)
        return Instruction(address, 1, code[:1], "***ERROR--unknown op code***")

    def _render(self, insn: capstone.CsInsn) -> Instruction:
        mnemonic = _MNEMONICS.get(insn.mnemonic, insn.mnemonic)
        if insn.mnemonic.startswith(("rep ", "repne ", "lock ")):
            mnemonic = insn.mnemonic
        ops: list[str] = []
        notes: list[str] = []
        target = None
        relative = _GRP_BRANCH_RELATIVE in insn.groups
        for op in insn.operands:
            if op.type == x86.X86_OP_REG:
                star = "*" if _indirect(insn) else ""
                ops.append(f"{star}%{insn.reg_name(op.reg)}")
            elif op.type == x86.X86_OP_IMM and relative:
                target = op.imm & (1 << 64) - 1
                ops.append(_signed_hex(target - insn.address - insn.size))
                notes.append(self._symbolic(target) or f"{target:#x}")
            elif op.type == x86.X86_OP_IMM:
                ops.append(self._immediate(mnemonic, op.imm, op.size, notes))
            elif op.type == x86.X86_OP_MEM:
                ops.append(("*" if _indirect(insn) else "") + self._memory(insn, op, notes))
        text = f"{mnemonic:<6} " + ",".join(ops)
        for note in notes:
            text += f"\t<{note}>"
        return Instruction(insn.address, insn.size, bytes(insn.bytes), text, target)

    def _immediate(self, mnemonic: str, imm: int, size: int, notes: list[str]) -> str:
        mask = (1 << (8 * (size or 8))) - 1
        if imm < 0 and imm >= -255 and not mnemonic.startswith(_UNSIGNED_IMM):
            notes.append(f"{imm & mask:#x}")
            return f"$-{-imm:#x}"
        value = imm & mask
        sym = self._symbolic(value) if value else None
        if sym:
            notes.append(sym)
        return f"${value:#x}"

    def _memory(self, insn: capstone.CsInsn, op: x86.X86Op, notes: list[str]) -> str:
        m = op.mem
        seg = f"%{insn.reg_name(m.segment)}:" if m.segment else ""
        base = insn.reg_name(m.base) if m.base else None
        index = insn.reg_name(m.index) if m.index else None
        if base == "rip":
            dest = (insn.address + insn.size + m.disp) & (1 << 64) - 1
            notes.append(self._symbolic(dest) or f"{dest:#x}")
            return f"{seg}{_signed_hex(m.disp)}(%rip)"
        if base is None and index is None:
            addr = m.disp & (1 << 64) - 1
            sym = self._symbolic(addr) if addr and not seg else None
            if sym:
                notes.append(sym)
            return f"{seg}{addr:#x}"
        disp = "" if m.disp == 0 else (f"-{-m.disp:#x}" if m.disp < 0 else f"{m.disp:#x}")
        if base is None and m.disp == 0:
            disp = "0x0"
        inner = f"%{base}" if base else ""
        if index:
            inner += f",%{index},{m.scale}"
        return f"{seg}{disp}({inner})"


def _indirect(insn: capstone.CsInsn) -> bool:
    """Indirect jumps and calls take `*` before their operand in AT&T syntax."""
    groups = insn.groups
    return (_GRP_CALL in groups or _GRP_JUMP in groups) and _GRP_BRANCH_RELATIVE not in groups


def _signed_hex(n: int) -> str:
    return f"-{-n:#x}" if n < 0 else f"+{n:#x}"
