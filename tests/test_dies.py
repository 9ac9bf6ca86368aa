"""The lean DIE reader on hand-assembled DWARF: the DWARF 5 indexed forms GCC does not emit
by default (strx, addrx, rnglistx, loclistx, implicit_const) and DWARF 4's .debug_ranges and
.debug_loc, laid out as the DWARF 5 standard (sections 7.5, 7.7.3, 7.28, 7.29) describes."""

from __future__ import annotations

import io
import struct
from types import SimpleNamespace

import pytest

from pmdb.debuginfo.dies import (
    AT_const_value,
    AT_location,
    AT_name,
    DieError,
    LocationEntry,
    Sections,
    Unit,
    address_ranges,
    location_list,
)

TAG_CU, TAG_SUBPROGRAM, TAG_PARAM, TAG_BASE, TAG_VAR = 0x11, 0x2E, 0x05, 0x24, 0x34


def _uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _abbrev(code: int, tag: int, children: bool, *specs: tuple[int, int] | tuple[int, int, int]) -> bytes:
    out = _uleb(code) + _uleb(tag) + bytes([children])
    for spec in specs:
        out += _uleb(spec[0]) + _uleb(spec[1]) + (bytes([spec[2]]) if len(spec) == 3 else b"")  # small sleb
    return out + b"\0\0"


def _info(info: dict[str, bytes]) -> SimpleNamespace:
    """A stand-in for pyelftools' DWARFInfo: a stream and a size per section."""
    names = ("info", "abbrev", "str", "line_str", "str_offsets", "addr", "loc", "loclists", "ranges", "rnglists")
    return SimpleNamespace(**{
        f"debug_{n}_sec": SimpleNamespace(stream=io.BytesIO(info[n]), size=len(info[n])) if n in info else None
        for n in names
    })


class _Owner:
    label = "test"

    def die_at(self, offset: int) -> None:
        raise DieError(f"no DIE at {offset:#x}")


def _dwarf5() -> Unit:
    abbrev = b"".join([
        # compile unit: name strx1, str_offsets_base, addr_base, low_pc addrx, high_pc data4, rnglists/loclists bases
        _abbrev(1, TAG_CU, True, (0x03, 0x25), (0x72, 0x17), (0x73, 0x17), (0x11, 0x1B), (0x12, 0x06),
                (0x74, 0x17), (0x8C, 0x17)),
        _abbrev(2, TAG_SUBPROGRAM, True, (0x03, 0x25), (0x55, 0x23), (0x40, 0x18)),  # name, ranges rnglistx
        _abbrev(3, TAG_PARAM, False, (0x03, 0x08), (0x02, 0x22)),  # name string, location loclistx
        _abbrev(4, TAG_VAR, False, (0x03, 0x08), (0x1C, 0x21, 7)),  # name, const_value implicit_const 7
    ]) + b"\0"
    strs = b"cu.c\0fn\0"
    str_offsets = struct.pack("<IHH", 12, 5, 0) + struct.pack("<II", 0, 5)
    addrs = struct.pack("<IHBB", 20, 5, 8, 0) + struct.pack("<QQ", 0x1000, 0x2000)
    rnglist = bytes([3]) + _uleb(1) + _uleb(0x10) + bytes([0])  # startx_length addr[1] 0x10; end
    rnglists = struct.pack("<IHBBI", 8 + 4 + len(rnglist), 5, 8, 0, 1) + struct.pack("<I", 4) + rnglist
    loclist = bytes([4]) + _uleb(0) + _uleb(0x20) + _uleb(1) + b"\x55" + bytes([5]) + _uleb(1) + b"\x54" + b"\0"
    loclists = struct.pack("<IHBBI", 8 + 4 + len(loclist), 5, 8, 0, 1) + struct.pack("<I", 4) + loclist
    dies = (
        _uleb(1) + bytes([0]) + struct.pack("<II", 8, 8) + _uleb(0) + struct.pack("<I", 0x100)  # cu.c [0x1000, +0x100)
        + struct.pack("<II", 12, 12)
        + _uleb(2) + bytes([1]) + _uleb(0) + _uleb(1) + b"\x9c"  # fn: ranges list 0, frame base: CFA
        + _uleb(3) + b"p\0" + _uleb(0)  # p: location list 0
        + _uleb(4) + b"k\0"  # k = 7
        + b"\0" + b"\0"
    )
    header = struct.pack("<HBBI", 5, 1, 8, 0)  # version 5, DW_UT_compile, 8-byte addresses, abbrev offset 0
    info = struct.pack("<I", len(header) + len(dies)) + header + dies
    sections = Sections(_info({"info": info, "abbrev": abbrev, "str": strs, "str_offsets": str_offsets,
                               "addr": addrs, "rnglists": rnglists, "loclists": loclists}))
    return Unit(_Owner(), sections, 0, {})


