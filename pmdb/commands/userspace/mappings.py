"""`::mappings` / `$m`: the process's address space, one mapping a line."""

from __future__ import annotations

from pmdb.commands.registry import DcmdContext, dcmd
from pmdb.dumps import Mapping
from pmdb.errors import CommandError


def mapping_name(ctx: DcmdContext, m: Mapping) -> str:
    """The mapping's file, or mdb's bracketed label for an anonymous mapping."""
    if m.path:
        return m.path
    if any(m.start <= t.registers.get("rsp", -1) < m.end for t in ctx.program.threads):
        return "[ stack ]"
    if m.start == ctx.program.process.vdso_base:
        return "[ vdso ]"
    return "[ anon ]"


@dcmd("mappings", usage="[name]", aliases=("$m",))
def mappings(ctx: DcmdContext) -> None:
    """Print the address space mappings: BASE, LIMIT, SIZE and NAME.

    With an address, only the mapping containing it; with a name, only mappings of that file.
    """
    _opts, rest = ctx.options("")
    rows = ctx.program.dump.mappings
    if ctx.has_addr:
        rows = [m for m in rows if m.start <= ctx.addr < m.end]
        if not rows:
            raise CommandError("failed to obtain mapping: no mapping for address")
    if rest:
        name = str(rest[0])
        rows = [m for m in rows if m.path == name or m.path.rsplit("/", 1)[-1] == name]
        if not rows:
            raise CommandError(f"failed to obtain mapping: no mapping named {name}")
    ctx.write(f"{'BASE':>16} {'LIMIT':>16} {'SIZE':>16} NAME\n")
    for m in rows:
        ctx.write(f"{m.start:>16x} {m.end:>16x} {m.end - m.start:>16x} {mapping_name(ctx, m)}\n")
