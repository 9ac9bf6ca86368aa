"""The story, step by step, on the seed core: each command's output as mdb would print it,
with the numbers taken from gdb's and objdump's view of the same core.
"""

from __future__ import annotations

import pytest
from conftest import Fixture, load_fixture, run_pmdb
from source_truth import gdb_frames

SEED_CASES = ["seed", "seed_O0"]


def _fault(fx: Fixture) -> tuple[int, int]:
    """(faulting pc, its offset in ipnet_nicevent_task), from gdb."""
    pc = fx.truth["threads"][0]["frames"][0]["pc"]
    return pc, pc - fx.truth["symbols"]["ipnet_nicevent_task"]["addr"]


def _code_bytes(fx: Fixture, addr: int, n: int) -> bytes:
    """n bytes of code at addr, from objdump's listing of the function."""
    code = b"".join(bytes.fromhex(i["bytes"]) for i in fx.truth["disassembly"]["insns"] if i["addr"] >= addr)
    return code[:n]


def _off(n: int) -> str:
    return f"+{n:#x}" if n > 9 else f"+{n}"


@pytest.mark.parametrize("case", SEED_CASES)
def test_status_names_the_signal_and_fault_address(case: str) -> None:
    fx = load_fixture(case)
    r = run_pmdb(fx.core, "-e", "::status")
    assert r.status == 0, r.err
    sig = fx.truth["siginfo"]
    lines = r.out.splitlines()
    assert lines[0] == f"debugging core file of {fx.truth['psinfo']['fname']} (64-bit) from unknown machine"
    assert f"file: {fx.prog}" in lines
    assert f"process id: {fx.truth['psinfo']['pid']}" in lines
    assert f"initial argv: {fx.truth['psinfo']['psargs'].rstrip()}" in lines
    assert lines[-1] == f"status: process terminated by SIGSEGV (Segmentation Fault), addr={sig['addr']:x} code=1"
    assert sig["addr"] == 8


def test_stack_shows_the_task_on_top_of_the_worker(seed: Fixture) -> None:
    r = run_pmdb(seed.core, "-e", "$c")
    assert r.status == 0, r.err
    frames = seed.truth["threads"][0]["frames"]
    syms = seed.truth["symbols"]
    args = [f["args"] for f in gdb_frames(seed)[0]["frames"][:2]]  # [["arg", {"int": ...}]], gdb's view
    expected = [
        f"ipnet_nicevent_task{_off(frames[0]['pc'] - syms['ipnet_nicevent_task']['addr'])}({args[0][0][1]['int']:x})",
        f"taskq_thread{_off(frames[1]['pc'] - syms['taskq_thread']['addr'])}({args[1][0][1]['int']:x})",
    ]
    assert r.out.splitlines()[:2] == expected
    assert [ln.split("+")[0] for ln in r.out.splitlines()[2:]] == ["libc.so.6`start_thread", "libc.so.6`clone3"]


def test_rip_p_prints_the_symbolic_pc_and_eight_code_bytes(seed: Fixture) -> None:
    pc, off = _fault(seed)
    r = run_pmdb(seed.core, "-e", "<rip/p")
    assert r.status == 0, r.err
    value = int.from_bytes(_code_bytes(seed, pc, 8), "little")
    label = f"ipnet_nicevent_task+{off:#x}:"
    text = f"{value:#x}"
    margin = -(-max(len(label), 16) // 16) * 16  # the address and colon, then a tab stop of 16
    assert r.out == f"{label:<{margin}}{text:<19}\n"


def test_dis_shows_the_faulting_load(seed: Fixture) -> None:
    _pc, off = _fault(seed)
    r = run_pmdb(seed.core, "-e", f"ipnet_nicevent_task+{off:#x}::dis")
    assert r.status == 0, r.err
    bad = seed.truth["bad_reg"]
    label = f"ipnet_nicevent_task+{off:#x}:"
    assert f"{label:<32}movq   0x8(%{bad})," in r.out
    load = seed.truth["netstack_ipnet_load"]
    load_label = f"ipnet_nicevent_task+{load['addr'] - seed.truth['symbols']['ipnet_nicevent_task']['addr']:#x}:"
    assert f"{load_label:<32}movq   0x88(%rax),%{bad}\n" in r.out


def test_bad_register_is_zero_and_unreadable(seed: Fixture) -> None:
    bad = seed.truth["bad_reg"]
    assert seed.truth["bad_reg_value"] == 0
    r = run_pmdb(seed.core, "-e", f"<{bad}=K")
    assert (r.out, r.err, r.status) == (" " * 16 + "0" + " " * 15 + "\n", "", 0)
    r = run_pmdb(seed.core, "-e", f"<{bad}/p")
    assert r.out == "0:" + " " * 14 + "\n"
    assert r.err == "pmdb: failed to read data from target: no mapping for address\n"
    assert r.status == 1


def test_stripped_binary_still_unwinds_with_hex_frames() -> None:
    fx = load_fixture("seed_stripped")
    r = run_pmdb(fx.core, "-e", "$c")
    assert r.status == 0, r.err
    gdb = fx.truth["threads"][0]["frames"]
    assert r.out.splitlines()[:2] == [f"{gdb[0]['pc']:#x}()", f"{gdb[1]['pc']:#x}()"]
