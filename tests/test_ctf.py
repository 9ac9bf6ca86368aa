"""CTF as a type source: pmdb's reader against containers made from tests/fixtures/src/ctf_types.c.

The containers come from tests/fixtures/ctfconv.py (a DWARF-to-CTF writer for tests, since
illumos's ctfconvert is not available here): versions 2 and 3, compressed and not, as bytes
and inside the ELF's .SUNW_ctf section, and split into a parent and a child.

The expected layout of every type is written down by hand from the C source and the x86-64
ABI (offsets in bits), and was cross-checked once against gdb 13.1's `ptype /o` on the gcc
12.2 build; it is never taken from pmdb. Bad input: each corruption of a good container
gives a BadDumpError that says what is wrong, and random corruption never gives anything else.
"""

from __future__ import annotations

import os
import random
import struct
import zlib
from pathlib import Path

import ctfconv
import pytest
from ctfconv import CONST, FORWARD, INTEGER, STRUCT, TYPEDEF, Node, Program

from pmdb.debuginfo.ctf_types import CtfTypes
from pmdb.debuginfo.ctypes import (
    ArrayType,
    CType,
    EnumType,
    FloatType,
    FunctionType,
    IntType,
    PointerType,
    QualifiedType,
    Ref,
    StructRef,
    StructType,
    Typedef,
)
from pmdb.errors import BadDumpError, MissingDebugInfoError, TypeNotFound
from pmdb.formats.ctf import Container
from pmdb.formats.elf import ElfFile

VARIANTS = ("v2", "v2z", "v3", "v3z")
# Header fields, as _sections returns them.
FLAGS, PARNAME, LBLOFF, OBJTOFF, FUNCOFF, TYPEOFF, STROFF, STRLEN = 2, 4, 5, 6, 7, 8, 9, 10

# (size in bytes, [(member, type as spelled below, offset in bits[, bit-field width])])
LAYOUTS: dict[str, tuple[int, list[tuple]]] = {
    "struct basics": (112, [
        ("c", "char", 0), ("sc", "signed char", 8), ("uc", "unsigned char", 16), ("s", "short", 32),
        ("us", "unsigned short", 48), ("i", "int", 64), ("ui", "unsigned int", 96), ("l", "long", 128),
        ("ul", "unsigned long", 192), ("ll", "long long", 256), ("ull", "unsigned long long", 320),
        ("b", "_Bool", 384), ("f", "float", 416), ("d", "double", 448), ("ld", "long double", 512),
        ("dc", "double complex", 640), ("fc", "float complex", 768)]),
    "struct bits": (24, [
        ("a", "unsigned int", 0, 3), ("b", "unsigned int", 3, 5), ("c", "int", 8, 7),
        ("d", "unsigned int", 15, 17), ("e", "unsigned char", 32, 1), ("f", "enum color", 33, 4),
        ("g", "unsigned long", 64, 40), ("tail", "int", 128)]),
    "struct anon": (24, [
        ("kind", "int", 0), ("", "union <anon>", 64), ("", "struct <anon>", 128), ("tag", "char [3]", 144)]),
    "struct flex": (8, [("len", "unsigned int", 0), ("flags", "unsigned short", 32), ("data", "char [0]", 48)]),
    "struct ops": (40, [
        ("cb", "callback_t", 0), ("reset", "void (*)(void)", 64), ("sum", "long (*)(int, long *)", 128),
        ("next", "struct ops *", 192), ("cnext", "const struct ops *", 256)]),
    "struct quals": (40, [
        ("ci", "const int", 0), ("vu", "volatile unsigned int", 32), ("cvl", "const volatile long", 64),
        ("rp", "char *restrict", 128), ("ccp", "const char *const", 192), ("vbp", "volatile struct bits *", 256)]),
    "struct arrays": (88, [
        ("grid", "int [3][4]", 0), ("names", "char *[2]", 384), ("rowp", "int (*)[4]", 512),
        ("chain", "myint3_t [2]", 576), ("op", "struct opaque *", 640)]),
    "union value": (24, [("i", "int", 0), ("d", "double", 0), ("bytes", "char [12]", 0), ("bf", "struct bits", 0)]),
    "struct node": (24, [("next", "struct node *", 0), ("pos", "point_t", 64), ("t", "enum temp", 128),
                         ("live", "_Bool", 160)]),
    "struct lmem": (8196, [("pad", "char [8190]", 0), ("s", "short", 65520), ("after", "int", 65536)]),
    "struct big": (70016, [("head", "char [70000]", 0), ("mid", "int", 560000), ("tail", "long", 560064)]),
    "struct huge": ((1 << 29) + 4, [("a", "char [536870912]", 0), ("b", "int", 1 << 32)]),
    "struct enormous": ((1 << 32) + 8, [("a", "char [2][2147483648]", 0), ("b", "long", 1 << 35)]),
    "struct ctf_shared": (4, [("v", "int", 0)]),
}

