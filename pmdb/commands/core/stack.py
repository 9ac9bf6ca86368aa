"""Stack dcmds: `$c`/`::stack`, `$C`, `::findstack` — mdb's shapes over pmdb's unwinder."""

from __future__ import annotations

from pmdb.commands.registry import DcmdContext, dcmd
from pmdb.dumps import ThreadState
from pmdb.errors import CommandError
from pmdb.unwind.frames import Frame, StackTrace


def frame_pointer(frame: Frame) -> int:
    """The frame's base as mdb's $C shows it: where rbp points in a standard frame (CFA - 16)."""
    if frame.cfa is not None:
        return frame.cfa - 16
    return frame.registers.get("rbp", frame.sp)


def frame_text(ctx: DcmdContext, frame: Frame) -> str:
    """`func+0xoff()`: the frame's pc, named from pc-1 for a return address."""
    return f"{ctx.program.symbolize(frame.pc, frame.lookup_pc)}()"


def _stack(ctx: DcmdContext) -> StackTrace:
    """`addr$c` starts at frame pointer addr, as in mdb; plain `$c` is the current thread's stack."""
    if ctx.has_addr:
        return ctx.program.stack_from_frame_pointer(ctx.addr)
    thread: ThreadState | None = ctx.session.thread
    if thread is None:
        raise CommandError("no thread registers in this target")
    return ctx.program.stack(thread)


def _print_stack(ctx: DcmdContext, st: StackTrace, with_fp: bool, verbose: bool, indent: str = "") -> None:
    for frame in st.frames:
        fp = f"{frame_pointer(frame):016x} " if with_fp else ""
        how = f"  [{frame.method.value}]" if verbose else ""
        ctx.write(f"{indent}{fp}{frame_text(ctx, frame)}{how}\n")
    if verbose:
        ctx.write(f"{indent}[stopped: {st.stop_reason}]\n")
    elif not st.complete:
        ctx.warn(f"stack trace is incomplete: {st.stop_reason}")


@dcmd("stack", usage="[-v] [cnt]", aliases=("$c",))
def stack(ctx: DcmdContext) -> None:
    """Print the stack backtrace of the current thread (the one that took the signal).

    One line per frame, innermost first: `func+0xoff(args)`; symbols outside the executable
    are shown as `object`func`. `addr$c` starts from the frame pointer addr instead. With -v,
    each frame says how it was unwound (registers from the dump, DWARF CFI, frame pointer,
    signal frame, or the return address of a bad call), and the last line why it stopped.
    """
    opts, _rest = ctx.options("v")
    _print_stack(ctx, _stack(ctx), with_fp=False, verbose=bool(opts.get("v")))


@dcmd("stackregs", usage="[-v] [cnt]", aliases=("$C",))
def stack_with_frame_pointers(ctx: DcmdContext) -> None:
    """Print the stack backtrace with each frame's frame pointer (mdb's $C).

    The first column is the frame's base (where %rbp points in a frame that keeps a frame
    pointer), as 16 hex digits.
    """
    opts, _rest = ctx.options("v")
    _print_stack(ctx, _stack(ctx), with_fp=True, verbose=bool(opts.get("v")))


@dcmd("findstack", usage=":[-v]")
def findstack(ctx: DcmdContext) -> None:
    """Print the stack of the thread whose id is the address: `tid::findstack`.

    Use it with the thread walker to see every thread: `::walk thread | ::findstack`.
    With -v, each frame says how it was unwound.
    """
    opts, _rest = ctx.options("v")
    if not ctx.has_addr:
        raise CommandError("a thread id is required: tid::findstack")
    st = ctx.program.stack(ctx.program.thread(ctx.addr))
    first = st.frames[0]
    ctx.write(f"stack pointer for thread {ctx.addr:x}: {frame_pointer(first):x}\n")
    ctx.write(f"[ {frame_pointer(first):016x} {frame_text(ctx, first)} ]\n")
    rest = StackTrace(st.frames[1:], st.stop_reason)
    _print_stack(ctx, rest, with_fp=True, verbose=bool(opts.get("v")), indent="  ")
