"""The kdump-compressed (diskdump) format, as makedumpfile and QEMU write it: pages by pfn.

Layout, in blocks of `block_size` bytes (the page size):

- block 0: `disk_dump_header` — "KDUMP   ", header_version, the utsname (QEMU leaves it
  empty but for the machine), status (compression, INCOMPLETE, EXCLUDED_VMEMMAP),
  block_size, sub_hdr_size, bitmap_blocks, max_mapnr (32-bit), nr_cpus...;
- block 1 (sub_hdr_size blocks): `kdump_sub_header` — phys_base, dump_level (version 1+),
  split and its pfn range (2+), VMCOREINFO's offset and size (3+), the ELF notes' (4+),
  erase info's (5+), 64-bit start/end pfn and max_mapnr (6+);
- bitmap_blocks blocks: two bitmaps of equal size, bit n for pfn n, least significant bit
  first. The first marks the pfns that are memory; the second those whose page is in the
  file. A pfn in the first but not the second was excluded by makedumpfile's filtering;
- one 24-byte page descriptor (offset, size, flags, page_flags) per pfn set in the second
  bitmap, in pfn order, then the pages' data. flags name the page's compression (zlib, lzo,
  snappy, zstd); none means a raw page. Pages may share data (all-zero pages usually do).

A dump that makedumpfile could not finish (out of space) has DUMP_DH_COMPRESSED_INCOMPLETE
in its status and descriptors that were never written (offset 0) or lie past the file's end.

KdumpFile reads all of this in place: the bitmaps are consulted where they lie in the file,
with a per-4096-pfn count of dumped pages computed once so that a descriptor is found in
constant time. Nothing is sized by a field before that field is checked against the file.
"""

from __future__ import annotations

import struct
from array import array
from dataclasses import dataclass
from typing import Protocol

from pmdb.errors import BadDumpError, FaultError, FaultReason
from pmdb.formats import pagecodecs

SIGNATURE = b"KDUMP   "
OLD_DISKDUMP_SIGNATURE = b"DISKDUMP"
KNOWN_HEADER_VERSION = 6

STATUS_INCOMPLETE = 0x8
STATUS_EXCLUDED_VMEMMAP = 0x10
_CODEC_FLAGS = pagecodecs.ZLIB | pagecodecs.LZO | pagecodecs.SNAPPY | pagecodecs.ZSTD

DUMP_LEVEL_NAMES = ((0x1, "zero"), (0x2, "page cache"), (0x4, "private page cache"), (0x8, "user data"), (0x10, "free"))

_HEADER = struct.Struct("<8si390s")  # signature, header_version, utsname (6 x 65 bytes)
_HEADER_REST = struct.Struct("<qqIiiIIIIIIi")  # at 408: timeval, status ... nr_cpus
_HEADER_REST_OFFSET = 408
HEADER_SIZE = _HEADER_REST_OFFSET + _HEADER_REST.size  # 464, before the tasks[] pointers
_SUB_HEADER = struct.Struct("<qiiQQqQqQqQQQQ")  # 104 bytes: every field up to version 6 (phys_base signed)
_DESCRIPTOR = struct.Struct("<qIIQ")
DESCRIPTOR_SIZE = _DESCRIPTOR.size
_RANK_CHUNK = 4096  # pfns per precomputed count of dumped pages (512 bytes of bitmap)
MAX_BLOCK_SIZE = 1 << 20
MAX_NOTE_SIZE = 16 << 20


class FileBytes(Protocol):
    """A dump file's bytes by offset: a mapped file, or a flattened stream's index."""

    path: str
    size: int

    def read(self, offset: int, size: int) -> bytes:
        """Bytes [offset, offset+size), shorter at the end of the file."""
        ...


@dataclass(frozen=True)
class DiskDumpHeader:
    """The main header (block 0); `utsname` is (sysname, nodename, release, version, machine,
    domainname), each possibly empty."""

    header_version: int
    utsname: tuple[str, ...]
    timestamp: tuple[int, int]
    status: int
    block_size: int
    sub_hdr_size: int
    bitmap_blocks: int
    max_mapnr: int
    current_cpu: int
    nr_cpus: int

    @property
    def machine(self) -> str:
        """utsname.machine, e.g. "x86_64" ("" when the producer left it out)."""
        return self.utsname[4]

    @property
    def compression(self) -> str | None:
        """The compression the header announces ("zlib", "lzo", ...), or None."""
        for flag, name in pagecodecs.CODEC_NAMES.items():
            if self.status & flag:
                return name
        return None


