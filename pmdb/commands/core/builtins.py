"""Built-in dcmds of the language itself: ::walk, ::eval, ::map, ::grep, ::echo, $d, $s, $w, $q.

Each does what mdb's does (mdb_cmds.c), output and messages included; summaries are mdb's
descriptions, so ::dcmds reads as mdb's does.
"""

from __future__ import annotations

from pmdb.commands.registry import DcmdContext, Failure, Quit, WalkerSpec, dcmd
from pmdb.errors import CommandError, UsageError
from pmdb.mdb.text import numtostr
from pmdb.mdb.variables import bad_identifier_char

IOB_BUFSIZ = 1024  # mdb's output buffer: the widest page `$w` allows


def _one_string(ctx: DcmdContext) -> str:
    """The single string argument mdb's ::eval, ::map and ::grep take (else a usage error)."""
    if len(ctx.args) != 1 or not isinstance(ctx.args[0], str):
        raise UsageError("")
    return ctx.args[0]


def _no_args(ctx: DcmdContext) -> None:
    if ctx.args:
        raise UsageError("")


@dcmd("walk", usage="?name [variable]", needs_target=False)
def walk(ctx: DcmdContext) -> None:
    """walk data structure"""
    args = ctx.args
    if not 1 <= len(args) <= 2 or not all(isinstance(a, str) for a in args):
        raise UsageError("")
    if len(args) == 2:
        _walk_variable(ctx, str(args[1]))
    try:
        spec: WalkerSpec | None = ctx.session.registry.walker(str(args[0]))
    except CommandError:
        spec = None
    if spec is None or (spec.needs_target and ctx.session.program is None):
        raise CommandError("failed to perform walk: unknown walk name")
    for value in spec.func(ctx):
        ctx.emit(value, ctype=spec.ctype)


def _walk_variable(ctx: DcmdContext, name: str) -> None:
    """`::walk name var`: var (created as 0 if new) takes each walked value in later pipe stages."""
    var = ctx.session.variables.lookup(name)
    if var is not None and var.readonly:
        raise Failure(f"variable {name} is read-only")
    if var is None:
        bad = bad_identifier_char(name)
        if bad is not None:
            raise Failure(f"'{bad}' may not be used in a variable name")
        ctx.session.variables.insert(name)
    if ctx.piped_out:
        ctx.bind(name)


@dcmd("eval", usage="command", needs_target=False)
def eval_(ctx: DcmdContext) -> None:
    """evaluate the specified command"""
    ctx.evaluate(_one_string(ctx))


@dcmd("map", usage="?expr", needs_target=False)
def map_(ctx: DcmdContext) -> None:
    """print dot after evaluating expression"""
    ctx.evaluate(_one_string(ctx))
    dot = ctx.session.dot
    ctx.emit(dot, numtostr(dot, ctx.session.radix))


@dcmd("grep", usage="?expr", needs_target=False)
def grep(ctx: DcmdContext) -> None:
    """print dot if expression is true"""
    ctx.evaluate(_one_string(ctx))
    if ctx.session.dot != 0:
        ctx.emit(ctx.addr, numtostr(ctx.addr, ctx.session.radix))


@dcmd("echo", usage="args ...", needs_target=False)
def echo(ctx: DcmdContext) -> None:
    """echo arguments"""
    if ctx.has_addr:
        raise UsageError("")
    radix = ctx.session.radix
    ctx.write("".join(f"{a if isinstance(a, str) else numtostr(a, radix)} " for a in ctx.args) + "\n")


@dcmd("radix", aliases=("$d",), needs_target=False)
def radix(ctx: DcmdContext) -> None:
    """get/set default output radix"""
    _no_args(ctx)
    if ctx.has_addr:
        if not 2 <= ctx.addr <= 16:
            raise Failure("expected radix from 2 to 16")
        ctx.session.radix = ctx.addr
    ctx.write(f"radix = {ctx.session.radix} base ten\n")


@dcmd("$s", needs_target=False)
def symdist(ctx: DcmdContext) -> None:
    """get/set symbol matching distance"""
    _no_args(ctx)
    if ctx.has_addr:
        ctx.session.symdist = ctx.addr
    dist = ctx.session.symdist
    mode = "absolute mode" if dist else "smart mode"
    ctx.write(f"symbol matching distance = {numtostr(dist, ctx.session.radix)} ({mode})\n")


@dcmd("$w", needs_target=False)
def pgwidth(ctx: DcmdContext) -> None:
    """get/set output page width"""
    _no_args(ctx)
    if ctx.has_addr:
        ctx.session.page_width = min(ctx.addr, IOB_BUFSIZ) if ctx.addr else 80
    ctx.write(f"output page width = {ctx.session.page_width}\n")


@dcmd("quit", aliases=("$q", "$Q"), needs_target=False)
def quit_(ctx: DcmdContext) -> None:
    """quit debugger"""
    raise Quit
