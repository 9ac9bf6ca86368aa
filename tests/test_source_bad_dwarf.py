"""Malformed DWARF in the program: each unit or frame whose DWARF is bad gets a one-line
message, everything else (other frames, other objects, the instructions) goes on; never a
traceback or a hang. The core stays the seed's; the program given beside it is a copy with
one DWARF section damaged.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ROOT, Fixture
from elftools.elf.elffile import ELFFile

COMMANDS = "$c; ::stack -l; ipnet_nicevent_task+0x27::whereis; ipnet_nicevent_task::dis -s"


def _section(path: Path, name: str) -> tuple[int, int, int]:
    """(file offset, size, offset of its section header) of a section, by pyelftools."""
    with open(path, "rb") as fh:
        elf = ELFFile(fh)
        for i, sec in enumerate(elf.iter_sections()):
            if sec.name == name:
                return sec["sh_offset"], sec["sh_size"], elf["e_shoff"] + i * elf["e_shentsize"]
    raise AssertionError(f"{path} has no {name}")


def _damaged(seed: Fixture, tmp_path: Path, name: str, damage: Callable[[bytearray, int, int, int], None]) -> Path:
    path = tmp_path / "prog"
    shutil.copyfile(seed.prog, path)
    data = bytearray(path.read_bytes())
    damage(data, *_section(path, name))
    path.write_bytes(data)
    return path


def _run(seed: Fixture, prog: Path, commands: str = COMMANDS) -> subprocess.CompletedProcess[str]:
    """pmdb on the seed core with the damaged program; a traceback or a hang fails the test."""
    env = dict(os.environ, PMDB_DEBUG="1")
    done = subprocess.run([sys.executable, "-m", "pmdb.cli.main", "-q", seed.core, str(prog), "-e", commands],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    return done


def _truncate(new_size: int) -> Callable[[bytearray, int, int, int], None]:
    def damage(data: bytearray, _offset: int, _size: int, header: int) -> None:
        struct.pack_into("<Q", data, header + 32, new_size)  # Elf64_Shdr.sh_size

    return damage


def _fill(start: int, byte: int) -> Callable[[bytearray, int, int, int], None]:
    def damage(data: bytearray, offset: int, size: int, _header: int) -> None:
        data[offset + start : offset + size] = bytes([byte]) * (size - start)

    return damage


def test_truncated_line_table_costs_the_lines_only(seed: Fixture, tmp_path: Path) -> None:
    r = _run(seed, _damaged(seed, tmp_path, ".debug_line", _truncate(40)))
    assert r.returncode == 1  # ::whereis fails
    assert "bad DWARF in" in r.stderr and ".debug_line" in r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("ipnet_nicevent_task+0x27(") and lines[0] != "ipnet_nicevent_task+0x27()"
    assert "        ips = 0" in lines  # the locals still shown
    assert any("libc.so.6`start_thread" in ln for ln in lines)
    assert sum("ipnet_nicevent_task+0x27:" in ln for ln in lines) == 1  # ::dis still disassembles


def test_bad_location_lists_cost_the_variables_only(seed: Fixture, tmp_path: Path) -> None:
    r = _run(seed, _damaged(seed, tmp_path, ".debug_loclists", _fill(12, 0xFF)))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "ipnet_nicevent_task+0x27(<bad DWARF>)"
    assert any(ln.startswith("        ipne = <bad DWARF: bad DWARF in ") for ln in lines)
    assert "libc.so.6`start_thread+0x305(<optimized out>)" in lines  # libc's DWARF is not touched
    assert any(ln.startswith("ipnet_nicevent_task+0x27: seed.c:") for ln in lines)


def test_absurd_line_table_counts_end_quickly(seed: Fixture, tmp_path: Path) -> None:
    def absurd(data: bytearray, offset: int, _size: int, _header: int) -> None:
        # DWARF 5 line header: unit_length(4) version(2) address_size(1) seg_sel_size(1)
        # header_length(4) min_inst(1) max_ops(1) default_is_stmt(1) line_base(1)
        # line_range(1) opcode_base(1) standard_opcode_lengths(opcode_base-1)
        # directory_entry_format_count(1) formats(uleb pairs) directories_count(uleb)
        pos = offset + 4 + 2 + 2 + 4 + 6
        pos += data[pos - 1] - 1
        count = data[pos]
        pos += 1 + 2 * count  # each format is two one-byte ULEBs here
        data[pos : pos + 5] = b"\xff\xff\xff\xff\x0f"  # directories_count: 4 billion

    r = _run(seed, _damaged(seed, tmp_path, ".debug_line", absurd))
    assert "bad DWARF in" in r.stderr
    assert r.stdout.splitlines()[0].startswith("ipnet_nicevent_task+0x27(")


def test_unit_longer_than_its_section_is_one_message(seed: Fixture, tmp_path: Path) -> None:
    def absurd(data: bytearray, offset: int, _size: int, _header: int) -> None:
        struct.pack_into("<I", data, offset, 0x7FFFFFF0)  # the first unit's unit_length

    r = _run(seed, _damaged(seed, tmp_path, ".debug_info", absurd), "$c; ::stack -l")
    assert r.returncode == 0, r.stderr
    assert "bad DWARF in" in r.stderr and "runs past the end of .debug_info" in r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "ipnet_nicevent_task+0x27()"
    assert "libc.so.6`start_thread+0x305(<optimized out>)" in lines


@pytest.mark.parametrize("section", [".debug_abbrev", ".debug_info", ".debug_aranges", ".debug_rnglists"])
@pytest.mark.parametrize("byte", [0x00, 0x80, 0xFF])
def test_garbage_in_a_section_is_survived(seed: Fixture, tmp_path: Path, section: str, byte: int) -> None:
    def garbage(data: bytearray, offset: int, size: int, header: int) -> None:
        _fill(min(size, 16), byte)(data, offset, size, header)

    r = _run(seed, _damaged(seed, tmp_path, section, garbage))
    lines = r.stdout.splitlines()
    assert lines[0].startswith("ipnet_nicevent_task+0x27(")
    assert any(ln.startswith("libc.so.6`start_thread+0x305(") for ln in lines)