def test_dwarf5_indexed_forms() -> None:
    unit = _dwarf5()
    assert unit.name == "cu.c" and unit.base == 0x1000
    assert address_ranges(unit.top) == [(0x1000, 0x1100)]
    fn, = unit.children(unit.top)
    assert fn.tag == TAG_SUBPROGRAM and fn.string(AT_name) == "fn"
    assert address_ranges(fn) == [(0x2000, 0x2010)]
    param, var = unit.children(fn)
    assert param.string(AT_name) == "p"
    form, value = param.attrs[AT_location]
    expected = [LocationEntry(0x1000, 0x1020, b"\x55"), LocationEntry(None, None, b"\x54")]
    assert location_list(unit, form, value) == expected
    assert var.int(AT_const_value) == 7
    assert unit.parent(var) is fn


def test_dwarf4_ranges_and_locations() -> None:
    abbrev = (_abbrev(1, TAG_CU, True, (0x11, 0x01), (0x55, 0x17))
              + _abbrev(2, TAG_PARAM, False, (0x02, 0x17)) + b"\0")
    dies = _uleb(1) + struct.pack("<QI", 0x4000, 0) + _uleb(2) + struct.pack("<I", 0) + b"\0"
    header = struct.pack("<HIB", 4, 0, 8)
    info = struct.pack("<I", len(header) + len(dies)) + header + dies
    ranges = struct.pack("<QQQQQQ", 0x10, 0x20, (1 << 64) - 1, 0x9000, 0, 0)[:32] + struct.pack("<QQ", 0, 0)
    loc = struct.pack("<QQH", 0, 8, 1) + b"\x50" + struct.pack("<QQ", 0, 0)
    unit = Unit(_Owner(), Sections(_info({"info": info, "abbrev": abbrev, "ranges": ranges, "loc": loc})), 0, {})
    assert address_ranges(unit.top) == [(0x4010, 0x4020)]
    param, = unit.children(unit.top)
    form, value = param.attrs[AT_location]
    assert location_list(unit, form, value) == [LocationEntry(0x4000, 0x4008, b"\x50")]


@pytest.mark.parametrize("cut", [3, 11, 20])
def test_a_truncated_unit_is_a_die_error(cut: int) -> None:
    whole = _dwarf5().sections
    info, abbrev = whole.read("info", 0, 1 << 10)[:cut], whole.read("abbrev", 0, 1 << 10)
    sections = Sections(_info({"info": info, "abbrev": abbrev}))
    with pytest.raises(DieError):
        unit = Unit(_Owner(), sections, 0, {})
        list(unit.children(unit.top))


def test_a_sibling_that_points_back_is_a_die_error() -> None:
    abbrev = _abbrev(1, TAG_CU, True) + _abbrev(2, TAG_SUBPROGRAM, True, (0x01, 0x13)) + b"\0"
    header = struct.pack("<HIB", 4, 0, 8)
    dies = _uleb(1) + _uleb(2) + struct.pack("<I", 12) + b"\0" + b"\0"  # the sibling is the DIE itself
    info = struct.pack("<I", len(header) + len(dies)) + header + dies
    unit = Unit(_Owner(), Sections(_info({"info": info, "abbrev": abbrev})), 0, {})
    with pytest.raises(DieError, match="points back"):
        list(unit.children(unit.top))