# The anonymous members of struct anon, by their path of member indexes.
ANON_LAYOUTS: dict[tuple[int, ...], tuple[str, int, list[tuple]]] = {
    (1,): ("union", 8, [("l", "long", 0), ("d", "double", 0), ("", "struct <anon>", 0)]),
    (1, 2): ("struct", 4, [("lo", "short", 0), ("hi", "short", 16)]),
    (2,): ("struct", 2, [("x", "char", 0), ("y", "char", 8)]),
}

BASE_TYPES = {
    "char": IntType("char", 1, True), "signed char": IntType("signed char", 1, True),
    "unsigned char": IntType("unsigned char", 1, False), "short": IntType("short", 2, True),
    "unsigned short": IntType("unsigned short", 2, False), "int": IntType("int", 4, True),
    "unsigned int": IntType("unsigned int", 4, False), "long": IntType("long", 8, True),
    "unsigned long": IntType("unsigned long", 8, False), "long long": IntType("long long", 8, True),
    "unsigned long long": IntType("unsigned long long", 8, False), "_Bool": IntType("_Bool", 1, False),
    "void": IntType("void", 0), "float": FloatType("float", 4), "double": FloatType("double", 8),
    "long double": FloatType("long double", 16), "float complex": FloatType("float complex", 8),
    "double complex": FloatType("double complex", 16),
}

ENUMS = {
    "enum color": EnumType("color", 4, (("RED", 0), ("GREEN", 5), ("BLUE", 6)), signed=False),
    "enum temp": EnumType("temp", 4, (("COLD", -40), ("FREEZING", -1), ("ZERO", 0), ("HOT", 100)), signed=True),
}

TYPEDEFS = {"myint_t": "int", "myint2_t": "myint_t", "myint3_t": "myint2_t",
            "callback_t": "int (*)(void *, const char *, ...)", "point_t": "struct <anon>"}

OBJECTS = {"g_chain": "myint3_t", "g_temp": "enum temp", "g_name": "const char *", "g_cb": "callback_t",
           "g_flex": "struct flex *", "g_big": "struct big *", "ctf_shared": "struct ctf_shared",
           "g_basics": "struct basics"}
FUNCTIONS = {"add": "int (int, int)", "vsum": "long (int, ...)", "noargs": "void (void)", "main": "int (void)"}


# ------------------------------------------------------------------ fixtures and helpers


@pytest.fixture(scope="module")
def built() -> Path:
    """The cache directory with the compiled program and its CTF containers."""
    try:
        return ctfconv.ensure()
    except Exception as e:  # no compiler here: fatal in CI, a skip elsewhere
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CTF fixtures cannot be built: {e}")
        pytest.skip(f"CTF fixtures cannot be built: {e}")


