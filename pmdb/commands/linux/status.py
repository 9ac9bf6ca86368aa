"""`::status` of a kernel crash dump: mdb's kt_status lines with Linux content.

    debugging crash dump vmcore.elf (64-bit) from (none)
    dump format: ELF vmcore
    operating system: 6.1.0-56-cloud-amd64 #1 SMP PREEMPT_DYNAMIC Debian ... (x86_64)
    build id: 3b43fad5...
    panic message: BUG: kernel NULL pointer dereference, address: 0000000000000008
    panic: Kernel panic - not syncing: Fatal exception
    panicking CPU: 1, task ffff8d0a8121e000 (pid 9: kworker/u4:0)
    crash time: Wed Nov 25 21:12:30 UTC 2026 (uptime 00:00:01)
    dump content: all pages

A process core's ::status is the userspace one.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pmdb.commands.linux.target import kernel_of, report
from pmdb.commands.registry import DcmdContext, dcmd
from pmdb.commands.userspace.status import status as process_status
from pmdb.dumps import Dump
from pmdb.errors import PmdbError

if TYPE_CHECKING:
    from pmdb.os.linux.kernel import LinuxKernel

# makedumpfile's dump level bits: the pages each leaves out
_EXCLUDED = ((1, "zero pages"), (2, "page cache"), (4, "private page cache"), (8, "user pages"), (16, "free pages"))


def dump_format(dump: Dump) -> str:
    """The dump's container: `ELF vmcore`, `kdump-compressed (zlib, flattened)`."""
    info: Any = dump.notes.get("kdump")
    if info is None:
        return "ELF vmcore"
    details = [info.compression or "uncompressed"] + (["flattened"] if info.flattened else [])
    return f"kdump-compressed ({', '.join(details)})"


def dump_content(dump: Dump) -> str:
    """Which pages the dump holds, from makedumpfile's dump level (an ELF vmcore: all)."""
    info: Any = dump.notes.get("kdump")
    level = info.dump_level if info is not None else 0
    excluded = [what for bit, what in _EXCLUDED if level and level & bit]
    if not excluded:
        return "all pages"
    if level & 8:
        return f"kernel pages only (dump level {level}: no {', '.join(excluded)})"
    return f"all pages but {', '.join(excluded)} (dump level {level})"


def _duration(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    clock = time.strftime("%H:%M:%S", time.gmtime(rest))
    return f"{days} days, {clock}" if days else clock


def kernel_status(ctx: DcmdContext, kernel: LinuxKernel) -> None:
    """The kernel dump's ::status lines."""
    dump = kernel.dump
    uts = kernel.utsname
    ctx.write(f"debugging crash dump {dump.path} (64-bit) from {uts.nodename or 'unknown machine'}\n")
    ctx.write(f"dump format: {dump_format(dump)}\n")
    ctx.write(f"operating system: {uts.release} {uts.version} ({uts.machine})\n")
    build_id = kernel.info.text("BUILD-ID")
    if build_id:
        ctx.write(f"build id: {build_id}\n")
    panic = kernel.panic
    if panic.cause:
        ctx.write(f"panic message: {panic.cause}\n")
    if panic.panic and panic.panic != panic.cause:
        ctx.write(f"panic: {panic.panic}\n")
    _panicking(ctx, kernel)
    uptime, wall = kernel.times
    if wall is not None:
        when = time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(wall))
        ctx.write(f"crash time: {when}" + (f" (uptime {_duration(uptime)})" if uptime is not None else "") + "\n")
    ctx.write(f"dump content: {dump_content(dump)}\n")
    report(ctx, kernel)


def _panicking(ctx: DcmdContext, kernel: LinuxKernel) -> None:
    if kernel.panic_cpu is None:
        ctx.write("panicking CPU: none (the kernel had not called panic)\n")
        return
    thread = kernel.crashed_thread
    who = ""
    if thread is not None and thread.tid:
        try:
            task = kernel.task(thread.tid)
            who = f", task {thread.tid:x} (pid {task.pid}: {task.comm})"
        except PmdbError as e:
            who = f", task {thread.tid:x} (unreadable: {e})"
    ctx.write(f"panicking CPU: {kernel.panic_cpu}{who}\n")


@dcmd("status", needs_target=False)
def status(ctx: DcmdContext) -> None:
    """Print a summary of the dump: what it is, the system, and why it stopped.

    For a kernel crash dump: the dump file and its format, the node name, the kernel's release
    and version, its build-id, the panic message as the kernel printed it (the first line of
    the oops for a fatal exception) and panic()'s own line, the panicking CPU and task, the
    time of the crash and the uptime, and which pages the dump holds. For a core file: the
    command, executable, process id, argv and the terminating signal.
    """
    kernel = kernel_of(ctx)
    if kernel is None:
        process_status(ctx)
        return
    kernel_status(ctx, kernel)
