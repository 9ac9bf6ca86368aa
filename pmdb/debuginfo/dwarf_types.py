"""DWARF as a type source: one object file's C types in pmdb's type model, converted on demand.

A DwarfTypes answers the type-source protocol (`name`, `lookup(C name)`, `deref(Ref)`) and
says what type a variable or function has (`declaration`, `variable_at`). Nothing is read
when it is made: the first lookup opens the file's DWARF, finds the DIE that defines the name
(dwarf_names: through the name index cached on disk by build-id, or without it, reading only
the units that can hold the name while the index is built in the background), and converts
that one DIE. A type that refers to another holds `Ref(self.name, die_offset)`, where
the name is `dwarf:<build-id>`, so the types of one binary are the same wherever it is
loaded, and a Ref any module makes from a DIE offset (a variable's type) resolves here.

How DWARF becomes model types:
- base types -> IntType or FloatType, integers named as ctfconvert names them (`long
  unsigned int` -> `unsigned long`), so that mdb's spellings are what pmdb prints;
- pointer and reference types -> PointerType; const/volatile/restrict/atomic -> QualifiedType;
- structure, class and union types -> StructType with members at bit offsets (DWARF 4's
  DW_AT_data_bit_offset, or DWARF 2/3's data_member_location with DW_AT_bit_offset counted
  from the storage unit's high end), bit-fields with `bit_size`; a declaration -> StructRef;
- enumeration types -> EnumType (enumerators sign-extended when the enum is signed);
- array types -> ArrayType per subrange, outermost first; no bound: a flexible array (0);
- subroutine types -> FunctionType (DW_TAG_unspecified_parameters: variadic); typedefs ->
  Typedef; a missing DW_AT_type -> void.

Malformed DWARF costs the type it is in: any failure to parse a DIE becomes a BadTypeError
naming the file and offset, and the session goes on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from elftools.common.exceptions import DWARFError

from pmdb.debuginfo.ctypes import (
    ArrayType,
    BadTypeError,
    CType,
    EnumType,
    FloatType,
    FunctionType,
    IntType,
    Member,
    PointerType,
    QualifiedType,
    Ref,
    StructRef,
    StructType,
    Typedef,
    size_of,
)
from pmdb.debuginfo.dwarf_index import DwarfIndex, ctf_int_name
from pmdb.debuginfo.dwarf_names import DwarfNames
from pmdb.errors import PmdbError
from pmdb.formats.dwarf import DWARF_ERRORS, open_dwarf

if TYPE_CHECKING:
    from elftools.dwarf.die import DIE
    from elftools.dwarf.dwarfinfo import DWARFInfo

    from pmdb.formats.elf import ElfFile

VOID = IntType("void", 0)
ERRORS = (*DWARF_ERRORS, DWARFError, NotImplementedError, KeyError, UnicodeDecodeError, OverflowError)
_UNIT_REFS = frozenset({"DW_FORM_ref1", "DW_FORM_ref2", "DW_FORM_ref4", "DW_FORM_ref8", "DW_FORM_ref_udata"})
_QUALIFIERS = {"DW_TAG_const_type": "const", "DW_TAG_volatile_type": "volatile",
               "DW_TAG_restrict_type": "restrict", "DW_TAG_atomic_type": "_Atomic"}
_STRUCTS = {"DW_TAG_structure_type": "struct", "DW_TAG_class_type": "struct", "DW_TAG_union_type": "union"}
_SIGNED_ENCODINGS = frozenset({0x05, 0x06, 0x0D})  # signed, signed_char, signed_fixed
_FLOAT_ENCODINGS = frozenset({0x03, 0x04, 0x09, 0x0F})  # complex_float, float, imaginary_float, decimal_float
DW_OP_ADDR, DW_OP_PLUS_UCONST, DW_OP_CONSTU = 0x03, 0x23, 0x10


class DwarfTypes:
    """The C types described by one ELF file's DWARF."""

    def __init__(self, elf: ElfFile, build_id: str | None = None, pointer_size: int = 8) -> None:
        """Types of `elf`'s DWARF (the object's separate debug file when it has one); `build_id`
        (hex) names its Refs and its cached index."""
        self.elf = elf
        self.build_id = build_id
        self.pointer_size = pointer_size
        self.name = f"dwarf:{build_id}" if build_id else f"dwarf:{elf.path}"
        self.error: str | None = None  # why this file's DWARF could not be opened, if it could not
        self._dwarf: DWARFInfo | None = None
        self._dwarf_names: DwarfNames | None = None
        self._types: dict[int | str, CType] = {}
        self._looked_up: dict[str, CType | None] = {}

    # The type-source protocol -------------------------------------------------------

    def lookup(self, name: str) -> CType | None:
        """The type C calls `name`: `struct foo`, `union u`, `enum e`, a typedef, a base type in
        DWARF's or ctfconvert's spelling, or `void`; None when this file defines no such type."""
        name = " ".join(name.split())
        if name not in self._looked_up:
            self._looked_up[name] = self._find(name)
        return self._looked_up[name]

    def deref(self, ref: Ref) -> CType:
        """The type `ref` (a DIE of this file) names; BadTypeError when the DIE is not a type
        pmdb can read."""
        if ref.source != self.name:
            raise BadTypeError(f"type reference {ref.source}:{ref.key} is not one of {self.name}")
        return self.type_at(ref.key)

    # Beyond the protocol ------------------------------------------------------------

    def ref(self, die_offset: int) -> Ref:
        """The Ref to the type at DIE offset `die_offset` of this file's .debug_info."""
        return Ref(self.name, die_offset)

    def declaration(self, name: str) -> CType | None:
        """The type of the variable (first) or function called `name`, or None."""
        index = self.index
        if index is None:
            return None
        for die_offset in index.variables.get(name, ()):
            found = self._declared_type(die_offset)
            if found is not None:
                return found
        for die_offset in index.functions.get(name, ()):
            return self.type_at(die_offset)
        return None

    def variable_at(self, name: str, address: int) -> CType | None:
        """The type of the variable `name` that lives at file address `address` (statics of one
        name in several units are told apart by their location), or None."""
        index = self.index
        if index is None:
            return None
        candidates = index.variables.get(name, ())
        for die_offset in candidates:
            die = self._die(die_offset)
            if _static_address(die) == address:
                return self._declared_type(die_offset)
        return self._declared_type(candidates[0]) if len(candidates) == 1 else None

    @property
    def problems(self) -> list[str]:
        """What of this file's DWARF could not be read (the file, or units of it), one line each."""
        found = [self.error] if self.error else []
        errors = self._dwarf_names.errors if self._dwarf_names is not None else []
        return found + [f"{self.elf.path}: DWARF {e}" for e in errors]

    def type_at(self, key: int | str) -> CType:
        """The model type of the DIE at `key` (a .debug_info offset, or `sig:<hex>` for a type
        unit's signature), converted once."""
        found = self._types.get(key)
        if found is None:
            die = self._type_unit_die(str(key)) if isinstance(key, str) else self._die(key)
            try:
                found = self._convert(die)
            except ERRORS as e:
                raise BadTypeError(f"{self.elf.path}: DWARF type at {key}: {e or type(e).__name__}") from None
            self._types[key] = found
        return found

    @property
    def dwarf(self) -> DWARFInfo | None:
        """The file's DWARF, opened on first use (None, with `error` set, when it cannot be)."""
        if self._dwarf is None and self.error is None:
            try:
                self._dwarf = open_dwarf(self.elf)
            except (PmdbError, *ERRORS) as e:
                self.error = f"{self.elf.path}: {e}"
            if self._dwarf is None and self.error is None:
                self.error = f"{self.elf.path}: no DWARF"
        return self._dwarf

    @property
    def names(self) -> DwarfNames | None:
        """Where the file's DWARF defines names (None, with `error` set, without DWARF)."""
        if self._dwarf_names is None:
            dwarf = self.dwarf
            if dwarf is not None:
                self._dwarf_names = DwarfNames(self.elf, dwarf, self.build_id)
        return self._dwarf_names

    @property
    def index(self) -> DwarfIndex | None:
        """The file's whole name index (cached on disk by build-id), or None without DWARF or
        when it cannot be built (`error` says why)."""
        names = self.names
        if names is None or self.error is not None:
            return None
        try:
            return names.whole()
        except ERRORS as e:
            self.error = f"{self.elf.path}: cannot index DWARF: {e}"
            return None

    # Reading DIEs -------------------------------------------------------------------

    def _find(self, name: str) -> CType | None:
        if name == "void":
            return VOID
        names = self.names
        if names is None or self.error is not None:
            return None
        try:
            offset = names.type_offset(name)
        except ERRORS as e:
            self.error = f"{self.elf.path}: cannot index DWARF: {e}"
            return None
        return self.type_at(offset) if offset is not None else None

    def _die(self, offset: int) -> DIE:
        dwarf, names = self.dwarf, self.names
        if dwarf is None or names is None:
            raise BadTypeError(f"{self.error or self.elf.path}: no DWARF to read a type from")
        try:
            return dwarf.get_CU_at(names.unit_of(offset)).get_DIE_from_refaddr(offset)
        except ERRORS as e:
            raise BadTypeError(f"{self.elf.path}: no DIE at {offset:#x}: {e or type(e).__name__}") from None

    def _type_unit_die(self, key: str) -> DIE:
        dwarf = self.dwarf
        if dwarf is None or not key.startswith("sig:"):
            raise BadTypeError(f"{self.elf.path}: no type unit {key}")
        try:
            return dwarf.get_DIE_by_sig8(int(key[4:], 16))
        except ERRORS as e:
            raise BadTypeError(f"{self.elf.path}: no type unit {key}: {e or type(e).__name__}") from None

    def _declared_type(self, die_offset: int) -> CType | None:
        """The DW_AT_type of a variable DIE, through its DW_AT_specification."""
        try:
            die = self._die(die_offset)
            for _ in range(4):
                if "DW_AT_type" in die.attributes:
                    return self._type_ref(die)
                if "DW_AT_specification" not in die.attributes:
                    return None
                die = die.get_DIE_from_attribute("DW_AT_specification")
        except ERRORS as e:
            raise BadTypeError(f"{self.elf.path}: DWARF variable at {die_offset:#x}: {e}") from None
        return None

    def _type_ref(self, die: DIE, attr: str = "DW_AT_type") -> CType:
        """What a DIE's type attribute refers to, as a Ref (void when it has none)."""
        value = die.attributes.get(attr)
        if value is None:
            return VOID
        if value.form in _UNIT_REFS:
            return Ref(self.name, die.cu.cu_offset + value.raw_value)
        if value.form == "DW_FORM_ref_addr":
            return Ref(self.name, value.raw_value)
        if value.form == "DW_FORM_ref_sig8":
            return Ref(self.name, f"sig:{value.raw_value:x}")
        raise BadTypeError(f"{self.elf.path}: DIE at {die.offset:#x} refers to its type with {value.form}")

    def _convert(self, die: DIE) -> CType:
        tag = die.tag
        if tag == "DW_TAG_base_type":
            return _base_type(die)
        if tag in ("DW_TAG_pointer_type", "DW_TAG_reference_type", "DW_TAG_rvalue_reference_type"):
            return PointerType(self._type_ref(die), _attr(die, "DW_AT_byte_size", self.pointer_size))
        if tag in _QUALIFIERS:
            return QualifiedType(frozenset({_QUALIFIERS[tag]}), self._type_ref(die))
        if tag == "DW_TAG_typedef":
            return Typedef(_name(die) or "", self._type_ref(die))
        if tag in _STRUCTS:
            return self._struct(die, _STRUCTS[tag])
        if tag == "DW_TAG_enumeration_type":
            return self._enum(die)
        if tag == "DW_TAG_array_type":
            return self._array(die)
        if tag in ("DW_TAG_subroutine_type", "DW_TAG_subprogram"):
            return self._function(die)
        if tag == "DW_TAG_unspecified_type":
            return IntType(_name(die) or "void", 0)
        raise BadTypeError(f"{self.elf.path}: DIE at {die.offset:#x} ({tag}) is not a type pmdb reads")

    def _struct(self, die: DIE, keyword: str) -> CType:
        name = _name(die)
        if die.attributes.get("DW_AT_declaration") is not None:
            return StructRef(keyword, name or "")
        members = []
        for child in die.iter_children():
            if child.tag != "DW_TAG_member":
                continue
            offset, bit_size = (0, _attr(child, "DW_AT_bit_size", None)) if keyword == "union" else \
                self._member_offset(child)
            members.append(Member(_name(child) or "", self._type_ref(child), offset, bit_size))
        return StructType(keyword, name, tuple(members), _attr(die, "DW_AT_byte_size", 0))

    def _member_offset(self, die: DIE) -> tuple[int, int | None]:
        """(offset in bits, bit-field width or None) of a struct member."""
        bit_size = _attr(die, "DW_AT_bit_size", None)
        if "DW_AT_data_bit_offset" in die.attributes:
            return die.attributes["DW_AT_data_bit_offset"].value, bit_size
        location = die.attributes.get("DW_AT_data_member_location")
        byte = 0 if location is None else _member_location(location.value)
        offset = byte * 8
        if "DW_AT_bit_offset" in die.attributes and bit_size is not None:
            storage = _attr(die, "DW_AT_byte_size", None)
            if storage is None:
                storage = size_of(self._type_ref(die), self)
            offset += storage * 8 - die.attributes["DW_AT_bit_offset"].value - bit_size
        return offset, bit_size

    def _enum(self, die: DIE) -> CType:
        name = _name(die)
        if die.attributes.get("DW_AT_declaration") is not None:
            return StructRef("enum", name or "")
        size = _attr(die, "DW_AT_byte_size", 4)
        signed = _attr(die, "DW_AT_encoding", None) in _SIGNED_ENCODINGS
        if not signed and "DW_AT_type" in die.attributes:
            underlying = self.type_at(self._type_ref(die).key)  # type: ignore[union-attr]
            signed = isinstance(underlying, IntType) and underlying.signed
        values = []
        for child in die.iter_children():
            if child.tag != "DW_TAG_enumerator":
                continue
            const = child.attributes["DW_AT_const_value"]
            value = const.value
            if isinstance(value, int) and signed and const.form in ("DW_FORM_data1", "DW_FORM_data2",
                                                                  "DW_FORM_data4", "DW_FORM_data8"):
                bits = {"DW_FORM_data1": 8, "DW_FORM_data2": 16, "DW_FORM_data4": 32, "DW_FORM_data8": 64}[const.form]
                value = value - (1 << bits) if value >> (bits - 1) & 1 else value
            signed = signed or (isinstance(value, int) and value < 0)
            values.append((_name(child) or "", int(value)))
        return EnumType(name, size, tuple(values), signed)

    def _array(self, die: DIE) -> CType:
        counts = []
        for child in die.iter_children():
            if child.tag in ("DW_TAG_subrange_type", "DW_TAG_enumeration_type"):
                counts.append(_subrange_count(child))
        t = self._type_ref(die)
        for count in reversed(counts or [0]):
            t = ArrayType(t, count)
        return t

    def _function(self, die: DIE) -> CType:
        params = []
        variadic = False
        for child in die.iter_children():
            if child.tag == "DW_TAG_formal_parameter":
                params.append(self._type_ref(child))
            elif child.tag == "DW_TAG_unspecified_parameters":
                variadic = True
        return FunctionType(self._type_ref(die), tuple(params), variadic)