def _open(built: Path, variant: str) -> CtfTypes:
    """A source from a container as bytes (`v2`, ...) or from an ELF section (`elf-v2`, ...)."""
    if variant.startswith("elf-"):
        return CtfTypes.from_elf(ElfFile(str(built / f"prog-{variant[4:]}")))
    return CtfTypes.from_bytes((built / f"{variant}.ctf").read_bytes(), f"ctf:{variant}")


def _resolve(src: CtfTypes, t: CType) -> CType:
    return src.deref(t) if isinstance(t, Ref) else t


def spell(src: CtfTypes, t: CType, inner: str = "") -> str:
    """A type as C declares it, around declarator `inner` (`int (*)[4]`, `char *restrict`)."""
    t = _resolve(src, t)
    match t:
        case IntType(name=name) | FloatType(name=name) | Typedef(name=name):
            return f"{name} {inner}".rstrip()
        case StructType(keyword=kw, tag=tag) | StructRef(keyword=kw, tag=tag):
            return f"{kw} {tag or '<anon>'} {inner}".rstrip()
        case EnumType(tag=tag):
            return f"enum {tag} {inner}".rstrip()
        case PointerType(target=target):
            aggregate = isinstance(_resolve(src, target), ArrayType | FunctionType)
            return spell(src, target, f"(*{inner})" if aggregate else f"*{inner}")
        case ArrayType(element=element, count=count):
            return spell(src, element, f"{inner}[{count}]" if inner else f"[{count}]")
        case FunctionType(returns=returns, params=params, variadic=variadic):
            args = [spell(src, p) for p in params] + (["..."] if variadic else [])
            return spell(src, returns, f"{inner}({', '.join(args) or 'void'})")
        case QualifiedType(qualifiers=quals, target=target):
            words = " ".join(q for q in ("const", "volatile", "restrict") if q in quals)
            if isinstance(_resolve(src, target), PointerType):
                return spell(src, target, f"{words}{inner}")
            return f"{words} {spell(src, target, inner)}"
    raise AssertionError(t)


def _layout(src: CtfTypes, t: StructType) -> list[tuple]:
    return [(m.name, spell(src, m.type), m.offset_bits) + ((m.bit_size,) if m.bit_size else ())
            for m in t.members]


def _sections(data: bytes) -> tuple[list[int], bytearray]:
    """The header fields and the uncompressed body of a container (parsed here, not by pmdb)."""
    fields = list(struct.unpack_from("<HBBIIIIIIII", data))
    body = data[36:]
    return fields, bytearray(zlib.decompress(body) if fields[FLAGS] & 1 else body)


def _pack(fields: list[int], body: bytes) -> bytes:
    return struct.pack("<HBBIIIIIIII", *fields) + (zlib.compress(bytes(body)) if fields[FLAGS] & 1 else bytes(body))


def _type_offsets(fields: list[int], body: bytes) -> list[int]:
    """Where each type record starts, walked here from the format definition (version 2 only)."""
    pos, end, out = fields[TYPEOFF], fields[STROFF], []
    while pos < end:
        out.append(pos)
        _name, info, size = struct.unpack_from("<IHH", body, pos)
        kind, vlen = info >> 11, info & 0x3FF
        inc = 8
        if size == 0xFFFF:
            size = struct.unpack_from("<II", body, pos + 8)
            size, inc = size[0] << 32 | size[1], 16
        vbytes = {1: 4, 2: 4, 4: 8, 5: (2 * vlen + 3) & ~3, 8: 8 * vlen}.get(kind, 0)
        if kind in (6, 7):
            vbytes = vlen * (8 if size < 8192 else 16)
        pos += inc + vbytes
    return out


def _record_of(data: bytes, name: str, kind: int) -> tuple[list[int], bytearray, int]:
    """The header, body and record offset of the v2 type called `name` of `kind`."""
    fields, body = _sections(data)
    strings = bytes(body[fields[STROFF] : fields[STROFF] + fields[STRLEN]])
    for pos in _type_offsets(fields, body):
        name_ref, info, _ = struct.unpack_from("<IHH", body, pos)
        end = strings.find(b"\0", name_ref)
        if info >> 11 == kind and not name_ref >> 31 and strings[name_ref:end] == name.encode():
            return fields, body, pos
    raise AssertionError(name)


