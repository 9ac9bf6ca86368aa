"""A DWARF expression evaluator for the operations CFI uses (signal-frame rules, CFA expressions).

Registers and memory come from callbacks, so the same evaluator serves unwinding now and
variable locations later; an operation it does not know makes the result None.
"""

from __future__ import annotations

from collections.abc import Callable

DW_OP_addr, DW_OP_deref, DW_OP_const1u, DW_OP_const1s = 0x03, 0x06, 0x08, 0x09
DW_OP_const2u, DW_OP_const2s, DW_OP_const4u, DW_OP_const4s = 0x0A, 0x0B, 0x0C, 0x0D
DW_OP_const8u, DW_OP_const8s, DW_OP_constu, DW_OP_consts = 0x0E, 0x0F, 0x10, 0x11
DW_OP_dup, DW_OP_drop, DW_OP_swap = 0x12, 0x13, 0x16
DW_OP_and, DW_OP_minus, DW_OP_or, DW_OP_plus, DW_OP_plus_uconst = 0x1A, 0x1C, 0x21, 0x22, 0x23
DW_OP_shl, DW_OP_shr = 0x24, 0x25
DW_OP_lit0, DW_OP_lit31, DW_OP_breg0, DW_OP_breg31, DW_OP_bregx = 0x30, 0x4F, 0x70, 0x8F, 0x92

_MASK = (1 << 64) - 1
_FIXED = {
    DW_OP_const1u: (1, False), DW_OP_const1s: (1, True), DW_OP_const2u: (2, False),
    DW_OP_const2s: (2, True), DW_OP_const4u: (4, False), DW_OP_const4s: (4, True),
    DW_OP_const8u: (8, False), DW_OP_const8s: (8, True), DW_OP_addr: (8, False),
}
_BINARY = {
    DW_OP_and: lambda a, b: a & b, DW_OP_minus: lambda a, b: a - b, DW_OP_or: lambda a, b: a | b,
    DW_OP_plus: lambda a, b: a + b, DW_OP_shl: lambda a, b: a << b, DW_OP_shr: lambda a, b: a >> b,
}


def uleb128(data: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of an unsigned LEB128 number."""
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


def sleb128(data: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of a signed LEB128 number."""
    start = pos
    value, pos = uleb128(data, pos)
    bits = 7 * (pos - start)
    if value & (1 << (bits - 1)):
        value -= 1 << bits
    return value, pos


def evaluate(
    expr: bytes,
    reg: Callable[[int], int | None],
    read_u64: Callable[[int], int],
    initial: tuple[int, ...] = (),
) -> int | None:
    """The value left on top of the stack, or None when an operation or register is unavailable.

    `read_u64` may raise FaultError; that propagates so the caller can say which read failed.
    """
    stack = list(initial)
    pos = 0
    try:
        while pos < len(expr):
            op = expr[pos]
            pos += 1
            if DW_OP_lit0 <= op <= DW_OP_lit31:
                stack.append(op - DW_OP_lit0)
            elif DW_OP_breg0 <= op <= DW_OP_breg31 or op == DW_OP_bregx:
                if op == DW_OP_bregx:
                    regno, pos = uleb128(expr, pos)
                else:
                    regno = op - DW_OP_breg0
                off, pos = sleb128(expr, pos)
                base = reg(regno)
                if base is None:
                    return None
                stack.append(base + off)
            elif op in _FIXED:
                size, signed = _FIXED[op]
                stack.append(int.from_bytes(expr[pos : pos + size], "little", signed=signed))
                pos += size
            elif op == DW_OP_constu:
                value, pos = uleb128(expr, pos)
                stack.append(value)
            elif op == DW_OP_consts:
                value, pos = sleb128(expr, pos)
                stack.append(value)
            elif op == DW_OP_plus_uconst:
                value, pos = uleb128(expr, pos)
                stack.append(stack.pop() + value)
            elif op == DW_OP_deref:
                stack.append(read_u64(stack.pop() & _MASK))
            elif op == DW_OP_dup:
                stack.append(stack[-1])
            elif op == DW_OP_drop:
                stack.pop()
            elif op == DW_OP_swap:
                stack[-1], stack[-2] = stack[-2], stack[-1]
            elif op in _BINARY:
                b, a = stack.pop(), stack.pop()
                stack.append(_BINARY[op](a, b))
            else:
                return None
    except IndexError:
        return None
    return stack[-1] & _MASK if stack else None
