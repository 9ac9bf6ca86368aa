"""Bad input is normal input: truncated and corrupt cores (made from a real one), wrong files.

Each case gives a one-line error and exit status 2, or a partial answer with warnings that
say what is missing; never a traceback. The corrupt cores are copies of a real core with one
field changed, at offsets found by parsing the copy here.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
from pathlib import Path

import pytest
from conftest import Fixture, run_pmdb, run_pmdb_peak_rss


def _phdrs(data: bytes) -> list[tuple[int, ...]]:
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    return [(*struct.unpack_from("<IIQQQQQQ", data, phoff + i * phentsize), phoff + i * phentsize)
            for i in range(phnum)]


def _notes_offset(data: bytes) -> int:
    return next(p[2] for p in _phdrs(data) if p[0] == 4)


def _copy(fx: Fixture, tmp: Path, size: int | None = None) -> tuple[Path, bytearray]:
    data = bytearray(Path(fx.core).read_bytes())
    if size is not None:
        data = data[:size]
    return tmp / "core", data


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def _no_traceback(r) -> None:
    assert "Traceback" not in r.err and "Error:" not in r.err.replace("pmdb:", "")


def test_missing_file() -> None:
    r = run_pmdb("/nonexistent/core", "-e", "$c")
    assert (r.out, r.err, r.status) == ("", "pmdb: /nonexistent/core: No such file or directory\n", 2)


def test_directory(tmp_path: Path) -> None:
    r = run_pmdb(str(tmp_path), "-e", "$c")
    assert (r.err, r.status) == (f"pmdb: {tmp_path}: is a directory\n", 2)


def test_not_elf(tmp_path: Path) -> None:
    path = _write(tmp_path / "notes.txt", b"just some text\n")
    r = run_pmdb(path, "-e", "$c")
    assert (r.err, r.status) == (f"pmdb: {path}: not a dump pmdb can read (unrecognized format)\n", 2)


def test_empty_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "empty", b"")
    r = run_pmdb(path, "-e", "$c")
    assert (r.err, r.status) == (f"pmdb: {path}: empty file\n", 2)


def test_elf_that_is_not_a_core(seed: Fixture) -> None:
    r = run_pmdb(seed.prog, "-e", "$c")
    assert r.err == f"pmdb: {seed.prog}: not a core file (ELF type ET_DYN: a shared object or PIE executable)\n"
    assert r.status == 2


def test_truncated_in_elf_header(seed: Fixture, tmp_path: Path) -> None:
    path, data = _copy(seed, tmp_path, 40)
    r = run_pmdb(_write(path, data), "-e", "$c")
    assert (r.err, r.status) == (f"pmdb: {path}: truncated ELF header (40 bytes)\n", 2)


def test_truncated_in_program_headers(seed: Fixture, tmp_path: Path) -> None:
    full = Path(seed.core).read_bytes()
    phnum = struct.unpack_from("<H", full, 56)[0]
    path, data = _copy(seed, tmp_path, 64 + 56 * 3)
    r = run_pmdb(_write(path, data), "-e", "$c")
    assert r.err == (f"pmdb: {path}: program header table at 0x40 ({phnum} entries) extends past end of file "
                     f"({len(data):#x} bytes)\n")
    assert r.status == 2


def test_absurd_program_header_count(seed: Fixture, tmp_path: Path) -> None:
    path, data = _copy(seed, tmp_path)
    struct.pack_into("<H", data, 56, 0xFFFF)  # PN_XNUM: "the count is in section 0", which a core lacks
    r = run_pmdb(_write(path, data), "-e", "$c")
    assert (r.err, r.status) == (
        f"pmdb: {path}: e_phnum is PN_XNUM but there is no section 0 to hold the count\n", 2)


def test_truncated_in_notes_is_a_partial_answer(seed: Fixture, tmp_path: Path) -> None:
    full = Path(seed.core).read_bytes()
    notes = _notes_offset(full)
    path, data = _copy(seed, tmp_path, notes + 0x200)  # after NT_PRSTATUS and NT_PRPSINFO, inside NT_SIGINFO
    r = run_pmdb(_write(path, data), "-e", "::status")
    _no_traceback(r)
    assert r.status == 0
    assert "pmdb: warning: core is truncated: notes have 0x200 of" in r.err
    assert r.out.startswith("debugging core file of prog (64-bit)")
    # without NT_SIGINFO the signal comes from NT_PRSTATUS, and the fault address is unknown
    assert r.out.splitlines()[-1] == "status: process terminated by SIGSEGV (Segmentation Fault)"


def test_truncated_in_a_segment_says_what_is_missing(seed: Fixture, tmp_path: Path) -> None:
    full = Path(seed.core).read_bytes()
    stack_rsp = seed.truth["threads"][0]["registers"]["rsp"]
    seg = next(p for p in _phdrs(full) if p[0] == 1 and p[3] <= stack_rsp < p[3] + p[6])
    cut = seg[2] + (stack_rsp - seg[3])
    path, data = _copy(seed, tmp_path, cut)
    r = run_pmdb(_write(path, data), "-e", "$c")
    _no_traceback(r)
    assert r.status == 0
    assert r.out.splitlines()[0].startswith("ipnet_nicevent_task+")
    warning = next(ln for ln in r.err.splitlines() if "stack trace is incomplete" in ln)
    unreadable = int(warning.split("cannot read the stack at ")[1].split(":")[0], 16)
    assert stack_rsp <= unreadable < stack_rsp + 0x100  # frame 0's return address, just above rsp
    assert warning.endswith("address is mapped but its contents are not in the dump: the core file is truncated")
    r = run_pmdb(str(path), "-q", "-e", f"{stack_rsp:#x}/K")
    assert r.err == ("pmdb: failed to read data from target: address is mapped but its contents are not in "
                     "the dump: the core file is truncated\n")
    assert r.status == 1


def test_segment_pointing_past_end_of_file(seed: Fixture, tmp_path: Path) -> None:
    path, data = _copy(seed, tmp_path)
    load = next(p for p in _phdrs(bytes(data)) if p[0] == 1 and p[5])
    struct.pack_into("<Q", data, load[8] + 8, len(data) + 0x100000)
    r = run_pmdb(_write(path, data), "-e", f"{load[3]:#x}/K")
    _no_traceback(r)
    assert "pmdb: warning: core is truncated: 1 of" in r.err
    assert "the core file is truncated" in r.err
    assert r.status == 1


def test_note_with_absurd_size(seed: Fixture, tmp_path: Path) -> None:
    path, data = _copy(seed, tmp_path)
    notes = _notes_offset(bytes(data))
    struct.pack_into("<I", data, notes + 4, 0xFFFFFFF0)
    r = run_pmdb(_write(path, data), "-e", "$c")
    _no_traceback(r)
    assert "pmdb: warning: bad note: note at offset 0x0 claims 0xfffffff0 descriptor bytes" in r.err
    assert "pmdb: warning: core has no NT_PRSTATUS notes: no thread registers" in r.err
    assert r.err.endswith("pmdb: no thread registers in this target\n")
    assert r.status == 1


def test_nt_file_with_absurd_count(seed: Fixture, tmp_path: Path) -> None:
    path, data = _copy(seed, tmp_path)
    notes = _notes_offset(bytes(data))
    off = notes
    while True:  # find NT_FILE ("CORE", 0x46494c45)
        namesz, descsz, ntype = struct.unpack_from("<III", data, off)
        desc = off + 12 + ((namesz + 3) & ~3)
        if ntype == 0x46494C45:
            break
        off = desc + ((descsz + 3) & ~3)
    struct.pack_into("<Q", data, desc, 1 << 60)
    r, peak_kib = run_pmdb_peak_rss(_write(path, data), "-e", "::status; $c")
    _no_traceback(r)
    assert f"pmdb: warning: bad NT_FILE note skipped: NT_FILE note claims {1 << 60} mappings but holds" in r.err
    assert "status: process terminated by SIGSEGV (Segmentation Fault), addr=8" in r.out
    assert 0 < peak_kib < 200 * 1024  # nothing was sized by the absurd count


def test_pmdb_never_writes_to_the_dump(seed: Fixture, tmp_path: Path) -> None:
    path = tmp_path / "core"
    shutil.copyfile(seed.core, path)
    os.chmod(path, 0o400)
    before = hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns
    r = run_pmdb(str(path), "-e", "::status; $c; <rip/p; ::dis; ::regs")
    assert r.status == 0, r.err
    assert (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns) == before


@pytest.mark.parametrize("fmt", ["w", "W", "Z", "v"])
def test_write_formats_are_refused(seed: Fixture, fmt: str) -> None:
    r = run_pmdb(seed.core, "-e", f"<rsp/{fmt} 0")
    assert r.status == 1
    assert r.err == f"pmdb: '{fmt}' writes to the target: pmdb never writes to a dump\n"
