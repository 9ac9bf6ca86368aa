"""Tasks: the `init_task` list, thread groups, each task's state and saved context.

A task that is not running keeps its callee-saved registers in a `struct inactive_task_frame`
at `thread.sp` (x86-64, since 4.9): the return address into `__schedule` (or
`ret_from_fork` for a task that never ran) and the stack pointer just above it are where
its stack trace starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from pmdb.os.linux.layout import Layout
from pmdb.os.linux.reader import KernelReader

# The state letters of /proc/PID/stat, in the order of the TASK_REPORT bits; an idle kernel
# thread (TASK_UNINTERRUPTIBLE | TASK_NOLOAD) reports as the last, `I`.
STATE_LETTERS = "RSDTtXZPI"
_TASK_REPORT = 0x7F
_TASK_IDLE = 0x402
_TASK_RTLOCK_WAIT = 0x1000
_TASK_UNINTERRUPTIBLE = 0x2
_TASK_REPORT_IDLE = _TASK_REPORT + 1
# struct inactive_task_frame members, by the register each holds (the unwinder's names)
_SAVED = (("r15", "r15"), ("r14", "r14"), ("r13", "r13"), ("r12", "r12"), ("rbx", "bx"), ("rbp", "bp"))


@dataclass(frozen=True)
class Task:
    """One task as `ps` shows it: its `struct task_struct` address and identity."""

    address: int
    pid: int
    tgid: int
    comm: str
    state: str
    cpu: int
    flags: int


class TaskReader:
    """Reads `struct task_struct`s with offsets from a Layout."""

    def __init__(self, reader: KernelReader, layout: Layout) -> None:
        self.reader = reader
        self.layout = layout

    def _off(self, path: str) -> int:
        return self.layout.offset("task_struct", path)

    def task(self, addr: int) -> Task:
        """The task at `addr`."""
        rd, lay = self.reader, self.layout
        comm = rd.cstring(addr + self._off("comm"), lay.member_size("task_struct", "comm"))
        cpu_path = "thread_info.cpu" if lay.has("task_struct", "thread_info.cpu") else "cpu"
        return Task(addr, rd.s32(addr + self._off("pid")), rd.s32(addr + self._off("tgid")), comm,
                    self.state(addr), rd.u32(addr + self._off(cpu_path)), rd.u32(addr + self._off("flags")))

    def state(self, addr: int) -> str:
        """The task's state letter, as /proc shows it."""
        rd = self.reader
        field = "__state" if self.layout.has("task_struct", "__state") else "state"
        raw = rd.u32(addr + self._off(field))
        exit_state = rd.u32(addr + self._off("exit_state"))
        state = (raw | exit_state) & _TASK_REPORT
        if raw & _TASK_IDLE == _TASK_IDLE:
            state = _TASK_REPORT_IDLE
        elif raw == _TASK_RTLOCK_WAIT:
            state = _TASK_UNINTERRUPTIBLE
        return STATE_LETTERS[min(state.bit_length(), len(STATE_LETTERS) - 1)]

    def processes(self, init_task: int) -> Iterator[int]:
        """The group leaders on init_task's `tasks` list (init_task itself, the idle task, not)."""
        link = self._off("tasks")
        for node in self.reader.list_entries(init_task + link):
            yield node - link

    def threads(self, leader: int) -> Iterator[int]:
        """The threads of the group `leader` leads, the leader first."""
        rd, lay = self.reader, self.layout
        if lay.has("task_struct", "thread_node") and lay.has("signal_struct", "thread_head"):
            signal = rd.u64(leader + self._off("signal"))
            link = self._off("thread_node")
            head = signal + lay.offset("signal_struct", "thread_head")
            for node in rd.list_entries(head):
                yield node - link
            return
        yield leader
        link = self._off("thread_group")
        for node in rd.list_entries(leader + link):
            yield node - link

    def all_tasks(self, init_task: int) -> Iterator[int]:
        """Every task but the idle tasks: each process's threads, in list order."""
        for leader in self.processes(init_task):
            yield from self.threads(leader)

    def ids(self, addr: int) -> tuple[int, int, int, int]:
        """(parent's tgid, process group id, session id, uid) of the task at `addr`, as ps shows
        them: ids in the initial pid namespace, the real uid."""
        rd, lay = self.reader, self.layout
        parent = rd.u64(addr + self._off("real_parent"))
        ppid = rd.s32(parent + self._off("tgid")) if parent and parent != addr else 0
        kinds = lay.enum_values("pid_type")
        signal = rd.u64(addr + self._off("signal"))
        pids = signal + lay.offset("signal_struct", "pids")
        nr = lay.offset("pid", "numbers") + lay.offset("upid", "nr")

        def group(kind: str) -> int:
            pid = rd.u64(pids + 8 * kinds[kind])
            return rd.s32(pid + nr) if pid else 0

        cred = rd.u64(addr + self._off("real_cred"))
        uid = rd.u32(cred + lay.offset("cred", "uid")) if cred else 0
        return ppid, group("PIDTYPE_PGID"), group("PIDTYPE_SID"), uid

    def saved_registers(self, addr: int) -> dict[str, int]:
        """Where a task that is not running stopped: the registers its switch saved, with rip the
        return address the switch will go back to and rsp the stack above it."""
        rd, lay = self.reader, self.layout
        sp = rd.u64(addr + self._off("thread.sp"))
        regs = {reg: rd.u64(sp + lay.offset("inactive_task_frame", member)) for reg, member in _SAVED}
        ret = sp + lay.offset("inactive_task_frame", "ret_addr")
        regs["rip"] = rd.u64(ret)
        regs["rsp"] = ret + 8
        return regs
