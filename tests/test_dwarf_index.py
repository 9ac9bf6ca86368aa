"""The DWARF name index and its on-disk cache: built once per build-id and read back (a second
open of the same binary reads no DWARF to find a name), written atomically, and ignored when
corrupt or made from other DWARF. And the promise behind it: `::status` and `$c` read no types.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from conftest import Fixture, load_fixture

import pmdb
import pmdb.debuginfo.dwarf_index as dwarf_index
from pmdb.cli.main import run_batch
from pmdb.commands.registry import default_registry
from pmdb.debuginfo.dwarf_index import SUFFIX, DwarfIndex, build_index, cache_dir, ctf_int_name
from pmdb.debuginfo.dwarf_types import DwarfTypes
from pmdb.formats.dwarf import open_dwarf
from pmdb.formats.elf import ElfFile
from pmdb.mdb.session import Session


@pytest.fixture
def types_case(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Fixture:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return load_fixture("types")


def _source(fx: Fixture) -> DwarfTypes:
    elf = ElfFile(fx.prog)
    build_id = elf.build_id()
    assert build_id is not None
    return DwarfTypes(elf, build_id.hex())


def test_index_names(types_case: Fixture) -> None:
    index = build_index(open_dwarf(ElfFile(types_case.prog)))
    assert not index.errors
    assert {"struct bits", "union number", "enum color", "point_t", "int", "unsigned long", "long unsigned int"} \
        <= index.types.keys()
    assert {"g_bits", "g_list", "g_ring"} <= index.variables.keys()
    assert {"main", "add", "build"} <= index.functions.keys()
    assert index.unit_of(index.types["struct bits"]) == index.cu_offsets[0]


def test_second_open_reads_no_dwarf(types_case: Fixture, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _source(types_case)
    assert first.lookup("struct bits") is not None
    cached = cache_dir() / f"{first.build_id}{SUFFIX}"
    assert cached.is_file() and not list(cache_dir().glob("*.tmp"))

    def no_scan(dwarf: object) -> DwarfIndex:
        raise AssertionError("the index was built again")

    monkeypatch.setattr(dwarf_index, "build_index", no_scan)
    second = _source(types_case)
    assert second.lookup("struct bits") == first.lookup("struct bits")


@pytest.mark.parametrize("damage", [b"", b"not an index at all", b"\x00" * 64])
def test_corrupt_cache_is_rebuilt(types_case: Fixture, damage: bytes) -> None:
    source = _source(types_case)
    path = cache_dir() / f"{source.build_id}{SUFFIX}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(damage)
    assert source.lookup("point_t") is not None
    assert DwarfIndex.from_bytes(path.read_bytes(), dwarf_index.fingerprint(source.dwarf)) is not None


def test_stale_cache_is_rebuilt(types_case: Fixture) -> None:
    """An index of other DWARF under the same build-id (its fingerprint differs) is not used."""
    source = _source(types_case)
    path = cache_dir() / f"{source.build_id}{SUFFIX}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(DwarfIndex(cu_offsets=[0], types={"point_t": 12345}).to_bytes("other DWARF"))
    t = source.lookup("point_t")
    assert t is not None and t.name == "point_t"


def test_unwritable_cache_is_no_error(types_case: Fixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert _source(types_case).lookup("struct anon") is not None


def test_ctfconvert_int_names() -> None:
    assert [ctf_int_name(n) for n in ("long unsigned int", "short int", "long long int", "signed char", "char",
                                      "unsigned char", "int", "_Bool", "__int128")] == [
        "unsigned long", "short", "long long", "char", "char", "unsigned char", "int", None, None]


def test_status_and_stack_read_no_types(seed: Fixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`pmdb CORE -e '::status; $c'` costs nothing for types: no type source is made, no index."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    prog = pmdb.open(seed.core)
    out, err = io.StringIO(), io.StringIO()
    assert run_batch(Session(default_registry(), prog), "::status; $c", out, err) == 0
    assert "types" not in vars(prog) and "_type_sources" not in vars(prog)
    assert not (tmp_path / "pmdb" / "index").exists()


def test_type_lookups_read_the_types_alone(types_case: Fixture) -> None:
    """The cache's first part (units, types, errors) is read without the variables and functions
    after it; a length that leaves the file is a damaged cache, not a huge read."""
    source = _source(types_case)
    assert source.lookup("struct bits") is not None
    full = dwarf_index.load_cached(source.dwarf, source.build_id)
    types_only = dwarf_index.load_cached(source.dwarf, source.build_id, symbols=False)
    assert full is not None and full.variables and full.functions
    assert types_only == DwarfIndex(full.cu_offsets, full.types, full.forwards, {}, {}, full.errors)
    path = cache_dir() / f"{source.build_id}{SUFFIX}"
    path.write_bytes(b"\xff" * 8 + path.read_bytes()[8:])
    assert dwarf_index.load_cached(source.dwarf, source.build_id, symbols=False) is None
