"""The Linux commands and the story on the kernel panic fixture, as a user runs them: `pmdb
DUMP -e ...` without the -dbg package, checked against the fixture's truth (console, crash,
drgn). Every dump format answers the same; the ELF vmcore and makedumpfile's filtered lzo
dump are run here (test_linux_truth.py covers all four through the API).
"""

from __future__ import annotations

import dataclasses
import io

import pytest
from conftest import KernelFixture, run_pmdb

import pmdb
from pmdb.cli.main import run_batch
from pmdb.commands.registry import default_registry
from pmdb.dumps.detect import open_dump
from pmdb.dumps.locate import FileLocator
from pmdb.formats.vmcoreinfo import VmcoreInfo
from pmdb.mdb.session import Session
from pmdb.os.linux.kernel import LinuxKernel
from pmdb.program import Program

SHOWN = ("elf", "kdump-lzo-d31")


@pytest.fixture(params=SHOWN)
def dump(request: pytest.FixtureRequest, kernel: KernelFixture) -> str:
    """The path of each dump the CLI is run on."""
    return kernel.dump(request.param)


def drgn(k: KernelFixture) -> dict:
    return k.truth["drgn"]["elf"]


def _fault_label(k: KernelFixture) -> str:
    insn = k.truth["story"]["faulting_insn"]
    return f"ipnet`{insn['function']}+{insn['offset']:#x}"


# The story -------------------------------------------------------------------------------

def test_status(dump: str, kernel: KernelFixture) -> None:
    r = run_pmdb(dump, "-e", "::status")
    assert (r.status, r.err) == (0, "")
    uts = drgn(kernel)["uts"]
    story = kernel.truth["story"]
    task = drgn(kernel)["crashed_thread"]["task"]
    lines = r.out.splitlines()
    assert lines[0] == f"debugging crash dump {dump} (64-bit) from (none)"
    assert lines[1].startswith("dump format: ")
    assert f"operating system: {uts['release']} {uts['version']} ({uts['machine']})" in lines
    assert f"build id: {kernel.truth['build_id']}" in lines
    assert f"panic message: {story['bug']}" in lines
    assert f"panic: {story['panic']}" in lines
    assert f"panicking CPU: {story['crashed_cpu']}, task {task:x} (pid {story['pid']}: {story['comm']})" in lines
    assert "crash time: " + kernel.truth["crash"]["elf"]["sys"]["DATE"] + " (uptime 00:00:01)" in lines
    assert lines[-1].startswith("dump content: ")


def test_stack_goes_from_the_panic_through_the_fault_to_ret_from_fork(dump: str, kernel: KernelFixture) -> None:
    r = run_pmdb(dump, "-e", "$c")
    assert (r.status, r.err) == (0, "")
    frames = drgn(kernel)["crashed_thread"]["frames"]
    physical = [f for f in frames if not f["inline"]]
    expected = []
    for f in physical:
        sym = f["symbol"]
        module = "ipnet`" if sym["name"] == "ipnet_nicevent_task" else "pvpanic`" if "pvpanic" in sym["name"] else ""
        expected.append(f"{module}{sym['name']}+{sym['offset']:#x}()")
    assert r.out.splitlines() == expected
    assert r.out.splitlines()[7] == _fault_label(kernel) + "()"


def test_rip_is_the_faulting_instruction(dump: str, kernel: KernelFixture) -> None:
    r = run_pmdb(dump, "-e", "<rip/p")
    assert r.status == 0, r.err
    label = _fault_label(kernel) + ":"
    assert r.out.startswith(label)
    code = kernel.truth["console"]["oops"]["code"].split("<")[1].replace(">", "").split()[:8]
    assert r.out.split()[-1] == f"{int.from_bytes(bytes.fromhex(''.join(code)), 'little'):#x}"


