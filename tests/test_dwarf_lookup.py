"""Finding one type without the name index (dwarf_lookup) gives what the index gives: for every
type name of the seed and types fixtures and of libc's debug file, for a sample of the Debian
vmlinux's, and on synthetic DWARF 5 whose names are string-offset indexes (DW_FORM_strx, which
gcc does not emit). And the policy around it (DwarfTypes, index_builder): a large file's first
lookup reads few of its units and has the index built in the background, which the next open
reads; a lookup that grows costly builds the index at once.
"""

from __future__ import annotations

import io
import os
import random
import struct
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import load_fixture, load_kernel_fixture
from elftools.dwarf.dwarfinfo import DebugSectionDescriptor

import pmdb
import pmdb.debuginfo.dwarf_index as dwarf_index
import pmdb.debuginfo.dwarf_lookup as dwarf_lookup
from pmdb.debuginfo import index_builder
from pmdb.debuginfo.ctypes import StructType
from pmdb.debuginfo.dwarf_index import DwarfIndex, build_index, cache_path, load_cached, load_or_build
from pmdb.debuginfo.dwarf_lookup import NameFinder, Section, TooCostly, type_names
from pmdb.debuginfo.dwarf_names import indexed_type
from pmdb.debuginfo.dwarf_types import DwarfTypes
from pmdb.formats.dwarf import open_dwarf
from pmdb.formats.elf import ElfFile

EXTRA = ["struct no_such_thing", "enum nope", "union", "long unsigned int", "unsigned long", "long long unsigned",
         "unsigned long long int", "signed char", "char", "_Bool", "unsigned __int128", "int"]


def _names(index: DwarfIndex) -> list[str]:
    """Every name the index files a type under, the tag names without their keywords (mostly not
    types), and names that are no type at all."""
    names = sorted(index.types.keys() | index.forwards.keys())
    return names + [n.split(" ", 1)[1] for n in names if " " in n][:100] + EXTRA


def _compare(finder: NameFinder, index: DwarfIndex, names: list[str]) -> None:
    """The finder answers each name as the index does."""
    wrong = {n: (finder.find(n), indexed_type(index, n)) for n in names}
    assert {n: pair for n, pair in wrong.items() if pair[0] != pair[1]} == {}


def _libc_debug_file() -> ElfFile:
    """The separate debug file of the seed core's libc (Debian's libc6-dbg, compressed DWARF)."""
    prog = pmdb.open(load_fixture("seed").core)
    for obj in prog.process.objects:
        if "libc.so" in obj.name:
            elf = prog.process.debug_elf_of(obj)
            if elf is not None:
                return elf
    pytest.skip("no debug file for the seed core's libc")


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path


# The same answers ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["seed", "types", "types_dwarf4"])
def test_every_type_of_the_fixtures(case: str) -> None:
    elf = ElfFile(load_fixture(case).prog)
    dwarf = open_dwarf(elf)
    index = build_index(dwarf)
    _compare(NameFinder.of(elf, dwarf, budget=float("inf")), index, _names(index))


def test_every_type_of_libc() -> None:
    elf = _libc_debug_file()
    dwarf = open_dwarf(elf)
    index = build_index(dwarf)
    assert len(index.types) > 1000 and len(index.cu_offsets) > 1000
    _compare(NameFinder.of(elf, dwarf, budget=float("inf")), index, _names(index))


def test_a_sample_of_the_kernel() -> None:
    """60 of the vmlinux's type names, picked at random, and some more (the index: cached, else
    built: 7 s; integer names no unit defines are left to the libc test: they read every unit)."""
    path = load_kernel_fixture().truth["paths"]["vmlinux_debug"]
    if not Path(path).exists():
        pytest.skip("the -dbg vmlinux is not extracted")
    elf = ElfFile(path)
    dwarf = open_dwarf(elf)
    build_id = elf.build_id()
    index = load_or_build(dwarf, build_id.hex() if build_id else None)
    names = _names(index)
    sample = [*random.Random(4).sample(names, 60), "struct task_struct", "struct page", "struct nvme_ctrl",
              "struct no_such_thing", "task_struct", "int", "unsigned long", "long unsigned int", "char"]
    _compare(NameFinder.of(elf, dwarf, budget=float("inf")), index, sample)


