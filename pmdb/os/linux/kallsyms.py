"""kallsyms read out of dump memory: the kernel's own compressed symbol table.

Where the tables are comes from VMCOREINFO (`SYMBOL(kallsyms_names)` and friends, which a
kernel with CONFIG_KALLSYMS lists). The format, as the kernel lays it out:
- `kallsyms_num_syms`: the count; `kallsyms_offsets`: one s32 per symbol, relative to
  `kallsyms_relative_base` (CONFIG_KALLSYMS_BASE_RELATIVE). With absolute per-CPU symbols a
  non-negative offset is the value itself and a negative one is `base - 1 - offset`; without,
  every offset is an unsigned distance from base. A table with any negative offset is of the
  first kind (text never lies 2 GiB past base).
- `kallsyms_names`: per symbol a length byte (high bit set: a second byte holds bits 7 and
  up), then that many token numbers; `kallsyms_token_index` (256 u16) points each token at a
  NUL-terminated string in `kallsyms_token_table`. The expanded name's first letter is nm's
  type letter.
"""

from __future__ import annotations

import array
import hashlib
import marshal
import os
import tempfile
from dataclasses import dataclass

from pmdb.errors import BadDumpError
from pmdb.os.linux.coreinfo import CoreInfo
from pmdb.os.linux.reader import KernelReader

ENTRIES = ("kallsyms_names", "kallsyms_num_syms", "kallsyms_token_table", "kallsyms_token_index",
           "kallsyms_offsets", "kallsyms_relative_base")
MAX_SYMBOLS = 1 << 22  # a count beyond this is not a kernel's
MAX_NAMES = 64 << 20  # nor compressed names beyond this


@dataclass(frozen=True)
class KallsymsTables:
    """Where the six kallsyms tables are in kernel memory."""

    names: int
    num_syms: int
    token_table: int
    token_index: int
    offsets: int
    relative_base: int

    @classmethod
    def from_coreinfo(cls, info: CoreInfo) -> tuple[KallsymsTables | None, list[str]]:
        """The tables VMCOREINFO names, or None and the entries it lacks."""
        found = {name: info.symbol(name) for name in ENTRIES}
        missing = [f"SYMBOL({name})" for name, addr in found.items() if addr is None]
        if missing:
            return None, missing
        return cls(*(found[name] for name in ENTRIES)), []  # type: ignore[arg-type]


@dataclass(frozen=True)
class Kallsyms:
    """The decoded table: addresses, nm letters and names, in the kernel's (address) order."""

    addresses: list[int]
    letters: list[str]
    names: list[str]


def _names_blob(reader: KernelReader, tables: KallsymsTables) -> bytes:
    """The compressed names: up to the token table when the linker put it right after them (as
    it does), else as far as memory reads, at most MAX_NAMES bytes."""
    span = tables.token_table - tables.names
    return reader.read_upto(tables.names, span if 0 < span <= MAX_NAMES else MAX_NAMES)


def read_kallsyms(reader: KernelReader, tables: KallsymsTables) -> Kallsyms:
    """Every kallsyms symbol, in table (address) order. BadDumpError for tables that do not
    decode; FaultError when they are not in the dump. Decoded names are cached on disk by a
    digest of the compressed tables (a kernel's names are the same at every boot)."""
    count = reader.u32(tables.num_syms)
    if not 0 < count <= MAX_SYMBOLS:
        raise BadDumpError(f"kallsyms_num_syms is {count}: not a kernel's symbol count")
    base = reader.u64(tables.relative_base)
    offsets = array.array("i", reader.read(tables.offsets, 4 * count))
    index = array.array("H", reader.read(tables.token_index, 512))
    token_bytes = reader.read_upto(tables.token_table, max(index) + 256)
    blob = _names_blob(reader, tables)
    key = hashlib.blake2b(b"%d\0" % count + token_bytes + index.tobytes() + blob, digest_size=16).hexdigest()
    cached = _load_cache(key, count)
    letters, names = cached if cached is not None else _decode_names(blob, count, _tokens(token_bytes, index))
    if cached is None:
        _store_cache(key, letters, names)
    if min(offsets) < 0:  # absolute per-CPU symbols: non-negative offsets are values
        addresses = [off if off >= 0 else base - 1 - off for off in offsets]
        letters = ["A" if off >= 0 else letter for off, letter in zip(offsets, letters, strict=True)]
    else:
        addresses = [base + off for off in offsets]
    return Kallsyms(addresses, letters, names)


def _tokens(token_bytes: bytes, index: array.array) -> list[bytes]:
    tokens = []
    for start in index:
        end = token_bytes.find(b"\0", start)
        if end < 0:
            raise BadDumpError("kallsyms_token_table: a token without its terminating NUL")
        tokens.append(token_bytes[start:end])
    return tokens


def _decode_names(blob: bytes, count: int, tokens: list[bytes]) -> tuple[list[str], list[str]]:
    """(nm letters, names) of `count` compressed entries."""
    expand = tokens.__getitem__
    join = b"".join
    out = []
    pos = 0
    try:
        for _ in range(count):
            length = blob[pos]
            if length & 0x80:
                pos += 1
                length = (length & 0x7F) | blob[pos] << 7
            end = pos + 1 + length
            if end > len(blob):
                raise IndexError
            out.append(join(map(expand, blob[pos + 1 : end])))
            pos = end
    except IndexError:
        raise BadDumpError(f"kallsyms_names ends after {len(out)} of {count} symbols") from None
    if not all(out):
        raise BadDumpError("kallsyms_names: a symbol with an empty name")
    return [chr(name[0]) for name in out], [name[1:].decode("utf-8", "replace") for name in out]


def _cache_path(key: str) -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pmdb", "kallsyms", f"{key}.names")


def _load_cache(key: str, count: int) -> tuple[list[str], list[str]] | None:
    """Letters and names cached for these tables, if a whole, well-formed entry is there."""
    try:
        with open(_cache_path(key), "rb") as f:
            value = marshal.loads(f.read())
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if not (isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, list) and len(v) == count
                                                                  for v in value)):
        return None
    return value


def _store_cache(key: str, letters: list[str], names: list[str]) -> None:
    """Keep the decoded names (a cache: failing to write it is no error)."""
    path = _cache_path(key)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            marshal.dump((letters, names), f)
        os.replace(tmp, path)
    except OSError:
        pass
