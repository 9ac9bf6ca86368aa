"""Backtraces against gdb: every thread's physical frames, pc for pc and function for function.

gdb's invented frames (inline, tail-call) are dropped before comparing. A function matches
when gdb's name and pmdb's are the same symbol: equal after demangling and dropping GCC's
clone suffixes (.cold, .part.N), or aliases at one address in the object's symbol table as
binutils' nm lists it.
"""

from __future__ import annotations

import os
import re
import subprocess
from functools import cache

import pytest
from conftest import Fixture

import pmdb

PHYSICAL = ("NORMAL", "SIGTRAMP")
_CLONE_SUFFIX = re.compile(r"(\.(cold|part\.\d+|isra\.\d+|constprop\.\d+|lto_priv\.\d+))+$")


@cache
def nm_aliases(path: str) -> dict[int, set[str]]:
    """{address: names} of the defined symbols of an ELF file, according to binutils nm."""
    out = subprocess.run(["nm", "--defined-only", path], capture_output=True, text=True, timeout=60).stdout
    table: dict[int, set[str]] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            table.setdefault(int(parts[0], 16), set()).add(parts[2])
    return table


@cache
def demangle(name: str) -> str:
    """A C++ name as gdb prints it (c++filt); C names come back unchanged."""
    if not name.startswith("_Z"):
        return name
    return subprocess.run(["c++filt", name], capture_output=True, text=True, timeout=30).stdout.strip()


def _plain(name: str) -> str:
    """The function's name without clone suffix, C++ parameter list or qualifiers."""
    return demangle(_CLONE_SUFFIX.sub("", name)).split("(", 1)[0]


def symbol_file(fx: Fixture, object_path: str) -> str:
    """The file holding the object's symbols, as gdb chose it (its separate debug file if any)."""
    for obj in fx.truth["objfiles"]:
        if os.path.realpath(obj["filename"]) == os.path.realpath(object_path):
            return obj["debug_file"] or obj["filename"]
    return object_path


def same_function(fx: Fixture, prog: pmdb.Program, pc_lookup: int, gdb_name: str | None) -> bool:
    """Does pmdb's symbol at `pc_lookup` name the function gdb named?"""
    sym = prog.symbol_at(pc_lookup)
    if gdb_name is None or sym is None:
        return gdb_name is None and sym is None
    if _plain(sym.name) == _plain(gdb_name):
        return True
    obj = prog.process.object_at(pc_lookup)
    assert obj is not None and obj.host_path
    names = nm_aliases(symbol_file(fx, obj.host_path)).get(sym.address - obj.bias, set())
    return any(_plain(n) == _plain(gdb_name) for n in names)


def test_every_thread_matches_gdb(any_case: Fixture) -> None:
    fx = any_case
    prog = pmdb.open(fx.core)
    assert prog.threads[0].tid == fx.truth["crashed_lwp"]
    assert sorted(t.tid for t in prog.threads) == sorted(t["lwp"] for t in fx.truth["threads"])
    for gdb_thread in fx.truth["threads"]:
        theirs = [f for f in gdb_thread["frames"] if f["type"] in PHYSICAL]
        ours = prog.stack(prog.thread(gdb_thread["lwp"])).frames
        assert [hex(f.pc) for f in ours] == [hex(f["pc"]) for f in theirs], f"thread {gdb_thread['lwp']}"
        for o, t in zip(ours, theirs, strict=True):
            lookup = o.pc if t["type"] == "SIGTRAMP" else o.lookup_pc
            assert same_function(fx, prog, lookup, t["function"]), (
                f"thread {gdb_thread['lwp']} frame {o.level}: pmdb {prog.symbolize(o.pc, lookup)} "
                f"gdb {t['function']}"
            )


def test_frame0_registers_match_gdb(any_case: Fixture) -> None:
    names = {"eflags": "rflags", "fs_base": "fsbase", "gs_base": "gsbase"}
    prog = pmdb.open(any_case.core)
    for gdb_thread in any_case.truth["threads"]:
        regs = prog.thread(gdb_thread["lwp"]).registers
        for name, value in gdb_thread["registers"].items():
            assert regs[names.get(name, name)] == value, f"thread {gdb_thread['lwp']} %{name}"


@pytest.mark.parametrize("case", ["nullfn"])
def test_bad_pc_frame_is_unwound_from_sp(case: str) -> None:
    from conftest import load_fixture

    from pmdb.unwind.frames import UnwindMethod

    prog = pmdb.open(load_fixture(case).core)
    frames = prog.stack(prog.crashed_thread).frames
    assert frames[0].pc == 0
    assert frames[1].method is UnwindMethod.BAD_PC


def test_signal_frame_is_marked() -> None:
    from conftest import load_fixture

    from pmdb.unwind.frames import UnwindMethod

    prog = pmdb.open(load_fixture("sighandler").core)
    frames = prog.stack(prog.crashed_thread).frames
    tramp = [f for f in frames if f.signal_frame]
    assert len(tramp) == 1
    assert prog.symbol_at(tramp[0].pc).name == "__restore_rt"
    interrupted = frames[tramp[0].level + 1]
    assert interrupted.method is UnwindMethod.SIGNAL and interrupted.exact_pc
