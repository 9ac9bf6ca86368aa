"""Where one file's DWARF defines its types, variables and functions, found as cheaply as the
moment allows: the rule DwarfTypes follows to turn a name into a DIE.

- The name index cached on disk by build-id (dwarf_index) answers when there is one; a type
  lookup reads only its first part (units and types: 7% of a vmlinux's index).
- Without it, a type is found by itself (dwarf_lookup: only the units that can hold its name
  are read), and a process of its own builds the index for the sessions to come
  (index_builder); once it is done, the lookups that follow read what it cached.
- The index is built at once for a file small enough that this costs less than starting that
  process, for lookups whose searching grows costly (TooCostly), and for every variable or
  function lookup (which take the index a builder is making, when one is).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pmdb.debuginfo import index_builder
from pmdb.debuginfo.dwarf_index import DwarfIndex, ctf_int_name, load_cached, load_or_build
from pmdb.debuginfo.dwarf_lookup import LAZY_FROM, NameFinder, TooCostly

if TYPE_CHECKING:
    from elftools.dwarf.dwarfinfo import DWARFInfo

    from pmdb.formats.elf import ElfFile


class DwarfNames:
    """The names of one file's DWARF (`build_id`, hex, keys its cached index; without one
    nothing is cached). Its methods raise what reading malformed DWARF raises: the caller
    turns that into its error."""

    def __init__(self, elf: ElfFile, dwarf: DWARFInfo, build_id: str | None) -> None:
        self.elf, self.dwarf, self.build_id = elf, dwarf, build_id
        self.index: DwarfIndex | None = None  # the whole index, once it was needed
        self.type_index: DwarfIndex | None = None  # the cached index's types alone (no variables, functions)
        self.finder: NameFinder | None = None  # finds types while there is no index
        self._looked = False  # whether the cache and the finder were looked for
        self._builder = ""  # "started" when a builder is at work on the index, "done" once it was seen done

    def type_offset(self, name: str) -> int | None:
        """The DIE defining type `name` (else declaring it), or None."""
        index = self.index or self._types()
        if index is None and self.finder is not None:
            try:
                found = self.finder.find(name)
            except TooCostly:
                pass
            else:
                self._build_in_background()
                return found
        return indexed_type(index or self.whole(), name)

    def whole(self) -> DwarfIndex:
        """The whole index: cached, else the one a builder is making, else built now (and cached)."""
        if self.index is None:
            if self.build_id:
                index_builder.wait(self.build_id)
            self.index = load_or_build(self.dwarf, self.build_id)
        return self.index

    def unit_of(self, offset: int) -> int:
        """The offset of the unit holding the DIE at `offset` (from an index, or the finder's walk
        over the unit headers)."""
        index = self.index or self.type_index
        if index is None and self.finder is not None:
            return self.finder.unit_of(offset)
        return (index or self.whole()).unit_of(offset)

    @property
    def errors(self) -> list[str]:
        """What of the DWARF could not be read, as far as it was read."""
        index = self.index or self.type_index
        return index.errors if index is not None else self.finder.errors if self.finder is not None else []

    def _types(self) -> DwarfIndex | None:
        """The cached index's types, else None (with a finder made for a large file's DWARF);
        looked for once, and once more when a builder at work on it is done."""
        if self.type_index is None and (not self._looked or self._builder_done()):
            self.type_index = load_cached(self.dwarf, self.build_id, symbols=False)
            info = self.dwarf.debug_info_sec
            if not self._looked and self.type_index is None and info is not None and info.size >= LAZY_FROM:
                self.finder = NameFinder.of(self.elf, self.dwarf)
            self._looked = True
        return self.type_index

    def _build_in_background(self) -> None:
        """Start building the index for later sessions, unless another process does (once; a
        file without a build-id has no cache)."""
        if self.build_id and not self._builder:
            key = self.build_id
            at_work = index_builder.start(self.elf.path, key) or index_builder.lock_path(key).exists()
            self._builder = "started" if at_work else "done"

    def _builder_done(self) -> bool:
        """Whether the builder at work (this process's or another's) has just been seen done."""
        if self._builder == "started" and self.build_id and not index_builder.lock_path(self.build_id).exists():
            self._builder = "done"
            return True
        return False


def indexed_type(index: DwarfIndex, name: str) -> int | None:
    """The DIE the index gives for type `name`: its first definition, else that of its
    ctfconvert spelling (`unsigned long` for `long unsigned int`), else its first declaration."""
    offset = index.types.get(name)
    if offset is None:
        canonical = ctf_int_name(name)
        offset = index.types.get(canonical) if canonical else None
    if offset is None:
        offset = index.forwards.get(name)
    return offset
