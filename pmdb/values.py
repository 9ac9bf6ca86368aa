"""Typed values for the Python API: `prog['netstacks']`, `.member_('netstack_ipnet')`,
`.deref_()`, `.cast_('struct netstack *')`, `.address_`, `int(v)` / `.value_()`.

A Value is an object of a C type: one in target memory (it has an `address_`) or one
computed (a pointer read from a member, a cast integer). Nothing is read until asked:
`value_()` reads the bytes and decodes them (integers, enums, pointers and chars as Python
ints, floats as floats, bit-fields bit by bit, arrays as lists and structs as dicts of their
members). Names end in `_` so that `v.member_x` style attribute access (`v.next`) never
collides with a method.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pmdb.debuginfo.ctypes import (
    NBBY,
    ArrayType,
    CType,
    EnumType,
    FloatType,
    FunctionType,
    IntType,
    PointerType,
    StructType,
    find_member,
    resolve,
    size_of,
    type_name,
)
from pmdb.errors import PmdbError, SymbolNotFound, TypeNotFound

if TYPE_CHECKING:
    from pmdb.program import Program

MAX_ELEMENTS = 1 << 16  # elements value_() decodes from one array


@dataclass(frozen=True, eq=False)
class Value:
    """An object of C type `type_` in program `prog_`: in memory at `address_` (plus
    `bit_offset_` bits for a bit-field), or, when `address_` is None, the number `raw_`."""

    prog_: Program
    type_: CType
    address_: int | None = None
    raw_: int | None = None
    bit_offset_: int = 0
    bit_size_: int | None = None

    # Shape ------------------------------------------------------------------------------

    @property
    def type_name_(self) -> str:
        """The type's C name (`struct netstack *`)."""
        return type_name(self.type_, self.prog_.types)

    def _base(self) -> CType:
        return resolve(self.type_, self.prog_.types)

    def member_(self, name: str) -> Value:
        """The struct or union member `name` (anonymous members searched too)."""
        base = self._base()
        if isinstance(base, PointerType):
            return self.deref_().member_(name)
        if not isinstance(base, StructType):
            raise TypeError(f"{self.type_name_} is not a struct or union")
        m = find_member(base, name, self.prog_.types)
        if m is None:
            raise AttributeError(f"{self.type_name_} has no member {name}")
        addr = self._address()
        bits = self.bit_offset_ + m.offset_bits
        return Value(self.prog_, m.type, addr + bits // NBBY, None, bits % NBBY, m.bit_size)

    def deref_(self) -> Value:
        """What a pointer points at (an array: its first element)."""
        base = self._base()
        if isinstance(base, PointerType):
            return Value(self.prog_, base.target, self.value_())
        if isinstance(base, ArrayType):
            return Value(self.prog_, base.element, self._address())
        raise TypeError(f"{self.type_name_} is not a pointer")

    def __getitem__(self, index: int) -> Value:
        """Element `index` of an array, or of what a pointer points at."""
        base = self._base()
        if isinstance(base, ArrayType):
            element, start = base.element, self._address()
        elif isinstance(base, PointerType):
            element, start = base.target, self.value_()
        else:
            raise TypeError(f"{self.type_name_} cannot be indexed")
        return Value(self.prog_, element, start + index * size_of(element, self.prog_.types))

    def __getattr__(self, name: str) -> Value:
        """`v.next` for `v.member_('next')`."""
        if name.startswith("_") or name.endswith("_"):
            raise AttributeError(name)
        return self.member_(name)

    def cast_(self, type_name_text: str) -> Value:
        """The value as another type: a scalar's number converted (`(struct foo *)v`), an object
        in memory read again as the new type."""
        target = self.prog_.types.lookup(type_name_text)
        if target is None:
            raise TypeNotFound(f"no type {type_name_text}")
        base = resolve(target, self.prog_.types)
        if isinstance(base, IntType | PointerType | EnumType) and self._is_scalar():
            number = int(self)
            size = size_of(base, self.prog_.types)
            return Value(self.prog_, target, None, number & ((1 << (size * NBBY)) - 1))
        return Value(self.prog_, target, self._address())

    def _is_scalar(self) -> bool:
        return isinstance(self._base(), IntType | PointerType | EnumType)

    def _address(self) -> int:
        if self.address_ is None:
            raise PmdbError(f"a computed {self.type_name_} has no address")
        return self.address_

    # Contents ---------------------------------------------------------------------------

    def value_(self) -> Any:
        """The value as Python sees it: int (integers, chars, enums, pointers), float, list
        (arrays), dict (structs and unions, by member name; anonymous members merged in)."""
        if self.raw_ is not None:
            return self.raw_
        base = self._base()
        types = self.prog_.types
        if isinstance(base, IntType | EnumType):
            size = base.size
            bits = self.bit_size_ if self.bit_size_ is not None else size * NBBY
            nbytes = (self.bit_offset_ + bits + NBBY - 1) // NBBY
            raw = int.from_bytes(self.prog_.read(self._address(), nbytes), "little") >> self.bit_offset_
            raw &= (1 << bits) - 1
            signed = base.signed if isinstance(base, IntType) else base.signed and self.bit_size_ is None
            return raw - (1 << bits) if signed and bits and raw >> (bits - 1) else raw
        if isinstance(base, PointerType):
            return int.from_bytes(self.prog_.read(self._address(), base.size), "little")
        if isinstance(base, FloatType):
            data = self.prog_.read(self._address(), base.size)
            if base.size == 4:
                return struct.unpack("<f", data)[0]
            if base.size == 8:
                return struct.unpack("<d", data)[0]
            return _extended(data)
        if isinstance(base, ArrayType):
            count = min(base.count, MAX_ELEMENTS)
            return [self[i].value_() for i in range(count)]
        if isinstance(base, StructType):
            out: dict[str, Any] = {}
            for m in base.members:
                if m.name:
                    out[m.name] = self.member_(m.name).value_()
                else:
                    inner = Value(self.prog_, m.type, self._address() + m.offset_bits // NBBY).value_()
                    out.update(inner if isinstance(inner, dict) else {})
            return out
        if isinstance(base, FunctionType):
            return self._address()
        raise TypeError(f"{type_name(self.type_, types)} has no value pmdb can decode")

    def __int__(self) -> int:
        value = self.value_()
        if isinstance(value, float):
            return int(value)
        if not isinstance(value, int):
            raise TypeError(f"{self.type_name_} is not a number")
        return value

    def __index__(self) -> int:
        return int(self)

    def __repr__(self) -> str:
        where = f"at {self.address_:#x}" if self.address_ is not None else f"= {self.raw_:#x}"
        return f"Value({self.type_name_} {where})"


def object_named(prog: Program, name: str) -> Value:
    """The variable or function `name` (or `object`name`) as a Value of its DWARF type;
    KeyError when there is no such symbol or no type for it."""
    try:
        sym = prog.lookup(name)
    except SymbolNotFound:
        raise KeyError(name) from None
    t = prog.symbol_type(sym)
    if t is None:
        raise KeyError(f"{name}: no type information")
    return Value(prog, t, sym.address)


def _extended(data: bytes) -> float:
    """An x87 80-bit long double as the nearest Python float."""
    mantissa = int.from_bytes(data[:8], "little")
    top = int.from_bytes(data[8:10], "little")
    exponent = top & 0x7FFF
    sign = -1.0 if top >> 15 else 1.0
    if exponent == 0x7FFF:
        return sign * float("inf") if mantissa << 1 & ((1 << 64) - 1) == 0 else float("nan")
    try:
        return sign * mantissa * 2.0 ** ((exponent or 1) - 16383 - 63)
    except OverflowError:
        return sign * float("inf")
