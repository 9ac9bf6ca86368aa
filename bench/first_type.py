"""Benchmark the first type lookup: pmdb's first `::print -t TYPE` with no DWARF index cached
(cold: it scans the object's DWARF and writes the index) and with one (cached), against
`gdb -batch -ex 'ptype TYPE' PROG CORE`, whole process, on the same fixture cores.
`--write` puts the table into BENCHMARKS.md's types section.

    python bench/first_type.py [--runs N] [--write]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import GDB, ROOT, Measure, ensure, measure

# (fixture, type): the executable's own type, and one only libc's (larger) debug file defines
CASES = (("seed", "netstack_t"), ("types", "struct anon"), ("seed", "struct malloc_state"))
MARK = "<!-- types benchmark -->"
PMDB = [sys.executable, "-m", "pmdb"]  # this checkout's pmdb (PYTHONPATH below), not an installed copy


def pmdb_measure(core: str, type_name: str, runs: int, cached: bool) -> Measure:
    """pmdb's whole-process time for one `::print -t`, each run with a fresh index cache (cold)
    or all runs sharing one that the warm-up filled (cached); the command must succeed."""
    command = [*PMDB, core, "-e", f"::print -t {type_name}"]
    with tempfile.TemporaryDirectory() as shared:
        if cached:
            return measure(command, runs, lambda: {"XDG_CACHE_HOME": shared, "PYTHONPATH": str(ROOT)})
        return measure(command, runs, lambda: {"XDG_CACHE_HOME": tempfile.mkdtemp(dir=shared), "PYTHONPATH": str(ROOT)})


def check(core: str, type_name: str) -> None:
    """Make sure pmdb prints the type (a failing command would time only its error)."""
    done = subprocess.run([*PMDB, core, "-e", f"::print -t {type_name}"], capture_output=True, text=True,
                          check=False, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    if done.returncode != 0 or not done.stdout.endswith("}\n"):
        raise SystemExit(f"pmdb cannot print {type_name}: {done.stderr.strip()}")


def run(runs: int) -> list[str]:
    """Measure every case; return the Markdown table rows."""
    rows = []
    for case, type_name in CASES:
        d = ensure(case)
        core, prog = str(d / "core"), str(d / "prog")
        check(core, type_name)
        cold = pmdb_measure(core, type_name, runs, cached=False)
        cached = pmdb_measure(core, type_name, runs, cached=True)
        gdb = measure([*GDB, "-ex", f"ptype {type_name}", prog, core], runs)
        rows.append(f"| {case} `{type_name}` | {runs} | {cold.seconds:.3f} s | {cached.seconds:.3f} s | "
                    f"{gdb.seconds:.3f} s | **{cold.seconds / gdb.seconds:.2f}** | "
                    f"**{cached.seconds / gdb.seconds:.2f}** |")
        print(rows[-1], flush=True)
    return rows


def write(rows: list[str]) -> None:
    """Replace (or add) the types section at the end of BENCHMARKS.md."""
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    text = text.split(MARK)[0].rstrip("\n") + "\n\n"
    text += (
        f"{MARK}\n## First type lookup\n\n"
        "Whole-process wall time (median, after one warm-up) of `pmdb CORE -e '::print -t TYPE'` with no\n"
        "DWARF name index cached (cold: every run indexes the object's DWARF and writes the cache) and\n"
        "with it cached, against `gdb -batch -ex 'ptype TYPE' PROG CORE`. `struct malloc_state` is only in\n"
        "libc's separate debug file, so its lookup indexes that (about 10 MB of DWARF) too.\n\n"
        "Command: `python bench/first_type.py --write`\n\n"
        "| core, type | runs | pmdb cold | pmdb cached | gdb `ptype` | cold ratio | cached ratio |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )
    path.write_text(text)


def main() -> int:
    """Parse options, measure, print (and optionally record) the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=7, help="runs per command (default 7)")
    ap.add_argument("--write", action="store_true", help="update BENCHMARKS.md's types section")
    args = ap.parse_args()
    rows = run(args.runs)
    if args.write:
        write(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
