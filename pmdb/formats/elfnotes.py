"""ELF notes of Linux core files: iteration with bounds checks, and decoders for each note type.

Decoders take a descriptor's bytes and return frozen records; sizes are checked against the
descriptor, never trusted, so a hostile note yields BadDumpError instead of a huge allocation.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from pmdb.errors import BadDumpError

NT_PRSTATUS = 1
NT_FPREGSET = 2
NT_PRPSINFO = 3
NT_AUXV = 6
NT_X86_XSTATE = 0x202
NT_X86_XSAVE_LAYOUT = 0x205
NT_SIGINFO = 0x53494749
NT_FILE = 0x46494C45

NOTE_NAMES = {
    NT_PRSTATUS: "NT_PRSTATUS", NT_FPREGSET: "NT_FPREGSET", NT_PRPSINFO: "NT_PRPSINFO",
    NT_AUXV: "NT_AUXV", NT_X86_XSTATE: "NT_X86_XSTATE", NT_X86_XSAVE_LAYOUT: "NT_X86_XSAVE_LAYOUT",
    NT_SIGINFO: "NT_SIGINFO", NT_FILE: "NT_FILE",
}

_PRSTATUS_REGS_OFFSET = 112  # after siginfo, cursig, sigpend, sighold, pids and four timevals


def iter_notes(buf: memoryview) -> Iterator[tuple[str, int, memoryview]]:
    """Yield (owner, type, descriptor) for each note in `buf`; stop at the first bad header."""
    off, end = 0, len(buf)
    while off + 12 <= end:
        namesz, descsz, ntype = struct.unpack_from("<III", buf, off)
        name_off = off + 12
        desc_off = name_off + _align4(namesz)
        desc_end = desc_off + descsz
        if desc_end > end:
            raise BadDumpError(
                f"note at offset {off:#x} claims {descsz:#x} descriptor bytes, "
                f"but only {max(0, end - desc_off):#x} remain"
            )
        owner = bytes(buf[name_off : name_off + namesz]).rstrip(b"\0").decode("ascii", "replace")
        yield owner, ntype, buf[desc_off:desc_end]
        off = desc_off + _align4(descsz)


def notes_or_warn(buf: memoryview, warnings: list[str]) -> Iterator[tuple[str, int, memoryview]]:
    """iter_notes, but a note header that runs past the segment ends the notes with a warning
    (the notes before it are still good) instead of an error."""
    notes = iter_notes(buf)
    while True:
        try:
            yield next(notes)
        except StopIteration:
            return
        except BadDumpError as e:
            warnings.append(f"bad note: {e}; the notes after it are ignored")
            return


def _align4(n: int) -> int:
    return (n + 3) & ~3


@dataclass(frozen=True)
class PrStatus:
    """NT_PRSTATUS: one thread's signal, ids and raw general-register block."""

    signo: int
    code: int
    cursig: int
    pid: int
    ppid: int
    pgrp: int
    sid: int
    gregs: bytes


def parse_prstatus(desc: memoryview) -> PrStatus:
    """Decode a 64-bit Linux elf_prstatus; `gregs` is the arch's gregset, undecoded."""
    if len(desc) < _PRSTATUS_REGS_OFFSET + 8:
        raise BadDumpError(f"NT_PRSTATUS note too short ({len(desc)} bytes)")
    signo, code, _errno, cursig = struct.unpack_from("<iiih", desc, 0)
    pid, ppid, pgrp, sid = struct.unpack_from("<iiii", desc, 32)
    gregs = bytes(desc[_PRSTATUS_REGS_OFFSET : len(desc) - 8])  # pr_fpvalid (+pad) follows
    return PrStatus(signo, code, cursig, pid, ppid, pgrp, sid, gregs)


@dataclass(frozen=True)
class PrPsInfo:
    """NT_PRPSINFO: the process's state, ids, command name and first 80 bytes of argv."""

    state: int
    sname: str
    uid: int
    gid: int
    pid: int
    ppid: int
    pgrp: int
    sid: int
    fname: str
    psargs: str


def parse_prpsinfo(desc: memoryview) -> PrPsInfo:
    """Decode a 64-bit Linux elf_prpsinfo (136 bytes)."""
    if len(desc) < 136:
        raise BadDumpError(f"NT_PRPSINFO note too short ({len(desc)} bytes)")
    state, sname = struct.unpack_from("<bc", desc, 0)
    uid, gid, pid, ppid, pgrp, sid = struct.unpack_from("<IIiiii", desc, 16)
    fname = _cstring(desc[40:56])
    psargs = _cstring(desc[56:136])
    return PrPsInfo(state, sname.decode("ascii", "replace"), uid, gid, pid, ppid, pgrp, sid, fname, psargs)


@dataclass(frozen=True)
class SigInfo:
    """NT_SIGINFO: the signal that ended the process; `addr` only for fault signals."""

    signo: int
    errno: int
    code: int
    addr: int | None
    sender_pid: int | None
    sender_uid: int | None = None


_FAULT_SIGNALS = {4, 5, 7, 8, 11}  # SIGILL SIGTRAP SIGBUS SIGFPE SIGSEGV


