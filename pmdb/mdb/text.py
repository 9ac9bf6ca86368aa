"""How mdb spells numbers and addresses: `0x` only above 9, `obj`sym+0xoff` outside the executable."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pmdb.program import Program


def num(value: int) -> str:
    """Hex with `0x` only when the value is above 9 (mdb's numtostr rule)."""
    return f"{value:#x}" if value > 9 else str(value)


def signed_num(value: int) -> str:
    """`+0x10`, `-0x10`, `+8`: an offset with its sign."""
    return ("-" if value < 0 else "+") + num(abs(value))


def symbolic(program: Program | None, addr: int, lookup: int | None = None) -> str:
    """mdb's %a: `sym`, `sym+0x1c`, `libc.so.6`sym+8`, or the address as a number."""
    return num(addr) if program is None else str(program.symbolize(addr, lookup))


def symbol_only(program: Program | None, addr: int) -> str | None:
    """mdb's %A: the symbolic form when a symbol covers `addr`, else None."""
    if program is None:
        return None
    sym = program.symbolize(addr)
    return str(sym) if sym.symbol else None
