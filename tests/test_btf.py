"""BTF: pmdb's parser (formats/btf.py) and type source (debuginfo/btf_types.py) against bpftool.

The BTF is pahole's conversion of tests/fixtures/src/btf_types.c's DWARF (every type checked),
a split BTF built against it, a hand-encoded split BTF with what gcc cannot produce (tags, the
older bit-field encoding), and a real kernel's (/sys/kernel/btf/vmlinux, or the .BTF of
Debian's cloud kernel): a sample of thousands of types plus named ones. `bpftool btf dump
format raw` of the same bytes is the ground truth, for the records and for the model types
built from them. Then bad input: each malformation is one clear BadDumpError, never a
traceback or a hang, and the rest of the BTF stays usable.
"""

from __future__ import annotations

import random
import re
import struct
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest
from btf_fixture import (
    BtfFixture,
    BtfWriter,
    FixtureError,
    RawItem,
    RawRecord,
    bpftool_raw,
    ensure,
    kernel_btf,
    parse_raw,
)
from conftest import IN_CI

from pmdb.debuginfo.btf_types import VOID, BtfTypes
from pmdb.debuginfo.ctypes import (
    ArrayType,
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
)
from pmdb.errors import BadDumpError, MissingDebugInfoError, PmdbError, TypeNotFound
from pmdb.formats.btf import Btf, BtfType, Kind
from pmdb.formats.elf import ElfFile


def _unavailable(what: str, e: Exception) -> None:
    """A fixture that cannot be built fails the test under CI and skips it elsewhere."""
    message = f"{what} unavailable: {e}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def fx() -> BtfFixture:
    try:
        return ensure()
    except FixtureError as e:
        _unavailable("BTF fixture (gcc, pahole, bpftool)", e)
        raise


@pytest.fixture(scope="module")
def base(fx: BtfFixture) -> BtfTypes:
    return BtfTypes.from_bytes(fx.path("base.btf").read_bytes(), "base.btf")


# ---------------------------------------------------------------- bpftool's view of pmdb's records

_INT_ENCODING = {0: "(none)", 1: "SIGNED", 2: "CHAR", 4: "BOOL"}
_FUNC_LINKAGE = {0: "static", 1: "global", 2: "extern"}
_VAR_LINKAGE = {0: "static", 1: "global"}
_REFERRING = {Kind.PTR, Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG}


def as_raw(btf: Btf, t: BtfType) -> RawRecord:
    """pmdb's decoded record in the form bpftool prints it."""
    a: dict[str, str] = {}
    items: list[RawItem] = []
    k = t.kind
    if k == Kind.INT:
        a = {"size": str(t.size), "bits_offset": str(t.bit_offset), "nr_bits": str(t.bits),
             "encoding": _INT_ENCODING.get(t.encoding, "UNKN")}
    elif k in _REFERRING:
        a = {"type_id": str(t.type)}
    elif k == Kind.ARRAY:
        a = {"type_id": str(t.type), "index_type_id": str(t.index_type), "nr_elems": str(t.nelems)}
    elif k in (Kind.STRUCT, Kind.UNION):
        a = {"size": str(t.size), "vlen": str(t.vlen)}
        for m in t.members:
            attrs = {"type_id": str(m.type), "bits_offset": str(m.offset)}
            if m.bit_size:
                attrs["bitfield_size"] = str(m.bit_size)
            items.append(RawItem(m.name, attrs))
    elif k in (Kind.ENUM, Kind.ENUM64):
        a = {"encoding": "SIGNED" if t.kind_flag else "UNSIGNED", "size": str(t.size), "vlen": str(t.vlen)}
        suffix = "" if k == Kind.ENUM else "LL" if t.kind_flag else "ULL"
        items = [RawItem(e.name, {"val": f"{e.value}{suffix}"}) for e in t.enumerators]
    elif k == Kind.FWD:
        a = {"fwd_kind": "union" if t.kind_flag else "struct"}
    elif k == Kind.FUNC:
        a = {"type_id": str(t.type), "linkage": _FUNC_LINKAGE.get(t.linkage, "UNKN")}
    elif k == Kind.FUNC_PROTO:
        a = {"ret_type_id": str(t.type), "vlen": str(t.vlen)}
        items = [RawItem(p.name, {"type_id": str(p.type)}) for p in t.params]
    elif k == Kind.VAR:
        a = {"type_id": str(t.type), "linkage": _VAR_LINKAGE.get(t.linkage, "UNKN")}
    elif k == Kind.DATASEC:
        a = {"size": str(t.size), "vlen": str(t.vlen)}
        items = [RawItem(btf.get(v.type).name, {"type_id": str(v.type), "offset": str(v.offset), "size": str(v.size)})
                 for v in t.secinfo]
    elif k == Kind.FLOAT:
        a = {"size": str(t.size)}
    elif k == Kind.DECL_TAG:
        a = {"type_id": str(t.type), "component_idx": str(t.component_idx)}
    return RawRecord(t.id, k.name, t.name, a, items)


