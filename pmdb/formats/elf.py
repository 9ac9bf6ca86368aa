"""ELF files read through pyelftools over a read-only mmap: headers, sections, symbols, notes.

This is the one place that opens ELF files; everything above it sees plain records and
memoryviews, never pyelftools objects, and every pyelftools failure becomes BadDumpError.
"""

from __future__ import annotations

import contextlib
import functools
import io
import mmap
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from elftools.common.exceptions import ELFError
from elftools.construct.core import ConstructError
from elftools.elf.elffile import ELFFile

from pmdb.errors import BadDumpError

PT_LOAD = 1
PT_NOTE = 4
SHT_NOBITS = 8
SHT_SYMTAB = 2
SHT_DYNSYM = 11
ET_EXEC, ET_DYN, ET_CORE = 2, 3, 4
PN_XNUM = 0xFFFF
R_X86_64_JUMP_SLOT = 7
EM_X86_64 = 62
EM_AARCH64 = 183

_PARSE_ERRORS = (ELFError, ConstructError, struct.error, ValueError, IndexError, KeyError)


@dataclass(frozen=True)
class ProgramHeader:
    """One program header, with every field as an int."""

    type: int
    flags: int
    offset: int
    vaddr: int
    paddr: int
    filesz: int
    memsz: int
    align: int


@dataclass(frozen=True)
class SectionHeader:
    """One section header; `name` is decoded from the section-name string table."""

    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    entsize: int


@dataclass(frozen=True)
class RawSymbol:
    """A symbol table entry: name and numbers, no interpretation."""

    name: str
    value: int
    size: int
    type: int
    bind: int
    shndx: int
    other: int = 0


def cstring_at(strtab: bytes, offset: int) -> str:
    """The NUL-terminated string at `offset` of a string table ("" when out of range)."""
    end = strtab.find(b"\0", offset)
    return strtab[offset:end].decode("utf-8", "replace") if 0 <= offset < end else ""


@contextlib.contextmanager
def _guard(path: str, what: str) -> Iterator[None]:
    """Turn any pyelftools parse failure into a one-line BadDumpError."""
    try:
        yield
    except _PARSE_ERRORS as e:
        raise BadDumpError(f"{path}: {what}: {e or type(e).__name__}") from None


def _map_file(path: str) -> mmap.mmap:
    """Map `path` read-only, with errors that name the problem."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except IsADirectoryError:
        raise BadDumpError(f"{path}: is a directory") from None
    except OSError as e:
        raise BadDumpError(f"{path}: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not (st.st_mode & 0o170000 == 0o100000):
            raise BadDumpError(f"{path}: not a regular file")
        if st.st_size == 0:
            raise BadDumpError(f"{path}: empty file")
        return mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    except OSError as e:
        raise BadDumpError(f"{path}: {e.strerror}") from None
    finally:
        os.close(fd)


def is_elf(path: str) -> bool:
    """True when the file at `path` starts with the ELF magic."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