def test_names_through_string_offsets() -> None:
    """DWARF 5 names as DW_FORM_strx1: found through .debug_str_offsets and the bases the units
    name; a name in the first contribution (a unit without a base would read it) is looked for
    in every unit; and the answers are the index's."""
    dwarf = _synthetic_dwarf()
    index = build_index(dwarf)
    assert not index.errors and len(index.cu_offsets) == 4
    assert {"struct alpha", "struct beta", "gamma_beta", "struct first"} <= index.types.keys()
    assert index.forwards == {"struct lonely": index.forwards["struct lonely"]}
    info = dwarf.debug_info_sec.stream.getvalue()
    finder = NameFinder(Section(info, 0, len(info)), *(s.stream.getvalue() for s in (
        dwarf.debug_abbrev_sec, dwarf.debug_str_sec, dwarf.debug_line_str_sec, dwarf.debug_str_offsets_sec)),
        budget=float("inf"))
    assert finder.find("struct beta") == index.types["struct beta"]
    assert sorted(finder.units) == [1, 2]  # the units whose contributions hold `beta`'s offset
    _compare(finder, index, _names(index))
    assert sorted(finder.units) == [0, 1, 2, 3]


def _synthetic_dwarf() -> SimpleNamespace:
    """Four DWARF 5 units with DW_FORM_strx1 names, each with its own .debug_str_offsets
    contribution: `first` in unit 0's (the default base's), `beta` declared in unit 1 and
    defined in unit 2, `beta` also the tail of `gamma_beta`, `lonely` only declared."""
    strs = b"\0first\0alpha\0gamma_beta\0lonely\0unit.c\0"
    at = {name: strs.index(name.encode() + b"\0") for name in ("first", "alpha", "gamma_beta", "lonely", "unit.c")}
    at["beta"] = at["gamma_beta"] + len("gamma_")
    abbrev = bytes([
        1, 0x11, 1, 0x72, 0x17, 0x03, 0x25, 0, 0,  # compile_unit: str_offsets_base, name strx1
        2, 0x13, 0, 0x03, 0x25, 0x0B, 0x0B, 0, 0,  # structure_type: name strx1, byte_size data1
        3, 0x13, 0, 0x03, 0x25, 0x3C, 0x19, 0, 0,  # structure_type: name strx1, declaration
        4, 0x16, 0, 0x03, 0x25, 0, 0,  # typedef: name strx1
        0])
    units = [  # (strings in the unit's contribution, DIEs as (abbreviation, slot, byte size or None))
        (["unit.c", "first"], [(2, 1, 4)]),
        (["unit.c", "beta", "lonely"], [(3, 1, None), (3, 2, None)]),
        (["unit.c", "alpha", "beta"], [(2, 1, 8), (2, 2, 16)]),
        (["unit.c", "gamma_beta", "alpha"], [(4, 1, None), (2, 2, 8)]),
    ]
    offsets, info = b"", b""
    for names, dies in units:
        base = len(offsets) + 8
        offsets += struct.pack("<IHH", 4 + 4 * len(names), 5, 0) + b"".join(struct.pack("<I", at[n]) for n in names)
        body = bytes([1]) + struct.pack("<I", base) + bytes([0])
        for code, slot, size in dies:
            body += bytes([code, slot]) + (bytes([size]) if size is not None else b"")
        body += b"\0"
        info += struct.pack("<IHBBI", 8 + len(body), 5, 1, 8, 0) + body

    def section(name: str, data: bytes) -> DebugSectionDescriptor:
        return DebugSectionDescriptor(io.BytesIO(data), name, 0, len(data), 0)

    return SimpleNamespace(
        debug_info_sec=section(".debug_info", info), debug_abbrev_sec=section(".debug_abbrev", abbrev),
        debug_str_sec=section(".debug_str", strs), debug_line_str_sec=section(".debug_line_str", b""),
        debug_str_offsets_sec=section(".debug_str_offsets", offsets))


def test_type_names() -> None:
    structs, named = frozenset({0x13, 0x02}), frozenset({0x16, 0x24})
    assert type_names("struct task_struct") == [("struct task_struct", named), ("task_struct", structs)]
    assert type_names("struct a::b::c") == [("struct a::b::c", named), ("a::b::c", structs), ("b::c", structs),
                                            ("c", structs)]
    assert type_names("pid_t") == [("pid_t", named)]
    assert type_names("unsigned long") is None and type_names("char") is None
    assert type_names("struct \ufffd") is None


def test_hits_that_cannot_be_a_types_name_are_passed_over() -> None:
    """In libc, `malloc_state` is the name of structs and declarations in a few units and of
    nothing else: no unit can hold a typedef of that name, none is read to know it."""
    elf = _libc_debug_file()
    finder = NameFinder.of(elf, open_dwarf(elf), budget=float("inf"))
    assert finder.find("malloc_state") is None and finder.units == {}
    assert finder.find("struct malloc_state") is not None and 0 < len(finder.units) <= 3


# The policy ----------------------------------------------------------------------------------