# ---------------------------------------------------------------- the model types bpftool implies

_TRANSPARENT = ("TYPEDEF", "CONST", "VOLATILE", "RESTRICT", "TYPE_TAG")


class Expect:
    """Model types built from bpftool's records alone: what pmdb's BtfTypes must return."""

    def __init__(self, records: dict[int, RawRecord], src: BtfTypes) -> None:
        self.records = records
        self.src = src

    def ref(self, tid: int | str) -> CType:
        tid = int(tid)
        if tid == 0:
            return VOID
        owner = self.src.base if self.src.base is not None and tid < self.src.btf.start_id else self.src
        assert owner is not None
        return Ref(owner.name, tid)

    def member(self, item: RawItem) -> Member:
        offset, bit_size = int(item.attrs["bits_offset"]), int(item.attrs.get("bitfield_size", 0))
        tid = int(item.attrs["type_id"])
        under = self.records[tid] if tid else None
        while under is not None and under.kind in _TRANSPARENT and int(under.attrs["type_id"]):
            under = self.records[int(under.attrs["type_id"])]
        if not bit_size and under is not None and under.kind == "INT":  # the encoding without kind_flag
            size, bits, bit_off = (int(under.attrs[k]) for k in ("size", "nr_bits", "bits_offset"))
            if bit_off or bits != size * 8:
                offset, bit_size = offset + bit_off, bits
        return Member(item.name, self.ref(tid), offset, bit_size or None)

    def ctype(self, tid: int) -> CType:
        r = self.records[tid]
        a = r.attrs
        match r.kind:
            case "INT":
                return IntType(r.name, int(a["size"]), a["encoding"] == "SIGNED")
            case "FLOAT":
                return FloatType(r.name, int(a["size"]))
            case "PTR":
                return PointerType(self.ref(a["type_id"]), 8)
            case "ARRAY":
                return ArrayType(self.ref(a["type_id"]), int(a["nr_elems"]))
            case "STRUCT" | "UNION":
                members = tuple(self.member(i) for i in r.items)
                return StructType(r.kind.lower(), r.name or None, members, int(a["size"]))
            case "ENUM" | "ENUM64":
                return EnumType(r.name or None, int(a["size"]),
                                tuple((i.name, int(i.attrs["val"].rstrip("LU"))) for i in r.items),
                                a["encoding"] == "SIGNED")
            case "FWD":
                return StructRef(a["fwd_kind"], r.name)
            case "TYPEDEF":
                return Typedef(r.name, self.ref(a["type_id"]))
            case "CONST" | "VOLATILE" | "RESTRICT":
                return QualifiedType(frozenset({r.kind.lower()}), self.ref(a["type_id"]))
            case "FUNC_PROTO":
                params = [int(i.attrs["type_id"]) for i in r.items]
                variadic = bool(params) and params[-1] == 0
                fixed = tuple(self.ref(p) for p in params[: len(params) - variadic])
                return FunctionType(self.ref(a["ret_type_id"]), fixed, variadic)
            case "FUNC" | "VAR" | "TYPE_TAG":
                target = int(a["type_id"])
                return self.ctype(target) if target else VOID
        raise TypeNotFound(r.kind)

    def lookup_id(self, keyword: str, name: str, by_name: dict[str, list[int]]) -> int | None:
        """The id lookup(`keyword name`) must find: a definition before a declaration, then the first."""
        kinds = {"struct": ("STRUCT", "FWD"), "union": ("UNION", "FWD"), "enum": ("ENUM", "ENUM64"),
                 "": ("TYPEDEF", "INT", "FLOAT")}[keyword]
        ids = [i for i in by_name.get(name, []) if self.records[i].kind in kinds
               and (self.records[i].kind != "FWD" or self.records[i].attrs["fwd_kind"] == keyword)]
        complete = [i for i in ids if self.records[i].kind != "FWD" and self.records[i].attrs.get("vlen") != "0"]
        return (complete or ids or [None])[0]


