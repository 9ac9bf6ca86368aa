"""An address space read one page at a time from a page source, with recent pages cached.

Compressed dumps can only be read a page at a time (each page is decompressed whole); this
turns such a source into an AddressSpace whose reads may span pages, and keeps the most
recently used pages in a bounded LRU so that reading a structure field by field does not
decompress its page again for every field.
"""

from __future__ import annotations

from collections.abc import Callable

from pmdb.errors import FaultError
from pmdb.memory.lru import LruCache

DEFAULT_CACHED_PAGES = 2048  # 8 MiB of 4 KiB pages


class PagedSpace:
    """Reads through `fetch(page_number) -> page bytes`, which raises FaultError for pages it
    cannot give; a fault is reported at the first address of the read that it covers."""

    def __init__(
        self, page_size: int, fetch: Callable[[int], bytes], cached_pages: int = DEFAULT_CACHED_PAGES
    ) -> None:
        self.page_size = page_size
        self._fetch = fetch
        self._cache: LruCache[int, bytes] = LruCache(cached_pages)

    def page(self, number: int) -> bytes:
        """The whole page `number`, from the cache or the source."""
        data = self._cache.get(number)
        if data is None:
            data = self._fetch(number)
            self._cache.put(number, data)
        return data

    def read(self, addr: int, size: int) -> bytes:
        """Exactly `size` bytes at `addr`, or FaultError at the first address that cannot be read."""
        if size <= 0:
            return b""
        ps = self.page_size
        parts = []
        cur, end = addr, addr + size
        while cur < end:
            number, offset = divmod(cur, ps)
            n = min(end - cur, ps - offset)
            try:
                data = self.page(number)
            except FaultError as e:
                raise FaultError(cur, e.reason, e.detail) from None
            parts.append(data[offset : offset + n])
            cur += n
        return parts[0] if len(parts) == 1 else b"".join(parts)
