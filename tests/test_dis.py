"""::dis against objdump: the same instruction addresses and lengths over the same range."""

from __future__ import annotations

import pytest
from conftest import Fixture, load_fixture, run_pmdb

import pmdb

CASES_WITH_DISASSEMBLY = ["seed", "seed_O0", "assert", "divzero", "sighandler", "threads8", "libc_strlen"]


def _listed_addresses(out: str) -> list[int]:
    return [int(line.split()[0], 16) for line in out.splitlines()]


@pytest.mark.parametrize("case", CASES_WITH_DISASSEMBLY)
def test_whole_function_matches_objdump(case: str) -> None:
    fx: Fixture = load_fixture(case)
    d = fx.truth["disassembly"]
    if d is None:
        pytest.skip("gdb found no symbol for frame 0")
    r = run_pmdb(fx.core, "-e", f"{d['start']:#x}::dis -a")
    assert r.status == 0, r.err
    theirs = [i["addr"] for i in d["insns"]]
    assert _listed_addresses(r.out) == theirs
    prog = pmdb.open(fx.core)
    assert [prog.instruction_at(i["addr"]).size for i in d["insns"]] == [i["len"] for i in d["insns"]]
    assert [prog.instruction_at(i["addr"]).raw.hex() for i in d["insns"]] == [i["bytes"] for i in d["insns"]]


def test_window_around_the_fault_is_ten_before_and_ten_after(seed: Fixture) -> None:
    insns = seed.truth["disassembly"]["insns"]
    pc = seed.truth["threads"][0]["frames"][0]["pc"]
    at = [i["addr"] for i in insns].index(pc)
    r = run_pmdb(seed.core, "-e", f"{pc:#x}::dis -a")
    assert r.status == 0, r.err
    listed = _listed_addresses(r.out)
    assert listed[: min(at, 10) + 1] == [i["addr"] for i in insns[max(0, at - 10) : at + 1]]
    assert len(listed) == min(at, 10) + 1 + 10
    inside = [a for a in listed if a < insns[-1]["addr"] + insns[-1]["len"]]
    assert inside == [i["addr"] for i in insns[max(0, at - 10) : max(0, at - 10) + len(inside)]]


def test_line_shape_is_mdb_s(seed: Fixture) -> None:
    start = seed.truth["symbols"]["ipnet_nicevent_task"]["addr"]
    r = run_pmdb(seed.core, "-e", "ipnet_nicevent_task::dis")
    first = r.out.splitlines()[0]
    assert first.startswith("ipnet_nicevent_task:" + " " * 12)  # padded to column 32
    assert r.out.splitlines()[1].startswith("ipnet_nicevent_task+")
    assert len(r.out.splitlines()) == len(seed.truth["disassembly"]["insns"])
    assert start == seed.truth["disassembly"]["start"]


def test_unreadable_address_is_an_mdb_error(seed: Fixture) -> None:
    r = run_pmdb(seed.core, "-e", "8::dis")
    assert (r.out, r.err, r.status) == ("", "pmdb: failed to read instruction at 8: no mapping for address\n", 1)


def test_call_targets_are_relative_then_symbolic(seed: Fixture) -> None:
    r = run_pmdb(seed.core, "-e", "ipnet_nicevent_task::dis")
    calls = [ln for ln in r.out.splitlines() if "call   " in ln and "<netstack_find_by_stackid>" in ln]
    assert len(calls) == 1
    disp = calls[0].split("call   ")[1].split()[0]
    assert disp.startswith(("-0x", "+0x"))


def test_plt_calls_are_named_as_objdump_names_them(seed: Fixture) -> None:
    insns = seed.truth["disassembly"]["insns"]
    plt_calls = [(i["addr"], i["text"].split("<")[1].split("@")[0]) for i in insns if "@plt>" in i["text"]]
    assert plt_calls
    r = run_pmdb(seed.core, "-e", "ipnet_nicevent_task::dis -a")
    lines = {int(ln.split()[0], 16): ln for ln in r.out.splitlines()}
    for addr, name in plt_calls:
        assert lines[addr].endswith(f"<PLT:{name}>")
