"""DWARF of an ELF file, opened through pyelftools without copying its sections.

pyelftools reads every debug section into memory when it opens DWARF; a Debian vmlinux has
hundreds of megabytes of it. Here each section is a window onto the file's read-only mmap,
so only what is parsed is touched. A compressed section (SHF_COMPRESSED with zlib, as
Debian's separate debug files have them) is a stream that inflates only as far as it is
read, so finding one function's unit does not inflate the whole of .debug_info.
Relocatable files (a kernel module's .ko, whose DWARF needs relocating) and other
compressions go through pyelftools' own reader, which decompresses or relocates in memory.
"""

from __future__ import annotations

import io
import mmap
import os
import struct
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from elftools.dwarf.dwarfinfo import DebugSectionDescriptor, DwarfConfig, DWARFInfo

from pmdb.formats.elf import _PARSE_ERRORS, ET_CORE, ElfFile, _guard

if TYPE_CHECKING:
    from pmdb.formats.elf import SectionHeader

SHF_COMPRESSED = 0x800
ELFCOMPRESS_ZLIB = 1
ET_REL = 1
_SECTIONS = (
    "debug_info", "debug_aranges", "debug_abbrev", "debug_frame", "eh_frame", "debug_str", "debug_loc",
    "debug_ranges", "debug_line", "debug_pubtypes", "debug_pubnames", "debug_addr", "debug_str_offsets",
    "debug_line_str", "debug_loclists", "debug_rnglists", "debug_sup", "gnu_debugaltlink", "debug_types",
)
DWARF_ERRORS = (*_PARSE_ERRORS, AssertionError, AttributeError, TypeError, RecursionError, EOFError, zlib.error)
_INFLATE_STEP = 1 << 17  # compressed bytes fed to zlib at a time


class _Window(io.RawIOBase):
    """A read-only, seekable stream over [start, start+size) of a buffer (an mmap)."""

    def __init__(self, buf: object, start: int, size: int) -> None:
        self._buf = memoryview(buf)[start : start + size]  # type: ignore[arg-type]
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._buf)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, size: int = -1) -> bytes:
        end = len(self._buf) if size is None or size < 0 else min(len(self._buf), self._pos + size)
        data = bytes(self._buf[self._pos : end])
        self._pos = max(self._pos, end)
        return data

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


class _Inflating(_Window):
    """A read-only, seekable stream over a zlib-compressed section: bytes are inflated on
    demand, up to the furthest position read so far; zlib.error when the data is corrupt."""

    def __init__(self, buf: object, start: int, size: int, inflated_size: int) -> None:
        io.RawIOBase.__init__(self)
        self._packed = memoryview(buf)[start : start + size]  # type: ignore[arg-type]
        self._fed = 0
        self._inflater = zlib.decompressobj()
        self._out = bytearray()
        self._size = inflated_size
        self._buf = memoryview(b"")
        self._pos = 0

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, size: int = -1) -> bytes:
        end = self._size if size is None or size < 0 else min(self._size, self._pos + size)
        self._inflate_to(end)
        with memoryview(self._out) as view:
            data = bytes(view[self._pos : end])
        self._pos += len(data)
        return data

    def _inflate_to(self, end: int) -> None:
        """Inflate whole input chunks until `end` bytes are out (or the stream ends)."""
        inflater, packed = self._inflater, self._packed
        while len(self._out) < end and not inflater.eof and self._fed < len(packed):
            chunk = packed[self._fed : self._fed + _INFLATE_STEP]
            self._fed += len(chunk)
            self._out += inflater.decompress(chunk)


class _OnFirstRead(io.RawIOBase):
    """A stream made when it is first used: opening DWARF names every section, and a lookup
    reads three or four of them, so the others are never inflated."""

    def __init__(self, make: Callable[[], _Window]) -> None:
        super().__init__()
        self._make = make
        self._stream: _Window | None = None

    def _real(self) -> _Window:
        if self._stream is None:
            self._stream = self._make()
        return self._stream

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._real().seek(offset, whence)

    def tell(self) -> int:
        return self._real().tell()

    def read(self, size: int = -1) -> bytes:
        return self._real().read(size)

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        return self._real().readinto(b)


