"""Decompressing one page of a kdump-compressed dump: zlib, lzo, snappy or zstd.

zlib is the standard library's; lzo comes from `lzallright` and snappy and zstd from
`cramjam`. Each is imported only when the first page that needs it is read, so a dump
that does not use them never loads them. zlib, snappy and zstd write at most one page; lzo
cannot be told a limit, but its input is at most one page (the caller checks), which bounds
what it can produce. A corrupt or hostile page fails with PageDecodeError and nothing more.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from functools import cache

ZLIB, LZO, SNAPPY, ZSTD = 0x1, 0x2, 0x4, 0x20
CODEC_NAMES = {ZLIB: "zlib", LZO: "lzo", SNAPPY: "snappy", ZSTD: "zstd"}


class PageDecodeError(Exception):
    """A page's data did not decompress to exactly one page; the message says why."""


def decompress_page(codec: int, data: bytes, page_size: int) -> bytes:
    """The `page_size` bytes that `data` compressed with `codec` (one of ZLIB, LZO, SNAPPY, ZSTD)."""
    out = _decoder(codec)(data, page_size)
    if len(out) != page_size:
        raise PageDecodeError(f"{CODEC_NAMES[codec]} data decompresses to {len(out)} bytes, not {page_size}")
    return out


@cache
def _decoder(codec: int) -> Callable[[bytes, int], bytes]:
    """The decoder for `codec`, importing its library on first use."""
    if codec == ZLIB:
        return _zlib
    if codec == LZO:
        return _lzo_decoder()
    if codec in (SNAPPY, ZSTD):
        return _cramjam_decoder(codec)
    raise PageDecodeError(f"unknown compression flag {codec:#x}")


def _zlib(data: bytes, page_size: int) -> bytes:
    d = zlib.decompressobj()
    try:
        out = d.decompress(data, page_size)
    except zlib.error as e:
        raise PageDecodeError(f"zlib: {e}") from None
    if not d.eof:
        raise PageDecodeError("zlib data does not end after one page")
    return out


def _lzo_decoder() -> Callable[[bytes, int], bytes]:
    try:
        from lzallright import LZOCompressor, LZOError
    except ImportError:
        raise PageDecodeError("lzo-compressed page, but the lzallright package is not installed") from None

    def lzo(data: bytes, page_size: int) -> bytes:
        try:
            return LZOCompressor.decompress(data, output_size_hint=page_size)
        except LZOError as e:
            reason = e.args[0] if e.args else e
            raise PageDecodeError(f"lzo: {getattr(reason, 'name', reason)}") from None

    return lzo


def _cramjam_decoder(codec: int) -> Callable[[bytes, int], bytes]:
    try:
        import cramjam
    except ImportError:
        raise PageDecodeError(f"{CODEC_NAMES[codec]}-compressed page, but cramjam is not installed") from None
    into = cramjam.snappy.decompress_raw_into if codec == SNAPPY else cramjam.zstd.decompress_into
    name = CODEC_NAMES[codec]

    def decode(data: bytes, page_size: int) -> bytes:
        if codec == SNAPPY:
            _check_snappy_length(data, page_size)
        out = bytearray(page_size)
        try:
            n = into(data, out)
        except Exception as e:  # cramjam raises its own DecompressionError, or ValueError on overflow
            raise PageDecodeError(f"{name}: {e}") from None
        return bytes(out[:n])

    return decode


def _check_snappy_length(data: bytes, page_size: int) -> None:
    """Raw snappy data starts with its uncompressed length as a varint: check it before decoding."""
    length = shift = 0
    for i, byte in enumerate(data[:5]):
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            if length != page_size:
                raise PageDecodeError(f"snappy data says it holds {length} bytes, not {page_size}")
            return
        if i == 4:
            break
    raise PageDecodeError("snappy data has no valid length header")
