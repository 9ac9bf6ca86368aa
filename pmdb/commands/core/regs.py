"""`::regs` / `$r`: a thread's registers in mdb's amd64 layout."""

from __future__ import annotations

from pmdb.commands.registry import DcmdContext, dcmd
from pmdb.errors import CommandError

_PAIRS = (("rax", "r8"), ("rbx", "r9"), ("rcx", "r10"), ("rdx", "r11"), ("rsi", "r12"), ("rdi", "r13"),
          (None, "r14"), (None, "r15"))
_SEGMENTS = (("cs", "fs", "gs"), ("ds", "es", "ss"))
_CONTROL = (("id", 21), ("vip", 20), ("vif", 19), ("ac", 18), ("vm", 17), ("rf", 16), ("nt", 14))
_STATUS = (("of", 11), ("df", 10), ("if", 9), ("tf", 8), ("sf", 7), ("zf", 6), ("af", 4), ("pf", 2), ("cf", 0))


def _reg(name: str, value: int) -> str:
    return f"%{name:<3} = 0x{value:016x}"


def rflags_lines(flags: int) -> list[str]:
    """The decoded %rflags lines: control bits as 0/1, status flags upper-case when set."""
    control = " ".join(f"{n}={flags >> bit & 1}" for n, bit in _CONTROL)
    status = ",".join(n.upper() if flags >> bit & 1 else n for n, bit in _STATUS)
    return [f"  {control} iopl={(flags >> 12) & 3:#x}", f"  status=<{status}>"]


@dcmd("regs", usage="[tid]", aliases=("$r",))
def regs(ctx: DcmdContext) -> None:
    """Print the general registers of the current thread, or of thread `tid` (`tid::regs`).

    Registers the dump does not record (e.g. %trapno and %err in a Linux core) are left out.
    """
    thread = ctx.program.thread(ctx.addr) if ctx.has_addr else ctx.session.thread
    if thread is None:
        raise CommandError("no register set available for thread")
    r = thread.registers
    lines = []
    for left, right in _PAIRS:
        head = _reg(left, r.get(left, 0)) if left else " " * 25
        lines.append(f"{head}\t{_reg(right, r.get(right, 0))}".expandtabs(8))
    lines.append("")
    for row in _SEGMENTS:
        lines.append("\t".join(f"%{n} = 0x{r.get(n, 0):04x}" for n in row).expandtabs(8))
    lines.append("")
    sym = ctx.program.symbolize(r.get("rip", 0))
    lines.append(f"%rip = 0x{r.get('rip', 0):016x} {str(sym) if sym.symbol else ''}")
    lines.append(f"%rbp = 0x{r.get('rbp', 0):016x}")
    lines.append(f"%rsp = 0x{r.get('rsp', 0):016x}")
    lines.append("")
    flags = r.get("rflags", 0)
    lines.append(f"%rflags = 0x{flags & 0xFFFFFFFF:08x}")
    lines += rflags_lines(flags)
    lines.append("")
    lines.append(f"%gsbase = 0x{r.get('gsbase', 0):016x}")
    lines.append(f"%fsbase = 0x{r.get('fsbase', 0):016x}")
    if "trapno" in r:
        lines.append(f"%trapno = {r['trapno']:#x}")
    if "err" in r:
        lines.append(f"   %err = {r['err']:#x}")
    ctx.write("\n".join(lines) + "\n")
