"""`::msgbuf`: the kernel log, as dmesg prints it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pmdb.commands.linux.target import need_kernel, report
from pmdb.commands.registry import DcmdContext, dcmd

if TYPE_CHECKING:
    from pmdb.os.linux.printk import LogRecord


@dcmd("msgbuf", usage="[-v]")
def msgbuf(ctx: DcmdContext) -> None:
    """Print the kernel's message buffer, oldest first, as dmesg does: `[seconds] text`.

    Read from the printk ring buffer (the lockless one of 5.10 and later, else log_buf).

    OPTIONS
      -v  each record's sequence number and who logged it (pid, or CPU) before its text.
    """
    opts, _rest = ctx.options("v")
    kernel = need_kernel(ctx, "msgbuf")
    for record in kernel.log:
        prefix = f"{record.seq:>6} {_caller(record):<9} " if opts.get("v") else ""
        for line in record.lines:
            ctx.write(prefix + line + "\n")
    report(ctx, kernel)


def _caller(record: LogRecord) -> str:
    if record.caller_cpu is not None:
        return f"cpu {record.caller_cpu}"
    return f"pid {record.caller_pid}" if record.caller_pid is not None else "-"