def _by_name(records: dict[int, RawRecord]) -> dict[str, list[int]]:
    index: dict[str, list[int]] = defaultdict(list)
    for tid in sorted(records):
        if records[tid].name:
            index[records[tid].name].append(tid)
    return index


def _c_name(r: RawRecord) -> tuple[str, str] | None:
    """(keyword, name) by which C names record `r`, None for a type C cannot name."""
    if not r.name:
        return None
    if r.kind in ("STRUCT", "UNION", "ENUM"):
        return r.kind.lower(), r.name
    if r.kind == "ENUM64":
        return "enum", r.name
    if r.kind == "FWD":
        return r.attrs["fwd_kind"], r.name
    return ("", r.name) if r.kind in ("TYPEDEF", "INT", "FLOAT") else None


def check_against_bpftool(src: BtfTypes, records: dict[int, RawRecord], ids: list[int],
                          all_records: dict[int, RawRecord] | None = None) -> int:
    """Compare pmdb's record, model type and C-name lookup of each of `ids` with bpftool's;
    return how many were compared. `all_records` adds a split BTF's base records."""
    every = {**(all_records or {}), **records}
    expect = Expect(every, src)
    by_name = _by_name(every)
    problems = []
    for tid in ids:
        want = records[tid]
        got = as_raw(src.btf, src.btf.get(tid))
        if got != want:
            problems.append(f"record {tid}: pmdb {got} != bpftool {want}")
            continue
        try:
            expected: CType | type[Exception] = expect.ctype(tid)
        except TypeNotFound:
            expected = TypeNotFound
        if expected is TypeNotFound:
            with pytest.raises(TypeNotFound):
                src.type_by_id(tid)
        elif src.deref(Ref(src.name, tid)) != expected:
            problems.append(f"type {tid}: pmdb {src.type_by_id(tid)} != {expected}")
        named = _c_name(want)
        if named is not None:
            keyword, name = named
            found = src.lookup(f"{keyword} {name}".strip())
            chosen = expect.lookup_id(keyword, name, by_name)
            if chosen is None or found != expect.ctype(chosen):
                problems.append(f"lookup {keyword} {name}: pmdb {found} != bpftool's type {chosen}")
    assert not problems, "\n".join(problems[:20])
    return len(ids)


# ---------------------------------------------------------------- the small program


def base_records_id(records: dict[int, RawRecord], kind: str, name: str) -> int:
    """The id bpftool gives the first `kind` record called `name`."""
    return next(r.id for r in records.values() if (r.kind, r.name) == (kind, name))


def test_every_type_of_the_program(fx: BtfFixture, base: BtfTypes) -> None:
    records = fx.raw("base")
    assert len(base.btf) == len(records) == max(records)
    kinds = {r.kind for r in records.values()}
    assert kinds >= {"INT", "PTR", "ARRAY", "STRUCT", "UNION", "ENUM", "ENUM64", "FWD", "TYPEDEF", "VOLATILE",
                     "CONST", "RESTRICT", "FUNC", "FUNC_PROTO", "VAR", "DATASEC", "FLOAT"}
    check_against_bpftool(base, records, sorted(records))


def test_the_object_files_btf_section(fx: BtfFixture) -> None:
    elf = ElfFile(str(fx.path("elf.o")))
    src = BtfTypes.from_elf(elf)
    records = fx.raw("elf")
    assert len(src.btf) == len(records)
    check_against_bpftool(src, records, sorted(records))
    with pytest.raises(MissingDebugInfoError, match=r"base\.o: no \.BTF section"):
        BtfTypes.from_elf(ElfFile(str(fx.path("base.o"))))


