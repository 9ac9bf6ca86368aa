"""System.map: the kernel's symbols as `nm` printed them at build time, named by the user.

Its addresses are link-time: a KASLR kernel runs them KERNELOFFSET higher, except per-CPU
symbols (offsets into each CPU's area, below the kernel map), which stay as they are. Debian's
image package ships a one-line placeholder that points at the -dbg package; that, and a map
of another kernel, are refused with a message saying so.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pmdb.errors import BadDumpError, PmdbError
from pmdb.os.linux.ksyms import KernelSymbol

START_KERNEL_MAP = 0xFFFFFFFF80000000  # x86-64's kernel image mapping: below it, per-CPU offsets
_PLACEHOLDER = "The real System.map is in the"
MAX_LINE = 4096


class SystemMapError(PmdbError):
    """The System.map cannot be used with this dump."""


def read_system_map(path: str, kaslr_offset: int) -> list[KernelSymbol]:
    """The symbols of System.map `path`, relocated by `kaslr_offset`. SystemMapError for the
    Debian placeholder, an unreadable file, or one with no symbol line."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise SystemMapError(f"cannot read System.map {path}: {e.strerror}") from None
    if _PLACEHOLDER in text[:MAX_LINE]:
        raise SystemMapError(f"{path} is Debian's placeholder System.map, not a symbol table: the real one is "
                             "in the kernel's -dbg package (linux-image-<version>-dbg, usr/lib/debug/boot/)")
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if len(parts) < 3 or len(parts[1]) != 1:
            if line.strip():
                raise SystemMapError(f"{path}:{number}: not a System.map line: {line[:80]!r}")
            continue
        try:
            value = int(parts[0], 16)
        except ValueError:
            raise SystemMapError(f"{path}:{number}: bad address {parts[0][:40]!r}") from None
        letter = parts[1]
        if value >= START_KERNEL_MAP:
            rows.append(KernelSymbol(value + kaslr_offset, letter, parts[2]))
        else:
            rows.append(KernelSymbol(value, "A", parts[2]))
    if not rows:
        raise SystemMapError(f"{path} holds no symbols")
    return rows


def check_against_dump(path: str, rows: list[KernelSymbol], release: str | None, read_banner: Callable[[int], str],
                       vmcoreinfo_symbols: dict[str, int]) -> None:
    """SystemMapError unless the map fits the dump: its symbols that VMCOREINFO also names sit at
    the same addresses, and its `linux_banner` reads `Linux version <the dump's release>`.

    `read_banner(addr)` returns the string at addr (a FaultError when it is not in the dump).
    """
    by_name = {r.name: r.address for r in rows if r.letter != "A"}
    for name, addr in vmcoreinfo_symbols.items():
        mine = by_name.get(name)
        if mine is not None and mine != addr:
            raise SystemMapError(f"{path} is not this kernel's System.map: it puts {name} at {mine:#x}, the "
                                 f"dump's VMCOREINFO at {addr:#x}")
    banner_at = by_name.get("linux_banner")
    if banner_at is None:
        raise SystemMapError(f"{path} has no linux_banner: cannot check it against the dump")
    try:
        banner = read_banner(banner_at)
    except BadDumpError as e:
        raise SystemMapError(f"{path}: cannot read linux_banner at {banner_at:#x}: {e}") from None
    except PmdbError as e:
        raise SystemMapError(f"{path} is not this kernel's System.map: its linux_banner at {banner_at:#x} "
                             f"is not in the dump ({e})") from None
    if not banner.startswith("Linux version ") or (release and banner.split()[2:3] != [release]):
        raise SystemMapError(f"{path} is not this kernel's System.map: at its linux_banner ({banner_at:#x}) the "
                             f"dump has {banner[:60]!r}, not 'Linux version {release or ''}'")
