"""Benchmark pmdb on Linux kernel dumps against crash and drgn, in one run, as ratios.

For each dump format of the kernel fixture: whole-process wall time (median) and peak RSS of
`pmdb DUMP -e '::status; $c'` (no debuginfo package) against crash's `sys; bt` and drgn's
utsname plus the crashed thread's stack trace (both with the -dbg vmlinux, which they need);
then `::stacks` (every task's stack, aggregated) against drgn walking every task's stack.
`--write` puts the table into BENCHMARKS.md.

    python bench/kernel.py [--runs N] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from run import PMDB, ROOT, Measure

sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "kernel"))

import make_vmcores  # the kernel fixture's builder: its dumps, crash, and the drgn venv

DRGN_STACK = """
import drgn, sys
prog = drgn.Program()
prog.set_core_dump(sys.argv[1])
prog.load_debug_info([sys.argv[2], *sys.argv[3:]])
print(prog['init_uts_ns'].name.release.string_().decode())
print(prog.crashed_thread().stack_trace())
"""
DRGN_ALL_STACKS = """
import drgn, sys
from drgn.helpers.linux.pid import for_each_task
prog = drgn.Program()
prog.set_core_dump(sys.argv[1])
prog.load_debug_info([sys.argv[2], *sys.argv[3:]])
n = 0
for task in for_each_task(prog):
    try:
        n += len(prog.stack_trace(task))
    except ValueError:
        pass
print(n)
"""
MARKER = "<!-- kernel benchmark -->"


def measure(cmd: list[str], runs: int, stdin: str | None = None) -> Measure:
    """Median wall time and the largest peak RSS (wait4's, for a child of this small process)
    over `runs` runs after one warm-up; output discarded."""
    times, rss = [], []
    for i in range(runs + 1):
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if stdin:
            assert proc.stdin is not None
            proc.stdin.write(stdin.encode())
            proc.stdin.close()
        _pid, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) not in (0, 1):
            raise SystemExit(f"benchmark command failed: {' '.join(cmd)}")
        if i:
            times.append(time.perf_counter() - start)
            rss.append(usage.ru_maxrss)
    return Measure(statistics.median(times), max(rss))


def crash_cmd(dump: str, vmlinux: str, commands: str) -> tuple[list[str], str]:
    """crash in batch mode on `dump`, its commands on stdin (one output, then exit)."""
    return ["crash", "-s", vmlinux, dump], commands + "\nexit\n"


def row(label: str, ours: Measure, theirs: dict[str, Measure | None]) -> str:
    cells = [label, f"{ours.seconds:.3f} s", f"{ours.rss_kib / 1024:.0f} MiB"]
    for m in theirs.values():
        if m is None:
            cells += ["—", "—", "—"]
        else:
            cells += [f"{m.seconds:.3f} s", f"{m.rss_kib / 1024:.0f} MiB",
                      f"**{ours.seconds / m.seconds:.2f}** / **{ours.rss_kib / m.rss_kib:.2f}**"]
    return "| " + " | ".join(cells) + " |"


def run(runs: int) -> list[str]:
    """Measure every dump format; return the Markdown rows."""
    fixture = make_vmcores.ensure()
    truth = json.loads((fixture / "truth.json").read_text())
    vmlinux = truth["paths"]["vmlinux_debug"]
    ko = truth["paths"]["module_ko"]
    drgn = str(make_vmcores.drgn_venv())
    rows = []
    for dump in truth["dumps"]:
        path = dump["path"]
        ours = measure([*PMDB, path, "-e", "::status; $c"], runs)
        crash, stdin = crash_cmd(path, vmlinux, "sys\nbt")
        theirs: dict[str, Measure | None] = {"crash": measure(crash, runs, stdin)}
        drgn_ok = "error" not in truth["drgn"].get(dump["name"], {"error": 1})
        theirs["drgn"] = measure([drgn, "-c", DRGN_STACK, path, vmlinux, ko], runs) if drgn_ok else None
        rows.append(row(f"{dump['name']} `::status; $c`", ours, theirs))
        print(rows[-1], flush=True)
    for dump in truth["dumps"]:
        if "error" in truth["drgn"].get(dump["name"], {"error": 1}):
            continue
        path = dump["path"]
        ours = measure([*PMDB, path, "-e", "::stacks"], runs)
        drgn_all = measure([drgn, "-c", DRGN_ALL_STACKS, path, vmlinux, ko], runs)
        rows.append(row(f"{dump['name']} `::stacks`", ours, {"crash": None, "drgn": drgn_all}))
        print(rows[-1], flush=True)
    return rows


def write(rows: list[str], command: str) -> None:
    """Replace (or add) the kernel section of BENCHMARKS.md, keeping the other sections."""
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    head, _, rest = text.partition(MARKER)
    tail = rest.split("<!-- ", 1)
    after = ("<!-- " + tail[1]) if len(tail) > 1 else ""
    section = (
        f"{MARKER}\n## Linux kernel dumps\n\n"
        "Whole-process wall time (median of the runs, after one warm-up) and peak RSS on the kernel\n"
        "fixture's dumps (a 256 MiB QEMU guest's panic). pmdb reads them with no debuginfo package;\n"
        "crash (`sys; bt`) and drgn (utsname and the crashed thread's stack trace; every task's stack for\n"
        "the `::stacks` rows) are given Debian's -dbg vmlinux and the module's .ko, which they need.\n"
        "drgn 0.3 cannot open QEMU's kdump-zlib files (their header has no utsname): those cells are —.\n"
        "Ratios are pmdb / peer for time and for RSS: below 1, pmdb is faster or smaller.\n\n"
        f"Command: `{command}`  \nDate: {time.strftime('%Y-%m-%d')}\n\n"
        "| dump and command | pmdb | pmdb RSS | crash | crash RSS | vs crash | drgn | drgn RSS | vs drgn |\n"
        "|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
    )
    path.write_text(head.rstrip("\n") + "\n\n" + section + after)


def main() -> int:
    """Parse options, measure, print (and optionally record) the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="runs per command (default 5)")
    ap.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = ap.parse_args()
    rows = run(args.runs)
    if args.write:
        write(rows, "python bench/kernel.py --write" + (f" --runs {args.runs}" if args.runs != 5 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
