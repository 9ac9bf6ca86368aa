"""Sniffing a dump's format from its first bytes and opening it with the right reader."""

from __future__ import annotations

import os

from pmdb.dumps import Dump
from pmdb.dumps.locate import FileLocator
from pmdb.errors import BadDumpError


def open_dump(path: str, locator: FileLocator) -> Dump:
    """Open any supported dump read-only; BadDumpError says what is wrong otherwise."""
    if os.path.isdir(path):
        raise BadDumpError(f"{path}: is a directory")
    try:
        with open(path, "rb") as f:
            magic = f.read(8)
    except OSError as e:
        raise BadDumpError(f"{path}: {e.strerror}") from None
    if magic[:4] == b"\x7fELF":
        from pmdb.dumps.elfcore import open_core

        return open_core(path, locator)
    if not magic:
        raise BadDumpError(f"{path}: empty file")
    raise BadDumpError(f"{path}: not a dump pmdb can read (unrecognized format)")
