"""Benchmark the first type lookup, whole process, against gdb and drgn in one run: pmdb's
`::print -t TYPE` on the fixture cores, and the same lookup and layout through pmdb's Python
API on Debian's kernel debug file (pmdb opens no bare vmlinux), cold (no cache of pmdb's: no
name index, no inflated sections) and cached (the name index that a first run left behind),
against gdb's `ptype TYPE` without and with its index cache and drgn's `prog.type(TYPE)`.
`--write` puts the table into BENCHMARKS.md's types section.

    python bench/first_type.py [--runs N] [--write]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import PMDB, PMDB_ENV, checked, drgn_core, drgn_file, drgn_python, gdb_cached, settle, vmlinux
from run import GDB, ROOT, Measure, ensure, measure

# (fixture, type): the executable's own types, and one only libc's (larger) debug file defines
CORE_CASES = (("seed", "netstack_t"), ("types", "struct anon"), ("seed", "struct malloc_state"))
# in the kernel: a type defined in its second unit (and in thousands after), and one only late units define
KERNEL_TYPES = ("struct task_struct", "struct nvme_ctrl")
KERNEL_RUNS = 3
MARK = "<!-- types benchmark -->"


def _lookup(path: str, name: str) -> None:
    """The measured pmdb process for a bare ELF file: open its DWARF as pmdb's type source, look
    the type up and print its layout as `::print -t TYPE` does."""
    sys.path.insert(0, str(ROOT))
    from pmdb.commands.core.typeprint import Flags, PrintArgs, TypePrinter
    from pmdb.debuginfo.dwarf_types import DwarfTypes
    from pmdb.debuginfo.typesystem import TypeSystem
    from pmdb.formats.elf import ElfFile

    elf = ElfFile(path)
    build_id = elf.build_id()
    types = TypeSystem([DwarfTypes(elf, build_id.hex() if build_id else None)])
    t = types.lookup(name)
    if t is None:
        raise SystemExit(f"no type {name} in {path}")

    def no_memory(addr: int, size: int) -> bytes:
        raise AssertionError("a layout reads no memory")

    printer = TypePrinter(types, no_memory, None, no_memory)  # type: ignore[arg-type]
    printer.print_object(PrintArgs(0, Flags(show_type=True, show_val=False)), t, 0, None)
    print(printer.text, end="")


def pmdb_cold(command: list[str], runs: int) -> tuple[Measure, float]:
    """pmdb's time with nothing of its own cached (a fresh XDG_CACHE_HOME each run), and the
    median time the background index build then took (waited for before the next run, so that
    no run shares the CPUs with the one before)."""
    builds: list[float] = []
    with tempfile.TemporaryDirectory() as root:
        last: list[str] = []

        def fresh() -> dict[str, str]:
            if last:
                builds.append(settle(last[-1]))
            last.append(tempfile.mkdtemp(dir=root))
            return dict(PMDB_ENV, XDG_CACHE_HOME=last[-1])

        found = measure(command, runs, fresh)
        builds.append(settle(last[-1]))
    return found, statistics.median(builds)


def pmdb_cached(command: list[str], runs: int) -> Measure:
    """pmdb's time with the cache the warm-up run left (its background build waited for)."""
    with tempfile.TemporaryDirectory() as shared:
        return measure(command, runs, lambda: (settle(shared), dict(PMDB_ENV, XDG_CACHE_HOME=shared))[1])


def gdb_both(args: list[str], runs: int) -> tuple[Measure, Measure]:
    """gdb's time without its index cache, and with the cache its warm-up run wrote."""
    with tempfile.TemporaryDirectory() as index_dir:
        return measure([*GDB, *args], runs), measure([*gdb_cached(index_dir), *args], runs)


