"""The last-resort unwinding heuristic on x86-64: scan the stack upward for a word that is a
return address — it points into known code, right after a call instruction.

Only a guess: a stale return address left by an earlier call looks the same, which is why the
kernel prints its own such finds with "? " and the unwinder marks them GUESSED.
"""

from __future__ import annotations

from collections.abc import Callable

from pmdb.errors import FaultError
from pmdb.memory.space import AddressSpace

MAX_SCAN_WORDS = 1024
_PAGE = 4096


def return_address_above(memory: AddressSpace, sp: int, is_code: Callable[[int], bool],
                         max_words: int = MAX_SCAN_WORDS) -> tuple[int, int] | None:
    """(the stack slot, its value) of the first word at or above `sp` that `is_code` accepts
    as a return address and that follows a call instruction; None within `max_words` or
    before the stack becomes unreadable."""
    addr, end = sp & ~7, (sp & ~7) + 8 * max_words
    while addr < end:
        n = min(end, (addr | (_PAGE - 1)) + 1) - addr
        chunk = _readable_prefix(memory, addr, n)
        for i in range(0, len(chunk) - 7, 8):
            value = int.from_bytes(chunk[i:i + 8], "little")
            if value > 8 and is_code(value) and follows_call(memory, value):
                return addr + i, value
        if len(chunk) < n:
            return None
        addr += n
    return None


def _readable_prefix(memory: AddressSpace, addr: int, size: int) -> bytes:
    """The bytes at [addr, addr+size) up to the first unreadable word."""
    try:
        return memory.read(addr, size)
    except FaultError:
        pass
    words = []
    for at in range(addr, addr + size, 8):
        try:
            words.append(memory.read(at, 8))
        except FaultError:
            break
    return b"".join(words)


def follows_call(memory: AddressSpace, addr: int) -> bool:
    """Whether a call instruction ends right before `addr`: `e8 rel32`, or `ff /2` (an
    indirect call through a register or memory, with any ModRM form and an optional REX)."""
    try:
        before = memory.read(addr - 7, 7)
    except FaultError:
        return False
    if before[2] == 0xE8:
        return True
    for start in range(6):
        at = start + 1 if 0x40 <= before[start] <= 0x4F else start
        if at < 6 and before[at] == 0xFF and _modrm_length(before[at + 1:]) == 6 - at:
            return True
    return False


def _modrm_length(code: bytes) -> int | None:
    """The length of a ModRM operand (ModRM, SIB, displacement) whose reg field is 2 (call),
    None when it is not one."""
    if not code:
        return None
    modrm = code[0]
    mod, reg, rm = modrm >> 6, modrm >> 3 & 7, modrm & 7
    if reg != 2:
        return None
    if mod == 3:
        return 1
    length = 1
    if rm == 4:
        if len(code) < 2:
            return None
        length += 1
        if mod == 0 and code[1] & 7 == 5:
            return length + 4
    elif mod == 0 and rm == 5:
        return length + 4
    return length + (0, 1, 4)[mod]