def test_split_btf(fx: BtfFixture, base: BtfTypes) -> None:
    split = BtfTypes.from_bytes(fx.path("split.btf").read_bytes(), "split.btf", base)
    records, base_records = fx.raw("split"), fx.raw("base")
    assert split.btf.start_id == max(base_records) + 1 == min(records)
    check_against_bpftool(split, records, sorted(records), base_records)
    state = split.lookup("struct module_state")
    assert isinstance(state, StructType)
    link = state.members[0]
    assert (link.name, link.type) == ("link", Ref(base.name, base_records_id(base_records, "STRUCT", "list")))
    assert split.deref(link.type) is base.lookup("struct list")  # base types through the split source
    assert split.lookup("int") is base.lookup("int")
    assert split.name != base.name


def test_tags_old_bitfields_and_linkages(fx: BtfFixture, base: BtfTypes) -> None:
    extra = BtfTypes.from_bytes(fx.path("extra.btf").read_bytes(), "extra.btf", base)
    records, base_records = fx.raw("extra"), fx.raw("base")
    assert {r.kind for r in records.values()} >= {"TYPE_TAG", "DECL_TAG", "FUNC", "VAR", "DATASEC"}
    check_against_bpftool(extra, records, sorted(records), base_records)
    # A tag is transparent: a pointer to a tagged struct points at the struct.
    ptr = extra.type_by_id(base_records_id(records, "TYPE_TAG", "user") + 1)
    assert isinstance(ptr, PointerType) and extra.deref(ptr.target) is base.lookup("struct list")
    # The older bit-field encoding: widths and an extra bit offset from the INT types.
    legacy = extra.lookup("struct legacy_bits")
    assert isinstance(legacy, StructType)
    assert [(m.name, m.offset_bits, m.bit_size) for m in legacy.members] == [
        ("a", 0, 3), ("b", 5, 5), ("c", 10, 3), ("d", 32, None)]
    assert extra.lookup("enum enum_fwd") == EnumType("enum_fwd", 4, (), signed=False)
    assert extra.lookup("enum enum64_signed") == EnumType("enum64_signed", 8, (("E64_MIN", -(1 << 63)), ("E64_M1", -1)),
                                                          signed=True)


def test_c_names_and_declarations(fx: BtfFixture, base: BtfTypes) -> None:
    """C's spellings of base types, tags in their namespaces, declarations, foreign refs."""
    for spelled, btf_name in (("unsigned long", "long unsigned int"), ("long", "long int"),
                              ("unsigned", "unsigned int"), ("short", "short int"),
                              ("unsigned short int", "short unsigned int"),
                              ("long long unsigned", "long long unsigned int"), ("signed char", "signed char"),
                              ("unsigned __int128", "__int128 unsigned"), ("long  double", "long double")):
        found = base.lookup(spelled)
        assert found is not None and found == base.lookup(btf_name), spelled
        assert getattr(found, "name", None) == btf_name
    assert base.lookup("signed long") == base.lookup("long int")
    assert base.lookup("void") is VOID
    assert base.lookup("struct opaque") == StructRef("struct", "opaque")
    assert base.lookup("union opaque_u") == StructRef("union", "opaque_u")
    assert base.lookup("struct opaque_u") is None and base.lookup("union list") is None
    assert base.lookup("struct nonexistent") is None and base.lookup("btf_global_fn") is None
    bits = base.lookup("struct bits")
    assert isinstance(bits, StructType)
    assert [(m.name, m.offset_bits, m.bit_size) for m in bits.members] == [
        ("a", 0, 3), ("b", 3, 5), ("flag", 12, 1), ("col", 13, 3), ("wide", 64, 40), ("straddle", 128, 30),
        ("ch", 160, 7), ("after", 176, None)]
    flex = base.lookup("struct flex")
    char = Ref(base.name, base_records_id(fx.raw("base"), "INT", "char"))
    assert isinstance(flex, StructType) and base.deref(flex.members[1].type) == ArrayType(char, 0)
    assert base.lookup("enum sign") == EnumType("sign", 4, (("NEG_BIG", -2**31), ("NEG_ONE", -1), ("ZERO", 0),
                                                             ("POS", 7)), True)
    int_ref = Ref(base.name, base.btf.ids_named("int")[0])
    assert base.declaration("btf_static_fn") == FunctionType(int_ref, (int_ref,), True)
    assert base.declaration("pcpu_counter") == base.lookup("int")
    assert base.declaration("c_int") is None  # pahole 1.24 encodes per-CPU variables only
    with pytest.raises(TypeNotFound):
        base.deref(Ref("btf:other", 1))


