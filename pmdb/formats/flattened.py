"""makedumpfile's flattened format, read in place through an index of its records.

`makedumpfile -F` (and QEMU's `dump-guest-memory format=kdump-*`) write a dump to a pipe as
a stream: a 4096-byte header (`makedumpfile` signature, type 1, version 1, big-endian
int64s), then records of (offset, size) — two big-endian int64s — each followed by `size`
bytes that belong at `offset` of the dump being described, and a record with offset -1 at
the end. `makedumpfile -R` reassembles the dump by writing each record in turn (a later
record overwrites an earlier one; untouched ranges read as zeros).

FlattenedFile gives the reassembled file's bytes without writing it anywhere: one pass over
the record headers at open builds sorted arrays of (offset, end, position in the stream),
and each read is a binary search.
"""

from __future__ import annotations

import bisect
import itertools
import os
import struct
from array import array

from pmdb.errors import BadDumpError
from pmdb.formats.mapped import MappedFile

SIGNATURE = b"makedumpfile"
HEADER_SIZE = 4096
_RECORD = struct.Struct(">qq")
_END_FLAG = -1


def is_flattened(head: bytes) -> bool:
    """True when the first bytes of a file are a flattened-format header."""
    return head[:16] == SIGNATURE + b"\0" * 4


class FlattenedFile:
    """The dump that a flattened stream describes, as bytes by offset (`size` is its length).

    `warnings` says what was odd about the stream: no end marker, overlapping records.
    """

    def __init__(self, stream: MappedFile) -> None:
        self.path = stream.path
        self._stream = stream
        self.warnings: list[str] = []
        head = stream.read(0, 32)
        if len(head) < 32 or not is_flattened(head):
            raise BadDumpError(f"{self.path}: not a makedumpfile flattened stream")
        ftype, version = struct.unpack_from(">qq", head, 16)
        if ftype != 1:
            raise BadDumpError(f"{self.path}: flattened header has type {ftype}, not 1 (flattened format)")
        if version != 1:
            self.warnings.append(f"flattened format version {version} (pmdb knows version 1)")
        records = self._scan()
        self._starts, self._ends, self._positions = _index(records, self.warnings)
        self.size = self._ends[-1] if self._ends else 0
        self.records = len(records)

    def _scan(self) -> list[tuple[int, int, int]]:
        """(offset, size, stream position) of every record, in stream order.

        Record headers are read with pread rather than through the mapping: touching one
        page per record would map most of the file into the process.
        """
        try:
            with open(self.path, "rb", buffering=0) as f:
                return self._scan_records(f.fileno())
        except OSError as e:
            raise BadDumpError(f"{self.path}: {e.strerror}") from None

    def _scan_records(self, fd: int) -> list[tuple[int, int, int]]:
        out = []
        pos, end = HEADER_SIZE, self._stream.size
        while True:
            raw = os.pread(fd, _RECORD.size, pos)
            if len(raw) < _RECORD.size:
                self.warnings.append(
                    f"flattened stream ends at {end:#x} without its end marker: the dump was cut short"
                )
                break
            offset, size = _RECORD.unpack(raw)
            if offset == _END_FLAG:
                break
            pos += _RECORD.size
            if offset < 0 or size < 0:
                raise BadDumpError(
                    f"{self.path}: flattened record at {pos - _RECORD.size:#x} has offset {offset} and size {size}"
                )
            have = min(size, end - pos)
            if have < size:
                self.warnings.append(
                    f"flattened record at {pos - _RECORD.size:#x} claims {size:#x} bytes but only {have:#x} "
                    "remain: the dump was cut short"
                )
            if have:
                out.append((offset, have, pos))
            if have < size:
                break
            pos += size
        return out

    def read(self, offset: int, size: int) -> bytes:
        """Bytes [offset, offset+size) of the reassembled dump: zeros where no record wrote,
        shorter at its end."""
        end = min(offset + size, self.size)
        if offset < 0 or offset >= end:
            return b""
        starts, ends = self._starts, self._ends
        i = bisect.bisect_right(starts, offset) - 1  # the last span starting at or before offset
        parts = []
        cur = offset
        while cur < end:
            if i >= 0 and cur < ends[i]:
                n = min(end, ends[i]) - cur
                parts.append(self._stream.read(self._positions[i] + cur - starts[i], n))
                cur += n
            i += 1
            nxt = min(starts[i] if i < len(starts) else end, end)
            if nxt > cur:
                parts.append(bytes(nxt - cur))
                cur = nxt
        return parts[0] if len(parts) == 1 else b"".join(parts)


def _index(records: list[tuple[int, int, int]], warnings: list[str]) -> tuple[array, array, array]:
    """Sorted, non-overlapping (start, end, stream position) arrays; where records overlap the
    later one wins, as `makedumpfile -R` would have written them."""
    ordered = sorted(range(len(records)), key=lambda k: (records[k][0], k))
    overlapping = any(
        records[a][0] + records[a][1] > records[b][0] for a, b in itertools.pairwise(ordered)
    )
    if overlapping:
        warnings.append("flattened stream rewrites some ranges: later records win")
        spans = _paint(records)
    else:
        spans = [(records[k][0], records[k][0] + records[k][1], records[k][2]) for k in ordered]
    starts, ends, positions = (array("q", column) for column in zip(*spans, strict=True)) if spans else \
        (array("q"), array("q"), array("q"))
    return starts, ends, positions


def _paint(records: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Apply records in stream order onto a sorted list of spans, trimming what they overwrite."""
    spans: list[tuple[int, int, int]] = []
    for offset, size, pos in records:
        end = offset + size
        i = bisect.bisect_left(spans, (offset,))
        if i and spans[i - 1][1] > offset:
            i -= 1
        keep: list[tuple[int, int, int]] = []
        j = i
        while j < len(spans) and spans[j][0] < end:
            s, e, p = spans[j]
            if s < offset:
                keep.append((s, offset, p))
            if e > end:
                keep.append((end, e, p + end - s))
            j += 1
        spans[i:j] = sorted([*keep, (offset, end, pos)])
    return spans
