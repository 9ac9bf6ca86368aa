"""A DWARF expression evaluator: values for CFI (`evaluate`) and locations of variables (`locate`).

One stack machine serves both. Registers, memory and the frame's context come from
callbacks, so the same code runs for the unwinder (CFA and register rules) and for variable
locations (DW_OP_fbreg, DW_OP_reg*, DW_OP_piece, DW_OP_entry_value, ...). Every operation
count is bounded, so a malformed or looping expression ends in a LocationError, never a hang.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

DW_OP_addr, DW_OP_deref, DW_OP_const1u, DW_OP_const1s = 0x03, 0x06, 0x08, 0x09
DW_OP_const2u, DW_OP_const2s, DW_OP_const4u, DW_OP_const4s = 0x0A, 0x0B, 0x0C, 0x0D
DW_OP_const8u, DW_OP_const8s, DW_OP_constu, DW_OP_consts = 0x0E, 0x0F, 0x10, 0x11
DW_OP_dup, DW_OP_drop, DW_OP_over, DW_OP_pick, DW_OP_swap, DW_OP_rot = 0x12, 0x13, 0x14, 0x15, 0x16, 0x17
DW_OP_abs, DW_OP_and, DW_OP_div, DW_OP_minus, DW_OP_mod, DW_OP_mul = 0x19, 0x1A, 0x1B, 0x1C, 0x1D, 0x1E
DW_OP_neg, DW_OP_not, DW_OP_or, DW_OP_plus, DW_OP_plus_uconst = 0x1F, 0x20, 0x21, 0x22, 0x23
DW_OP_shl, DW_OP_shr, DW_OP_shra, DW_OP_xor, DW_OP_bra = 0x24, 0x25, 0x26, 0x27, 0x28
DW_OP_eq, DW_OP_ge, DW_OP_gt, DW_OP_le, DW_OP_lt, DW_OP_ne, DW_OP_skip = 0x29, 0x2A, 0x2B, 0x2C, 0x2D, 0x2E, 0x2F
DW_OP_lit0, DW_OP_lit31, DW_OP_reg0, DW_OP_reg31 = 0x30, 0x4F, 0x50, 0x6F
DW_OP_breg0, DW_OP_breg31, DW_OP_regx, DW_OP_fbreg, DW_OP_bregx, DW_OP_piece = 0x70, 0x8F, 0x90, 0x91, 0x92, 0x93
DW_OP_deref_size, DW_OP_nop, DW_OP_call_frame_cfa, DW_OP_implicit_value = 0x94, 0x96, 0x9C, 0x9E
DW_OP_stack_value, DW_OP_bit_piece, DW_OP_implicit_pointer, DW_OP_entry_value = 0x9F, 0x9D, 0xA0, 0xA3
DW_OP_const_type, DW_OP_regval_type, DW_OP_deref_type, DW_OP_convert, DW_OP_reinterpret = 0xA4, 0xA5, 0xA6, 0xA8, 0xA9
DW_OP_GNU_push_tls_address, DW_OP_form_tls_address = 0xE0, 0x9B
DW_OP_GNU_implicit_pointer, DW_OP_GNU_entry_value, DW_OP_GNU_const_type = 0xF2, 0xF3, 0xF4
DW_OP_GNU_regval_type, DW_OP_GNU_deref_type, DW_OP_GNU_convert, DW_OP_GNU_reinterpret = 0xF5, 0xF6, 0xF7, 0xF9

MAX_STEPS = 10_000  # operations per evaluation: DW_OP_bra/skip can loop
_MASK = (1 << 64) - 1
_FIXED = {
    DW_OP_const1u: (1, False), DW_OP_const1s: (1, True), DW_OP_const2u: (2, False),
    DW_OP_const2s: (2, True), DW_OP_const4u: (4, False), DW_OP_const4s: (4, True),
    DW_OP_const8u: (8, False), DW_OP_const8s: (8, True), DW_OP_addr: (8, False),
}


def _signed(v: int) -> int:
    v &= _MASK
    return v - (1 << 64) if v >> 63 else v


def _div(a: int, b: int) -> int:
    if b == 0:
        raise LocationError("division by zero in a DWARF expression")
    a, b = _signed(a), _signed(b)
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def _mod(a: int, b: int) -> int:
    if b == 0:
        raise LocationError("division by zero in a DWARF expression")
    return (a & _MASK) % (b & _MASK)


_BINARY: dict[int, Callable[[int, int], int]] = {
    DW_OP_and: lambda a, b: a & b, DW_OP_minus: lambda a, b: a - b, DW_OP_or: lambda a, b: a | b,
    DW_OP_plus: lambda a, b: a + b, DW_OP_shl: lambda a, b: (a << b) if b < 64 else 0,
    DW_OP_shr: lambda a, b: (a & _MASK) >> b if b < 64 else 0,
    DW_OP_shra: lambda a, b: _signed(a) >> min(b & _MASK, 63), DW_OP_xor: lambda a, b: a ^ b,
    DW_OP_mul: lambda a, b: a * b, DW_OP_div: _div, DW_OP_mod: _mod,
    DW_OP_eq: lambda a, b: int(_signed(a) == _signed(b)), DW_OP_ne: lambda a, b: int(_signed(a) != _signed(b)),
    DW_OP_lt: lambda a, b: int(_signed(a) < _signed(b)), DW_OP_le: lambda a, b: int(_signed(a) <= _signed(b)),
    DW_OP_gt: lambda a, b: int(_signed(a) > _signed(b)), DW_OP_ge: lambda a, b: int(_signed(a) >= _signed(b)),
}
_UNARY: dict[int, Callable[[int], int]] = {
    DW_OP_abs: lambda a: abs(_signed(a)), DW_OP_neg: lambda a: -_signed(a), DW_OP_not: lambda a: ~a,
}
_OP_NAMES = {
    DW_OP_form_tls_address: "DW_OP_form_tls_address (thread-local storage)",
    DW_OP_GNU_push_tls_address: "DW_OP_GNU_push_tls_address (thread-local storage)",
}


class LocationError(Exception):
    """An expression cannot be evaluated here. `optimized_out` when that is because a value
    the expression needs is not known in this frame (a register the call did not preserve, an
    entry value no caller records), rather than because the expression is bad or unsupported.
    """

    def __init__(self, message: str, optimized_out: bool = False) -> None:
        super().__init__(message)
        self.optimized_out = optimized_out


class EntryValueTooDeep(LocationError):
    """An entry value depends on more callers than pmdb follows at once (the value is not
    wrong, only not found this way; callers must not remember it as unknown)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, optimized_out=True)


