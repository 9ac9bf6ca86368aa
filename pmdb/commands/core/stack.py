"""Stack dcmds: `$c`/`::stack`, `$C`, `::findstack` — mdb's shapes over pmdb's unwinder, with
each frame's arguments from DWARF and (`-l`) its functions, inlined ones included, and locals.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pmdb.commands.registry import DcmdContext, dcmd
from pmdb.dumps import ThreadState
from pmdb.errors import CommandError, PmdbError
from pmdb.mdb.text import num, numtostr
from pmdb.unwind.frames import Frame, StackTrace

if TYPE_CHECKING:
    from pmdb.debuginfo.variables import ScopeVariables, Variable

_SHORT_PROBLEM = {"unreadable": "unreadable", "bad DWARF": "bad DWARF", "unsupported": "unsupported"}


def frame_pointer(frame: Frame) -> int:
    """The frame's base as mdb's $C shows it: where rbp points in a standard frame (CFA - 16)."""
    if frame.cfa is not None:
        return frame.cfa - 16
    return frame.registers.get("rbp", frame.sp)


def frame_text(ctx: DcmdContext, frames: Sequence[Frame], index: int, max_args: int | None = None,
               said: set[str] | None = None) -> str:
    """`func+0xoff(arg, ...)`: the frame's pc, named from pc-1 for a return address, and the
    values of its function's parameters where DWARF says where they are (%lr, as mdb)."""
    frame = frames[index]
    args = _arguments(ctx, frames, index, set() if said is None else said)
    if max_args is not None:
        args = args[:max_args]
    shown = ", ".join(arg_text(v, ctx.session.radix) for v in args)
    return f"{ctx.program.symbolize(frame.pc, frame.lookup_pc)}({shown})"


def _arguments(ctx: DcmdContext, frames: Sequence[Frame], index: int, said: set[str]) -> tuple[Variable, ...]:
    """The frame's parameters; none when there is no DWARF, a warning when it is malformed."""
    try:
        return ctx.program.source.arguments(frames, index) or ()
    except PmdbError as e:
        _warn_once(ctx, said, f"frame {frames[index].level}: {e}")
        return ()


def _warn_once(ctx: DcmdContext, said: set[str], message: str) -> None:
    """Warn, unless this dcmd has already said the same."""
    if message not in said:
        said.add(message)
        ctx.warn(message)


def arg_text(var: Variable, radix: int = 16) -> str:
    """A value as $c shows it: mdb's %lr (the radix, no prefix), an aggregate's address, or
    why there is none: `<optimized out>`, `<unreadable>`, `<not in memory>`, ..."""
    if var.problem is not None:
        return f"<{_SHORT_PROBLEM.get(var.problem, var.problem)}>"
    if var.address is not None:
        return numtostr(var.address, radix)
    if isinstance(var.value, float):
        return repr(var.value)
    return numtostr(var.value or 0, radix)


def value_text(var: Variable) -> str:
    """A value as the -l listing shows it: hex as mdb's %#lr, an aggregate as `<type at
    0xaddr>`, or why there is none, with the detail for what is not merely optimized out."""
    if var.problem is not None:
        detail = f": {var.detail}" if var.detail and var.problem in _SHORT_PROBLEM else ""
        return f"<{var.problem}{detail}>"
    if var.address is not None:
        return f"<{var.type.label} at {numtostr(var.address, 16, showbase=True)}>"
    if isinstance(var.value, float):
        return repr(var.value)
    return num(var.value or 0)


def _stack(ctx: DcmdContext) -> StackTrace:
    """`addr$c` starts at frame pointer addr, as in mdb; plain `$c` is the current thread's stack."""
    if ctx.has_addr:
        return ctx.program.stack_from_frame_pointer(ctx.addr)
    thread: ThreadState | None = ctx.session.thread
    if thread is None:
        raise CommandError("no thread registers in this target")
    return ctx.program.stack(thread)


def _print_stack(ctx: DcmdContext, st: StackTrace, opts: dict, with_fp: bool, indent: str = "",
                 skip: int = 0) -> None:
    verbose, local_vars = bool(opts.get("v")), bool(opts.get("l"))
    max_args = opts.get("cnt")
    said: set[str] = opts.setdefault("said", set())
    for i in range(skip, len(st.frames)):
        frame = st.frames[i]
        fp = f"{frame_pointer(frame):016x} " if with_fp else ""
        how = f"  [{frame.method.value}]" if verbose else ""
        ctx.write(f"{indent}{fp}{frame_text(ctx, st.frames, i, max_args, said)}{how}\n")
        if local_vars:
            _print_locals(ctx, st.frames, i, indent + "    ", said)
    if verbose:
        ctx.write(f"{indent}[stopped: {st.stop_reason}]\n")
    elif not st.complete:
        ctx.warn(f"stack trace is incomplete: {st.stop_reason}")