def parse_siginfo(desc: memoryview) -> SigInfo:
    """Decode the kernel's siginfo_t (128 bytes on 64-bit Linux)."""
    if len(desc) < 24:
        raise BadDumpError(f"NT_SIGINFO note too short ({len(desc)} bytes)")
    signo, errno, code = struct.unpack_from("<iii", desc, 0)
    addr = sender = uid = None
    if signo in _FAULT_SIGNALS and code > 0:
        (addr,) = struct.unpack_from("<Q", desc, 16)
    elif code <= 0:  # SI_USER, SI_TKILL, SI_QUEUE...: sent by a process
        sender, uid = struct.unpack_from("<iI", desc, 16)
    return SigInfo(signo, errno, code, addr, sender, uid)


def parse_auxv(desc: memoryview) -> dict[int, int]:
    """Decode NT_AUXV into {AT_* type: value}, up to AT_NULL."""
    out: dict[int, int] = {}
    usable = len(desc) - len(desc) % 16
    for key, value in struct.iter_unpack("<QQ", desc[:usable]):
        if key == 0:
            break
        out.setdefault(key, value)
    return out


@dataclass(frozen=True)
class FileMapping:
    """One NT_FILE entry: [start, end) maps `path` from byte `offset` on."""

    start: int
    end: int
    offset: int
    path: str


def parse_nt_file(desc: memoryview) -> list[FileMapping]:
    """Decode NT_FILE: count, page size, count address triples, then count names."""
    if len(desc) < 16:
        raise BadDumpError(f"NT_FILE note too short ({len(desc)} bytes)")
    count, page_size = struct.unpack_from("<QQ", desc, 0)
    names_off = 16 + count * 24
    if count > len(desc) // 24 or names_off > len(desc):
        raise BadDumpError(f"NT_FILE note claims {count} mappings but holds {len(desc)} bytes")
    if page_size == 0 or page_size & (page_size - 1):
        raise BadDumpError(f"NT_FILE note has a bad page size {page_size:#x}")
    names = bytes(desc[names_off:]).split(b"\0")
    if len(names) < count:
        raise BadDumpError(f"NT_FILE note has {len(names)} names for {count} mappings")
    out = []
    for i in range(count):
        start, end, pgoff = struct.unpack_from("<QQQ", desc, 16 + i * 24)
        out.append(FileMapping(start, end, pgoff * page_size, names[i].decode("utf-8", "surrogateescape")))
    return out


def _cstring(raw: memoryview) -> str:
    data = bytes(raw)
    end = data.find(b"\0")
    return (data if end < 0 else data[:end]).decode("utf-8", "replace")


@dataclass(frozen=True)
class FpRegs:
    """x87 and SSE state in FXSAVE layout (NT_FPREGSET on x86-64, and the start of NT_X86_XSTATE).

    `st` holds the eight 80-bit x87 registers (10 bytes each), `xmm` the sixteen 128-bit SSE
    registers as integers; `ftw` is the abridged tag byte (bit set: register in use).
    """

    fcw: int
    fsw: int
    ftw: int
    fop: int
    rip: int
    rdp: int
    mxcsr: int
    mxcsr_mask: int
    st: tuple[bytes, ...]
    xmm: tuple[int, ...]
    xstate_bv: int | None = None
    xcomp_bv: int | None = None
    ymm_hi: tuple[int, ...] | None = None


_FXSAVE_SIZE = 512
_XSAVE_HEADER = 512
_YMM_HI_OFFSET = 576  # AVX state's offset in the standard (non-compacted) XSAVE layout
XFEATURE_YMM = 1 << 2


def parse_fpregset(desc: memoryview) -> FpRegs:
    """Decode a 512-byte FXSAVE area."""
    if len(desc) < _FXSAVE_SIZE:
        raise BadDumpError(f"floating point register note too short ({len(desc)} bytes)")
    fcw, fsw, ftw, fop, rip, rdp, mxcsr, mask = struct.unpack_from("<HHBxHQQII", desc, 0)
    st = tuple(bytes(desc[32 + 16 * i : 42 + 16 * i]) for i in range(8))
    xmm = tuple(int.from_bytes(desc[160 + 16 * i : 176 + 16 * i], "little") for i in range(16))
    return FpRegs(fcw, fsw, ftw, fop, rip, rdp, mxcsr, mask, st, xmm)


def parse_xstate(desc: memoryview) -> FpRegs:
    """Decode NT_X86_XSTATE: the FXSAVE area, the XSAVE header, and the AVX upper halves
    when the header says they are present (standard layout, as Linux writes it to cores).
    """
    fx = parse_fpregset(desc)
    if len(desc) < _XSAVE_HEADER + 16:
        raise BadDumpError(f"NT_X86_XSTATE note too short ({len(desc)} bytes)")
    xstate_bv, xcomp_bv = struct.unpack_from("<QQ", desc, _XSAVE_HEADER)
    ymm_hi = None
    if xstate_bv & XFEATURE_YMM and not xcomp_bv >> 63 and len(desc) >= _YMM_HI_OFFSET + 256:
        ymm_hi = tuple(int.from_bytes(desc[_YMM_HI_OFFSET + 16 * i : _YMM_HI_OFFSET + 16 * (i + 1)], "little")
                       for i in range(16))
    return FpRegs(**{**fx.__dict__, "xstate_bv": xstate_bv, "xcomp_bv": xcomp_bv, "ymm_hi": ymm_hi})