@dataclass(frozen=True)
class Memory:
    """The object is in memory at `address`."""

    address: int


@dataclass(frozen=True)
class Register:
    """The object is in DWARF register `regno`."""

    regno: int


@dataclass(frozen=True)
class Value:
    """The object has no location; this is its value (DW_OP_stack_value)."""

    value: int


@dataclass(frozen=True)
class Implicit:
    """The object has no location; these are its bytes (DW_OP_implicit_value)."""

    data: bytes


@dataclass(frozen=True)
class ImplicitPointer:
    """A pointer the compiler removed, to the object described by the DIE at `die_offset`."""

    die_offset: int
    offset: int


@dataclass(frozen=True)
class Pieces:
    """An object made of parts (DW_OP_piece): each part's location (None: optimized out) and size."""

    parts: tuple[tuple[Location | None, int], ...]


Location = Memory | Register | Value | Implicit | ImplicitPointer | Pieces


@dataclass(frozen=True)
class ExprContext:
    """What an expression may ask of the frame it is evaluated in.

    `reg(n)` is DWARF register n's value (None when the frame does not know it); `read(addr,
    size)` reads target memory (FaultError propagates); `frame_base()` evaluates the
    function's DW_AT_frame_base; `entry_value(expr)` is the value `expr` had on entry to the
    function (from the caller's call site), None when unknown; `offset_size` is the unit's
    DWARF offset size (4 or 8); `bias` is added to DW_OP_addr (the object's load bias).
    """

    reg: Callable[[int], int | None]
    read: Callable[[int, int], bytes]
    frame_base: Callable[[], int | None] | None = None
    cfa: int | None = None
    entry_value: Callable[[bytes], int | None] | None = None
    offset_size: int = 4
    bias: int = 0