def test_dis_at_rip_shows_the_load_of_the_null_pointer(dump: str, kernel: KernelFixture) -> None:
    r = run_pmdb(dump, "-e", "<rip::dis")
    assert r.status == 0, r.err
    story = kernel.truth["story"]
    assert f"{_fault_label(kernel) + ':':<32}movq   0x8(%{story['bad_reg']}),%r15\n" in r.out
    load = story["netstack_ipnet_load"]
    assert f"{'ipnet`ipnet_nicevent_task+' + hex(load['offset']) + ':':<32}movq   0x88(%rax),%r12\n" in r.out


def test_bad_register_is_zero_and_unreadable(dump: str, kernel: KernelFixture) -> None:
    bad = kernel.truth["story"]["bad_reg"]
    r = run_pmdb(dump, "-e", f"<{bad}=K")
    assert (r.out, r.err, r.status) == (" " * 16 + "0" + " " * 15 + "\n", "", 0)
    r = run_pmdb(dump, "-e", f"<{bad}/p")
    assert r.out == "0:" + " " * 14 + "\n"
    assert r.err == "pmdb: failed to read data from target: no mapping for address\n"
    assert r.status == 1


def test_regs_are_the_faulting_frames(dump: str, kernel: KernelFixture) -> None:
    r = run_pmdb(dump, "-e", "::regs")
    assert r.status == 0, r.err
    regs = drgn(kernel)["crashed_thread"]["fault_registers"]
    assert f"%r12 = 0x{regs['r12']:016x}" in r.out
    assert f"%rip = 0x{regs['rip']:016x} {_fault_label(kernel)}" in r.out
    assert f"%rsp = 0x{regs['rsp']:016x}" in r.out


# The other commands ----------------------------------------------------------------------

def test_msgbuf_is_the_kernel_log_as_dmesg_prints_it(dump: str, kernel: KernelFixture) -> None:
    r = run_pmdb(dump, "-e", "::msgbuf")
    assert (r.status, r.err) == (0, "")
    assert r.out.splitlines()[-50:] == [t["line"] for t in drgn(kernel)["printk"]["tail"]]


def test_ps_lists_every_task(dump: str, kernel: KernelFixture) -> None:
    r = run_pmdb(dump, "-e", "::ps")
    assert (r.status, r.err) == (0, "")
    lines = r.out.splitlines()
    assert lines[0].split() == ["S", "PID", "PPID", "PGID", "SID", "UID", "FLAGS", "ADDR", "NAME"]
    rows = [line.split(None, 8) for line in lines[1:]]
    tasks = {(t["pid"], t["comm"], t["state"], f"{t['task']:016x}") for t in drgn(kernel)["tasks"]}
    assert {(int(r[1]), r[8], r[0], r[7]) for r in rows if r[1] != "0"} == tasks
    assert [r[8] for r in rows if r[1] == "0"] == ["swapper/0", "swapper/1"]
    init = next(r for r in rows if r[1] == "1")
    assert (init[2], init[3], init[4]) == ("0", "0", "0")  # the kernel started init: no parent, group 0


def _distinctive_sleep_function(kernel: KernelFixture) -> str:
    """A function some sleeping tasks are in, below the scheduler's own (e.g. do_nanosleep)."""
    common = {"__schedule", "schedule", "schedule_timeout", "schedule_hrtimeout_range_clock"}
    for t in sorted(drgn(kernel)["tasks"], key=lambda t: t["pid"]):
        if t["stack"][:1] == ["__schedule"]:
            for fn in t["stack"][1:]:
                if fn not in common and not fn.startswith(("entry_", "do_syscall", "__x64_sys", "ret_from")):
                    return fn
    raise AssertionError("no sleeping task in the fixture")


