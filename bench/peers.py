"""What the lookup benchmarks (first_type.py, first_line.py) measure pmdb against, and the large
file they share: gdb without its index cache (cold) and with it (cached), drgn (pinned, from
a venv in the fixture cache, made as the kernel fixture makes it; drgn keeps no cache, so its
runs are all alike), and Debian's kernel debug file from the kernel fixture's cache.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from run import GDB, ROOT

sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "kernel"))

import make_vmcores  # the kernel fixture's builder, for its drgn venv

SETTLE_TIMEOUT = 600.0  # seconds to wait for pmdb's background index builders
PMDB = [sys.executable, "-m", "pmdb"]  # this checkout's pmdb (PMDB_ENV's PYTHONPATH), not an installed copy
# its modules compiled once (by the warm-up run) as an installed copy's are, whatever the caller's environment
PMDB_ENV = {"PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": ""}


def gdb_cached(index_dir: str) -> list[str]:
    """gdb with its index cache on, kept in `index_dir` (a run after the first reads it)."""
    return [*GDB, "-iex", f"set index-cache directory {index_dir}", "-iex", "set index-cache enabled on"]


def drgn_python() -> str | None:
    """The python of the drgn venv (made on first use), or None when it cannot be made."""
    try:
        return str(make_vmcores.drgn_venv())
    except make_vmcores.FixtureError as e:
        print(f"no drgn: {e}", file=sys.stderr)
        return None


def drgn_core(core: str, prog: str) -> str:
    """drgn code that opens a core with all its debug info (found by build-id, as drgn does)."""
    return ("import drgn\n"
            f"prog = drgn.Program()\nprog.set_core_dump({core!r})\n"
            f"try:\n    prog.load_debug_info([{prog!r}], default=True)\n"
            "except drgn.MissingDebugInfoError:\n    pass  # the vdso's\n")


def drgn_file(path: Path) -> str:
    """drgn code that opens a bare ELF file (drgn 0.3 loads a file that belongs to no program as
    an extra module; its code's address range lets source_location map addresses to it)."""
    low, high = text_range(path)
    return ("import drgn\n"
            "prog = drgn.Program(drgn.host_platform)\n"
            f"module = prog.extra_module({str(path)!r}, create=True)\n"
            f"module.address_range = ({low:#x}, {high:#x})\n"
            f"module.try_file({str(path)!r}, force=True)\n")


def text_range(path: Path) -> tuple[int, int]:
    """[lowest, highest) virtual address of the file's executable PT_LOAD segments (a vmlinux
    also loads its per-CPU data at address 0)."""
    sys.path.insert(0, str(ROOT))
    from pmdb.formats.elf import ElfFile

    loads = [p for p in ElfFile(str(path)).program_headers() if p.type == 1 and p.flags & 1]
    return min(p.vaddr for p in loads), max(p.vaddr + p.memsz for p in loads)


def vmlinux() -> Path | None:
    """Debian's kernel debug file, when the kernel fixture has extracted it."""
    cache = Path(os.environ.get("PMDB_FIXTURE_CACHE", Path.home() / ".cache" / "pmdb" / "fixtures"))
    return next(iter(sorted(cache.glob("kernel-debs/linux-image-*-dbg_*/usr/lib/debug/boot/vmlinux-*"))), None)


def symbol(path: Path, name: str) -> int:
    """The address of symbol `name` in the file (from nm)."""
    out = subprocess.run(["nm", str(path)], capture_output=True, text=True, check=True).stdout
    return next(int(f[0], 16) for f in (ln.split() for ln in out.splitlines()) if len(f) == 3 and f[2] == name)


def settle(cache_home: str) -> float:
    """Wait until no pmdb index builder works under XDG_CACHE_HOME `cache_home` (their lock files
    are gone); the seconds waited."""
    start = time.perf_counter()
    index = Path(cache_home) / "pmdb" / "index"
    while any(index.glob("*.building")) and time.perf_counter() - start < SETTLE_TIMEOUT:
        time.sleep(0.02)
    return time.perf_counter() - start


def checked(command: list[str], env: dict[str, str], expect: str) -> list[str]:
    """The command, after one run whose output must hold `expect` (a failing command would time
    only its error)."""
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=dict(os.environ, **env))
    if done.returncode != 0 or expect not in done.stdout:
        raise SystemExit(f"no answer from {' '.join(command)}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return command