def has_dwarf(elf: ElfFile) -> bool:
    """Whether the file has a .debug_info section with contents."""
    sec = elf.section(".debug_info")
    return sec is not None and sec.type != 8 and sec.size > 0


def open_dwarf(elf: ElfFile) -> DWARFInfo | None:
    """The file's DWARF (None when it has none); BadDumpError when its headers are malformed."""
    if elf.type == ET_CORE or not has_dwarf(elf):
        return None
    if elf.type == ET_REL or any(_compressed(elf.section(f".{n}")) and _zlib_size(elf, elf.section(f".{n}")) is None
                                 for n in _SECTIONS):
        return _through_pyelftools(elf)
    config = DwarfConfig(little_endian=True, default_address_size=8, machine_arch="x64")
    sections = {n: _descriptor(elf, elf.section(f".{n}")) for n in _SECTIONS}
    with _guard(elf.path, "bad DWARF"):
        return DWARFInfo(config, *(sections[n] for n in _SECTIONS))


def _compressed(sec: SectionHeader | None) -> bool:
    return sec is not None and bool(sec.flags & SHF_COMPRESSED)


def _zlib_size(elf: ElfFile, sec: SectionHeader | None) -> int | None:
    """The inflated size of a zlib-compressed section (its Elf64_Chdr), None for another kind."""
    if sec is None or sec.size < 24 or sec.offset + 24 > elf.size:
        return None
    ch_type, _reserved, ch_size = struct.unpack("<IIQ", elf.bytes_at(sec.offset, 16))
    return ch_size if ch_type == ELFCOMPRESS_ZLIB else None


def _descriptor(elf: ElfFile, sec: SectionHeader | None) -> DebugSectionDescriptor | None:
    if sec is None or sec.type == 8:
        return None
    size = max(0, min(sec.size, elf.size - sec.offset))
    if _compressed(sec):
        inflated = _zlib_size(elf, sec) or 0
        stream: io.RawIOBase = _OnFirstRead(lambda: _inflated_copy(elf, sec, inflated) or _Inflating(
            elf.data, sec.offset + 24, max(0, size - 24), inflated))
        return DebugSectionDescriptor(stream, sec.name, sec.offset, inflated, sec.addr)
    return DebugSectionDescriptor(_Window(elf.data, sec.offset, size), sec.name, sec.offset, size, sec.addr)


def inflated_cache_dir() -> str:
    """Where inflated copies of compressed debug sections are kept, by the file's build-id."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(root, "pmdb", "inflated")


def _inflated_copy(elf: ElfFile, sec: SectionHeader, inflated: int) -> _Window | None:
    """A window onto the section's inflated bytes kept on disk (made on first use), so that a
    compressed debug file (Debian's libc) costs its inflation once, not at every start.
    None when the file has no build-id or the cache cannot be written: inflate lazily then."""
    build_id = elf.build_id()
    if not build_id or inflated <= 0:
        return None
    path = os.path.join(inflated_cache_dir(), f"{build_id.hex()}{sec.name}")
    try:
        if not (os.path.isfile(path) and os.path.getsize(path) == inflated):
            _write_inflated(elf, sec, inflated, path)
        with open(path, "rb") as f:
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError, zlib.error):
        return None
    return _Window(data, 0, inflated)


def _write_inflated(elf: ElfFile, sec: SectionHeader, inflated: int, path: str) -> None:
    """Inflate the section into `path` atomically; its size must be the one its header claims."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    inflater = zlib.decompressobj()
    packed = elf.bytes_at(sec.offset + 24, max(0, sec.size - 24))
    written = 0
    try:
        with open(tmp, "wb") as out:
            for at in range(0, len(packed), _INFLATE_STEP):
                chunk = inflater.decompress(packed[at : at + _INFLATE_STEP], inflated - written)
                out.write(chunk)
                written += len(chunk)
                if written >= inflated:
                    break
        if written != inflated:
            raise zlib.error(f"{sec.name} inflates to {written} bytes, not {inflated}")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _through_pyelftools(elf: ElfFile) -> DWARFInfo:
    with _guard(elf.path, "bad DWARF"):
        return elf._elf.get_dwarf_info(relocate_dwarf_sections=True)
