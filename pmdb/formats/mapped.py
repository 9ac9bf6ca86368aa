"""A dump file mapped read-only: bytes by offset without reading the file into memory.

Readers of formats that are not ELF (kdump-compressed, makedumpfile's flattened stream) read
through this; the operating system pages the file in as it is touched, so a large dump costs
only the pages a session looks at.
"""

from __future__ import annotations

import mmap
import os

from pmdb.errors import BadDumpError


class MappedFile:
    """The whole file at `path` as a read-only mapping; `size` is its length in bytes."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as e:
            raise BadDumpError(f"{path}: {e.strerror}") from None
        try:
            st = os.fstat(fd)
            if st.st_mode & 0o170000 != 0o100000:
                raise BadDumpError(f"{path}: not a regular file")
            if st.st_size == 0:
                raise BadDumpError(f"{path}: empty file")
            self.data = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        except OSError as e:
            raise BadDumpError(f"{path}: {e.strerror}") from None
        finally:
            os.close(fd)
        self.size = len(self.data)

    def read(self, offset: int, size: int) -> bytes:
        """Bytes [offset, offset+size), shorter at the end of the file, empty past it."""
        if offset < 0 or size <= 0 or offset >= self.size:
            return b""
        return self.data[offset : offset + size]
