"""`::modinfo` and the `module` walker: the loaded kernel modules."""

from __future__ import annotations

from collections.abc import Iterator

from pmdb.commands.linux.target import need_kernel, report
from pmdb.commands.registry import DcmdContext, dcmd, walker


@walker("module", ctype="struct module")
def module_walker(ctx: DcmdContext) -> Iterator[int]:
    """Every loaded module's struct module, newest first."""
    kernel = need_kernel(ctx, "walk module")
    for mod in kernel.modules:
        yield mod.address
    report(ctx, kernel)


@dcmd("modinfo")
def modinfo(ctx: DcmdContext) -> None:
    """Print the loaded kernel modules: struct module, load address, size, state and name.

    One line a module, newest first (the order of the kernel's module list). LOADADDR is
    the module's core (text, then data), SIZE its size in hex.
    """
    kernel = need_kernel(ctx, "modinfo")
    ctx.write(f"{'ADDR':<16} {'LOADADDR':<16} {'SIZE':>8} {'STATE':<8} NAME\n")
    for mod in kernel.modules:
        ctx.write(f"{mod.address:016x} {mod.base:016x} {mod.size:>8x} {mod.state:<8} {mod.name}\n")
    report(ctx, kernel)
