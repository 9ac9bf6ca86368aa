"""The scopes that hold an address inside a function: its lexical blocks and inlined calls.

Variables (`variables.py`) are looked up through this chain, innermost block first, and the
inline chain of `::whereis` is its DW_TAG_inlined_subroutine entries with their call sites.
A lexical block without pc ranges is transparent, as gdb treats it: its members belong to
the enclosing scope.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pmdb.debuginfo.dies import (
    MAX_DEPTH,
    AT_call_column,
    AT_call_file,
    AT_call_line,
    Die,
    DieError,
    TAG_inlined_subroutine,
    TAG_lexical_block,
    address_ranges,
)
from pmdb.debuginfo.dwarf_units import Function, function_name, guard
from pmdb.debuginfo.lines import SourceLine

if TYPE_CHECKING:
    from pmdb.debuginfo.lines import LineTable


@dataclass(frozen=True)
class InlineLevel:
    """One function of an inline chain: its name, where it is executing, whether it was inlined."""

    function: str
    line: SourceLine | None
    inlined: bool


def members(scope: Die, depth: int = 0) -> Iterator[Die]:
    """The DIEs directly in `scope`, with range-less lexical blocks opened in place."""
    if depth > MAX_DEPTH:
        raise DieError(f"lexical blocks nested more than {MAX_DEPTH} deep")
    for die in scope.unit.children(scope):
        if die.tag == TAG_lexical_block and not address_ranges(die):
            yield from members(die, depth + 1)
        else:
            yield die


def scope_chain(fn: Function, addr: int) -> list[Die]:
    """The function's DIE, then each block or inlined call whose ranges hold link-time `addr`,
    outermost first."""
    chain = [fn.die]
    with guard(fn.unit.where):
        for _ in range(MAX_DEPTH):
            for die in members(chain[-1]):
                if die.tag in (TAG_lexical_block, TAG_inlined_subroutine) and _holds(die, addr):
                    chain.append(die)
                    break
            else:
                return chain
    raise DieError(f"scopes nested more than {MAX_DEPTH} deep")


def _holds(die: Die, addr: int) -> bool:
    return any(lo <= addr < hi for lo, hi in address_ranges(die))


def inline_chain(fn: Function, addr: int, table: LineTable) -> list[InlineLevel]:
    """The functions executing at link-time `addr`, innermost first: each inlined call with the
    line it is at, then the function it was inlined into, at the call's line."""
    line = table.at(addr)
    levels: list[InlineLevel] = []
    with guard(fn.unit.where):
        for die in reversed(scope_chain(fn, addr)):
            if die is not fn.die and die.tag != TAG_inlined_subroutine:
                continue
            inlined = die is not fn.die
            levels.append(InlineLevel(function_name(die) or "??", line, inlined))
            if inlined:
                line = _call_site(die, table)
    return levels


def _call_site(die: Die, table: LineTable) -> SourceLine | None:
    """Where an inlined call is: DW_AT_call_file, DW_AT_call_line, DW_AT_call_column."""
    index, line = die.int(AT_call_file), die.int(AT_call_line)
    if index is None or line is None:
        return None
    f = table.file(index)
    return SourceLine(f, line, die.int(AT_call_column) or 0) if f is not None else None