def test_first_lookup_reads_few_units_and_builds_the_index_in_the_background(cache_home: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    elf = _libc_debug_file()
    first = DwarfTypes(elf, "feed" * 10)
    t = first.lookup("struct malloc_state")
    assert isinstance(t, StructType) and t.tag == "malloc_state"
    names = first.names
    assert names is not None and names.index is None and names.finder is not None
    assert 0 < len(names.finder.units) < len(names.finder.spans) // 20  # under 5% of the units read
    deadline = time.monotonic() + 60
    while (index_builder.lock_path(first.build_id).exists() or not cache_path(first.build_id).exists()) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert load_cached(first.dwarf, first.build_id) == build_index(first.dwarf)

    def no_finding(self: NameFinder, name: str) -> int:
        raise AssertionError("the type was looked for without the index")

    monkeypatch.setattr(NameFinder, "find", no_finding)
    second = DwarfTypes(elf, first.build_id)
    assert second.lookup("struct malloc_state") == t
    assert second.names is not None and second.names.type_index is not None and second.names.index is None


def test_lookups_take_the_index_once_the_builder_is_done(cache_home: Path) -> None:
    source = DwarfTypes(_libc_debug_file(), "cafe" * 10)
    assert source.lookup("struct malloc_state") is not None
    names = source.names
    assert names is not None and names.type_index is None
    index_builder.wait(source.build_id)
    assert source.lookup("struct malloc_chunk") is not None
    assert names.type_index is not None and names.index is None


def test_costly_lookups_build_the_index_at_once(cache_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dwarf_lookup, "BUDGET", 0.0)
    monkeypatch.setattr(index_builder, "start", lambda path, key: pytest.fail("a builder was started"))
    source = DwarfTypes(_libc_debug_file(), "beef" * 10)
    assert source.lookup("struct malloc_state") is not None
    assert source.names is not None and source.names.index is not None and cache_path(source.build_id).exists()


def test_small_files_are_indexed_at_once(cache_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_builder, "start", lambda path, key: pytest.fail("a builder was started"))
    source = DwarfTypes(ElfFile(load_fixture("types").prog), "abcd" * 10)
    assert source.lookup("struct bits") is not None
    assert source.names is not None and source.names.finder is None and cache_path(source.build_id).exists()


def test_too_costly() -> None:
    elf = ElfFile(load_fixture("types").prog)
    finder = NameFinder.of(elf, open_dwarf(elf), budget=0.0)
    with pytest.raises(TooCostly):
        finder.find("struct bits")


# The background builder ----------------------------------------------------------------------


def test_builder_writes_the_index_and_drops_its_lock(cache_home: Path) -> None:
    prog = load_fixture("types").prog
    fd = index_builder._lock("0123")
    assert fd is not None
    os.close(fd)
    assert index_builder.main([prog, "0123"]) == 0
    assert not index_builder.lock_path("0123").exists()
    assert load_cached(open_dwarf(ElfFile(prog)), "0123") == build_index(open_dwarf(ElfFile(prog)))


def test_one_builder_at_a_time(cache_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[list[str]] = []

    def popen(argv: list[str], **kwargs: object) -> SimpleNamespace:
        started.append(argv)
        return SimpleNamespace(pid=999999999 - len(started), poll=lambda: None)  # pids that no process has

    monkeypatch.setattr(index_builder.subprocess, "Popen", popen)
    monkeypatch.setattr(index_builder, "_started", [])
    prog = load_fixture("types").prog
    assert index_builder.start(prog, "k1") and len(started) == 1
    assert index_builder.lock_path("k1").read_text() == str(999999998)
    assert not index_builder.start(prog, "k1")  # a builder of ours, still at work
    index_builder._started.clear()  # one of another process's, that has exited
    assert index_builder.start(prog, "k1") and len(started) == 2
    monkeypatch.setenv("PMDB_BACKGROUND_INDEX", "0")
    assert not index_builder.start(prog, "k2") and len(started) == 2


def test_the_index_waits_for_a_builder_at_work(cache_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that needs the whole index while a builder makes it takes the builder's."""
    prog = load_fixture("types").prog
    fd = index_builder._lock("k3")
    assert fd is not None
    os.write(fd, str(os.getpid()).encode())  # a live builder
    os.close(fd)
    monkeypatch.setattr(dwarf_index, "build_index", lambda dwarf: pytest.fail("the index was built again"))
    cached = DwarfIndex(cu_offsets=[0], types={"point_t": 1})

    def builder_done(seconds: float) -> None:
        dwarf_index._write_atomically(cache_path("k3"), cached.to_bytes(dwarf_index.fingerprint(open_dwarf(
            ElfFile(prog)))))
        index_builder.lock_path("k3").unlink()

    monkeypatch.setattr(index_builder.time, "sleep", builder_done)
    assert DwarfTypes(ElfFile(prog), "k3").index == cached
