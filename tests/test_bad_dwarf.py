"""Malformed DWARF is normal input: copies of the `types` program with one DWARF field broken,
at offsets found by parsing the copy here, given to pmdb as the core's executable.

Each break costs the type or unit it is in: a one-line error for that type, the other types
and commands untouched, never a traceback and never a hang.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import Fixture, load_fixture, run_pmdb
from elftools.elf.elffile import ELFFile


@pytest.fixture
def types_case(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Fixture:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # broken copies share the build-id
    return load_fixture("types")


def _dwarf_die(prog: Path, tag: str, name: str) -> tuple[int, object]:
    """(file offset of .debug_info, the DIE) of the top-level DIE `tag` called `name`."""
    with prog.open("rb") as f:
        elf = ELFFile(f)
        info = elf.get_section_by_name(".debug_info")
        for cu in elf.get_dwarf_info().iter_CUs():
            for die in cu.get_top_DIE().iter_children():
                if die.tag == tag and die.attributes.get("DW_AT_name") and \
                        die.attributes["DW_AT_name"].value == name.encode():
                    return info["sh_offset"], die
    raise LookupError(name)


def _broken_copy(fx: Fixture, tmp: Path, patch: list[tuple[int, bytes]]) -> str:
    copy = tmp / "prog"
    shutil.copyfile(fx.prog, copy)
    data = bytearray(copy.read_bytes())
    for offset, raw in patch:
        data[offset:offset + len(raw)] = raw
    copy.write_bytes(data)
    return str(copy)


def _clean(r) -> None:
    assert "Traceback" not in r.err, r.err
    assert all(line.startswith("pmdb: ") for line in r.err.splitlines()), r.err


def test_cyclic_typedef(types_case: Fixture, tmp_path: Path) -> None:
    """point2_t made a typedef of itself: that type fails in one line; the rest work."""
    base, die = _dwarf_die(Path(types_case.prog), "DW_TAG_typedef", "point2_t")
    attr = die.attributes["DW_AT_type"]
    assert attr.form == "DW_FORM_ref4"
    self_ref = (die.offset - die.cu.cu_offset).to_bytes(4, "little")
    prog = _broken_copy(types_case, tmp_path, [(base + attr.offset + 0, self_ref)])
    r = run_pmdb(types_case.core, prog, "-e", "::sizeof point2_t\ng_point2::print\n::sizeof point_t\ng_point::print")
    _clean(r)
    assert r.err.count("pmdb: ") == 2 and "loop" in r.err
    assert "sizeof (point_t) = 8\n" in r.out and "x = 0xa\n" in r.out


def test_struct_containing_itself(types_case: Fixture, tmp_path: Path) -> None:
    """A member whose type is its own struct: ::print stops at a depth limit, not a hang."""
    base, die = _dwarf_die(Path(types_case.prog), "DW_TAG_structure_type", "inner")
    member = next(c for c in die.iter_children() if c.tag == "DW_TAG_member")
    attr = member.attributes["DW_AT_type"]
    self_ref = (die.offset - die.cu.cu_offset).to_bytes(4, "little")
    prog = _broken_copy(types_case, tmp_path, [(base + attr.offset, self_ref)])
    r = run_pmdb(types_case.core, prog, "-e", "g_anon::print named\n::offsetof struct inner y")
    _clean(r)
    assert "nest too deeply" in r.err
    assert "offsetof (struct inner, y) = 2" in r.out


def test_bad_string_offset(types_case: Fixture, tmp_path: Path) -> None:
    """A struct's name pointing past .debug_str: the rest of its unit cannot be indexed; pmdb
    says the type is unknown, and why, and goes on."""
    base, die = _dwarf_die(Path(types_case.prog), "DW_TAG_structure_type", "bits")
    attr = die.attributes["DW_AT_name"]
    assert attr.form == "DW_FORM_strp"
    prog = _broken_copy(types_case, tmp_path, [(base + attr.offset, (0x7FFFFFF0).to_bytes(4, "little"))])
    r = run_pmdb(types_case.core, prog, "-e", "::sizeof struct bits\n::status")
    _clean(r)
    assert r.err.splitlines() == [
        "pmdb: failed to look up type struct bits: No type information available for that name",
        f"pmdb: {prog}: DWARF unit at 0x0: a name's string offset 0x7ffffff0 is outside its string table"]
    assert "status: process terminated by SIGSEGV" in r.out


def test_unit_longer_than_section(types_case: Fixture, tmp_path: Path) -> None:
    """The first unit's length past the section's end: no types, one line each, commands go on."""
    base, _ = _dwarf_die(Path(types_case.prog), "DW_TAG_typedef", "point_t")
    prog = _broken_copy(types_case, tmp_path, [(base, (0xFFFFFF00).to_bytes(4, "little"))])
    r = run_pmdb(types_case.core, prog, "-e", "::sizeof point_t\ng_point::print\n::status")
    _clean(r)
    assert r.err.splitlines()[0] == "pmdb: failed to look up type point_t: No type information available for that name"
    assert "status: process terminated by SIGSEGV" in r.out


def test_undefined_abbreviation(types_case: Fixture, tmp_path: Path) -> None:
    """A DIE whose abbreviation code the table lacks: its unit is skipped, never a crash."""
    base, die = _dwarf_die(Path(types_case.prog), "DW_TAG_structure_type", "scalars")
    prog = _broken_copy(types_case, tmp_path, [(base + die.offset, b"\x7f")])
    r = run_pmdb(types_case.core, prog, "-e", "::sizeof struct scalars\n::sizeof struct bits\ng_scalars::print")
    _clean(r)
    assert r.status == 1


def test_truncated_debug_info(types_case: Fixture, tmp_path: Path) -> None:
    """A copy cut off inside .debug_info: a one-line answer, never a traceback."""
    base, _ = _dwarf_die(Path(types_case.prog), "DW_TAG_typedef", "point_t")
    copy = tmp_path / "prog"
    copy.write_bytes(Path(types_case.prog).read_bytes()[: base + 200])
    r = run_pmdb(types_case.core, str(copy), "-e", "::sizeof struct bits\n::print -t struct anon")
    _clean(r)
    assert r.status == 1
