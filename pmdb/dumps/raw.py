"""A raw file as the target (`pmdb -f FILE`, mdb's raw file mode): address N is byte N of it."""

from __future__ import annotations

import mmap
import os

from pmdb.arch.x86_64 import X86_64
from pmdb.dumps import Dump, DumpKind, Mapping
from pmdb.errors import BadDumpError
from pmdb.memory.space import BufferSource, Region, SegmentMap


def open_raw(path: str) -> Dump:
    """Map `path` read-only as an address space starting at 0 (an empty file has none)."""
    if os.path.isdir(path):
        raise BadDumpError(f"{path}: is a directory")
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            data: mmap.mmap | bytes = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
    except OSError as e:
        raise BadDumpError(f"{path}: {e.strerror}") from None
    memory = SegmentMap([Region(0, size, BufferSource(data), 0, path)])
    return Dump(path, DumpKind.RAW_FILE, X86_64, memory, [], [Mapping(0, size, "r--", path)])