def test_stacks_aggregates_and_filters(dump: str, kernel: KernelFixture) -> None:
    r = run_pmdb(dump, "-e", "::stacks")
    assert (r.status, r.err) == (0, "")
    entries = [e for e in r.out.split("\n\n") if e.strip()]
    assert entries[0].splitlines()[0].split() == ["THREAD", "STATE", "SOBJ", "COUNT"]
    heads = [e.splitlines()[1 if i == 0 else 0].split() for i, e in enumerate(entries)]  # after the header
    assert sum(int(h[3]) for h in heads) == len(drgn(kernel)["tasks"]) + 2  # and the idle tasks
    assert heads[-1][1] == "PANIC" and heads[-1][0] == f"{drgn(kernel)['crashed_thread']['task']:016x}"
    counts = [int(h[3]) for h in heads[:-1]]
    assert counts == sorted(counts, reverse=True)
    r = run_pmdb(dump, "-e", "::stacks -m ipnet")
    assert r.out.splitlines()[1].split()[1:] == ["PANIC", "<NONE>", "1"]
    assert _fault_label(kernel) in [line.strip() for line in r.out.splitlines()]
    fn = _distinctive_sleep_function(kernel)  # which tasks sleep where changes from boot to boot
    r = run_pmdb(dump, "-e", f"::stacks -c {fn}")
    expected = sorted(f"{t['task']:016x}" for t in drgn(kernel)["tasks"] if fn in t["stack"])
    listed = [line.split() for line in r.out.splitlines() if line.startswith("ffff")]
    assert sorted(row[0] for row in listed) == expected
    assert {row[1] for row in listed} <= {"SLEEP", "UNINTR"}
    r = run_pmdb(dump, "-e", "::stacks -t idle ! grep -c IDLE")
    assert int(r.out) >= 2
    r = run_pmdb(dump, "-e", "::stacks -m nosuchmodule")
    assert r.err == 'pmdb: stacks: module "nosuchmodule" is unknown\n'


def test_findstack_of_the_panicking_and_a_sleeping_task(dump: str, kernel: KernelFixture) -> None:
    task = drgn(kernel)["crashed_thread"]["task"]
    r = run_pmdb(dump, "-e", f"{task:x}::findstack")
    assert (r.status, r.err) == (0, "")
    lines = r.out.splitlines()
    assert lines[0].startswith(f"stack pointer for thread {task:x} (pid 9: kworker/u4:0): ")
    assert lines[1].startswith("[ ") and "pvpanic`pvpanic_panic_notify+0x60() ]" in lines[1]
    assert lines[-1].endswith(" ret_from_fork+0x22()") and lines[-1].startswith("  ")
    sleeper = next(t for t in sorted(drgn(kernel)["tasks"], key=lambda t: t["pid"])
                   if t["stack"][:1] == ["__schedule"])  # the first sleeping task of this boot
    r = run_pmdb(dump, "-e", f"{sleeper['task']:x}::findstack")
    lines = r.out.splitlines()
    names = [lines[1].split()[2].split("+")[0]] + [line.split()[-1].split("+")[0] for line in lines[2:]]
    # kallsyms names the syscall entry's label (entry_SYSCALL_64_after_hwframe) where drgn's
    # DWARF names the function (entry_SYSCALL_64)
    assert names[0] == "__schedule" and names[-1].startswith(sleeper["stack"][-1])


def test_modinfo_and_cpuinfo(dump: str, kernel: KernelFixture) -> None:
    r = run_pmdb(dump, "-e", "::modinfo")
    assert (r.status, r.err) == (0, "")
    rows = [line.split() for line in r.out.splitlines()[1:]]
    assert rows == [[f"{m['module']:016x}", f"{m['base']:016x}", f"{m['size']:x}", "LIVE", m["name"]]
                    for m in drgn(kernel)["modules"]]
    r = run_pmdb(dump, "-e", "::cpuinfo")
    rows = [line.split() for line in r.out.splitlines()[1:]]
    current = drgn(kernel)["cpus"]["current"]
    assert [(row[0], row[2], row[4], row[5]) for row in rows] == [
        (cpu, "OP" if int(cpu) == kernel.truth["story"]["crashed_cpu"] else "-", f"{c['task']:016x}", c["comm"])
        for cpu, c in sorted(current.items())]