def _every_type(src: CtfTypes) -> list[CType]:
    """Deref every type id of the container (BadDumpError propagates)."""
    c = src.container
    return [src.deref(Ref(src.name, c.type_id(i))) for i in range(1, c.count + 1)]


# ------------------------------------------------------------------ layouts


@pytest.mark.parametrize("variant", VARIANTS + tuple(f"elf-{v}" for v in VARIANTS))
@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_struct_layout(built: Path, variant: str, name: str) -> None:
    src = _open(built, variant)
    t = src.lookup(name)
    size, members = LAYOUTS[name]
    assert isinstance(t, StructType)
    assert (f"{t.keyword} {t.tag}", t.size, _layout(src, t)) == (name, size, members)


@pytest.mark.parametrize("variant", VARIANTS)
def test_anonymous_members(built: Path, variant: str) -> None:
    src = _open(built, variant)
    for path, (keyword, size, members) in ANON_LAYOUTS.items():
        t = src.lookup("struct anon")
        for index in path:
            assert isinstance(t, StructType)
            t = _resolve(src, t.members[index].type)
        assert isinstance(t, StructType)
        assert (t.keyword, t.tag, t.size, _layout(src, t)) == (keyword, None, size, members)


@pytest.mark.parametrize("variant", VARIANTS)
def test_base_types_enums_typedefs(built: Path, variant: str) -> None:
    src = _open(built, variant)
    assert {n: src.lookup(n) for n in BASE_TYPES} == BASE_TYPES
    assert {n: src.lookup(n) for n in ENUMS} == ENUMS
    for name, target in TYPEDEFS.items():
        t = src.lookup(name)
        assert isinstance(t, Typedef) and t.name == name
        assert spell(src, t.target) == target
    point = _resolve(src, src.lookup("point_t").target)
    assert isinstance(point, StructType) and _layout(src, point) == [("x", "int", 0), ("y", "int", 32)]


@pytest.mark.parametrize("variant", VARIANTS)
def test_lookup_spellings(built: Path, variant: str) -> None:
    src = _open(built, variant)
    bits = src.lookup("struct bits")
    ptr = src.lookup("const struct  bits *")
    assert isinstance(ptr, PointerType) and ptr.size == 8 and src.deref(ptr.target) == bits
    assert spell(src, src.lookup("char**")) == "char **"
    assert src.lookup("unsigned   long") == BASE_TYPES["unsigned long"]
    assert src.lookup("struct opaque") == StructRef("struct", "opaque")
    assert spell(src, src.lookup("struct node").members[0].type) == "struct node *"
    for missing in ("struct nosuch", "union bits", "enum bits", "nosuch_t", "*", "int * int", "", "struct"):
        assert src.lookup(missing) is None, missing


@pytest.mark.parametrize("variant", VARIANTS)
def test_refs_name_their_source(built: Path, variant: str) -> None:
    src = _open(built, variant)
    refs = [m.type for m in src.lookup("struct ops").members if isinstance(m.type, Ref)]
    assert refs and all(r.source == src.name for r in refs)
    assert src.deref(refs[0]) is src.deref(refs[0])  # decoded once
    with pytest.raises(TypeNotFound):
        src.deref(Ref("dwarf:elsewhere", refs[0].key))


@pytest.mark.parametrize("variant", VARIANTS)
def test_symbol_types_from_elf(built: Path, variant: str) -> None:
    src = _open(built, f"elf-{variant}")
    assert {n: spell(src, src.object_type(n)) for n in OBJECTS} == OBJECTS
    assert {n: spell(src, src.function_type(n)) for n in FUNCTIONS} == FUNCTIONS
    assert src.object_type("nosuch") is None and src.function_type("_start") is None
    assert src.declaration("g_temp") == ENUMS["enum temp"]
    assert spell(src, src.declaration("vsum")) == FUNCTIONS["vsum"] and src.declaration("nosuch") is None
    assert _open(built, variant).declaration("g_temp") is None  # no symbol table beside bare CTF