@dataclass(frozen=True)
class KdumpSubHeader:
    """The kdump sub-header (block 1); fields newer than the header's version are None."""

    phys_base: int
    dump_level: int | None
    split: bool
    start_pfn: int | None
    end_pfn: int | None
    vmcoreinfo: tuple[int, int] | None
    notes: tuple[int, int] | None
    eraseinfo: tuple[int, int] | None
    max_mapnr_64: int | None


@dataclass(frozen=True)
class PageDescriptor:
    """Where a dumped page's data is: file offset, byte count, compression flags, page flags."""

    offset: int
    size: int
    flags: int
    page_flags: int


def dump_level_text(level: int) -> str:
    """`31 (zero, page cache, ...)`: a dump level with the kinds of page it excludes."""
    kinds = [name for bit, name in DUMP_LEVEL_NAMES if level & bit]
    return f"{level} ({', '.join(kinds)})" if kinds else str(level)


def parse_header(raw: bytes, path: str) -> DiskDumpHeader:
    """Decode and check the main header: block size and layout fields within sane limits."""
    if len(raw) < HEADER_SIZE:
        raise BadDumpError(f"{path}: truncated kdump header ({len(raw)} of {HEADER_SIZE} bytes)")
    sig, version, uts = _HEADER.unpack_from(raw, 0)
    if sig == OLD_DISKDUMP_SIGNATURE:
        raise BadDumpError(f"{path}: an old diskdump dump (DISKDUMP): pmdb reads kdump-compressed dumps")
    if sig != SIGNATURE:
        raise BadDumpError(f"{path}: not a kdump-compressed dump")
    sec, usec, status, block_size, sub_hdr_size, bitmap_blocks, max_mapnr, _ram, _dev, _written, cpu, ncpus = (
        _HEADER_REST.unpack_from(raw, _HEADER_REST_OFFSET)
    )
    names = tuple(uts[i * 65 : (i + 1) * 65].split(b"\0", 1)[0].decode("utf-8", "replace") for i in range(6))
    if version < 0:
        raise BadDumpError(f"{path}: kdump header_version {version} is negative")
    if block_size <= 0 or block_size & (block_size - 1) or not 1024 <= block_size <= MAX_BLOCK_SIZE:
        raise BadDumpError(f"{path}: kdump block_size {block_size} is not a power of two from 1024 to 1048576")
    if not 1 <= sub_hdr_size <= 1024:
        raise BadDumpError(f"{path}: kdump sub_hdr_size {sub_hdr_size} blocks is out of range (1 to 1024)")
    if bitmap_blocks == 0:
        raise BadDumpError(f"{path}: kdump bitmap_blocks is 0: the dump has no bitmaps")
    return DiskDumpHeader(version, names, (sec, usec), status, block_size, sub_hdr_size, bitmap_blocks,
                          max_mapnr, cpu, ncpus)


def parse_sub_header(raw: bytes, version: int, path: str) -> KdumpSubHeader:
    """Decode the sub-header fields that `version` has (the rest are None)."""
    need = 8 if version < 1 else 16 if version < 2 else 32 if version < 3 else 48 if version < 4 else \
        64 if version < 5 else 80 if version < 6 else _SUB_HEADER.size
    if len(raw) < need:
        raise BadDumpError(f"{path}: truncated kdump sub-header ({len(raw)} of {need} bytes)")
    f = _SUB_HEADER.unpack_from(raw.ljust(_SUB_HEADER.size, b"\0"))
    (phys_base, level, split, start32, end32, vi_off, vi_size, note_off, note_size,
     erase_off, erase_size, start64, end64, mapnr64) = f
    v = version
    start = start64 if v >= 6 else start32 if v >= 2 else None
    end = end64 if v >= 6 else end32 if v >= 2 else None
    return KdumpSubHeader(
        phys_base=phys_base,
        dump_level=level if v >= 1 else None,
        split=bool(split) if v >= 2 else False,
        start_pfn=start,
        end_pfn=end,
        vmcoreinfo=(vi_off, vi_size) if v >= 3 and vi_off and vi_size else None,
        notes=(note_off, note_size) if v >= 4 and note_off and note_size else None,
        eraseinfo=(erase_off, erase_size) if v >= 5 and erase_off and erase_size else None,
        max_mapnr_64=mapnr64 if v >= 6 else None,
    )


