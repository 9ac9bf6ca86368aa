"""::regs, threads, ::mappings, ::nm and ::stack -v, against gdb and readelf on the same cores."""

from __future__ import annotations

import re
import subprocess

import pytest
from conftest import Fixture, load_fixture, run_pmdb

GDB_NAMES = {"eflags": "rflags", "fs_base": "fsbase", "gs_base": "gsbase"}


def _parse_regs(text: str) -> dict[str, int]:
    return {name: int(value, 16) for name, value in re.findall(r"%(\w+)\s*=\s*0x([0-9a-f]+)", text)}


@pytest.mark.parametrize("case", ["seed", "threads8", "sighandler"])
def test_regs_of_every_thread_match_gdb(case: str) -> None:
    fx = load_fixture(case)
    for thread in fx.truth["threads"]:
        r = run_pmdb(fx.core, "-e", f"0t{thread['lwp']}::regs")
        assert r.status == 0, r.err
        ours = _parse_regs(r.out)
        for name, value in thread["registers"].items():
            if name != "orig_rax":
                assert ours[GDB_NAMES.get(name, name)] == value, f"thread {thread['lwp']} %{name}"


def test_regs_layout(seed: Fixture) -> None:
    regs = seed.truth["threads"][0]["registers"]
    r = run_pmdb(seed.core, "-e", "::regs")
    lines = r.out.splitlines()
    assert lines[0] == f"%rax = 0x{regs['rax']:016x}       %r8  = 0x{regs['r8']:016x}"
    assert lines[6] == " " * 32 + f"%r14 = 0x{regs['r14']:016x}"
    assert lines[9] == f"%cs = 0x{regs['cs']:04x}    %fs = 0x{regs['fs']:04x}    %gs = 0x{regs['gs']:04x}"
    pc = seed.truth["threads"][0]["frames"][0]["pc"]
    off = pc - seed.truth["symbols"]["ipnet_nicevent_task"]["addr"]
    assert lines[12] == f"%rip = 0x{pc:016x} ipnet_nicevent_task+{off:#x}"
    assert lines[16] == f"%rflags = 0x{regs['eflags']:08x}"
    assert lines[18].startswith("  status=<")


def test_thread_list_and_current_thread(any_case: Fixture) -> None:
    lwps = [t["lwp"] for t in any_case.truth["threads"]]
    r = run_pmdb(any_case.core, "-e", "$l; $L; ::walk thread")
    lines = r.out.splitlines()
    assert lines[0] == str(any_case.truth["crashed_lwp"])
    pid = any_case.truth["psinfo"]["pid"]
    if len(lwps) == 1:
        assert lines[1] == f"lwpid {lwps[0]} is the only lwp in core of process {pid}."
    else:
        assert lines[1].startswith("lwpids ") and lines[1].endswith(f" are in core of process {pid}.")
        assert sorted(int(n) for n in re.findall(r"\d+", lines[1])[:-1]) == sorted(lwps)
    assert sorted(int(x, 16) for x in lines[2:]) == sorted(lwps)
    assert int(lines[2], 16) == any_case.truth["crashed_lwp"]


def test_findstack_of_every_thread_through_a_pipe() -> None:
    fx = load_fixture("threads8")
    r = run_pmdb(fx.core, "-e", "::walk thread | ::findstack")
    assert r.status == 0, r.err
    heads = [ln for ln in r.out.splitlines() if ln.startswith("stack pointer for thread ")]
    listed = [int(h.split()[4].rstrip(":"), 16) for h in heads]
    assert listed[0] == fx.truth["crashed_lwp"]
    assert sorted(listed) == sorted(t["lwp"] for t in fx.truth["threads"])
    assert "blk_select+" in r.out and "blk_poll+" in r.out and "libc.so.6`start_thread+" in r.out


