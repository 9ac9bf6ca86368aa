"""The Linux personality on the kernel panic fixture, in every dump format, checked against
the ground truth of the console, crash and drgn (truth.json): the panic, the crashed CPU and
task, the panicking task's stack through the exception frame, the faulting registers, the
modules, the log's tail, utsname and the task list.

Each check runs without the -dbg package (kallsyms, BTF and ORC from the dump alone) and
again with its DWARF vmlinux named. drgn could not open QEMU's kdump files, but every dump
is of one boot, so drgn's answers on the ELF vmcore hold for all of them; crash's task count
is wrong on this kernel (see the fixture's README), so tasks are checked against drgn's.
"""

from __future__ import annotations

import functools

import pytest
from conftest import KernelFixture, load_kernel_fixture

import pmdb
from pmdb.program import Program

DUMPS = ("elf", "kdump-zlib-flat", "kdump-zlib", "kdump-lzo-d31")
REGISTERS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13",
             "r14", "r15", "rip", "rflags", "cs", "ss")


@functools.cache
def opened(name: str, with_vmlinux: bool) -> Program:
    """Each dump opened once per way (they are read-only)."""
    k = load_kernel_fixture()
    vmlinux = k.truth["paths"]["vmlinux_debug"] if with_vmlinux else None
    return pmdb.open(k.dump(name), vmlinux)


@pytest.fixture(params=[(d, dbg) for dbg in (False, True) for d in DUMPS],
                ids=[f"{d}{'-dbg' if dbg else ''}" for dbg in (False, True) for d in DUMPS])
def prog(request: pytest.FixtureRequest, kernel: KernelFixture) -> Program:
    """Each dump, without and with the -dbg vmlinux."""
    name, dbg = request.param
    return opened(name, dbg)


def drgn(k: KernelFixture) -> dict:
    """drgn's view of the boot (taken from the ELF vmcore)."""
    return k.truth["drgn"]["elf"]


# kallsyms has no sizes: a label inside a function names the code after it, where drgn's ELF
# sizes name the function (crash, from kallsyms too, agrees with pmdb)
LABELS = {"entry_SYSCALL_64_after_hwframe": "entry_SYSCALL_64"}


def _function(prog: Program, pc: int, lookup: int) -> str:
    """The frame's function as drgn names it: `.cold` parts by their function, labels too."""
    sym = prog.symbolize(pc, lookup).symbol
    name = sym.name.removesuffix(".cold") if sym is not None else "?"
    return LABELS.get(name, name)


def test_panic_message_and_line(prog: Program, kernel: KernelFixture) -> None:
    assert prog.kernel is not None
    story = kernel.truth["story"]
    assert prog.kernel.panic.cause == story["bug"] == kernel.truth["console"]["oops"]["bug"]
    assert prog.kernel.panic.panic == story["panic"]


def test_crashed_cpu_and_task(prog: Program, kernel: KernelFixture) -> None:
    assert prog.kernel is not None
    story = kernel.truth["story"]
    assert prog.kernel.panic_cpu == story["crashed_cpu"] == drgn(kernel)["panic_cpu"]
    thread = prog.crashed_thread
    assert thread is not None
    task = prog.kernel.task(thread.tid)
    assert (task.pid, task.comm) == (story["pid"], story["comm"])
    assert thread.tid == drgn(kernel)["crashed_thread"]["task"]


def test_backtrace_goes_through_the_exception_frame(prog: Program, kernel: KernelFixture) -> None:
    assert prog.crashed_thread is not None
    st = prog.stack(prog.crashed_thread)
    names = [_function(prog, f.pc, f.lookup_pc) for f in st.frames]
    assert names == kernel.truth["story"]["drgn_physical_functions"]
    fault = names.index(kernel.truth["story"]["faulting_function"])
    assert names[fault:] == kernel.truth["story"]["functions_from_fault"]
    assert st.frames[fault].pc == kernel.truth["story"]["faulting_pc"]
    assert st.complete, st.stop_reason


def test_faulting_registers(prog: Program, kernel: KernelFixture) -> None:
    assert prog.crashed_thread is not None
    regs = prog.crashed_thread.registers
    truth = drgn(kernel)["crashed_thread"]["fault_registers"]
    assert {r: regs[r] for r in REGISTERS} == {r: truth[r] for r in REGISTERS}
    console = kernel.truth["console"]["oops"]["registers"]
    assert regs["r12"] == console["r12"] == 0
    assert regs["rsp"] == console["rsp"] and regs["rflags"] == console["eflags"]


def test_module_list(prog: Program, kernel: KernelFixture) -> None:
    assert prog.kernel is not None
    got = [(m.name, m.base, m.size, m.address) for m in prog.kernel.modules]
    assert got == [(m["name"], m["base"], m["size"], m["module"]) for m in drgn(kernel)["modules"]]
    assert all(m.state == "LIVE" for m in prog.kernel.modules)


def test_last_50_log_lines(prog: Program, kernel: KernelFixture) -> None:
    assert prog.kernel is not None
    printk = drgn(kernel)["printk"]
    records = prog.kernel.log
    assert len(records) == printk["count"]
    lines = [line for r in records[-50:] for line in r.lines]
    assert lines == [r["line"] for r in printk["tail"]]
    assert [r.caller_pid for r in records[-50:]] == [r["caller_tid"] for r in printk["tail"]]


def test_utsname_and_times(prog: Program, kernel: KernelFixture) -> None:
    assert prog.kernel is not None
    uts = prog.kernel.utsname
    assert uts.__dict__ == drgn(kernel)["uts"]
    assert prog.kernel.times[0] == 1  # crash: UPTIME 00:00:01


def test_task_list_pids_and_comms(prog: Program, kernel: KernelFixture) -> None:
    assert prog.kernel is not None
    tasks = [prog.kernel.task(a) for a in prog.kernel.task_addresses]
    listed = sorted((t.pid, t.tgid, t.comm, t.address) for t in tasks if t.pid)
    truth = sorted((t["pid"], t["tgid"], t["comm"], t["task"]) for t in drgn(kernel)["tasks"])
    assert listed == truth
    states = {t.pid: t.state for t in tasks if t.pid}
    assert states == {t["pid"]: t["state"] for t in drgn(kernel)["tasks"]}
    idle = [t for t in tasks if not t.pid]
    assert [t.comm for t in idle] == [f"swapper/{cpu}" for cpu in drgn(kernel)["cpus"]["possible"]]


def test_each_cpu_runs_the_task_drgn_says(prog: Program, kernel: KernelFixture) -> None:
    assert prog.kernel is not None
    current = drgn(kernel)["cpus"]["current"]
    assert {str(cpu): task for cpu, task in prog.kernel.current_tasks.items()} == \
        {cpu: c["task"] for cpu, c in current.items()}
    assert prog.kernel.online_cpus == drgn(kernel)["cpus"]["online"]


def test_sleeping_tasks_stacks_match_drgn(prog: Program, kernel: KernelFixture) -> None:
    assert prog.kernel is not None
    for t in drgn(kernel)["tasks"]:
        st = prog.stack(prog.thread(t["task"]))
        names = [_function(prog, f.pc, f.lookup_pc) for f in st.frames]
        assert names == t["stack"], t["comm"]


def test_no_problems_reported(prog: Program) -> None:
    assert prog.kernel is not None
    _ = prog.kernel.times, prog.kernel.log, prog.kernel.utsname, prog.kernel.task_addresses
    assert prog.kernel.problems == []