def uleb128(data: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of an unsigned LEB128 number; IndexError past the end."""
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

    This is the CFI form (CFA and register rules). `read_u64` may raise; that propagates so
    the caller can say which read failed.
    """

    def read(addr: int, size: int) -> bytes:
        return read_u64(addr).to_bytes(8, "little")[:size]

    try:
        loc = _Machine(bytes(expr), ExprContext(reg, read), list(initial)).run()
    except LocationError:
        return None
    return loc.address & _MASK if isinstance(loc, Memory) else None


def locate(expr: bytes, ctx: ExprContext) -> Location | None:
    """Where a variable is (or what it is) by its location expression; None for an empty
    expression (the variable is optimized out here). LocationError when it cannot be said.
    """
    if not expr:
        return None
    return _Machine(bytes(expr), ctx, []).run()


class _Machine:
    """One evaluation: the DWARF stack machine over `expr`."""

    def __init__(self, expr: bytes, ctx: ExprContext, stack: list[int]) -> None:
        self.expr = expr
        self.ctx = ctx
        self.stack = stack
        self.parts: list[tuple[Location | None, int]] = []
        self.pending: Location | None = None  # a register, value or implicit location awaiting a piece

    def run(self) -> Location | None:
        try:
            self._run()
        except IndexError:
            raise LocationError("malformed DWARF expression (runs past its end or off its stack)") from None
        if self.parts:
            if self.pending is not None or self.stack:
                raise LocationError("malformed DWARF expression (operations after the last piece)")
            return Pieces(tuple(self.parts))
        if self.pending is not None:
            return self.pending
        if not self.stack:
            raise LocationError("malformed DWARF expression (empty stack)")
        return Memory(self.stack[-1] & _MASK)

    def _reg(self, regno: int) -> int:
        value = self.ctx.reg(regno)
        if value is None:
            raise LocationError(f"register {regno} is not known in this frame", optimized_out=True)
        return value

    def _run(self) -> None:
        """One dispatch over the opcode table until the expression ends."""
        expr, stack, ctx = self.expr, self.stack, self.ctx
        pos = steps = 0
        while pos < len(expr):
            steps += 1
            if steps > MAX_STEPS:
                raise LocationError(f"DWARF expression runs for more than {MAX_STEPS} operations")
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
                stack.append(self._reg(regno) + off)
            elif DW_OP_reg0 <= op <= DW_OP_reg31 or op == DW_OP_regx:
                if op == DW_OP_regx:
                    regno, pos = uleb128(expr, pos)
                else:
                    regno = op - DW_OP_reg0
                self.pending = Register(regno)
            elif op in _FIXED:
                size, signed = _FIXED[op]
                if pos + size > len(expr):
                    raise IndexError
                stack.append(int.from_bytes(expr[pos : pos + size], "little", signed=signed))
                pos += size
                if op == DW_OP_addr:
                    stack[-1] += ctx.bias
            elif op == DW_OP_constu:
                value, pos = uleb128(expr, pos)
                stack.append(value)
            elif op == DW_OP_consts:
                value, pos = sleb128(expr, pos)
                stack.append(value)
            elif op == DW_OP_plus_uconst:
                value, pos = uleb128(expr, pos)
                stack.append(stack.pop() + value)
            elif op == DW_OP_fbreg:
                off, pos = sleb128(expr, pos)
                base = ctx.frame_base() if ctx.frame_base else None
                if base is None:
                    raise LocationError("the function's frame base is not known", optimized_out=True)
                stack.append(base + off)
            elif op == DW_OP_call_frame_cfa:
                if ctx.cfa is None:
                    raise LocationError("the frame's CFA is not known", optimized_out=True)
                stack.append(ctx.cfa)
            elif op == DW_OP_deref:
                stack.append(int.from_bytes(ctx.read(stack.pop() & _MASK, 8), "little"))
            elif op == DW_OP_deref_size:
                size = expr[pos]
                pos += 1
                if not 1 <= size <= 8:
                    raise LocationError(f"DW_OP_deref_size of {size} bytes")
                stack.append(int.from_bytes(ctx.read(stack.pop() & _MASK, size), "little"))
            elif op == DW_OP_dup:
                stack.append(stack[-1])
            elif op == DW_OP_drop:
                stack.pop()
            elif op == DW_OP_over:
                stack.append(stack[-2])
            elif op == DW_OP_pick:
                index = expr[pos]
                pos += 1
                stack.append(stack[-1 - index])
            elif op == DW_OP_swap:
                stack[-1], stack[-2] = stack[-2], stack[-1]
            elif op == DW_OP_rot:
                stack[-1], stack[-2], stack[-3] = stack[-2], stack[-3], stack[-1]
            elif op in _BINARY:
                b, a = stack.pop(), stack.pop()
                stack.append(_BINARY[op](a, b) & _MASK)
            elif op in _UNARY:
                stack.append(_UNARY[op](stack.pop()) & _MASK)
            elif op in (DW_OP_skip, DW_OP_bra):
                jump = int.from_bytes(expr[pos : pos + 2], "little", signed=True)
                pos += 2
                if op == DW_OP_skip or stack.pop() & _MASK:
                    pos += jump
                if not 0 <= pos <= len(expr):
                    raise LocationError("DWARF expression branches outside itself")
            elif op == DW_OP_nop:
                pass
            elif op == DW_OP_stack_value:
                self.pending = Value(stack.pop() & _MASK)
            elif op == DW_OP_implicit_value:
                size, pos = uleb128(expr, pos)
                if pos + size > len(expr):
                    raise IndexError
                self.pending = Implicit(expr[pos : pos + size])
                pos += size
            elif op in (DW_OP_implicit_pointer, DW_OP_GNU_implicit_pointer):
                die = int.from_bytes(expr[pos : pos + ctx.offset_size], "little")
                pos += ctx.offset_size
                off, pos = sleb128(expr, pos)
                self.pending = ImplicitPointer(die, off)
            elif op in (DW_OP_piece, DW_OP_bit_piece):
                size, pos = uleb128(expr, pos)
                if op == DW_OP_bit_piece:
                    bit_offset, pos = uleb128(expr, pos)
                    if size % 8 or bit_offset:
                        raise LocationError("DW_OP_bit_piece of a part that is not whole bytes")
                    size //= 8
                self._piece(size)
            elif op in (DW_OP_entry_value, DW_OP_GNU_entry_value):
                size, pos = uleb128(expr, pos)
                sub = expr[pos : pos + size]
                if len(sub) != size:
                    raise IndexError
                pos += size
                value = ctx.entry_value(sub) if ctx.entry_value else None
                if value is None:
                    raise LocationError("the value on entry to the function is not known", optimized_out=True)
                stack.append(value)
            elif op in (DW_OP_regval_type, DW_OP_GNU_regval_type):
                regno, pos = uleb128(expr, pos)
                _type, pos = uleb128(expr, pos)
                stack.append(self._reg(regno))
            elif op in (DW_OP_deref_type, DW_OP_GNU_deref_type):
                size = expr[pos]
                _type, pos = uleb128(expr, pos + 1)
                if not 1 <= size <= 8:
                    raise LocationError(f"DW_OP_deref_type of {size} bytes")
                stack.append(int.from_bytes(ctx.read(stack.pop() & _MASK, size), "little"))
            elif op in (DW_OP_const_type, DW_OP_GNU_const_type):
                _type, pos = uleb128(expr, pos)
                size = expr[pos]
                data = expr[pos + 1 : pos + 1 + size]
                if len(data) != size or size > 8:
                    raise LocationError("DW_OP_const_type of an unsupported size")
                stack.append(int.from_bytes(data, "little"))
                pos += 1 + size
            elif op in (DW_OP_convert, DW_OP_GNU_convert, DW_OP_reinterpret, DW_OP_GNU_reinterpret):
                _type, pos = uleb128(expr, pos)  # integer conversions keep the bits pmdb shows
            else:
                name = _OP_NAMES.get(op, f"DWARF operation {op:#x}")
                raise LocationError(f"{name} is not supported")

    def _piece(self, size: int) -> None:
        if self.pending is not None:
            loc: Location | None = self.pending
        elif self.stack:
            loc = Memory(self.stack.pop() & _MASK)
        else:
            loc = None  # an empty piece: that part is optimized out
        self.parts.append((loc, size))
        self.pending = None