def test_external_strings(built: Path) -> None:
    """The section's `ctf_shared` tag is in the ELF string table; without it the type says so."""
    elf = _open(built, "elf-v2")
    assert elf.lookup("struct ctf_shared").tag == "ctf_shared"
    data = (built / "v2.sect").read_bytes()
    offsets = _type_offsets(*_sections(data))
    body = _sections(data)[1]
    tid = next(i for i, pos in enumerate(offsets, 1) if struct.unpack_from("<I", body, pos)[0] >> 31)
    alone = CtfTypes.from_bytes(data, "ctf:alone")
    with pytest.raises(BadDumpError, match=r"past the end of the external \(ELF\) string table \(0 bytes\)"):
        alone.deref(Ref(alone.name, tid))


def test_no_ctf_section(built: Path) -> None:
    with pytest.raises(MissingDebugInfoError, match=r"no \.SUNW_ctf section"):
        CtfTypes.from_elf(ElfFile(str(built / "prog")))


# ------------------------------------------------------------------ parent and child


@pytest.fixture(params=(2, 3))
def family(built: Path, request: pytest.FixtureRequest) -> tuple[CtfTypes, CtfTypes, int]:
    v = request.param
    parent = CtfTypes.from_bytes((built / f"v{v}-parent.ctf").read_bytes(), f"ctf:parent{v}")
    child = CtfTypes.from_bytes((built / f"v{v}-child.ctf").read_bytes(), f"ctf:child{v}", parent=parent)
    return parent, child, v


def test_child_sees_parent(family: tuple[CtfTypes, CtfTypes, int]) -> None:
    parent, child, v = family
    first_child_id = 0x8001 if v == 2 else 0x80000001
    assert child.container.is_child and child.container.parent_name == ctfconv.PARENT_NAME
    assert child.container.type_id(1) == first_child_id
    for name, (size, members) in LAYOUTS.items():
        t = child.lookup(name)
        assert (t.size, _layout(child, t)) == (size, members), name
    bits = child.lookup("struct bits")  # a parent type, decoded by the child
    volatile_bits = child.deref(child.deref(child.lookup("struct quals").members[5].type).target)
    assert child.deref(volatile_bits.target) == bits
    assert {m.type.source for m in bits.members} == {child.name}  # every Ref the child gives out is its own
    assert {m.type.source for m in parent.lookup("struct bits").members} == {parent.name}
    assert parent.lookup("struct quals") is None
    assert child.lookup("enum temp") == ENUMS["enum temp"]


def test_child_without_parent(built: Path) -> None:
    child = CtfTypes.from_bytes((built / "v2-child.ctf").read_bytes(), "ctf:orphan")
    basics = child.lookup("struct basics")
    assert basics.size == 112 and child.lookup("struct bits") is None
    with pytest.raises(MissingDebugInfoError, match=f"parent CTF container '{ctfconv.PARENT_NAME}'"):
        child.deref(basics.members[0].type)


def test_child_forward_yields_to_parent_definition(built: Path) -> None:
    prog = ctfconv.convert(built / "prog")
    bits = prog.number(STRUCT, "bits")
    seeds = [n for n, node in enumerate(prog.nodes, 1) if node.kind == INTEGER] + [bits]
    ids, in_parent, in_child = ctfconv.split(prog, seeds, 2)
    prog.nodes.append(Node(FORWARD, "bits", ref=STRUCT))
    in_child.append(len(prog.nodes))
    ids[len(prog.nodes)] = 0x8000 | len(in_child)
    parent = CtfTypes.from_bytes(ctfconv.write(prog, 2, own=in_parent, ids=ids), "p")
    child = CtfTypes.from_bytes(ctfconv.write(prog, 2, own=in_child, ids=ids, child=True), "c", parent=parent)
    alone = CtfTypes.from_bytes(ctfconv.write(prog, 2, own=in_child, ids=ids, child=True), "a")
    defined = child.lookup("struct bits")
    assert isinstance(defined, StructType) and _layout(child, defined) == LAYOUTS["struct bits"][1]
    assert alone.lookup("struct bits") == StructRef("struct", "bits")