def test_tasks_are_typed_for_print(dump: str, kernel: KernelFixture) -> None:
    task = drgn(kernel)["crashed_thread"]["task"]
    r = run_pmdb(dump, "-e", f"{task:x}::print struct task_struct comm pid")
    assert (r.out, r.err) == ('comm = [ "kworker/u4:0" ]\npid = 0x9\n', "")
    r = run_pmdb(dump, "-e", "::walk task | ::print -d struct task_struct pid")
    r2 = run_pmdb(dump, "-e", "::walk thread | ::print -d pid")
    assert r.out == r2.out
    pids = sorted(int(line.split("=")[1].strip().removeprefix("0t")) for line in r.out.splitlines())
    assert pids == sorted([0, 0] + [t["pid"] for t in drgn(kernel)["tasks"]])
    r = run_pmdb(dump, "-e", "<thread=K")
    assert int(r.out, 16) == task


# Bad input -------------------------------------------------------------------------------

def test_placeholder_and_foreign_system_maps_are_refused(kernel: KernelFixture, tmp_path: object) -> None:
    elf = kernel.dump("elf")
    r = run_pmdb(elf, "--system-map", kernel.truth["paths"]["system_map_placeholder"], "-e", "$c")
    assert r.status == 2 and "Debian's placeholder System.map" in r.err and "-dbg package" in r.err
    real = kernel.truth["paths"]["system_map"]
    r = run_pmdb(elf, "--system-map", real, "-e", "$c")
    assert r.status == 0 and r.out.splitlines()[7] == _fault_label(kernel) + "()"
    other = f"{tmp_path}/System.map-other"
    with open(real) as f, open(other, "w") as out:  # another build: every text address moved
        for line in f:
            addr, letter, name = line.split()[:3]
            value = int(addr, 16)
            out.write(f"{value + 0x2000 if value >= 0xFFFFFFFF80000000 else value:016x} {letter} {name}\n")
    r = run_pmdb(elf, "--system-map", other, "-e", "$c")
    assert r.status == 2 and "is not this kernel's System.map" in r.err


def test_missing_kallsyms_entries_give_a_partial_answer(kernel: KernelFixture) -> None:
    dump = open_dump(kernel.dump("elf"), FileLocator(None, []))
    info: VmcoreInfo = dump.notes["vmcoreinfo"]
    kept = {k: v for k, v in info.entries.items() if k not in ("SYMBOL(kallsyms_names)", "SYMBOL(kallsyms_offsets)")}
    dump.notes["vmcoreinfo"] = dataclasses.replace(info, entries=kept)
    session = Session(default_registry(), Program(dump, LinuxKernel(dump)))
    out, err = io.StringIO(), io.StringIO()
    status = run_batch(session, "::status\n$c\n::ps", out, err)
    assert status == 1  # ::ps cannot read tasks without the kernel's types
    assert "operating system: 6.1.0-56-cloud-amd64" in out.getvalue()
    assert "no kallsyms: VMCOREINFO lacks SYMBOL(kallsyms_names), SYMBOL(kallsyms_offsets)" in err.getvalue()
    assert "Traceback" not in err.getvalue()


def test_kernel_commands_on_a_process_core(seed: object) -> None:
    r = run_pmdb(seed.core, "-e", "::ps")  # type: ignore[attr-defined]
    assert (r.out, r.err, r.status) == ("", "pmdb: ::ps needs a kernel crash dump\n", 1)


def test_system_map_on_a_process_core_is_refused(seed: object) -> None:
    with pytest.raises(pmdb.errors.UsageError, match="not a kernel crash dump"):
        pmdb.open(seed.core, system_map="/dev/null")  # type: ignore[attr-defined]
