"""What the Linux commands share: the kernel behind a dcmd, and the partial answers to report."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pmdb.commands.registry import DcmdContext
from pmdb.errors import CommandError

if TYPE_CHECKING:
    from pmdb.os.linux.kernel import LinuxKernel


def kernel_of(ctx: DcmdContext) -> LinuxKernel | None:
    """The kernel being debugged, or None when the target is not a kernel dump."""
    prog = ctx.session.program
    return prog.kernel if prog is not None else None


def need_kernel(ctx: DcmdContext, name: str) -> LinuxKernel:
    """The kernel, or CommandError saying `::name` is for kernel crash dumps."""
    kernel = kernel_of(ctx)
    if kernel is None:
        raise CommandError(f"::{name} needs a kernel crash dump")
    return kernel


def report(ctx: DcmdContext, kernel: LinuxKernel) -> None:
    """Warn of each thing the kernel could not read that has not been reported yet."""
    for problem in kernel.new_problems():
        ctx.warn(problem)
