"""Threads as mdb shows them on a process target: `::walk thread`, `$l`, `$L`."""

from __future__ import annotations

from collections.abc import Iterator

from pmdb.commands.registry import DcmdContext, dcmd, walker


@walker("thread")
def thread_walker(ctx: DcmdContext) -> Iterator[int]:
    """Every thread id in the dump, the thread that took the signal first."""
    for t in ctx.program.threads:
        yield t.tid


@dcmd("lwpid", aliases=("$l",))
def lwpid(ctx: DcmdContext) -> None:
    """Print the id of the current (representative) thread, in decimal."""
    thread = ctx.session.thread
    ctx.write(f"{thread.tid if thread else 0}\n")


@dcmd("lwpids", aliases=("$L",))
def lwpids(ctx: DcmdContext) -> None:
    """Print the ids of every thread in the core, in decimal."""
    ids = [t.tid for t in ctx.program.threads]
    pid = ctx.program.pid
    if len(ids) == 1:
        ctx.write(f"lwpid {ids[0]} is the only lwp in core of process {pid}.\n")
    else:
        listed = ", ".join(map(str, ids[:-1])) + f" and {ids[-1]}"
        ctx.write(f"lwpids {listed} are in core of process {pid}.\n")