# ------------------------------------------------------------------ bad input


def _bad(data: bytes, match: str) -> None:
    with pytest.raises(BadDumpError, match=match):
        CtfTypes.from_bytes(data, "ctf:bad")


def test_bad_headers(built: Path) -> None:
    good = (built / "v2.ctf").read_bytes()
    fields, body = _sections(good)
    _bad(b"", "truncated CTF preamble")
    _bad(b"\xf1\xcf\x02", "truncated CTF preamble")
    _bad(b"\x7fELF" + good[4:], "bad CTF magic 0x457f")
    _bad(b"\xcf\xf1" + good[2:], "big-endian CTF is not supported")
    _bad(good[:2] + b"\x01" + good[3:], "unsupported CTF version 1")
    _bad(good[:2] + b"\x04" + good[3:], "unsupported CTF version 4")
    _bad(good[:20], r"truncated CTF header \(20 of 36 bytes\)")
    _bad(good[:-10], "truncated CTF data")
    for i, value, match in ((OBJTOFF, fields[FUNCOFF] + 8, "out of order"),
                            (TYPEOFF, fields[TYPEOFF] + 2, "misaligned"), (STRLEN, 0xFFFFFFFF, "truncated CTF data")):
        bad = list(fields)
        bad[i] = value
        _bad(_pack(bad, body), match)


def test_bad_compressed_data(built: Path) -> None:
    good = (built / "v3z.ctf").read_bytes()
    fields = _sections(good)[0]
    _bad(good[:36] + b"\x78\x9c" + b"\xff" * 40, "compressed CTF data is corrupt")
    _bad(good[:60], "compressed CTF data is truncated")
    longer = [*fields[:STRLEN], fields[STRLEN] - 5]
    _bad(struct.pack("<HBBIIIIIIII", *longer) + good[36:], "inflates to more than")
    shorter = [*fields[:STRLEN], 0xFFFFFFFF - fields[STROFF]]
    _bad(struct.pack("<HBBIIIIIIII", *shorter) + good[36:], "ends early")


def test_bad_type_section(built: Path) -> None:
    """A record that cannot be walked past spoils the container: later types cannot be found."""
    fields, body, pos = _record_of((built / "v2.ctf").read_bytes(), "bits", STRUCT)
    info = struct.unpack_from("<H", body, pos + 4)[0]
    struct.pack_into("<H", body, pos + 4, 31 << 11)
    _bad(_pack(fields, body), r"type 0x[0-9a-f]+: invalid kind 31")
    struct.pack_into("<H", body, pos + 4, info | 0x3FF)
    _bad(_pack(fields, body), r"\(1023 entries\) runs past the end of the type section")
    struct.pack_into("<H", body, pos + 4, info)
    fields[STROFF] = pos + 4  # the type section ends inside the record
    fields[STRLEN] = 0
    _bad(_pack(fields, body[: pos + 4]), "is truncated")


