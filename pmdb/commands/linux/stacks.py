"""`::stacks`: every task's stack, identical ones aggregated with a count, as mdb's ::stacks.

    THREAD           STATE    SOBJ                COUNT
    ffff8d0a81219800 IDLE     <NONE>                 19
                     __schedule+0x2c8
                     ...

Stacks are identical when their pcs, their state and whether they are the panic's match.
The list is sorted as mdb sorts it: the panicking task last, larger counts first, then by
state and the functions' names. Linux has no synchronization-object column to fill: SOBJ
is always <NONE>. Filters: -c/-C a function the stack must (not) contain, -m/-M a module
it must (not) run in, -t/-T a state it must (not) be in (a name below or `panic`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pmdb.commands.linux.target import need_kernel, report
from pmdb.commands.registry import DcmdContext, UsageError, dcmd
from pmdb.errors import CommandError, PmdbError

if TYPE_CHECKING:
    from pmdb.os.linux.kernel import LinuxKernel
    from pmdb.program import Program

# /proc's state letters as mdb-style state names; a running task on a CPU is ONPROC
STATE_NAMES = {"R": "RUN", "S": "SLEEP", "D": "UNINTR", "T": "STOPPED", "t": "TRACED", "X": "DEAD",
               "Z": "ZOMBIE", "P": "PARKED", "I": "IDLE"}
PANIC = "PANIC"
MAX_DEPTH = 254  # frames kept per stack, as mdb's STACKS_MAX_DEPTH


@dataclass
class StackGroup:
    """Tasks with one stack: the pcs, state, whether it is the panic's, and its tasks."""

    pcs: tuple[int, ...]
    lookups: tuple[int, ...]
    state: str
    panic: bool
    truncated: bool
    problem: str | None
    tasks: list[int] = field(default_factory=list)


def _state(kernel: LinuxKernel, addr: int, letter: str) -> str:
    if letter == "R" and addr in kernel.current_tasks.values():
        return "ONPROC"
    return STATE_NAMES.get(letter, letter)


def collect(prog: Program, kernel: LinuxKernel, addrs: list[int]) -> list[StackGroup]:
    """The stacks of tasks `addrs`, grouped."""
    panic_task = kernel.crashed_thread.tid if kernel.crashed_thread is not None else None
    groups: dict[tuple, StackGroup] = {}
    for addr in addrs:
        try:
            task = kernel.task(addr)
            st = prog.stack(prog.thread(addr))
        except PmdbError as e:
            key: tuple = ((), "?", False, str(e))
            groups.setdefault(key, StackGroup((), (), "?", False, False, str(e))).tasks.append(addr)
            continue
        frames = st.frames[:MAX_DEPTH]
        pcs = tuple(f.pc for f in frames)
        is_panic = addr == panic_task and kernel.panic_cpu is not None
        state = PANIC if is_panic else _state(kernel, addr, task.state)
        problem = None if st.complete else st.stop_reason
        key = (pcs, state, is_panic, problem)
        group = groups.get(key)
        if group is None:
            group = groups[key] = StackGroup(pcs, tuple(f.lookup_pc for f in frames), state, is_panic,
                                             len(st.frames) > MAX_DEPTH, problem)
        group.tasks.append(addr)
    return sorted(groups.values(), key=lambda g: _order(prog, g))


def _order(prog: Program, g: StackGroup) -> tuple:
    names = tuple(str(prog.symbolize(pc, lookup)) for pc, lookup in zip(g.pcs, g.lookups, strict=True))
    return (g.panic, -len(g.tasks), g.state, g.problem or "", names)


def _has_function(prog: Program, g: StackGroup, name: str) -> bool:
    sym = prog.try_lookup(name)
    if sym is None:
        raise CommandError(f"stacks: unknown function {name}")
    return any(sym.contains(lookup) for lookup in g.lookups)


def _has_module(kernel: LinuxKernel, g: StackGroup, name: str) -> bool:
    mod = next((m for m in kernel.symbols.modules if m.symbols.module == name), None)
    if mod is None:
        raise CommandError(f"stacks: module \"{name}\" is unknown")
    return any(mod.start <= pc < mod.end for pc in g.lookups)


def _state_filter(text: str) -> str:
    name = text.upper()
    known = set(STATE_NAMES.values()) | {"ONPROC", PANIC}
    if name not in known:
        letter = STATE_NAMES.get(text)
        if letter is None:
            raise UsageError(f"tstate \"{text}\" not recognized")
        name = letter
    return name


def _keep(prog: Program, kernel: LinuxKernel, g: StackGroup, opts: dict) -> bool:
    checks = [("c", True, lambda v: _has_function(prog, g, v)), ("C", False, lambda v: _has_function(prog, g, v)),
              ("m", True, lambda v: _has_module(kernel, g, v)), ("M", False, lambda v: _has_module(kernel, g, v)),
              ("t", True, lambda v: g.state == _state_filter(v)), ("T", False, lambda v: g.state == _state_filter(v))]
    return all(test(opts[flag]) == wanted for flag, wanted, test in checks if flag in opts)


@dcmd("stacks", usage="?[-a] [-c func] [-C func] [-m module] [-M module] [-t state] [-T state]")
def stacks(ctx: DcmdContext) -> None:
    """Print every task's stack once, identical stacks aggregated with the number of tasks.

    Each entry gives a representative task (-a: every task), its state (RUN, ONPROC on a
    CPU, SLEEP, UNINTR, IDLE, STOPPED, TRACED, ZOMBIE, DEAD, PARKED, or PANIC for the
    panicking task), the count, and the stack's frames. `addr::stacks` shows only the stack
    of task addr and the tasks that share it. When piped on, the tasks' addresses are passed
    down instead.

    OPTIONS
      -a         list every task of an entry, not one
      -c func    only stacks with a frame in function func; -C func: only those without
      -m module  only stacks with a frame in module (vmlinux, or a module's name); -M: without
      -t state   only stacks in that state (a name above, or panic); -T state: not in it
    """
    opts, rest = ctx.options("ac:C:m:M:t:T:")
    if rest:
        raise UsageError("")
    kernel = need_kernel(ctx, "stacks")
    prog = ctx.program
    groups = collect(prog, kernel, kernel.task_addresses)
    if ctx.has_addr:
        groups = [g for g in groups if ctx.addr in g.tasks]
    shown = [g for g in groups if _keep(prog, kernel, g, opts)]
    if ctx.piped_out:
        for g in shown:
            for addr in g.tasks:
                ctx.emit(addr, ctype="struct task_struct")
        return
    if shown:
        ctx.write(f"{'THREAD':<16} {'STATE':<8} {'SOBJ':<16} {'COUNT':>8}\n")
    for g in shown:
        for i, addr in enumerate(g.tasks if opts.get("a") else g.tasks[:1]):
            count = str(len(g.tasks)) if i == 0 else "-"
            ctx.write(f"{addr:016x} {g.state:<8} {'<NONE>':<16} {count:>8}\n")
        if g.problem:
            ctx.write(f"{'':16} <{g.problem}>\n")
        for pc, lookup in zip(g.pcs, g.lookups, strict=True):
            ctx.write(f"{'':16} {prog.symbolize(pc, lookup)}\n")
        if g.truncated:
            ctx.write(f"{'':16} ... truncated ...\n")
        ctx.write("\n")
    report(ctx, kernel)
