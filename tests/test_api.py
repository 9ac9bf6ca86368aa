"""The public Python API: pmdb.open and the Program it returns, checked against gdb's truth."""

from __future__ import annotations

import pytest
from conftest import Fixture

import pmdb
from pmdb.errors import BadDumpError, FaultError, FaultReason, SymbolNotFound


def test_program_facade(seed: Fixture) -> None:
    prog = pmdb.open(seed.core)
    thread = prog.crashed_thread
    gdb = seed.truth["threads"][0]
    assert thread.tid == gdb["lwp"]
    assert thread.registers["rip"] == gdb["registers"]["rip"]
    assert [f.pc for f in prog.stack(thread).frames] == [f["pc"] for f in gdb["frames"]]
    sym = seed.truth["symbols"]["ipnet_nicevent_task"]
    assert prog.lookup("ipnet_nicevent_task").address == sym["addr"]
    assert prog.symbol_at(gdb["frames"][0]["pc"]).name == "ipnet_nicevent_task"
    assert str(prog.symbolize(gdb["frames"][2]["pc"], gdb["frames"][2]["pc"] - 1)).startswith("libc.so.6`start_thread+")
    insns = seed.truth["disassembly"]["insns"]
    assert [i.address for i in prog.disassemble(insns[0]["addr"], 5)] == [i["addr"] for i in insns[:5]]
    assert prog.read(insns[0]["addr"], 2).hex() == insns[0]["bytes"][:4]
    assert prog.pid == seed.truth["psinfo"]["pid"]


def test_api_errors(seed: Fixture) -> None:
    prog = pmdb.open(seed.core)
    with pytest.raises(FaultError) as fault:
        prog.read(8, 8)
    assert fault.value.reason is FaultReason.UNMAPPED and fault.value.address == 8
    with pytest.raises(SymbolNotFound):
        prog.lookup("no_such_symbol")
    with pytest.raises(BadDumpError):
        pmdb.open(seed.prog)
