"""Struct layouts for reading kernel objects: member offsets and sizes from the kernel's types
(BTF or DWARF), else from VMCOREINFO's OFFSET/SIZE entries; never numbers written here.

A member path may go through nested structs and anonymous unions (`thread.sp`,
`signal`), and a missing member is a MissingDebugInfoError that names it, so a caller can
say precisely what it could not read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pmdb.debuginfo.ctypes import NBBY, CType, EnumType, StructType, find_member, resolve, size_of
from pmdb.errors import MissingDebugInfoError, PmdbError
from pmdb.os.linux.coreinfo import CoreInfo

if TYPE_CHECKING:
    from pmdb.debuginfo.typesystem import TypeSystem


class Layout:
    """Offsets (bytes) and sizes of kernel structs' members, cached per (struct, path)."""

    def __init__(self, types: TypeSystem | None, info: CoreInfo) -> None:
        self.types = types
        self.info = info
        self._offsets: dict[tuple[str, str], tuple[int, CType | None]] = {}

    def struct(self, name: str) -> StructType | None:
        """`struct name` from the types, if they have it."""
        if self.types is None:
            return None
        try:
            found = self.types.lookup(f"struct {name}")
            base = resolve(found, self.types) if found is not None else None
        except PmdbError:
            return None
        return base if isinstance(base, StructType) else None

    def has(self, struct: str, path: str) -> bool:
        """Whether `struct` has the member `path` (a dotted path)."""
        try:
            self.offset(struct, path)
        except MissingDebugInfoError:
            return False
        return True

    def offset(self, struct: str, path: str) -> int:
        """Byte offset of member `path` in `struct name`."""
        return self._resolve(struct, path)[0]

    def member_type(self, struct: str, path: str) -> CType | None:
        """The type of member `path` (None when the offset came from VMCOREINFO)."""
        return self._resolve(struct, path)[1]

    def member_size(self, struct: str, path: str) -> int:
        """The size of member `path` in bytes."""
        t = self.member_type(struct, path)
        if t is None:
            raise MissingDebugInfoError(f"no type for {struct}.{path}: the kernel's BTF is not available")
        return size_of(t, self.types)

    def enum_values(self, tag: str) -> dict[str, int]:
        """The enumerators of `enum tag`, by name."""
        found = self.types.lookup(f"enum {tag}") if self.types is not None else None
        base = resolve(found, self.types) if found is not None else None
        if not isinstance(base, EnumType):
            raise MissingDebugInfoError(f"no enum {tag} in the kernel's types")
        return dict(base.enumerators)

    def size(self, struct: str) -> int:
        """sizeof(struct name)."""
        st = self.struct(struct)
        if st is not None:
            return st.size
        fallback = self.info.size(struct)
        if fallback is None:
            raise MissingDebugInfoError(f"no size of struct {struct}: no kernel types, and VMCOREINFO has "
                                        f"no SIZE({struct})")
        return fallback

    def _resolve(self, struct: str, path: str) -> tuple[int, CType | None]:
        key = (struct, path)
        hit = self._offsets.get(key)
        if hit is None:
            hit = self._offsets[key] = self._find(struct, path)
        return hit

    def _find(self, struct: str, path: str) -> tuple[int, CType | None]:
        st = self.struct(struct)
        if st is not None:
            offset, t = 0, st
            for name in path.split("."):
                m = find_member(t, name, self.types)
                if m is None:
                    raise MissingDebugInfoError(f"struct {struct} has no member {path} in the kernel's types")
                offset += m.offset_bits // NBBY
                t = m.type
            return offset, t
        fallback = self.info.offset(struct, path)
        if fallback is None:
            raise MissingDebugInfoError(f"no offset of {struct}.{path}: no kernel types, and VMCOREINFO has "
                                        f"no OFFSET({struct}.{path})")
        return fallback, None