def _print_locals(ctx: DcmdContext, frames: Sequence[Frame], index: int, indent: str, said: set[str]) -> None:
    """Each function of the frame, innermost first, as `func(arg=value, ...) at file:line`,
    then its locals as `name = value`, innermost block first."""
    try:
        info = ctx.program.source.frame_info(frames, index)
    except PmdbError as e:
        _warn_once(ctx, said, f"frame {frames[index].level}: {e}")
        return
    if info is None:
        return
    for error in info.errors:
        _warn_once(ctx, said, f"frame {frames[index].level}: {error}")
    for scope in info.scopes:
        ctx.write(f"{indent}{_scope_header(scope)}\n")
        for var in scope.locals:
            if var.name:
                ctx.write(f"{indent}    {var.name} = {value_text(var)}\n")


def _scope_header(scope: ScopeVariables) -> str:
    args = ", ".join(f"{v.name or '?'}={value_text(v)}" for v in scope.params)
    where = f" at {scope.line.file.name}:{scope.line.line}" if scope.line is not None else ""
    return f"{'[inlined] ' if scope.inlined else ''}{scope.function}({args}){where}"


def _options(ctx: DcmdContext) -> dict:
    """-v, -l and mdb's optional argument count (how many arguments to show per frame)."""
    opts, rest = ctx.options("vl")
    if rest:
        try:
            opts["cnt"] = int(rest[0]) if isinstance(rest[0], int) else int(str(rest[0]), ctx.session.radix)
        except ValueError:
            raise CommandError(f"invalid argument count: {rest[0]}") from None
    return opts


@dcmd("stack", usage="[-lv] [cnt]", aliases=("$c",))
def stack(ctx: DcmdContext) -> None:
    """Print the stack backtrace of the current thread (the one that took the signal).

    One line per frame, innermost first: `func+0xoff(args)`; symbols outside the executable
    are shown as `object`func`. The arguments are the values of the function's parameters
    where its DWARF says where they are at that pc, in the output radix (cnt limits how many
    are shown); `<optimized out>` where the compiler kept no value there (or left it in a
    register the call did not preserve), `<unreadable>` where the memory is not in the dump;
    an aggregate passed by value shows its address. `addr$c` starts from the frame pointer
    addr instead.

    OPTIONS
      -v  each frame says how it was unwound (registers from the dump, DWARF CFI, frame
          pointer, signal frame, or the return address of a bad call), and the last line
          why unwinding stopped.
      -l  under each frame, the functions executing in it (inlined ones first, marked
          `[inlined]`) as `func(param=value, ...) at file:line`, each followed by its
          local variables as `name = value` (innermost block first). Values are hex as
          %#lr, aggregates `<type at 0xaddr>`, or why there is none. (pmdb's; mdb has no -l.)
    """
    _print_stack(ctx, _stack(ctx), _options(ctx), with_fp=False)


@dcmd("stackregs", usage="[-lv] [cnt]", aliases=("$C",))
def stack_with_frame_pointers(ctx: DcmdContext) -> None:
    """Print the stack backtrace with each frame's frame pointer (mdb's $C).

    The first column is the frame's base (where %rbp points in a frame that keeps a frame
    pointer), as 16 hex digits; then the frame as $c shows it. -v and -l as for ::stack.
    """
    _print_stack(ctx, _stack(ctx), _options(ctx), with_fp=True)


@dcmd("findstack", usage=":[-lv]")
def findstack(ctx: DcmdContext) -> None:
    """Print the stack of the thread whose id is the address: `tid::findstack`.

    Use it with the thread walker to see every thread: `::walk thread | ::findstack`.
    With -v, each frame says how it was unwound; -l lists each frame's locals (see ::stack).
    """
    opts = _options(ctx)
    if not ctx.has_addr:
        raise CommandError("a thread id is required: tid::findstack")
    st = ctx.program.stack(ctx.program.thread(ctx.addr))
    first = st.frames[0]
    said: set[str] = opts.setdefault("said", set())
    ctx.write(f"stack pointer for thread {ctx.addr:x}: {frame_pointer(first):x}\n")
    ctx.write(f"[ {frame_pointer(first):016x} {frame_text(ctx, st.frames, 0, None, said)} ]\n")
    if opts.get("l"):
        _print_locals(ctx, st.frames, 0, "    ", said)
    _print_stack(ctx, st, opts, with_fp=True, indent="  ", skip=1)
