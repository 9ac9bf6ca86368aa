"""Built-in dcmds of the language itself: ::walk, ::help, ::dcmds, ::walkers, $q."""

from __future__ import annotations

import inspect

from pmdb.commands.registry import DcmdContext, Quit, dcmd
from pmdb.errors import UsageError


@dcmd("walk", usage="walker [variable]", needs_target=False)
def walk(ctx: DcmdContext) -> None:
    """Walk a data structure with the named walker, printing (or piping) each address."""
    _opts, rest = ctx.options("")
    if not rest:
        raise UsageError("a walker name is required")
    spec = ctx.session.registry.walker(str(rest[0]))
    for value in spec.func(ctx):
        if len(rest) > 1:
            ctx.session.variables[str(rest[1])] = value
        ctx.emit(value)


@dcmd("help", usage="[command]", needs_target=False)
def help_(ctx: DcmdContext) -> None:
    """Print a list of dcmds, or the description of one."""
    _opts, rest = ctx.options("")
    reg = ctx.session.registry
    if not rest:
        ctx.write("Each dcmd has a page: ::help dcmd. ::dcmds lists them, ::walkers lists walkers.\n")
        return
    name = str(rest[0])
    spec = reg.dcmd(name[2:] if name.startswith("::") else name)
    shown = spec.name if spec.name.startswith(("$", ":")) else "::" + spec.name
    body = "\n".join("  " + ln if ln else "" for ln in inspect.cleandoc(spec.help).splitlines()[2:])
    ctx.write(f"\nNAME\n  {spec.name} - {spec.summary}\n\nSYNOPSIS\n  {shown} {spec.usage}".rstrip() + "\n")
    if spec.aliases:
        ctx.write(f"\nALIASES\n  {', '.join(spec.aliases)}\n")
    if body.strip():
        ctx.write(f"\nDESCRIPTION\n{body}\n")


@dcmd("dcmds", needs_target=False)
def dcmds(ctx: DcmdContext) -> None:
    """List the available dcmds, each with its summary."""
    reg = ctx.session.registry
    for name in sorted(reg.dcmds):
        ctx.write(f"  {name:<18} - {reg.dcmds[name].summary}\n")


@dcmd("walkers", needs_target=False)
def walkers(ctx: DcmdContext) -> None:
    """List the available walkers, each with its summary."""
    reg = ctx.session.registry
    for name in sorted(reg.walkers):
        ctx.write(f"  {name:<18} - {reg.walkers[name].summary}\n")


@dcmd("quit", aliases=("$q", "$Q"), needs_target=False)
def quit_(ctx: DcmdContext) -> None:
    """Leave pmdb."""
    raise Quit
