"""Benchmark pmdb against gdb on the same cores, in one run: whole-process wall time (median)
and peak RSS, reported as ratios. `--write` puts the table into BENCHMARKS.md.

    python bench/run.py [--runs N] [--write]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))

from make_cores import ensure  # noqa: E402 - the fixture builder lives with the tests

GDB = ["gdb", "-nx", "-batch", "-iex", "set debuginfod enabled off"]
_SCRIPT = Path(sys.executable).with_name("pmdb")
PMDB = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "pmdb"]  # the installed command
CASES = (("seed", 7), ("threads8", 7), ("recursion", 3))
MORE = "<!-- "  # where the sections of the other benchmark scripts begin


@dataclass(frozen=True)
class Measure:
    """Median wall time (s) and largest peak RSS (KiB) over several runs of one command."""

    seconds: float
    rss_kib: int


def measure(cmd: list[str], runs: int, env_factory: Callable[[], dict[str, str]] = dict) -> Measure:
    """Run `cmd` `runs` times (after one warm-up), output discarded; wait4 gives each child's RSS.
    `env_factory` gives each run's extra environment (a fresh cache directory, say)."""
    times, rss = [], []
    for i in range(runs + 1):
        env = dict(os.environ, DEBUGINFOD_URLS="", **env_factory())
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        _pid, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) not in (0, 1):
            raise SystemExit(f"benchmark command failed: {' '.join(cmd)}")
        if i:  # the first run warms the page cache and .pyc files
            times.append(elapsed)
            rss.append(usage.ru_maxrss)
    return Measure(statistics.median(times), max(rss))


def run(runs_override: int | None) -> list[str]:
    """Measure every case; return the Markdown table rows."""
    rows = []
    for case, runs in CASES:
        runs = runs_override or runs
        d = ensure(case)
        core, prog = str(d / "core"), str(d / "prog")
        frames = len(subprocess.run([*PMDB, core, "-e", "$c"], capture_output=True,
                                    text=True, check=False).stdout.splitlines())
        ours = measure([*PMDB, core, "-e", "::status; $c"], runs)
        gdb = measure([*GDB, "-ex", "bt", prog, core], runs)
        rows.append(
            f"| {case} ({frames} frames) | {runs} | {ours.seconds:.3f} s | {gdb.seconds:.3f} s | "
            f"**{ours.seconds / gdb.seconds:.2f}** | {ours.rss_kib / 1024:.0f} MiB | {gdb.rss_kib / 1024:.0f} MiB | "
            f"**{ours.rss_kib / gdb.rss_kib:.2f}** |"
        )
        print(rows[-1], flush=True)
    return rows


def write(rows: list[str], command: str) -> None:
    """Replace BENCHMARKS.md's table with these rows."""
    header = (
        "| core | runs | pmdb `::status; $c` | gdb `bt` | time ratio | pmdb peak RSS | gdb peak RSS | RSS ratio |\n"
        "|---|---|---|---|---|---|---|---|\n"
    )
    text = (
        "# Benchmarks\n\n"
        "Whole-process wall time (median of the runs, after one warm-up) and peak RSS of\n"
        "`pmdb CORE -e '::status; $c'` (the installed command, as `make bench` installs it) against\n"
        "`gdb -batch -ex bt PROG CORE` on the same fixture core, measured in one run of the script.\n"
        "A ratio below 1 means pmdb is faster or smaller.\n\n"
        f"Command: `{command}`  \n"
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{subprocess.run(['gdb', '--version'], capture_output=True, text=True, check=False).stdout.splitlines()[0]}"
        f"  \nDate: {time.strftime('%Y-%m-%d')}\n\n" + header + "\n".join(rows) + "\n"
    )
    path = ROOT / "BENCHMARKS.md"
    old = path.read_text() if path.exists() else ""
    more = old.find(MORE)  # sections other scripts keep (bench/first_type.py's) stay
    path.write_text(text + ("\n" + old[more:] if more >= 0 else ""))


def main() -> int:
    """Parse options, measure, print (and optionally record) the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, help="runs per command (default: 7, 3 for the recursion core)")
    ap.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = ap.parse_args()
    rows = run(args.runs)
    if args.write:
        write(rows, "make bench  (= python bench/run.py --write" + (f" --runs {args.runs}" if args.runs else "") + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
