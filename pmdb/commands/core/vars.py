"""Listing variables: `$v` (the non-zero ones) and `::vars` (mdb's cmd_nzvars and cmd_vars).

Both walk the variable table in mdb's hash order and print values in the current radix.
"""

from __future__ import annotations

from pmdb.commands.registry import DcmdContext, dcmd
from pmdb.errors import UsageError
from pmdb.mdb.text import numtostr


@dcmd("$v", needs_target=False)
def nzvars(ctx: DcmdContext) -> None:
    """print non-zero variables"""
    if ctx.args:
        raise UsageError("")
    radix = ctx.session.radix
    for var in ctx.session.variables:
        value = var.value
        if value:
            ctx.write(f"{var.name} = {numtostr(value, radix)}\n")


@dcmd("vars", usage="[-npt]", needs_target=False)
def vars_(ctx: DcmdContext) -> None:
    """print listing of variables"""
    opts, rest = ctx.options("npt")
    if rest:
        raise UsageError("")
    radix = ctx.session.radix
    for var in ctx.session.variables:
        value = var.value
        if (opts.get("t") and not var.tagged) or (opts.get("n") and not value):
            continue
        if opts.get("p"):
            ctx.write(f"{numtostr(value, radix, showbase=True)}>{var.name}\n")
        else:
            ctx.write(f"{var.name} = {numtostr(value, radix)}\n")