def cases(scratch: str) -> list[tuple[str, list[str], list[str], list[str] | None, int]]:
    """(label, pmdb command, gdb arguments, drgn command or None, kernel runs) of each lookup;
    pmdb's commands checked with XDG_CACHE_HOME `scratch`."""
    drgn = drgn_python()
    env = dict(PMDB_ENV, XDG_CACHE_HOME=scratch)
    out = []
    for case, name in CORE_CASES:
        d = ensure(case)
        core, prog = str(d / "core"), str(d / "prog")
        ours = checked([*PMDB, core, "-e", f"::print -t {name}"], env, "}\n")
        theirs = [drgn, "-c", drgn_core(core, prog) + f"print(prog.type({name!r}))"] if drgn else None
        out.append((f"seed core, {name}" if case == "seed" else f"{case} core, {name}", ours,
                    ["-ex", f"ptype {name}", prog, core], theirs, 0))
    path = vmlinux()
    if path is not None:
        for name in KERNEL_TYPES:
            ours = checked([sys.executable, __file__, "--lookup", str(path), name], env, "}\n")
            theirs = [drgn, "-c", drgn_file(path) + f"print(prog.type({name!r}))"] if drgn else None
            out.append((f"Debian vmlinux ({path.stat().st_size >> 20} MB), {name}", ours,
                        ["-ex", f"ptype {name}", str(path)], theirs, KERNEL_RUNS))
    return out


def run(runs: int) -> list[str]:
    """Measure every case; return the Markdown table rows."""
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        found = cases(scratch)
        settle(scratch)
    for label, ours, gdb_args, theirs, kernel_runs in found:
        n = min(runs, kernel_runs) if kernel_runs else runs
        cold, build = pmdb_cold(ours, n)
        cached = pmdb_cached(ours, n)
        gdb, gdb_warm = gdb_both(gdb_args, n)
        drgn = measure(theirs, n).seconds if theirs else float("nan")
        rows.append(f"| {label} | {n} | {cold.seconds:.3f} s | {cached.seconds:.3f} s | {build:.2f} s | "
                    f"{gdb.seconds:.3f} s | {gdb_warm.seconds:.3f} s | {drgn:.3f} s | "
                    f"**{cold.seconds / gdb.seconds:.2f}** | **{cached.seconds / gdb_warm.seconds:.2f}** | "
                    f"**{cached.seconds / drgn:.2f}** |")
        print(rows[-1], flush=True)
    return rows


def write(rows: list[str]) -> None:
    """Replace (or add) this section of BENCHMARKS.md, keeping the sections of other scripts."""
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    section = (
        f"{MARK}\n## First type lookup\n\n"
        "Whole-process wall time (median, after one warm-up) of pmdb's first type lookup, `pmdb CORE -e\n"
        "'::print -t TYPE'` (for the kernel's debug file, a Python process that opens it with pmdb's API,\n"
        "looks the type up and prints the same layout), against `gdb -batch -ex 'ptype TYPE'` and drgn's\n"
        "`prog.type(TYPE)` (a Python process that loads the same debug files: the core's by build-id,\n"
        "or the vmlinux as an extra module). The page cache is warm in every run.\n\n"
        "- pmdb cold: nothing of pmdb's cached (no name index, no inflated sections). Without an index a\n"
        "  type is found by reading only the units that can hold its name, and the index is built in a\n"
        "  background process for later sessions; *index built after* is how long that took (the next\n"
        "  run waits for it). The program's own DWARF is small enough to index at once.\n"
        "- pmdb cached: the index (and inflated sections) that a first run left behind.\n"
        "- gdb cold: no index cache; gdb cached: `set index-cache enabled on`, filled by the warm-up.\n"
        "- drgn keeps no cache: it indexes the DWARF (in C, on every CPU) in every run.\n\n"
        "The targets: cold no slower than gdb cold (first ratio ≤ 1), cached faster than gdb cached\n"
        "and drgn (last two ratios < 1).\n\n"
        "Command: `python bench/first_type.py --write`\n\n"
        "| lookup | runs | pmdb cold | pmdb cached | index built after | gdb cold | gdb cached | drgn | "
        "cold ÷ gdb cold | cached ÷ gdb cached | cached ÷ drgn |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
    )
    if MARK in text:
        before, after = text.split(MARK, 1)
        rest = after.find("<!-- ")
        text = before + section + (after[rest:] if rest >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n")


def main() -> int:
    """Parse options, measure, print (and optionally record) the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5, help=f"runs per command (default 5; at most {KERNEL_RUNS} "
                    "for the kernel)")
    ap.add_argument("--write", action="store_true", help="update BENCHMARKS.md's types section")
    ap.add_argument("--lookup", nargs=2, metavar=("FILE", "TYPE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.lookup:
        _lookup(*args.lookup)
        return 0
    rows = run(args.runs)
    if args.write:
        write(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