class Bitmap:
    """A bitmap read where it lies in the file: bit n is pfn n, least significant bit first.

    `rank(pfn)` counts set bits below pfn from per-chunk counts made in one pass at open.
    """

    def __init__(self, file: FileBytes, offset: int, npfns: int) -> None:
        self._file = file
        self._offset = offset
        self.npfns = npfns
        counts = array("q", [0])
        total = 0
        chunk_bytes = _RANK_CHUNK // 8
        for start in range(0, (npfns + 7) // 8, chunk_bytes):
            total += int.from_bytes(self.raw(start, chunk_bytes), "little").bit_count()
            counts.append(total)
        self._counts = counts
        self.count = total

    def raw(self, start: int, n: int) -> bytes:
        """Bitmap bytes [start, start+n), bits past npfns cleared."""
        n = min(n, (self.npfns + 7) // 8 - start)
        raw = self._file.read(self._offset + start, n)
        tail = self.npfns - 8 * start
        if tail < 8 * len(raw):  # the last byte may hold bits past npfns
            return (int.from_bytes(raw, "little") & ((1 << tail) - 1)).to_bytes(len(raw), "little")
        return raw

    def test(self, pfn: int) -> bool:
        """Whether pfn's bit is set (False past the end)."""
        if not 0 <= pfn < self.npfns:
            return False
        byte = self._file.read(self._offset + pfn // 8, 1)
        return bool(byte and byte[0] >> (pfn % 8) & 1)

    def rank(self, pfn: int) -> int:
        """How many pfns below `pfn` have their bit set."""
        pfn = max(0, min(pfn, self.npfns))
        chunk, within = divmod(pfn, _RANK_CHUNK)
        if within == 0:
            return self._counts[chunk]
        raw = self.raw(chunk * (_RANK_CHUNK // 8), (within + 7) // 8)
        return self._counts[chunk] + (int.from_bytes(raw, "little") & ((1 << within) - 1)).bit_count()


class KdumpFile:
    """One kdump-compressed dump: headers, notes, VMCOREINFO and pages by pfn.

    `warnings` lists what is wrong but still lets pages be read (incomplete dump, bitmaps
    that disagree, a descriptor table longer than the file).
    """

    def __init__(self, file: FileBytes) -> None:
        self.file = file
        self.path = file.path
        self.warnings: list[str] = []
        self.header = parse_header(file.read(0, HEADER_SIZE), self.path)
        bs = self.header.block_size
        self.page_size = bs
        self.sub = parse_sub_header(file.read(bs, min(_SUB_HEADER.size, bs * self.header.sub_hdr_size)),
                                    self.header.header_version, self.path)
        if self.header.header_version > KNOWN_HEADER_VERSION:
            self.warnings.append(f"kdump header version {self.header.header_version} is newer than pmdb knows "
                                 f"({KNOWN_HEADER_VERSION}); fields it added are ignored")
        bitmap_offset = bs * (1 + self.header.sub_hdr_size)
        bitmap_len = bs * self.header.bitmap_blocks // 2
        if bitmap_offset + 2 * bitmap_len > file.size:
            raise BadDumpError(f"{self.path}: kdump bitmaps end at {bitmap_offset + 2 * bitmap_len:#x}, "
                               f"past the end of the file ({file.size:#x} bytes)")
        self.max_pfn = self._max_pfn(8 * bitmap_len)
        self.memory = Bitmap(file, bitmap_offset, self.max_pfn)  # 1st bitmap: pfns that are memory
        self.dumped = Bitmap(file, bitmap_offset + bitmap_len, self.max_pfn)  # 2nd: pfns in the file
        self.data_offset = bitmap_offset + 2 * bitmap_len
        self._first_pfn, self._end_pfn = self._pfn_range()
        self._base_rank = self.dumped.rank(self._first_pfn)
        self.descriptors = self.dumped.rank(self._end_pfn) - self._base_rank
        self.pages_offset = self.data_offset + DESCRIPTOR_SIZE * self.descriptors
        self._check_layout()

    # Set-up checks ---------------------------------------------------------------------

    def _max_pfn(self, bitmap_bits: int) -> int:
        """max_mapnr (the 64-bit one from version 6 on), at most what the bitmaps can hold."""
        mapnr = self.sub.max_mapnr_64 if self.sub.max_mapnr_64 is not None else self.header.max_mapnr
        if mapnr > bitmap_bits:
            self.warnings.append(f"kdump max_mapnr {mapnr:#x} exceeds the {bitmap_bits:#x} pfns its bitmaps hold; "
                                 "pages past them are not readable")
            return bitmap_bits
        return mapnr

    def _pfn_range(self) -> tuple[int, int]:
        """The pfns this file can hold pages for: all of them, or one part of a split dump."""
        if not self.sub.split:
            return 0, self.max_pfn
        start, end = self.sub.start_pfn or 0, self.sub.end_pfn or self.max_pfn
        if not 0 <= start <= end <= self.max_pfn:
            raise BadDumpError(f"{self.path}: split kdump pfn range {start:#x}-{end:#x} is outside 0-{self.max_pfn:#x}")
        self.warnings.append(f"this file is one part of a split dump (pfns {start:#x}-{end:#x}); "
                             "pages outside it are in the other parts")
        return start, end

    def _check_layout(self) -> None:
        """Warn about what makes some pages unreadable: an incomplete dump, a short descriptor
        table, pages dumped that the first bitmap says are not memory."""
        if self.header.status & STATUS_INCOMPLETE:
            self.warnings.append("the dump is incomplete (makedumpfile could not write all of it): "
                                 "some pages are missing")
        if self.pages_offset > self.file.size:
            have = max(0, (self.file.size - self.data_offset) // DESCRIPTOR_SIZE)
            self.warnings.append(f"the second bitmap lists {self.descriptors} dumped pages but the file holds "
                                 f"descriptors for only {have}: the dump is truncated or its bitmap is corrupt")
        stray = 0
        nbytes = (self.max_pfn + 7) // 8
        for start in range(0, nbytes, 1 << 16):
            a = int.from_bytes(self.memory.raw(start, 1 << 16), "little")
            b = int.from_bytes(self.dumped.raw(start, 1 << 16), "little")
            stray += (b & ~a).bit_count()
        if stray:
            self.warnings.append(f"{stray} pages are in the dump but not marked as memory in its first bitmap "
                                 "(corrupt bitmaps?)")
        self._check_end_descriptors()

    def _check_end_descriptors(self) -> None:
        """The first and last descriptors must point into the page data: a second bitmap that
        counts the wrong number of pages makes the last one land in page data (garbage), and a
        file cut short loses the last pages' data."""
        for index in sorted({0, self.descriptors - 1}) if self.descriptors else ():
            raw = self.file.read(self.data_offset + DESCRIPTOR_SIZE * index, DESCRIPTOR_SIZE)
            if len(raw) < DESCRIPTOR_SIZE:
                return  # a short table was reported above
            desc = PageDescriptor(*_DESCRIPTOR.unpack(raw))
            if self.incomplete and (desc.offset == 0 or desc.offset + desc.size > self.file.size):
                return  # what an incomplete dump looks like: reported above
            if self.pages_offset <= desc.offset and 0 < desc.size <= self.page_size:
                if desc.offset + desc.size > self.file.size:
                    self.warnings.append("the file is truncated: the data of its last pages lies past its end")
                    return
                continue
            self.warnings.append(f"page descriptor {index} of {self.descriptors} is corrupt (data at "
                                 f"{desc.offset:#x}, {desc.size:#x} bytes): the bitmaps or descriptors "
                                 "are damaged, and pages may read wrong")
            return

    # Metadata ---------------------------------------------------------------------------

    def vmcoreinfo_bytes(self) -> bytes | None:
        """The VMCOREINFO text the sub-header points at, if it lies within the file."""
        return self._blob(self.sub.vmcoreinfo, "VMCOREINFO")

    def notes_bytes(self) -> bytes | None:
        """The ELF notes (NT_PRSTATUS per CPU, VMCOREINFO, QEMU's) the sub-header points at."""
        return self._blob(self.sub.notes, "ELF notes")

    def _blob(self, where: tuple[int, int] | None, what: str) -> bytes | None:
        if where is None:
            return None
        offset, size = where
        if offset < 0 or size > MAX_NOTE_SIZE or offset + size > self.file.size:
            self.warnings.append(f"kdump sub-header puts the {what} at {offset:#x} ({size:#x} bytes), "
                                 f"outside the file or too large: ignored")
            return None
        return self.file.read(offset, size)

    # Pages ------------------------------------------------------------------------------

    def descriptor(self, pfn: int) -> PageDescriptor:
        """The page descriptor of a dumped pfn (FaultError when it is not in the file)."""
        index = self.dumped.rank(pfn) - self._base_rank
        at = self.data_offset + DESCRIPTOR_SIZE * index
        raw = self.file.read(at, DESCRIPTOR_SIZE)
        if len(raw) < DESCRIPTOR_SIZE:
            raise self._fault(pfn, FaultReason.NOT_IN_DUMP, f"its page descriptor lies past the end of the file "
                              f"({'the dump is incomplete' if self.incomplete else 'the file is truncated'})")
        return PageDescriptor(*_DESCRIPTOR.unpack(raw))

    @property
    def incomplete(self) -> bool:
        """Whether makedumpfile marked the dump as not finished."""
        return bool(self.header.status & STATUS_INCOMPLETE)

    def page(self, pfn: int) -> bytes:
        """The contents of page `pfn`, or FaultError saying why they cannot be had."""
        if not (self.memory.test(pfn) or self.dumped.test(pfn)):
            raise self._fault(pfn, FaultReason.UNMAPPED, "not memory that the dump describes")
        if not self._first_pfn <= pfn < self._end_pfn:
            raise self._fault(pfn, FaultReason.NOT_IN_DUMP, "in another file of this split dump")
        if not self.dumped.test(pfn):
            level = self.sub.dump_level
            how = f"dump level {dump_level_text(level)}" if level is not None else "filtering"
            raise self._fault(pfn, FaultReason.FILTERED, f"excluded by makedumpfile ({how})")
        desc = self.descriptor(pfn)
        data = self._page_data(pfn, desc)
        codec = desc.flags & _CODEC_FLAGS
        if not codec:
            return data
        try:
            return pagecodecs.decompress_page(codec, data, self.page_size)
        except pagecodecs.PageDecodeError as e:
            raise self._fault(pfn, FaultReason.NOT_IN_DUMP, f"the page fails to decompress: {e}") from None

    def _page_data(self, pfn: int, desc: PageDescriptor) -> bytes:
        """The stored bytes of a page, after checking its descriptor against the file."""
        codec = desc.flags & _CODEC_FLAGS
        if desc.offset == 0 and self.incomplete:
            raise self._fault(pfn, FaultReason.NOT_IN_DUMP, "never written: the dump is incomplete")
        if codec & (codec - 1):
            raise self._fault(pfn, FaultReason.NOT_IN_DUMP, f"corrupt page descriptor: flags {desc.flags:#x} "
                              "name more than one compression")
        if not 0 < desc.size <= self.page_size or (not codec and desc.size != self.page_size):
            raise self._fault(pfn, FaultReason.NOT_IN_DUMP, f"corrupt page descriptor: size {desc.size:#x} "
                              f"(flags {desc.flags:#x}, page size {self.page_size:#x})")
        if desc.offset < self.pages_offset:
            raise self._fault(pfn, FaultReason.NOT_IN_DUMP, f"corrupt page descriptor: data at {desc.offset:#x} "
                              "lies outside the page data")
        if desc.offset + desc.size > self.file.size:
            why = "the dump is incomplete" if self.incomplete else "the file is truncated"
            raise self._fault(pfn, FaultReason.NOT_IN_DUMP, f"its data at {desc.offset:#x} lies past the end "
                              f"of the file: {why}")
        return self.file.read(desc.offset, desc.size)

    def _fault(self, pfn: int, reason: FaultReason, why: str) -> FaultError:
        return FaultError(pfn * self.page_size, reason, why)