class ElfFile:
    """A read-only view of one ELF file: program headers, sections, symbols, notes."""

    def __init__(self, path: str, data: bytes | None = None) -> None:
        """Open `path` read-only, or parse `data` (e.g. an ELF image read from a dump) named `path`."""
        self.path = path
        self.data: mmap.mmap | bytes = _map_file(path) if data is None else data
        self.size = len(self.data)
        if self.data[:4] != b"\x7fELF":
            raise BadDumpError(f"{path}: not an ELF file")
        if self.size < 64:
            raise BadDumpError(f"{path}: truncated ELF header ({self.size} bytes)")
        with _guard(path, "bad ELF header"):
            self._elf = ELFFile(io.BytesIO(self.data) if isinstance(self.data, bytes) else self.data)
            hdr = self._elf.header
            self.elfclass: int = self._elf.elfclass
            self.little_endian: bool = self._elf.little_endian
            self.type: int = _enum_value("e_type", hdr["e_type"])
            self.machine: int = _enum_value("e_machine", hdr["e_machine"])
            self._phoff, self._phentsize = hdr["e_phoff"], hdr["e_phentsize"]
            self._phnum = hdr["e_phnum"]
            self._shoff, self._shnum, self._shstrndx = hdr["e_shoff"], hdr["e_shnum"], hdr["e_shstrndx"]
        if self.elfclass != 64 or not self.little_endian:
            raise BadDumpError(f"{path}: only 64-bit little-endian ELF is supported")
        self._sections: dict[str, SectionHeader] | None = None
        self._section_list: list[SectionHeader] | None = None
        self._phdrs: list[ProgramHeader] | None = None

    def bytes_at(self, offset: int, size: int) -> memoryview:
        """The file's bytes [offset, offset+size), clipped to the end of the file."""
        if offset < 0 or offset >= self.size or size <= 0:
            return memoryview(b"")
        return memoryview(self.data)[offset : min(self.size, offset + size)]

    # Program headers -------------------------------------------------------------

    def program_headers(self) -> list[ProgramHeader]:
        """Every program header; the table must lie within the file.

        Decoded with struct rather than pyelftools: a core has hundreds of headers and
        pyelftools' per-record parse costs a quarter of a millisecond each.
        """
        if self._phdrs is None:
            if self._phnum == PN_XNUM:  # more headers than fit in e_phnum: the count is in section 0
                if not self._shoff or self._shoff + 64 > self.size:
                    raise BadDumpError(f"{self.path}: e_phnum is PN_XNUM but there is no section 0 to hold the count")
                with _guard(self.path, "bad section header 0"):
                    self._phnum = self._elf.num_segments()
            end = self._phoff + self._phnum * self._phentsize
            if self._phnum and (self._phentsize < 56 or end > self.size):
                raise BadDumpError(
                    f"{self.path}: program header table at {self._phoff:#x} "
                    f"({self._phnum} entries) extends past end of file ({self.size:#x} bytes)"
                )
            self._phdrs = [
                ProgramHeader(*struct.unpack_from("<IIQQQQQQ", self.data, self._phoff + i * self._phentsize))
                for i in range(self._phnum)
            ]
        return self._phdrs

    # Sections ----------------------------------------------------------------------

    def sections(self) -> list[SectionHeader]:
        """Every section header with its name (empty when there is no table).

        Decoded with struct, like the program headers: a debug file has dozens of sections and
        pyelftools builds an object per section.
        """
        if self._section_list is None:
            out: list[SectionHeader] = []
            shoff, shnum = self._shoff, self._shnum
            if shoff and shnum == 0 and shoff + 64 <= self.size:  # more than 0xff00 sections: count in section 0
                shnum = struct.unpack_from("<Q", self.data, shoff + 32)[0]
            if shoff and shnum and shoff + shnum * 64 <= self.size:
                raw = [struct.unpack_from("<IIQQQQIIQQ", self.data, shoff + i * 64) for i in range(shnum)]
                strndx = self._shstrndx if self._shstrndx < len(raw) else 0
                names = bytes(self.bytes_at(raw[strndx][4], raw[strndx][5])) if strndx else b""
                for name, typ, flags, addr, off, size, link, _info, _align, entsize in raw:
                    out.append(SectionHeader(cstring_at(names, name), typ, flags, addr, off, size, link, entsize))
            self._section_list = out
            self._sections = {s.name: s for s in reversed(out)}
        return self._section_list

    def section(self, name: str) -> SectionHeader | None:
        """The first section called `name`, or None."""
        self.sections()
        assert self._sections is not None
        return self._sections.get(name)

    def section_data(self, sec: SectionHeader) -> memoryview:
        """The bytes of a section (empty for SHT_NOBITS), clipped to the file."""
        if sec.type == SHT_NOBITS:
            return memoryview(b"")
        return self.bytes_at(sec.offset, sec.size)

    # Symbols -----------------------------------------------------------------------

    def symbol_entries(self, table: str) -> tuple[list[tuple[int, int, int, int, int, int]], bytes]:
        """The raw entries (name offset, info, other, shndx, value, size) of `.symtab` or `.dynsym`
        and their string table; empty when absent. Names are decoded by the caller, lazily.
        """
        sec = self.section(table)
        if sec is None or sec.type not in (SHT_SYMTAB, SHT_DYNSYM):
            return [], b""
        secs = self.sections()
        if not 0 < sec.link < len(secs):
            return [], b""
        data = self.section_data(sec)
        usable = len(data) - len(data) % 24
        return list(struct.iter_unpack("<IBBHQQ", data[:usable])), bytes(self.section_data(secs[sec.link]))

    def symbols(self, table: str) -> Iterator[RawSymbol]:
        """Decode every entry of `.symtab` or `.dynsym` (nothing when absent)."""
        entries, strtab = self.symbol_entries(table)
        for name_off, info, other, shndx, value, size in entries:
            yield RawSymbol(cstring_at(strtab, name_off), value, size, info & 0xF, info >> 4, shndx, other)

    def plt_entries(self) -> list[tuple[int, str]]:
        """(link-time address, symbol name) of each x86-64 PLT stub, from .rela.plt's jump slots.

        Stub i is at .plt.sec + 16*i when the file has .plt.sec (IBT), else at .plt + 16*(i+1)
        (the first .plt entry is the resolver's).
        """
        rela, dynsym = self.section(".rela.plt"), self.section(".dynsym")
        plt_sec, plt = self.section(".plt.sec"), self.section(".plt")
        if rela is None or dynsym is None or (plt is None and plt_sec is None):
            return []
        entries, strtab = self.symbol_entries(".dynsym")
        data = self.section_data(rela)
        out = []
        for i, (_offset, info, _addend) in enumerate(struct.iter_unpack("<QQq", data[: len(data) - len(data) % 24])):
            sym = info >> 32
            if (info & 0xFFFFFFFF) != R_X86_64_JUMP_SLOT or not 0 < sym < len(entries):
                continue
            addr = plt_sec.addr + 16 * i if plt_sec is not None else plt.addr + 16 * (i + 1)
            out.append((addr, cstring_at(strtab, entries[sym][0])))
        return out

    # Identity ----------------------------------------------------------------------

    def build_id(self) -> bytes | None:
        """The GNU build-id, from a PT_NOTE segment or a .note section."""
        for owner, ntype, desc in self.notes():
            if owner == "GNU" and ntype == 3:
                return bytes(desc)
        return None

    def notes(self) -> Iterator[tuple[str, int, memoryview]]:
        """(owner, type, descriptor) of every note in PT_NOTE segments, else in SHT_NOTE sections."""
        from pmdb.formats.elfnotes import iter_notes

        try:
            segs = [p for p in self.program_headers() if p.type == PT_NOTE]
        except BadDumpError:
            segs = []
        if segs:
            for p in segs:
                yield from iter_notes(self.bytes_at(p.offset, p.filesz))
            return
        for s in self.sections():
            if s.type == 7:
                yield from iter_notes(self.section_data(s))

    def debuglink(self) -> str | None:
        """The file name in .gnu_debuglink, if any."""
        sec = self.section(".gnu_debuglink")
        if sec is None:
            return None
        raw = bytes(self.section_data(sec))
        end = raw.find(b"\0")
        return raw[:end].decode("utf-8", "replace") if end > 0 else None

    def close(self) -> None:
        """Unmap the file (views into it must no longer be used)."""
        if isinstance(self.data, mmap.mmap):
            with contextlib.suppress(BufferError):
                self.data.close()


_ENUM_PREFIX = {"e_type": "ENUM_E_TYPE", "e_machine": "ENUM_E_MACHINE"}


def _enum_value(field: str, value: Any) -> int:
    """pyelftools returns known enum values as names; map them back to their numbers."""
    if isinstance(value, int):
        return value
    return int(_enum_table(field).get(value, 0))


@functools.cache
def _enum_table(field: str) -> dict[str, int]:
    """Every pyelftools enum value for `field`, across machines and OS ABIs."""
    from elftools.elf import enums

    table: dict[str, int] = {}
    for name in dir(enums):
        if name.startswith(_ENUM_PREFIX[field]):
            table.update({k: v for k, v in getattr(enums, name).items() if isinstance(v, int)})
    return table
