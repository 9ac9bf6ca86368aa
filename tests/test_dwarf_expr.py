"""The DWARF expression evaluator on hand-assembled expressions (DWARF 5, section 2.5 and 2.6):
variable locations, pieces, implicit values, entry values, and the bounds that keep a
malformed expression from looping or reading past its end."""

from __future__ import annotations

import pytest

from pmdb.debuginfo.dwarf_expr import (
    ExprContext,
    Implicit,
    ImplicitPointer,
    LocationError,
    Memory,
    Pieces,
    Register,
    Value,
    evaluate,
    locate,
)
from pmdb.errors import FaultError, FaultReason

REGS = {0: 0x10, 5: 0x1000, 6: 0x7FF0, 7: 0x7FE0}
MEMORY = {0x2000: (0x1122334455667788).to_bytes(8, "little")}


def _read(addr: int, size: int) -> bytes:
    for base, data in MEMORY.items():
        if base <= addr and addr + size <= base + len(data):
            return data[addr - base : addr - base + size]
    raise FaultError(addr, FaultReason.UNMAPPED)


def _ctx(**kw: object) -> ExprContext:
    base = {"reg": REGS.get, "read": _read, "frame_base": lambda: 0x7000, "cfa": 0x8000,
            "entry_value": lambda e: 0xE0 if e == b"\x55" else None}
    base.update(kw)
    return ExprContext(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("expr", "expected"), [
    (b"\x91\x70", Memory(0x7000 - 16)),                        # DW_OP_fbreg -16
    (b"\x55", Register(5)),                                    # DW_OP_reg5
    (b"\x90\x21", Register(33)),                               # DW_OP_regx 33
    (b"\x9c\x23\x08", Memory(0x8008)),                         # DW_OP_call_frame_cfa; plus_uconst 8
    (b"\x75\x04\x9f", Value(0x1004)),                          # DW_OP_breg5 4; stack_value
    (b"\x9e\x02\x34\x12", Implicit(b"\x34\x12")),              # DW_OP_implicit_value 2 bytes
    (b"\xa3\x01\x55\x9f", Value(0xE0)),                        # DW_OP_entry_value(reg5); stack_value
    (b"\x0c\x00\x20\x00\x00\x94\x02\x9f", Value(0x7788)),      # const4u 0x2000; deref_size 2; stack_value
    (b"\x03\x00\x10\x00\x00\x00\x00\x00\x00", Memory(0x1000 + 0x4000)),  # DW_OP_addr (+ load bias)
    (b"\x50\x93\x08\x93\x04", Pieces(((Register(0), 8), (None, 4)))),   # reg0 piece 8; piece 4 (missing)
    (b"\xa0\x10\x00\x00\x00\x08", ImplicitPointer(0x10, 8)),   # DW_OP_implicit_pointer <0x10> +8
    (b"\x36\x33\x1b\x9f", Value(2)),                           # lit6 lit3 div; stack_value
    (b"\x31\x20\x9f", Value((1 << 64) - 2)),                    # lit1 not; stack_value
])
def test_locations(expr: bytes, expected: object) -> None:
    assert locate(expr, _ctx(bias=0x4000)) == expected


def test_empty_expression_is_optimized_out() -> None:
    assert locate(b"", _ctx()) is None


@pytest.mark.parametrize(("expr", "optimized_out"), [
    (b"\x7a\x00", True),          # DW_OP_breg10: a register the frame does not know
    (b"\xa3\x01\x54\x9f", True),  # DW_OP_entry_value(reg4): no caller says
    (b"\x2f\xfd\xff", False),     # DW_OP_skip -3: loops on itself
    (b"\x0c\x00\x20", False),     # DW_OP_const4u with two bytes
    (b"\x1c", False),             # DW_OP_minus on an empty stack
    (b"\xe0", False),             # DW_OP_GNU_push_tls_address: unsupported
    (b"\x30\x30\x1b", False),     # division by zero
])
def test_what_cannot_be_located_says_why(expr: bytes, optimized_out: bool) -> None:
    with pytest.raises(LocationError) as e:
        locate(expr, _ctx())
    assert e.value.optimized_out is optimized_out


def test_unreadable_memory_propagates() -> None:
    with pytest.raises(FaultError):
        locate(b"\x08\x08\x06\x9f", _ctx())  # const1u 8; deref


def test_cfi_form_still_gives_values_or_none() -> None:
    regs = {7: 0x7FF0}.get
    assert evaluate(b"\x77\x08", regs, lambda a: 0) == 0x7FF8  # DW_OP_breg7 8
    assert evaluate(b"\x77\x08\x06", regs, lambda a: a + 1) == 0x7FF9
    assert evaluate(b"\x55", regs, lambda a: 0) is None           # a register location is no value
    assert evaluate(b"\x78\x00", regs, lambda a: 0) is None       # unknown register
    assert evaluate(b"\x23\x10", regs, lambda a: 0, initial=(0x100,)) == 0x110