# ---------------------------------------------------------------- a real kernel


@dataclass(frozen=True)
class Kernel:
    """A kernel's BTF: where it is, bpftool's records of it, and pmdb's source."""

    path: Path
    is_elf: bool
    records: dict[int, RawRecord]

    def open(self) -> BtfTypes:
        """pmdb's type source over the kernel's BTF, from the file each time."""
        if self.is_elf:
            return BtfTypes.from_elf(ElfFile(str(self.path)))
        return BtfTypes.from_bytes(self.path.read_bytes(), str(self.path))


@pytest.fixture(scope="module")
def kernel() -> Kernel:
    try:
        path, is_elf = kernel_btf()
        return Kernel(path, is_elf, parse_raw(bpftool_raw(path)))
    except FixtureError as e:
        _unavailable("a kernel's BTF", e)
        raise


def test_kernel_sample(kernel: Kernel) -> None:
    src, records = kernel.open(), kernel.records
    assert len(src.btf) == len(records) > 10_000 and src.btf.error is None
    by_kind: dict[str, list[int]] = defaultdict(list)
    for tid in sorted(records):
        by_kind[records[tid].kind].append(tid)
    sample = set(range(1, max(records) + 1, max(1, len(records) // 5000)))
    for ids in by_kind.values():
        sample.update(ids[:40])
    by_name = _by_name(records)
    for name in ("task_struct", "list_head", "mm_struct", "file", "inode", "page", "sk_buff", "pid_type",
                 "u64", "atomic_t", "spinlock_t"):
        sample.update(by_name.get(name, []))
    assert check_against_bpftool(src, records, sorted(sample)) > 5000


def test_kernel_task_struct_and_list_head(kernel: Kernel) -> None:
    src, records = kernel.open(), kernel.records
    raw = {r.kind + " " + r.name: r for r in records.values() if r.kind == "STRUCT" and r.name in
           ("task_struct", "list_head")}
    task = src.lookup("struct task_struct")
    assert isinstance(task, StructType) and task.size == int(raw["STRUCT task_struct"].attrs["size"])
    assert [(m.name, m.type, m.offset_bits, m.bit_size) for m in task.members] == [
        (i.name, Ref(src.name, int(i.attrs["type_id"])), int(i.attrs["bits_offset"]),
         int(i.attrs["bitfield_size"]) if "bitfield_size" in i.attrs else None)
        for i in raw["STRUCT task_struct"].items]
    names = {m.name for m in task.members}
    assert {"pid", "tgid", "comm", "tasks", "mm", "stack"} <= names
    list_head = src.lookup("struct list_head")
    assert isinstance(list_head, StructType) and list_head.size == 16
    assert [m.name for m in list_head.members] == ["next", "prev"]
    assert src.deref(list_head.members[0].type) == PointerType(Ref(src.name, raw["STRUCT list_head"].id), 8)
    tasks = next(m for m in task.members if m.name == "tasks")
    assert src.deref(tasks.type) is list_head


def test_kernel_open_and_lookup_is_fast(kernel: Kernel) -> None:
    start = time.perf_counter()
    task = kernel.open().lookup("struct task_struct")
    elapsed = time.perf_counter() - start
    assert isinstance(task, StructType)
    assert elapsed < 1.0, f"open + lookup took {elapsed:.3f}s"


# ---------------------------------------------------------------- bad input


def _small() -> tuple[BtfWriter, dict[str, int]]:
    """A valid little BTF: int, struct node { struct node *next; int value; }, a typedef."""
    w = BtfWriter()
    ids = {"int": w.int_("int", 4, 32, encoding=1)}
    ids["node"] = w.struct_("node", 16, [("next", 3, 0), ("value", ids["int"], 64)])
    ids["ptr"] = w.add("PTR", size_type=ids["node"])
    ids["node_t"] = w.add("TYPEDEF", "node_t", ids["node"])
    return w, ids


def test_small_writer_blob_is_valid() -> None:
    w, ids = _small()
    src = BtfTypes.from_bytes(w.blob(), "small")
    node = src.lookup("struct node")
    assert isinstance(node, StructType) and src.deref(node.members[0].type) == PointerType(Ref(src.name, 2), 8)
    assert src.lookup("node_t") == Typedef("node_t", Ref(src.name, ids["node"]))


@pytest.mark.parametrize(("data", "message"), [
    (b"", r"small: BTF header truncated \(0 bytes, need 24\)"),
    (b"\x9f\xeb\x01\x00\x18\x00", r"BTF header truncated \(6 bytes"),
    (b"\x7fELF" + bytes(40), r"not BTF \(magic 0x457f"),
    (b"\xeb\x9f\x01\x00" + bytes(20), r"big-endian BTF is not supported"),
    (b"\x9f\xeb\x02\x00" + bytes(20), r"BTF version 2 is not supported"),
    (struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 12, 0, 0, 0, 0), r"header length 12 is outside"),
])
def test_bad_header(data: bytes, message: str) -> None:
    with pytest.raises(BadDumpError, match=message):
        BtfTypes.from_bytes(data, "small")


def test_truncated_blob() -> None:
    blob = _small()[0].blob()
    for cut in (30, 60, len(blob) - 3):
        with pytest.raises(BadDumpError, match=r"small: BTF (type|string) section .* extends past the end .*truncated"):
            BtfTypes.from_bytes(blob[:cut], "small")


def test_truncated_type_section() -> None:
    w, ids = _small()
    src = BtfTypes.from_bytes(w.blob(type_len=len(w.types) - 4), "small")  # the typedef's record is cut
    assert src.lookup("struct node") is not None  # the types before it are fine
    message = r"small: BTF type 4 at type section offset 0x\w+: record truncated"
    with pytest.raises(BadDumpError, match=message):
        src.type_by_id(ids["node_t"])
    assert src.lookup("node_t") is None  # not found, so that a type system tries its other sources
    assert src.btf.error is not None and re.match(message, src.btf.error)
    with pytest.raises(BadDumpError, match="its base BTF is unreadable"):
        BtfTypes.from_bytes(BtfWriter(5).blob(), "module", src)


def test_vlen_past_the_section() -> None:
    w, ids = _small()
    big = w.add("STRUCT", "big", 8, vlen=0xFFFF, tail=struct.pack("<III", w.string("x"), ids["int"], 0))
    after = w.add("TYPEDEF", "after_t", ids["int"])
    src = BtfTypes.from_bytes(w.blob(), "small")
    assert src.lookup("node_t") is not None
    message = r"small: BTF type 5 at type section offset 0x4c: STRUCT with vlen 65535 needs 786432 bytes, only 36 are"
    with pytest.raises(BadDumpError, match=message):
        src.type_by_id(big)
    with pytest.raises(BadDumpError, match=r"small: BTF type 6 cannot be found past the unreadable type 5 at .*vlen"):
        src.type_by_id(after)
    assert src.lookup("struct big") is None and src.btf.error is not None and re.match(message, src.btf.error)


def test_unknown_kind() -> None:
    w, ids = _small()
    w.add(25, "future", 4)
    src = BtfTypes.from_bytes(w.blob(), "small")
    with pytest.raises(BadDumpError, match=r"BTF type 5 at .*: unknown kind 25"):
        src.type_by_id(5)
    assert src.type_by_id(ids["node_t"]) is not None


def test_string_offsets_out_of_range() -> None:
    w, ids = _small()
    bad_name = w.add("TYPEDEF", size_type=ids["int"], name_off=0x10000)
    bad_member = w.struct_("pair", 8, [("a", ids["int"], 0), ("b", ids["int"], 32)])
    src = BtfTypes.from_bytes(w.blob(), "small")
    with pytest.raises(BadDumpError, match=r"small: BTF type 5 \(TYPEDEF\): string offset 0x10000 is past the end"):
        src.type_by_id(bad_name)
    assert src.lookup("struct pair") is not None
    # Now the member name "b" of pair points past the strings.
    blob = bytearray(w.blob())
    at = 24 + len(w.types) - 12
    struct.pack_into("<I", blob, at, 0x7FFFFFF)
    src = BtfTypes.from_bytes(bytes(blob), "small")
    with pytest.raises(BadDumpError, match=rf"small: BTF type {bad_member} \(STRUCT\): string offset 0x7ffffff"):
        src.lookup("struct pair")
    assert src.lookup("struct node") is not None
    # A string section that does not end in NUL: the last name runs off its end.
    w = BtfWriter()
    w.int_("int", 4, 32, encoding=1)
    src = BtfTypes.from_bytes(_unterminated(w), "small")
    with pytest.raises(BadDumpError, match=r"string at offset 0x1 runs off the end"):
        src.type_by_id(1)


def _unterminated(w: BtfWriter) -> bytes:
    """`w`'s blob with the string section's final NUL left out (and the header saying so)."""
    blob = bytearray(w.blob()[:-1])
    struct.pack_into("<I", blob, 20, len(w.strings) - 1)
    return bytes(blob)


def test_type_ids_out_of_range() -> None:
    w, _ = _small()
    w.struct_("wild", 4, [("x", 999, 0)])
    w.add("PTR", size_type=1000)
    src = BtfTypes.from_bytes(w.blob(), "small")
    with pytest.raises(BadDumpError, match=r"BTF type 5 \(STRUCT\): refers to type 999, past the last type 6"):
        src.lookup("struct wild")
    with pytest.raises(BadDumpError, match=r"BTF type 6 \(PTR\): refers to type 1000"):
        src.type_by_id(6)
    with pytest.raises(BadDumpError, match=r"BTF type id 7 is out of range \(1..6\)"):
        src.deref(Ref(src.name, 7))


def test_reference_cycles() -> None:
    w, ids = _small()
    a = w.add("TYPEDEF", "loop_a", 6)
    b = w.add("TYPEDEF", "loop_b", a)
    self_ptr = w.add("PTR", size_type=7)
    const = w.add("CONST", size_type=9)
    volatile = w.add("VOLATILE", size_type=const)
    proto = w.add("FUNC_PROTO", size_type=ids["int"], vlen=1, tail=struct.pack("<II", 0, 11))
    fn_ptr = w.add("PTR", size_type=proto)
    arr = w.add("ARRAY", tail=struct.pack("<III", 12, ids["int"], 4))
    assert (a, b, self_ptr, const, volatile, proto, fn_ptr, arr) == (5, 6, 7, 8, 9, 10, 11, 12)
    src = BtfTypes.from_bytes(w.blob(), "small")
    with pytest.raises(BadDumpError, match=r"small: BTF type 5: its references loop .*: 5 -> 6 -> 5"):
        src.lookup("loop_a")
    with pytest.raises(BadDumpError, match=r"loop .*: 6 -> 5 -> 6"):
        src.lookup("loop_b")
    for tid, loop in ((self_ptr, "7 -> 7"), (const, "8 -> 9 -> 8"), (fn_ptr, "11 -> 10 -> 11"), (arr, "12 -> 12")):
        with pytest.raises(BadDumpError, match=loop):
            src.type_by_id(tid)
    node = src.lookup("struct node")  # a struct that points at itself is no cycle
    assert isinstance(node, StructType) and src.deref(src.deref(node.members[0].type).target) is node  # type: ignore[union-attr]


def test_corrupt_blobs_give_only_clear_errors(fx: BtfFixture) -> None:
    """Random damage to pahole's BTF: every type either decodes or is a PmdbError, quickly."""
    good = fx.path("base.btf").read_bytes()
    rng = random.Random(4)
    start, outcomes = time.perf_counter(), defaultdict(int)
    for trial in range(300):
        blob = bytearray(good)
        if trial % 3 == 0:
            blob = blob[: rng.randrange(len(blob))]
        for _ in range(rng.randrange(1, 8)):
            if len(blob) > 24:
                at = rng.randrange(24 if trial % 5 else 0, len(blob))
                blob[at] = rng.randrange(256) if trial % 2 else blob[at] ^ (1 << rng.randrange(8))
        try:
            src = BtfTypes.from_bytes(bytes(blob), f"trial {trial}")
        except PmdbError:
            outcomes["header"] += 1
            continue
        for tid in range(1, src.btf.end_id + 2):
            try:
                src.type_by_id(tid)
                outcomes["ok"] += 1
            except PmdbError:
                outcomes["error"] += 1
        for name in ("struct list", "struct bits", "enum sign", "myint2_t", "unsigned long", "union number"):
            try:
                src.lookup(name)
            except PmdbError:
                outcomes["error"] += 1
    assert outcomes["ok"] and outcomes["error"] and outcomes["header"]
    assert time.perf_counter() - start < 30
