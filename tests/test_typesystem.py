"""The type model without a target: C names as libctf spells them, C type names parsed, the
TypeSystem's source order and Ref routing, guards against reference loops, and the pieces of
::print's value rendering that need no memory (flag enums, long doubles)."""

from __future__ import annotations

import struct

import pytest

from pmdb.commands.core.typeprint import enum_flag_bits, enum_flags_text, long_double_text
from pmdb.debuginfo.cdecl import Array, CDeclError, Function, Pointer, TypeName, parse_type_name
from pmdb.debuginfo.ctypes import (
    ArrayType,
    BadTypeError,
    EnumType,
    FunctionType,
    IntType,
    Member,
    PointerType,
    QualifiedType,
    Ref,
    StructRef,
    StructType,
    Typedef,
    TypeTable,
    find_member,
    member_type_name,
    resolve,
    size_of,
    type_name,
)
from pmdb.debuginfo.typesystem import TypeSystem

INT = IntType("int", 4)
CHAR = IntType("char", 1)
VOID = IntType("void", 0)


class Source:
    """A minimal type source: named types and Ref targets from dicts."""

    def __init__(self, name: str, named: dict, refs: dict | None = None) -> None:
        self.name = name
        self.named = named
        self.refs = refs or {}
        self.lookups: list[str] = []

    def lookup(self, name: str):
        self.lookups.append(name)
        return self.named.get(name)

    def deref(self, ref: Ref):
        return self.refs[ref.key]


@pytest.mark.parametrize(("t", "name"), [
    (PointerType(CHAR, 8), "char *"),
    (PointerType(PointerType(VOID, 8), 8), "void **"),
    (ArrayType(ArrayType(INT, 3), 2), "int [2][3]"),
    (ArrayType(PointerType(INT, 8), 3), "int *[3]"),
    (PointerType(ArrayType(INT, 3), 8), "int (*)[3]"),
    (PointerType(FunctionType(INT, (PointerType(VOID, 8),)), 8), "int (*)()"),
    (ArrayType(PointerType(FunctionType(INT, ()), 8), 3), "int (*[3])()"),
    (PointerType(QualifiedType(frozenset({"const"}), CHAR), 8), "const char *"),
    (QualifiedType(frozenset({"const"}), PointerType(CHAR, 8)), "char *const"),
    (QualifiedType(frozenset({"const", "volatile"}), INT), "const volatile int"),
    (StructType("struct", None, (), 0), "struct "),
    (StructRef("union", "u"), "union u"),
    (EnumType("color", 4, ()), "enum color"),
    (FunctionType(INT, ()), "int ()"),
    (Typedef("netstack_t", StructType("struct", "netstack", (), 0)), "netstack_t"),
])
def test_type_names_as_libctf_spells_them(t, name: str) -> None:
    assert type_name(t) == name


def test_bitfield_member_names() -> None:
    color = EnumType("color", 4, (("RED", 0),))
    assert member_type_name(Member("lo", Typedef("uint_t", IntType("unsigned int", 4, False)), 0, 3)) == \
        "unsigned int:3"
    assert member_type_name(Member("hue", color, 0, 3)) == "color:3"
    assert member_type_name(Member("x", INT, 0)) == "int"


@pytest.mark.parametrize(("text", "parsed"), [
    ("netstack_t", TypeName("netstack_t")),
    ("struct netstack *", TypeName("struct netstack", derivations=(Pointer(),))),
    ("uint64_t[4]", TypeName("uint64_t", derivations=(Array(4),))),
    ("unsigned  long", TypeName("unsigned long")),
    ("const char *", TypeName("char", frozenset({"const"}), (Pointer(),))),
    ("char *const *", TypeName("char", derivations=(Pointer(frozenset({"const"})), Pointer()))),
    ("int (*)(void *)", TypeName("int", derivations=(Function((TypeName("void", derivations=(Pointer(),)),)),
                                                     Pointer()))),
    ("int (*)(void)", TypeName("int", derivations=(Function(()), Pointer()))),
    ("int (*[3])(int, ...)", TypeName("int", derivations=(Function((TypeName("int"),), True), Pointer(),
                                                          Array(3)))),
    ("int (*)[3]", TypeName("int", derivations=(Array(3), Pointer()))),
    ("int [2][3]", TypeName("int", derivations=(Array(3), Array(2)))),
])
def test_parse_type_names(text: str, parsed: TypeName) -> None:
    assert parse_type_name(text) == parsed


@pytest.mark.parametrize("text", ["", "*", "int [x]", "struct", "a b", "int $", "int (*", "int [3"])
def test_bad_type_names(text: str) -> None:
    with pytest.raises(CDeclError):
        parse_type_name(text)