def test_bad_records_spoil_only_their_type(built: Path) -> None:
    fields, body, pos = _record_of((built / "v2.ctf").read_bytes(), "bits", STRUCT)
    members = pos + 8
    struct.pack_into("<I", body, pos, fields[STRLEN] + 100)  # the struct's name
    struct.pack_into("<H", body, members + 8 + 4, 0x7000)  # member b's type
    struct.pack_into("<H", body, members + 16 + 4, 0x8005)  # member c's type: a child id, in a parent
    src = CtfTypes.from_bytes(_pack(fields, body), "ctf:bad")
    assert src.lookup("struct bits") is None  # its name is unreadable
    assert src.lookup("struct basics").size == 112
    bits_id = _type_offsets(fields, body).index(pos) + 1
    with pytest.raises(BadDumpError, match=r"type 0x[0-9a-f]+: name offset 0x[0-9a-f]+ is past the end of the CTF"):
        src.deref(Ref(src.name, bits_id))
    value = src.lookup("union value")
    with pytest.raises(BadDumpError, match=r"type 0x[0-9a-f]+: name offset"):
        src.deref(value.members[3].type)


def test_unterminated_names(built: Path) -> None:
    fields, body, pos = _record_of((built / "v2.ctf").read_bytes(), "bits", STRUCT)
    label_name = struct.unpack_from("<I", body, fields[LBLOFF])[0]  # the last string written
    struct.pack_into("<I", body, pos, label_name)
    fields[STRLEN] -= 1  # which loses its terminator
    src = CtfTypes.from_bytes(_pack(fields, body), "ctf:bad")
    with pytest.raises(BadDumpError, match="label: unterminated name at offset"):
        src.container.labels()
    with pytest.raises(BadDumpError, match=r"type 0x[0-9a-f]+: unterminated name at offset"):
        src.deref(Ref(src.name, _type_offsets(fields, body).index(pos) + 1))
    assert src.lookup("struct basics").size == 112


def test_bad_member_type_ids(built: Path) -> None:
    fields, body, pos = _record_of((built / "v2.ctf").read_bytes(), "bits", STRUCT)
    struct.pack_into("<H", body, pos + 8 + 8 + 4, 0x7000)
    struct.pack_into("<H", body, pos + 8 + 16 + 4, 0x8005)
    src = CtfTypes.from_bytes(_pack(fields, body), "ctf:bad")
    bits = src.lookup("struct bits")
    assert [m.offset_bits for m in bits.members][:3] == [0, 3, 8]
    for member, bad_id in ((1, 0x7000), (2, 0x8005)):
        with pytest.raises(BadDumpError, match=f"type id {bad_id:#x} is out of range"):
            src.deref(bits.members[member].type)
    assert spell(src, bits.members[0].type) == "unsigned int"


def _synthetic(nodes: list[Node], version: int = 2) -> CtfTypes:
    return CtfTypes.from_bytes(ctfconv.write(Program(nodes, {}, {}), version), "ctf:synthetic")


@pytest.mark.parametrize("version", (2, 3))
def test_reference_cycles(version: int) -> None:
    int_ = Node(INTEGER, "int", 4, encoding=(1, 0, 32))
    nodes = [int_, Node(TYPEDEF, "a_t", ref=3), Node(TYPEDEF, "b_t", ref=2), Node(CONST, ref=4),
             Node(ctfconv.ARRAY, array=(5, 1, 2)), Node(TYPEDEF, "ok_t", ref=1),
             Node(STRUCT, "holder", 8, members=[("a", 2, 0), ("ok", 6, 32)])]
    src = _synthetic(nodes, version)
    for name in ("a_t", "b_t"):
        with pytest.raises(BadDumpError, match="reference cycle"):
            src.lookup(name)
    for tid in (4, 5):
        with pytest.raises(BadDumpError, match=f"type {tid:#x}: reference cycle {tid:#x} -> .*{tid:#x}"):
            src.deref(Ref(src.name, tid))
    holder = src.lookup("struct holder")
    assert spell(src, holder.members[1].type) == "ok_t" and src.lookup("ok_t").name == "ok_t"


