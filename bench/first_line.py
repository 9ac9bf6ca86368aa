"""Benchmark the first source-line lookup: pmdb's `ADDR::whereis` on a core (the program's own
DWARF, then libc's compressed separate debug file), and a line lookup in Debian's kernel
debug file (hundreds of MB of DWARF, through pmdb's Python API, as pmdb does not open a bare
vmlinux), against gdb's `info line *ADDR` (without and with its index cache) and drgn's
`prog.source_location(ADDR)` (the line and its inline chain, as pmdb's) on the same files,
whole process. pmdb keeps no line cache, so every run is cold. `--write` puts the table into
BENCHMARKS.md.

    python bench/first_line.py [--runs N] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import PMDB, PMDB_ENV, drgn_core, drgn_file, drgn_python, gdb_cached, symbol, vmlinux
from run import GDB, ROOT, ensure, measure

MARK = "<!-- lines benchmark -->"
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


def _checked(command: list[str], drgn: bool = False) -> list[str]:
    """The command, after one run that must print a line (a failure would time only its error)."""
    done = subprocess.run(command, capture_output=True, text=True, check=False,
                          env=dict(os.environ, **({} if drgn else PMDB_ENV)))
    if done.returncode != 0 or ":" not in done.stdout or "no line information" in done.stdout:
        raise SystemExit(f"no line from {' '.join(command)}: {done.stdout}{done.stderr}")
    return command


def cases() -> list[tuple[str, list[str], list[str], list[str] | None]]:
    """(label, pmdb command, gdb arguments, drgn command or None) for each lookup."""
    out = []
    drgn = drgn_python()
    d = ensure("seed")
    core, prog = str(d / "core"), str(d / "prog")
    truth = json.loads((d / "truth.json").read_text())
    frames = truth["threads"][0]["frames"]
    pc = frames[0]["pc"]
    libc = next(f["pc"] - 1 for f in frames if f["function"] == "start_thread")
    for label, addr in (("seed: the program", pc), ("seed: libc (compressed debug file)", libc)):
        theirs = [drgn, "-c", drgn_core(core, prog) + f"print(prog.source_location({addr:#x}))"] if drgn else None
        out.append((label, _checked([*PMDB, core, "-e", f"{addr:#x}::whereis"]),
                    ["-ex", f"info line *{addr:#x}", prog, core], theirs and _checked(theirs, drgn=True)))
    path = vmlinux()
    if path is not None:
        addr = symbol(path, KERNEL_SYMBOL) + 0x20
        theirs = [drgn, "-c", drgn_file(path) + f"print(prog.source_location({addr:#x}))"] if drgn else None
        out.append((f"Debian vmlinux ({path.stat().st_size >> 20} MB): {KERNEL_SYMBOL}+0x20",
                    _checked([sys.executable, __file__, "--lookup", str(path), f"{addr:#x}"]),
                    ["-ex", f"info line *{addr:#x}", str(path)], theirs and _checked(theirs, drgn=True)))
    return out


def run(runs: int) -> list[str]:
    """Measure every case; return the Markdown table rows."""
    rows = []
    for label, ours, gdb_args, theirs in cases():
        pmdb = measure(ours, runs, lambda: PMDB_ENV)
        gdb = measure([*GDB, *gdb_args], runs)
        with tempfile.TemporaryDirectory() as index_dir:
            gdb_warm = measure([*gdb_cached(index_dir), *gdb_args], runs)
        drgn = measure(theirs, runs).seconds if theirs else float("nan")
        rows.append(f"| {label} | {runs} | {pmdb.seconds:.3f} s | {gdb.seconds:.3f} s | {gdb_warm.seconds:.3f} s | "
                    f"{drgn:.3f} s | **{pmdb.seconds / gdb.seconds:.2f}** | "
                    f"**{pmdb.seconds / gdb_warm.seconds:.2f}** | **{pmdb.seconds / drgn:.2f}** | "
                    f"{pmdb.rss_kib / 1024:.0f} MiB | {gdb.rss_kib / 1024:.0f} MiB |")
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
        "`gdb -batch -ex 'info line *ADDR'` on the same file, without and with gdb's index cache\n"
        "(`set index-cache enabled on`, filled by the warm-up), and drgn's\n"
        "`prog.source_location(ADDR)` (the line and its inline chain; drgn keeps no cache). pmdb\n"
        "caches no line tables: every run is cold, so its one figure is held to both targets: no slower\n"
        "than gdb cold, faster than gdb cached and drgn.\n\n"
        "Command: `python bench/first_line.py --write`\n\n"
        "| lookup | runs | pmdb | gdb cold | gdb cached | drgn | ÷ gdb cold | ÷ gdb cached | ÷ drgn | "
        "pmdb peak RSS | gdb peak RSS |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
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
