"""::whatis (mdb_whatis.c): what an address is — in which thread's stack, in which mapping,
and within which symbol.

mdb asks its registered sources in priority order and, without `-a`, stops at the first that
knows the address. A process core has two here: the threads' stacks (the mapping holding a
thread's stack pointer; mdb's kernel modules word this `ADDR is in thread T's stack`, and
pmdb names the thread by its decimal id, as `$l` does), then mdb's own `mappings` source,
which prints `ADDR is SYM+OFF, in NAME [BASE,LIMIT)` (the symbol part only inside a sized
symbol). An address nothing explains is `ADDR is unknown`.
"""

from __future__ import annotations

from collections.abc import Callable

from pmdb.commands.registry import DcmdContext, Failure, dcmd
from pmdb.commands.userspace.mappings import mapping_name
from pmdb.errors import UsageError


@dcmd("whatis", usage=":[-aikqv]")
def whatis(ctx: DcmdContext) -> None:
    """given an address, return information

    Given a virtual address (with -i, an identifier), report where it came
    from: the thread whose stack holds it, or the mapping (and the symbol)
    it lies in.

    OPTIONS
      -a  Report all information about each address/identifier.  The default
          behavior is to report only the first (most specific) source for each
          address/identifier.
      -i  addr is an identifier, not a virtual address.
      -k  Do not re-order the input. (may be slower)
      -q  Quiet; don't print multi-line reports. (stack traces, etc.)
      -v  Verbose output; display information about the progress of the search
    """
    if ctx.piped_out:
        raise Failure("whatis: cannot be output into a pipe")
    opts, rest = ctx.options("Dblaikqv")
    if rest or not ctx.has_addr:
        raise UsageError("")
    sources: list[tuple[str, Callable[[DcmdContext, int], str | None]]] = [
        ("pmdb`stacks", _stack), ("mdb`mappings", _mapping)]
    found = False
    for name, source in [] if "i" in opts else sources:
        if "v" in opts:
            ctx.write(f"Searching {name}...\n")
        report = source(ctx, ctx.addr)
        if report is not None:
            ctx.write(report + "\n")
            found = True
            if "a" not in opts:
                break
    if not found:
        ctx.write(f"{ctx.addr:x} is unknown\n")


def _stack(ctx: DcmdContext, addr: int) -> str | None:
    """`ADDR is in thread T's stack` when a thread's stack mapping holds the address."""
    program = ctx.program
    for thread in program.threads:
        sp = thread.registers.get("rsp")
        if sp is None:
            continue
        mapping = next((m for m in program.dump.mappings if m.start <= sp < m.end), None)
        if mapping is not None and mapping.start <= addr < mapping.end:
            below = " (below sp)" if addr < sp else ""
            return f"{addr:x} is in thread {thread.tid}'s stack{below}"
    return None


def _mapping(ctx: DcmdContext, addr: int) -> str | None:
    """mdb's whatis_run_mappings: `ADDR is [SYM+OFF, ]in NAME [BASE,LIMIT)`."""
    program = ctx.program
    mapping = next((m for m in program.dump.mappings if m.start <= addr < m.end), None)
    if mapping is None:
        return None
    sym = program.symbol_at(addr)
    where = f"{program.symbolize(addr)}, " if sym is not None and addr - sym.address < sym.size else ""
    return f"{addr:x} is {where}in {mapping_name(ctx, mapping)} [{mapping.start:x},{mapping.end:x})"
