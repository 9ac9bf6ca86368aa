"""DWARF call frame information (.eh_frame, .debug_frame) decoded by pyelftools into CFI rows.

An FDE is found by binary search in .eh_frame_hdr when the file has one, else through an
index of every FDE built on first use; only the FDE covering a pc is decoded, and cached.
"""

from __future__ import annotations

import bisect
import enum
import io
import struct
from dataclasses import dataclass

from elftools.common.exceptions import DWARFError, ELFError
from elftools.construct.core import ConstructError
from elftools.dwarf.callframe import FDE, CallFrameInfo, RegisterRule
from elftools.dwarf.structs import DWARFStructs

from pmdb.formats.elf import ElfFile, SectionHeader

_CFI_ERRORS = (DWARFError, ELFError, ConstructError, struct.error, AssertionError, KeyError, IndexError,
               ValueError, TypeError, AttributeError, RecursionError)
DW_EH_PE_datarel_sdata4 = 0x3B


class RuleKind(enum.Enum):
    """How a caller's register is recovered (DWARF 5 section 6.4.1)."""

    UNDEFINED = "undefined"
    SAME = "same value"
    OFFSET = "offset(N)"
    VAL_OFFSET = "val_offset(N)"
    REGISTER = "register(R)"
    EXPRESSION = "expression(E)"
    VAL_EXPRESSION = "val_expression(E)"


_RULES = {
    RegisterRule.UNDEFINED: RuleKind.UNDEFINED, RegisterRule.SAME_VALUE: RuleKind.SAME,
    RegisterRule.OFFSET: RuleKind.OFFSET, RegisterRule.VAL_OFFSET: RuleKind.VAL_OFFSET,
    RegisterRule.REGISTER: RuleKind.REGISTER, RegisterRule.EXPRESSION: RuleKind.EXPRESSION,
    RegisterRule.VAL_EXPRESSION: RuleKind.VAL_EXPRESSION,
}


@dataclass(frozen=True)
class RegRule:
    """A register rule: `arg` is an offset, a register number, or expression bytes."""

    kind: RuleKind
    arg: int | bytes | None


@dataclass(frozen=True)
class CfiRow:
    """The unwind rules for link-time pcs [start, end): the CFA, and registers by DWARF number.

    The CFA is `cfa_reg + cfa_offset`, or the value of `cfa_expr` when that is set.
    """

    start: int
    end: int
    cfa_reg: int | None
    cfa_offset: int
    cfa_expr: bytes | None
    rules: dict[int, RegRule]
    ra_column: int
    signal_frame: bool


class FrameTable:
    """The CFI of one section of one ELF file, queried by link-time pc."""

    def __init__(self, elf: ElfFile, section: SectionHeader, hdr: SectionHeader | None = None) -> None:
        self.elf = elf
        self.section = section
        self._eh = section.name == ".eh_frame"
        data = bytes(elf.section_data(section))
        structs = DWARFStructs(little_endian=True, dwarf_format=32, address_size=8)
        self._cfi = CallFrameInfo(io.BytesIO(data), len(data), section.addr, structs, for_eh_frame=self._eh)
        self._index: tuple[list[int], list[int]] | None = None
        self._hdr = hdr
        self._rows: dict[int, list[CfiRow]] = {}

    @classmethod
    def for_elf(cls, elf: ElfFile, name: str) -> FrameTable | None:
        """The table of `.eh_frame` (with its header) or `.debug_frame`, if the file has it with data."""
        sec = elf.section(name)
        if sec is None or sec.type == 8 or sec.size == 0:
            return None
        return cls(elf, sec, elf.section(".eh_frame_hdr") if name == ".eh_frame" else None)

    def row_for(self, pc: int) -> CfiRow | None:
        """The CFI row covering link-time `pc`, or None when no FDE covers it or it is malformed."""
        try:
            offset = self._fde_offset(pc)
            if offset is None:
                return None
            rows = self._rows.get(offset)
            if rows is None:
                rows = self._rows[offset] = self._decode(offset)
        except _CFI_ERRORS:
            return None
        for row in rows:
            if row.start <= pc < row.end:
                return row
        return None

    def _fde_offset(self, pc: int) -> int | None:
        if self._index is None:
            self._index = self._hdr_index() or self._full_index()
        starts, offsets = self._index
        i = bisect.bisect_right(starts, pc) - 1
        return offsets[i] if i >= 0 else None

    def _hdr_index(self) -> tuple[list[int], list[int]] | None:
        """(initial locations, FDE offsets) from .eh_frame_hdr's sorted search table."""
        hdr = self._hdr
        if hdr is None:
            return None
        raw = bytes(self.elf.section_data(hdr))
        if len(raw) < 12 or raw[0] != 1 or raw[3] != DW_EH_PE_datarel_sdata4 or raw[2] != 0x03:
            return None
        (count,) = struct.unpack_from("<I", raw, 8)
        count = min(count, (len(raw) - 12) // 8)
        pairs = struct.unpack_from(f"<{2 * count}i", raw, 12)
        starts = [hdr.addr + pairs[2 * i] for i in range(count)]
        offsets = [hdr.addr + pairs[2 * i + 1] - self.section.addr for i in range(count)]
        return starts, offsets

    def _full_index(self) -> tuple[list[int], list[int]]:
        """(initial locations, FDE offsets) of every FDE, parsing the whole section once."""
        try:
            entries = [e for e in self._cfi.get_entries() if isinstance(e, FDE)]
        except _CFI_ERRORS:
            entries = []
        pairs = sorted((e["initial_location"], e.offset) for e in entries)
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def _decode(self, offset: int) -> list[CfiRow]:
        fde = self._cfi._parse_entry_at(offset)  # pyelftools has no public by-offset parse
        if not isinstance(fde, FDE):
            return []
        start = fde["initial_location"]
        end = start + fde["address_range"]
        cie = fde.cie
        signal = bool(cie.augmentation_dict.get(True)) if self._eh else False  # the 'S' augmentation
        ra = cie["return_address_register"]
        table = fde.get_decoded().table
        out = []
        for i, line in enumerate(table):
            row_end = table[i + 1]["pc"] if i + 1 < len(table) else end
            cfa = line["cfa"]
            expr = bytes(cfa.expr) if cfa.expr is not None else None
            rules = {
                k: RegRule(_RULES[v.type], bytes(v.arg) if isinstance(v.arg, list) else v.arg)
                for k, v in line.items()
                if isinstance(k, int) and v.type in _RULES
            }
            out.append(CfiRow(line["pc"], row_end, cfa.reg, cfa.offset or 0, expr, rules, ra, signal))
        return out
