"""Benchmark the first source-line lookup: pmdb's `ADDR::whereis` on a core (the program's own
DWARF, then libc's compressed separate debug file), and a line lookup in Debian's kernel
debug file (hundreds of MB of DWARF, through pmdb's Python API, as pmdb does not open a bare
vmlinux), against gdb's `info line *ADDR` on the same file, whole process. pmdb keeps no
line cache, so every run is cold. `--write` puts the table into BENCHMARKS.md.

    python bench/first_line.py [--runs N] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import GDB, ROOT, ensure, measure

MARK = "<!-- lines benchmark -->"
PMDB = [sys.executable, "-m", "pmdb"]  # this checkout's pmdb (PYTHONPATH below), not an installed copy
ENV = {"PYTHONPATH": str(ROOT)}
KERNEL_SYMBOL = "schedule"


def _lookup(path: str, addr: int) -> None:
    """The measured pmdb process for a bare ELF file: open its DWARF, find the unit, decode its
    line table, print the line and the inline chain."""
    sys.path.insert(0, str(ROOT))
    from pmdb.debuginfo.dwarf_units import ObjectDwarf
    from pmdb.debuginfo.lines import line_table
    from pmdb.debuginfo.scopes import inline_chain
    from pmdb.formats.elf import ElfFile

    dwarf = ObjectDwarf(ElfFile(path), path)
    unit = dwarf.unit_at(addr)
    if unit is None:
        raise SystemExit(f"no unit covers {addr:#x}")
    table = line_table(dwarf, unit)
    fn = dwarf.function_at(addr)
    chain = inline_chain(fn, addr, table) if fn is not None else []
    print(table.at(addr), " <- ".join(f"{lv.function} {lv.line}" for lv in chain))


def _vmlinux() -> Path | None:
    """Debian's kernel debug file, when the kernel fixture has extracted it."""
    cache = Path(os.environ.get("PMDB_FIXTURE_CACHE", Path.home() / ".cache" / "pmdb" / "fixtures"))
    return next(iter(sorted(cache.glob("kernel-debs/linux-image-*-dbg_*/usr/lib/debug/boot/vmlinux-*"))), None)


def _symbol(path: Path, name: str) -> int:
    out = subprocess.run(["nm", str(path)], capture_output=True, text=True, check=True).stdout
    return next(int(f[0], 16) for f in (ln.split() for ln in out.splitlines()) if len(f) == 3 and f[2] == name)


def _checked(command: list[str]) -> list[str]:
    """The command, after one run that must print a line (a failure would time only its error)."""
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=dict(os.environ, **ENV))
    if done.returncode != 0 or ":" not in done.stdout or "no line information" in done.stdout:
        raise SystemExit(f"pmdb finds no line: {' '.join(command)}: {done.stdout}{done.stderr}")
    return command


def cases() -> list[tuple[str, list[str], list[str]]]:
    """(label, pmdb command, gdb command) for each lookup."""
    out = []
    d = ensure("seed")
    core, prog = str(d / "core"), str(d / "prog")
    truth = json.loads((d / "truth.json").read_text())
    frames = truth["threads"][0]["frames"]
    pc = frames[0]["pc"]
    libc = next(f["pc"] - 1 for f in frames if f["function"] == "start_thread")
    for label, addr in (("seed: the program", pc), ("seed: libc (compressed debug file)", libc)):
        out.append((label, _checked([*PMDB, core, "-e", f"{addr:#x}::whereis"]),
                    [*GDB, "-ex", f"info line *{addr:#x}", prog, core]))
    vmlinux = _vmlinux()
    if vmlinux is not None:
        addr = _symbol(vmlinux, KERNEL_SYMBOL) + 0x20
        out.append((f"Debian vmlinux ({vmlinux.stat().st_size >> 20} MB): {KERNEL_SYMBOL}+0x20",
                    _checked([sys.executable, __file__, "--lookup", str(vmlinux), f"{addr:#x}"]),
                    [*GDB, "-ex", f"info line *{addr:#x}", str(vmlinux)]))
    return out


def run(runs: int) -> list[str]:
    """Measure every case; return the Markdown table rows."""
    rows = []
    for label, ours, theirs in cases():
        pmdb = measure(ours, runs, lambda: ENV)
        gdb = measure(theirs, runs)
        rows.append(f"| {label} | {runs} | {pmdb.seconds:.3f} s | {gdb.seconds:.3f} s | "
                    f"**{pmdb.seconds / gdb.seconds:.2f}** | {pmdb.rss_kib / 1024:.0f} MiB | "
                    f"{gdb.rss_kib / 1024:.0f} MiB |")
        print(rows[-1], flush=True)
    return rows


def write(rows: list[str]) -> None:
    """Replace (or add) this section of BENCHMARKS.md, before the sections that follow it."""
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    section = (
        f"{MARK}\n## First source line\n\n"
        "Whole-process wall time (median, after one warm-up) and peak RSS of pmdb's first line\n"
        "lookup — `pmdb CORE -e 'ADDR::whereis'`, or for the kernel's debug file a Python process\n"
        "that opens it with pmdb's API and asks for one line and its inline chain — against\n"
        "`gdb -batch -ex 'info line *ADDR'` on the same file. pmdb caches no line tables: every\n"
        "run is cold.\n\n"
        "Command: `python bench/first_line.py --write`\n\n"
        "| lookup | runs | pmdb | gdb `info line` | time ratio | pmdb peak RSS | gdb peak RSS |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
    )
    if MARK in text:
        before, after = text.split(MARK, 1)
        rest = after.find("<!-- ")
        text = before + section + (after[rest:] if rest >= 0 else "")
    else:
        other = text.find("<!-- ")
        text = (text.rstrip("\n") + "\n\n" + section) if other < 0 else text[:other] + section + text[other:]
    path.write_text(text.rstrip("\n") + "\n")


def main() -> int:
    """Parse options, measure, print (and optionally record) the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="runs per command (default 5)")
    ap.add_argument("--write", action="store_true", help="update BENCHMARKS.md's section")
    ap.add_argument("--lookup", nargs=2, metavar=("FILE", "ADDR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.lookup:
        _lookup(args.lookup[0], int(args.lookup[1], 16))
        return 0
    rows = run(args.runs)
    if args.write:
        write(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
