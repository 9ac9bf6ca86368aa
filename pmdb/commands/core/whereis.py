"""`addr::whereis`: the source line of an address and the chain of inlined calls there, from
DWARF line tables and DW_TAG_inlined_subroutine entries. mdb has no such dcmd.
"""

from __future__ import annotations

from pmdb.commands.registry import DcmdContext, dcmd
from pmdb.errors import CommandError, PmdbError


@dcmd("whereis", usage=":")
def whereis(ctx: DcmdContext) -> None:
    """Print the source file, line and column of an address, and its inline chain.

    pmdb's own dcmd (mdb has none). The first line is `sym+off: file:line[:column] in func`,
    where func is the innermost function executing there; when that function was inlined,
    each further line `    inlined at file:line[:column] in caller` says where the call
    was and which function it is in, out to the function the symbol names. Files are named
    as the compiler recorded them (relative to the compilation directory when they are
    there). An address with no line information prints `sym+off: no line information`.
    For a return address (a caller's pc in a stack), ask about the call: `<pc>-1::whereis`.
    """
    if not ctx.has_addr:
        raise CommandError("an address is required: addr::whereis")
    prog = ctx.program
    label = f"{prog.symbolize(ctx.addr)}:"
    try:
        line = prog.source.line_at(ctx.addr)
        chain = prog.source.inline_chain(ctx.addr)
    except PmdbError as e:
        raise CommandError(str(e)) from None
    if line is None and not chain:
        ctx.write(f"{label} no line information\n")
        return
    if not chain:
        ctx.write(f"{label} {line}\n")
        return
    first = chain[0]
    ctx.write(f"{label} {first.line or 'no line information'} in {first.function}\n")
    for level in chain[1:]:
        ctx.write(f"    inlined at {level.line or '?'} in {level.function}\n")
