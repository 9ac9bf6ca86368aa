"""Ground truth for source lines, arguments and locals, taken by running gdb, objdump and readelf
on the fixtures inside the tests (none of it from pmdb).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from functools import cache
from pathlib import Path

from conftest import Fixture

GDB = ["gdb", "-batch", "-nx", "-iex", "set debuginfod enabled off", "-iex", "set backtrace past-main on"]
GDB_FRAMES = Path(__file__).resolve().parent / "gdb_frames.py"
_LINE = re.compile(r'^Line (\d+) of "([^"]+)"')
_OBJDUMP_LINE = re.compile(r"^(\S+):(\d+)(?: \(discriminator \d+\))?$")
_OBJDUMP_INSN = re.compile(r"^\s+([0-9a-f]+):\t")


def _env() -> dict[str, str]:
    return dict(os.environ, DEBUGINFOD_URLS="")


def gdb(fx: Fixture, *commands: str, timeout: int = 300) -> str:
    """gdb's output for `commands` run on the fixture's program and core."""
    args = [a for c in commands for a in ("-ex", c)]
    done = subprocess.run([*GDB, *args, fx.prog, fx.core], capture_output=True, text=True, timeout=timeout,
                          env=_env())
    return done.stdout


@cache
def _gdb_frames(case_dir: str, prog: str, core: str) -> list[dict]:
    done = subprocess.run([*GDB, "-x", str(GDB_FRAMES), prog, core], capture_output=True, text=True, timeout=600,
                          env=_env())
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("PMDB-FRAMES "))
    return json.loads(line.removeprefix("PMDB-FRAMES "))


def gdb_frames(fx: Fixture) -> list[dict]:
    """Every thread's frames with args and locals, as tests/gdb_frames.py describes them."""
    return _gdb_frames(str(fx.dir), fx.prog, fx.core)


def gdb_lines(fx: Fixture, addrs: list[int]) -> dict[int, tuple[str, int] | None]:
    """gdb's `info line *ADDR` for each run-time address: (file as gdb names it, line)."""
    out = gdb(fx, *(f"info line *{a:#x}" for a in addrs))
    answers = [ln for ln in out.splitlines() if ln.startswith(("Line ", "No line number"))]
    assert len(answers) == len(addrs), out
    found: dict[int, tuple[str, int] | None] = {}
    for a, ln in zip(addrs, answers, strict=True):
        m = _LINE.match(ln)
        found[a] = (m.group(2), int(m.group(1))) if m else None
    return found


def objdump_lines(path: str, start: int, stop: int) -> dict[int, tuple[str, int]]:
    """objdump -dl's file:line for each instruction in [start, stop) (link-time addresses)."""
    out = subprocess.run(["objdump", "-dl", f"--start-address={start:#x}", f"--stop-address={stop:#x}", path],
                         capture_output=True, text=True, timeout=120).stdout
    current: tuple[str, int] | None = None
    found: dict[int, tuple[str, int]] = {}
    for ln in out.splitlines():
        m = _OBJDUMP_LINE.match(ln)
        if m:
            current = (m.group(1), int(m.group(2)))
            continue
        m = _OBJDUMP_INSN.match(ln)
        if m and current is not None:
            found[int(m.group(1), 16)] = current
    return found


@cache
def rows_per_address(path: str) -> dict[int, set[int]]:
    """readelf's decoded line table: the set of lines of the rows at each address."""
    out = subprocess.run(["readelf", "--debug-dump=decodedline", path], capture_output=True, text=True,
                         timeout=300).stdout
    rows: dict[int, set[int]] = {}
    for ln in out.splitlines():
        parts = ln.split()
        if len(parts) >= 3 and parts[1].isdigit() and parts[2].startswith("0x"):
            rows.setdefault(int(parts[2], 16), set()).add(int(parts[1]))
    return rows
