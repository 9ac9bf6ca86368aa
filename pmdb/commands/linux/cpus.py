"""`::cpuinfo`: each CPU and the task it was running, as mdb's ::cpuinfo."""

from __future__ import annotations

from pmdb.commands.linux.target import need_kernel, report
from pmdb.commands.registry import DcmdContext, UsageError, dcmd
from pmdb.errors import PmdbError


@dcmd("cpuinfo", usage="")
def cpuinfo(ctx: DcmdContext) -> None:
    """Print each possible CPU: its per-CPU area, flags, runnable count and current task.

    ID is the CPU number, ADDR its per-CPU area (__per_cpu_offset), FLG `O` when online at
    the dump and `P` for the CPU that panicked, NRUN its runqueue's nr_running, THREAD the
    struct task_struct it was running and PROC that task's command (swapper/N when idle).
    """
    if ctx.args:
        raise UsageError("")
    kernel = need_kernel(ctx, "cpuinfo")
    ctx.write(f"{'ID':>3} {'ADDR':<16} {'FLG':>3} {'NRUN':>4} {'THREAD':<16} PROC\n")
    online = set(kernel.online_cpus)
    offsets = kernel.address_of("__per_cpu_offset")
    layout = kernel.layout
    for cpu in kernel.cpus:
        flags = ("O" if cpu in online else "") + ("P" if cpu == kernel.panic_cpu else "")
        try:
            area = kernel.reader.u64(offsets + 8 * cpu) if offsets is not None else 0
            nrun = kernel.reader.u32(kernel.per_cpu("runqueues", cpu) + layout.offset("rq", "nr_running"))
            task = kernel.current_tasks.get(cpu)
            comm = kernel.task(task).comm if task is not None else "?"
        except PmdbError as e:
            ctx.warn(f"CPU {cpu}: {e}")
            continue
        thread = f"{task:016x}" if task is not None else "?"
        ctx.write(f"{cpu:>3} {area:016x} {flags or '-':>3} {nrun:>4} {thread:<16} {comm}\n")
    report(ctx, kernel)