def test_mappings_include_every_file_mapping_gdb_lists(seed: Fixture) -> None:
    r = run_pmdb(seed.core, "-e", "::mappings")
    lines = r.out.splitlines()
    assert lines[0] == "            BASE            LIMIT             SIZE NAME"
    rows = {tuple(ln.split(None, 3)) for ln in lines[1:]}
    for m in seed.truth["mappings"]:
        assert (f"{m['start']:x}", f"{m['end']:x}", f"{m['size']:x}", m["objfile"]) in rows
    assert any(row[3] == "[ stack ]" for row in rows)


def test_nm_matches_readelf(seed: Fixture) -> None:
    bias = seed.truth["symbols"]["main"]["addr"] - seed.truth["symbols"]["main"]["elf_value"]
    out = subprocess.run(["readelf", "-sW", seed.prog], capture_output=True, text=True, check=True).stdout
    table = out.split("Symbol table '.symtab'")[1].splitlines()[2:]
    expected = []
    for line in table:
        f = line.split()
        if len(f) < 7:
            continue
        value, size, ndx, name = int(f[1], 16), int(f[2], 0), f[6], f[7] if len(f) > 7 else ""
        if ndx not in ("UND", "ABS") and f[3] != "TLS":
            value += bias
        expected.append((value, size, name))
    r = run_pmdb(seed.core, "-e", "::nm -h prog")
    ours = []
    for line in r.out.splitlines():
        value, size, _type, _bind, _other, _shndx, name = line.split("|")
        ours.append((int(value, 16), int(size, 16), name))
    assert ours == expected


def test_nm_of_an_address(seed: Fixture) -> None:
    pc = seed.truth["threads"][0]["frames"][0]["pc"]
    sym = seed.truth["symbols"]["ipnet_nicevent_task"]
    r = run_pmdb(seed.core, "-e", f"{pc:#x}::nm")
    assert r.out.splitlines()[1].startswith(f"0x{sym['addr']:016x}|0x{sym['size']:016x}|FUNC |")
    assert r.out.splitlines()[1].endswith("|ipnet_nicevent_task")


def test_stack_verbose_says_how_frames_were_unwound() -> None:
    fx = load_fixture("nullfn")
    r = run_pmdb(fx.core, "-e", "$c -v")
    lines = r.out.splitlines()
    assert lines[0] == "0()  [registers from the dump]"
    assert lines[1].endswith("[return address at [sp] (called a bad pc)]")
    assert lines[2].endswith("[DWARF CFI]")
    assert lines[-1] == "[stopped: outermost frame (return address undefined)]"


@pytest.mark.parametrize("case", ["seed", "threads8", "divzero"])
def test_fpregs_match_gdb(case: str) -> None:
    fx = load_fixture(case)
    for thread in fx.truth["threads"]:
        gdb = thread["fpregs"]
        r = run_pmdb(fx.core, "-e", f"0t{thread['lwp']}::fpregs")
        assert r.status == 0, r.err
        out = r.out
        for i in range(16):
            words = re.search(rf"%xmm{i}\s+\[127:0\]\s+0x(\w+) (\w+) (\w+) (\w+)", out).groups()
            assert int("".join(words), 16) == gdb[f"xmm{i}"], f"thread {thread['lwp']} %xmm{i}"
        assert re.search(r"^cw     0x(\w{4}) ", out, re.M).group(1) == f"{gdb['fctrl']:04x}"
        assert re.search(r"^sw     0x(\w{4}) ", out, re.M).group(1) == f"{gdb['fstat']:04x}"
        assert re.search(r"^mxcsr  0x(\w{4}) ", out, re.M).group(1) == f"{gdb['mxcsr']:04x}"
        tags = re.findall(r"^%st\d .* (\w+)$", out, re.M)
        full = gdb["ftag"]  # gdb rebuilds the full tag word: two bits per physical register, 3 = empty
        top = (gdb["fstat"] >> 11) & 7
        assert tags == [("valid", "zero", "special", "empty")[(full >> 2 * ((i + top) & 7)) & 3] for i in range(8)]