def _attr(die: DIE, name: str, default: Any) -> Any:
    value = die.attributes.get(name)
    return default if value is None else value.value


def _name(die: DIE) -> str | None:
    value = die.attributes.get("DW_AT_name")
    if value is None:
        return None
    raw = value.value
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _base_type(die: DIE) -> CType:
    name = _name(die) or "?"
    size = _attr(die, "DW_AT_byte_size", 0)
    encoding = _attr(die, "DW_AT_encoding", 0x05)
    if encoding in _FLOAT_ENCODINGS:
        return FloatType(name, size)
    if encoding == 0x02:
        return IntType(name, size, False)
    return IntType(ctf_int_name(name) or name, size, encoding in _SIGNED_ENCODINGS)


def _member_location(value: Any) -> int:
    """A data_member_location: a constant, or DWARF 2's `DW_OP_plus_uconst n` expression."""
    if isinstance(value, int):
        return value
    ops = list(value)
    if ops and ops[0] in (DW_OP_PLUS_UCONST, DW_OP_CONSTU):
        result = shift = 0
        for byte in ops[1:]:
            result |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return result
    raise BadTypeError(f"a member location pmdb cannot evaluate: {bytes(ops).hex()}")


def _subrange_count(die: DIE) -> int:
    """Elements in one array dimension: DW_AT_count, or upper - lower + 1; 0 when unbounded."""
    count = die.attributes.get("DW_AT_count")
    if count is not None and isinstance(count.value, int):
        return max(0, count.value)
    upper = die.attributes.get("DW_AT_upper_bound")
    if upper is None or not isinstance(upper.value, int):
        return 0
    if upper.form in ("DW_FORM_data1", "DW_FORM_data2", "DW_FORM_data4", "DW_FORM_data8"):
        bits = {"DW_FORM_data1": 8, "DW_FORM_data2": 16, "DW_FORM_data4": 32, "DW_FORM_data8": 64}[upper.form]
        if upper.value == (1 << bits) - 1:  # -1: gcc's spelling of an unbounded array
            return 0
    lower = _attr(die, "DW_AT_lower_bound", 0)
    return max(0, upper.value - (lower if isinstance(lower, int) else 0) + 1)


def _static_address(die: DIE) -> int | None:
    """The address of a variable whose DW_AT_location is `DW_OP_addr a`, else None."""
    location = die.attributes.get("DW_AT_location")
    if location is None or not isinstance(location.value, list) or not location.value:
        return None
    ops = location.value
    if ops[0] == DW_OP_ADDR and len(ops) >= 9:
        return int.from_bytes(bytes(ops[1:9]), "little")
    return None
