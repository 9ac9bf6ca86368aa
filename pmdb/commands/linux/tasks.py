"""Tasks of a kernel crash dump: `::ps`, the `task` and `thread` walkers, `::findstack`.

A kernel's threads are its tasks, named by their `struct task_struct` address, as mdb names
a kernel thread by its kthread_t. On a process core, `::walk thread` and `::findstack` are
the process ones.
"""

from __future__ import annotations

from collections.abc import Iterator

from pmdb.commands.core.stack import findstack as process_findstack
from pmdb.commands.core.stack import frame_pointer, frame_text
from pmdb.commands.core.threads import thread_walker as process_threads
from pmdb.commands.linux.target import kernel_of, need_kernel, report
from pmdb.commands.registry import DcmdContext, UsageError, dcmd, walker
from pmdb.errors import CommandError, PmdbError

TASK_TYPE = "struct task_struct"


@walker("task", ctype=TASK_TYPE)
def task_walker(ctx: DcmdContext) -> Iterator[int]:
    """Every task's struct task_struct: each CPU's idle task, then the task list's, threads
    after their group leader."""
    kernel = need_kernel(ctx, "walk task")
    yield from kernel.task_addresses
    report(ctx, kernel)


@walker("thread", ctype=TASK_TYPE)
def thread_walker(ctx: DcmdContext) -> Iterator[int]:
    """Every thread: a kernel's tasks (as the task walker), a process core's thread ids."""
    kernel = kernel_of(ctx)
    if kernel is None:
        yield from process_threads(ctx)
        return
    yield from kernel.task_addresses
    report(ctx, kernel)


@dcmd("ps", usage="")
def ps(ctx: DcmdContext) -> None:
    """Print the kernel's tasks: state, ids, uid, flags, task_struct address and command.

    One line a task, as mdb's ::ps: S (the state letter of /proc: R running, S sleeping, D
    uninterruptible, I idle, T stopped, Z zombie, ...), PID, PPID, PGID, SID, UID, FLAGS
    (task->flags), ADDR (the struct task_struct) and NAME (comm). Each CPU's idle task comes
    first (pid 0), then the task list; `addr::ps` prints the task at addr.
    """
    if ctx.args:
        raise UsageError("")
    kernel = need_kernel(ctx, "ps")
    addrs = [ctx.addr] if ctx.has_addr else kernel.task_addresses
    ctx.write(f"S {'PID':>6} {'PPID':>6} {'PGID':>6} {'SID':>6} {'UID':>6} {'FLAGS':>10} {'ADDR':>16} NAME\n")
    for addr in addrs:
        try:
            task = kernel.task(addr)
            ppid, pgid, sid, uid = kernel.task_reader.ids(addr)
        except PmdbError as e:
            ctx.warn(f"task {addr:x}: {e}")
            continue
        ctx.write(f"{task.state} {task.pid:>6} {ppid:>6} {pgid:>6} {sid:>6} {uid:>6} 0x{task.flags:08x} "
                  f"{addr:016x} {task.comm}\n")
    report(ctx, kernel)


def describe(ctx: DcmdContext, addr: int) -> str:
    """`pid 9: kworker/u4:0`, how findstack and stacks name a task."""
    kernel = need_kernel(ctx, "findstack")
    try:
        task = kernel.task(addr)
    except PmdbError as e:
        raise CommandError(f"{addr:x} is not a readable task: {e}") from None
    return f"pid {task.pid}: {task.comm}"


@dcmd("findstack", usage=":[-v]")
def findstack(ctx: DcmdContext) -> None:
    """Print the stack of the thread at the address: `task::findstack` (`tid::findstack` on a
    process core).

    The first line gives the thread and the stack pointer where its stack starts, the next
    its innermost frame in brackets, then one frame a line with its frame pointer. On a
    kernel dump the address is a struct task_struct; the panicking task's stack starts at
    its CPU's registers, another task's where it last switched out. `::walk task |
    ::findstack` shows every task's. With -v each frame says how it was unwound.
    """
    kernel = kernel_of(ctx)
    if kernel is None:
        process_findstack(ctx)
        return
    opts, rest = ctx.options("v")
    if rest:
        raise UsageError("")
    if not ctx.has_addr:
        raise CommandError("a task is required: task::findstack")
    who = describe(ctx, ctx.addr)
    st = ctx.program.stack(ctx.program.thread(ctx.addr))
    frames = st.frames
    first = frames[0]
    ctx.write(f"stack pointer for thread {ctx.addr:x} ({who}): {first.sp:x}\n")
    ctx.write(f"[ {first.sp:016x} {frame_text(ctx, frames, 0, 0)} ]\n")
    for i in range(1, len(frames)):
        how = f"  [{frames[i].method.value}]" if opts.get("v") else ""
        ctx.write(f"  {frame_pointer(frames[i]):016x} {frame_text(ctx, frames, i, 0)}{how}\n")
    if not st.complete:
        ctx.warn(f"stack trace is incomplete: {st.stop_reason}")
    report(ctx, kernel)
