"""`::dis`: disassembly in mdb's shape — a whole function at its start, else a window around
the address (10 instructions before, the target, 10 after) — and, with -s, the source lines
interleaved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pmdb.commands.registry import DcmdContext, dcmd
from pmdb.errors import CommandError, FaultError, PmdbError
from pmdb.mdb.output import LineWriter
from pmdb.mdb.text import num

if TYPE_CHECKING:
    from pmdb.arch.disasm import Instruction
    from pmdb.program import Program

WINDOW = 10
DEFAULT_COUNT = 11


def _decode_range(prog: Program, start: int, end: int) -> list[Instruction]:
    """Instructions from `start` until one reaches or passes `end`."""
    out: list[Instruction] = []
    addr = start
    while addr < end:
        insn = prog.instruction_at(addr)
        out.append(insn)
        addr += insn.size
    return out


def _before(prog: Program, addr: int, n: int) -> list[Instruction]:
    """Up to n instructions ending just before `addr`, decoded forward from its symbol's start."""
    sym = prog.symbol_at(addr)
    if sym is None or sym.address == addr:
        return []
    try:
        insns = _decode_range(prog, sym.address, addr)
    except FaultError:
        return []
    if insns and insns[-1].address + insns[-1].size != addr:
        return []  # addr is not on an instruction boundary of the function
    return insns[-n:] if n else []


def line(prog: Program, insn: Instruction, plain_address: bool = False) -> str:
    """`sym+0x1c:` padded to 32 (then to a multiple of 8), followed by the instruction text."""
    label = f"{insn.address:x}" if plain_address else f"{prog.symbolize(insn.address)}:"
    out = LineWriter(columns=1 << 30)
    out.text(label.ljust(32))
    out.tab_to(8)
    out.text(insn.text)
    return out.finish()


def _with_source(ctx: DcmdContext, insns: list[Instruction], plain_address: bool) -> None:
    """Each instruction, preceded by `file:line` and that line's text whenever the line changes;
    a unit whose line table is bad is said once, and its instructions go without lines."""
    source = ctx.program.source
    shown: tuple[object, int] | None = None
    said: list[str] = []
    for insn in insns:
        try:
            at = source.line_at(insn.address)
        except PmdbError as e:
            at = None
            if str(e) not in said:
                said.append(str(e))
                ctx.warn(str(e))
        key = (at.file, at.line) if at is not None else None
        if at is not None and key != shown:
            text = source.source_text(at)
            ctx.write(f"{at.file.name}:{at.line}\n" + (f"{text}\n" if text is not None else ""))
            missing = f"source file {at.file.name} not found (--source-path adds directories to look in)"
            if text is None and missing not in said:
                said.append(missing)
        shown = key
        ctx.write(line(ctx.program, insn, plain_address))
    for message in said:
        if message.startswith("source file "):
            ctx.warn(message)


@dcmd("dis", usage="[-asw] [-n cnt] [addr]")
def dis(ctx: DcmdContext) -> None:
    """Disassemble instructions at an address (or at the symbol named as argument).

    At the start of a function, the whole function; elsewhere, the 10 instructions before the
    address, the instruction there and the 10 after (-n sets how many). -w forces that
    window; -a prints plain addresses instead of symbols.

    -s (pmdb's; mdb's ::dis has none) interleaves the source: before the first instruction of
    each source line, a line `file:line` (the file as the compiler named it) and then the
    text of that line, found under the --source-path directories or where it was compiled
    (only `file:line` when the file is not found).
    """
    opts, rest = ctx.options("aswn:")
    prog = ctx.program
    addr, has_addr = ctx.addr, ctx.has_addr
    if rest:
        name = str(rest[0])
        sym = prog.try_lookup(name)
        if sym is None:
            raise CommandError(f"symbol '{name}' not found")
        addr, has_addr = sym.address, True
    n = int(opts["n"], 16) if "n" in opts else None
    sym = prog.symbol_at(addr)
    try:
        if has_addr and not opts.get("w") and sym is not None and sym.address == addr and sym.size:
            insns = _decode_range(prog, addr, addr + sym.size) if n is None else prog.disassemble(addr, n + 1)
        elif has_addr:
            width = WINDOW if n is None else n
            insns = _before(prog, addr, width) + prog.disassemble(addr, width + 1)
        else:
            insns = prog.disassemble(addr, DEFAULT_COUNT if n is None else n + 1)
    except FaultError as e:
        raise CommandError(f"failed to read instruction at {num(e.address)}: {e}") from None
    if opts.get("s"):
        _with_source(ctx, insns, bool(opts.get("a")))
    else:
        for insn in insns:
            ctx.write(line(prog, insn, plain_address=bool(opts.get("a"))))
    if insns:
        ctx.session.dot = insns[-1].address + insns[-1].size