def test_same_name_bitfield_integers_and_unused_slots() -> None:
    """Older converters gave a bit-field's integer its base's name: the full-width one is the
    type of that name, and the member gets it plus the width. A CTF_K_UNKNOWN slot is no type."""
    nodes = [Node(INTEGER, "unsigned int", 4, encoding=(0, 0, 5)),
             Node(INTEGER, "unsigned int", 4, encoding=(0, 0, 32)),
             Node(STRUCT, "flags", 4, members=[("lo", 1, 0), ("hi", 2, 5)]), Node(0)]
    src = _synthetic(nodes)
    assert src.lookup("unsigned int") == IntType("unsigned int", 4, False)
    flags = src.lookup("struct flags")
    assert [(m.name, m.offset_bits, m.bit_size) for m in flags.members] == [("lo", 0, 5), ("hi", 5, None)]
    assert spell(src, flags.members[0].type) == "unsigned int" and flags.members[0].type == flags.members[1].type
    with pytest.raises(BadDumpError, match=r"type 0x4 is an unused \(CTF_K_UNKNOWN\) slot"):
        src.deref(Ref(src.name, 4))


def test_too_many_types() -> None:
    nodes = [Node(INTEGER, "int", 4, encoding=(1, 0, 32)) for _ in range(0x8000)]
    with pytest.raises(BadDumpError, match="more than 32767 types in a version 2 container"):
        _synthetic(nodes, 2)
    assert _synthetic(nodes, 3).container.count == 0x8000


def test_bad_function_section(built: Path) -> None:
    """Function entries that are not CTF_K_FUNCTION: an error for the function section only."""
    fields, body = _sections((built / "v2.sect").read_bytes())
    funcs = slice(fields[FUNCOFF], fields[TYPEOFF])
    body[funcs] = struct.pack("<H", STRUCT << 11 | 2) * ((funcs.stop - funcs.start) // 2)
    stt = {"STT_OBJECT": 1, "STT_FUNC": 2}
    shn = {"SHN_UNDEF": 0, "SHN_ABS": 0xFFF1}
    syms = [(n, stt.get(t, 0), shn.get(sh, sh if isinstance(sh, int) else 0xFFF2), v)
            for n, t, sh, v in ctfconv.elf_symbols(built / "prog")[0]]
    src = CtfTypes(Container(_pack(fields, body)), "ctf:bad", symbols=lambda: syms)
    with pytest.raises(BadDumpError, match=r"function section entry for symbol .* is corrupt"):
        src.function_type("add")
    assert src.object_type("g_temp") == ENUMS["enum temp"]
    with pytest.raises(MissingDebugInfoError, match="no symbol table"):
        CtfTypes.from_bytes(_pack(fields, body), "ctf:nosyms").object_type("g_temp")


@pytest.mark.parametrize("variant", ("v2", "v3z"))
def test_random_corruption(built: Path, variant: str) -> None:
    """Flipped bytes and truncations of a good container: BadDumpError or a good answer, quickly."""
    fields, body = _sections((built / f"{variant}.ctf").read_bytes())
    rng = random.Random(f"ctf-{variant}")
    names = [*LAYOUTS, *BASE_TYPES, *ENUMS, *TYPEDEFS]
    for _ in range(300):
        mutated = bytearray(body)
        for _ in range(rng.randint(1, 6)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        if rng.random() < 0.2:
            mutated = mutated[: rng.randrange(len(mutated))]
        header = list(fields)
        if rng.random() < 0.2:
            header[rng.randrange(3, 11)] = rng.choice((0, 1, 0x7FFF, 0xFFFF, 0xFFFFFFFF, rng.randrange(1 << 32)))
        try:
            src = CtfTypes.from_bytes(_pack(header, mutated), "ctf:fuzz")
        except BadDumpError:
            continue
        _exercise(src, names)


def _exercise(src: CtfTypes, names: list[str]) -> None:
    """Read everything a source holds; only BadDumpError and MissingDebugInfoError may stop it."""
    for step in (_every_type, lambda s: [s.lookup(n) for n in names], lambda s: s.container.labels()):
        try:
            step(src)
        except (BadDumpError, MissingDebugInfoError):
            pass