def test_type_system_order_and_forwards() -> None:
    """The first source defining a name wins; a forward declaration yields to a later definition;
    Refs go to the source they name."""
    node = StructType("struct", "node", (Member("next", Ref("b", 1), 0),), 8)
    a = Source("a", {"struct node": StructRef("struct", "node"), "x_t": Typedef("x_t", INT)})
    b = Source("b", {"struct node": node, "x_t": Typedef("x_t", CHAR)},
               {1: PointerType(StructRef("struct", "node"), 8)})
    ts = TypeSystem([a, b])
    assert ts.lookup("struct node") is node
    assert ts.lookup("x_t") == Typedef("x_t", INT)
    assert ts.deref(Ref("b", 1)) == PointerType(StructRef("struct", "node"), 8)
    next_type = ts.lookup("struct node").members[0].type
    assert type_name(next_type, ts) == "struct node *"
    assert resolve(StructRef("struct", "node"), ts) is node
    assert size_of(ts.lookup("struct node *"), ts) == 8
    with pytest.raises(BadTypeError):
        ts.deref(Ref("nowhere", 1))


def test_type_system_builds_derived_types() -> None:
    ts = TypeSystem([Source("s", {"int": INT, "char": CHAR, "void": VOID})], pointer_size=4)
    t = ts.lookup("char *[4]")
    assert t == ArrayType(PointerType(CHAR, 4), 4) and size_of(t, ts) == 16
    assert ts.lookup("int (*)(char, ...)") == PointerType(FunctionType(INT, (CHAR,), True), 4)
    assert ts.lookup("long unsigned int") is None  # no such base type here
    assert ts.lookup("int [") is None
    with pytest.raises(CDeclError):
        ts.find("int [")


def test_reference_loops_are_errors_not_hangs() -> None:
    loop = Source("s", {}, {1: Ref("s", 2), 2: Ref("s", 1),
                            3: Typedef("a_t", Ref("s", 4)), 4: Typedef("b_t", Ref("s", 3))})
    ts = TypeSystem([loop])
    with pytest.raises(BadTypeError):
        resolve(Ref("s", 1), ts)
    with pytest.raises(BadTypeError, match="typedef"):
        size_of(Ref("s", 3), ts)
    selfish = StructType("struct", "s", (Member("", Ref("t", 1), 0),), 4)
    inside = TypeSystem([Source("t", {}, {1: selfish})])
    with pytest.raises(BadTypeError):
        find_member(selfish, "missing", inside)


def test_typedef_table_is_a_source() -> None:
    table = TypeTable()
    table.create_model("LP64")
    ts = TypeSystem([table], pointer_size=table.pointer_size)
    assert size_of(ts.lookup("uintptr_t *"), ts) == 8
    assert ts.lookup("unsigned long") == table.lookup("unsigned long")
    with pytest.raises(BadTypeError):
        table.deref(Ref("x", 1))


def test_flag_enums() -> None:
    flags = EnumType("flags", 4, (("FL_READ", 1), ("FL_WRITE", 2), ("FL_EXEC", 4)))
    assert enum_flag_bits(flags) == 7
    assert enum_flag_bits(EnumType("c", 4, (("A", 0), ("B", 1), ("C", 3)))) == 0
    assert [enum_flags_text(flags, v) for v in (0, 1, 5, 8, 13)] == [
        "0", "FL_READ", "FL_{READ|EXEC}", "0x8", "FL_{READ|EXEC}|0x8"]
    # without a common prefix mdb still closes a brace it never opened
    assert enum_flags_text(EnumType("f", 4, (("RD", 1), ("WR", 2))), 3) == "RD|WR}"


def test_long_double_text() -> None:
    def x87(value: float) -> bytes:
        bits, = struct.unpack("<Q", struct.pack("<d", value))
        sign, exp, frac = bits >> 63, bits >> 52 & 0x7FF, bits & ((1 << 52) - 1)
        mantissa = (1 << 63) | (frac << 11)
        return mantissa.to_bytes(8, "little") + ((sign << 15) | (exp - 1023 + 16383)).to_bytes(2, "little")

    assert long_double_text(x87(3.0), 16) == "+3.0000000000000000e+00"
    assert long_double_text(x87(-2.5e-300), 16) == "-2.5000000000000000e-300"  # exactly -2.49999999999999998e-300
    assert long_double_text(x87(0.1), 16) == "+1.0000000000000001e-01"
    assert long_double_text(bytes(10), 16) == "+0.0000000000000000e+00"
