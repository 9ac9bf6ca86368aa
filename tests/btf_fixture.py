"""BTF fixtures and ground truth for tests/test_btf.py, built from tools that are not pmdb.

- `ensure()`: tests/fixtures/src/btf_types.c compiled with gcc -g and converted from DWARF to
  BTF by pahole (Debian dwarves): `base.btf` (a raw blob), `split.btf` (the program built with
  -DBTF_SPLIT, encoded against base.btf as a module's BTF is against vmlinux's), `elf.o` (an
  object file with a .BTF section, pahole -J) and `extra.btf` (a split blob encoded here by
  hand, for what gcc cannot make: type and declaration tags, the older bit-field encoding,
  every linkage). Each comes with `bpftool btf dump ... format raw` of it (`*.raw`), the
  ground truth the tests compare pmdb with.
- `kernel_btf()`: the running kernel's /sys/kernel/btf/vmlinux, else the vmlinux ELF inside
  Debian's linux-image-cloud-amd64 (its .BTF section), downloaded with apt-get and unpacked.
- `parse_raw()`: bpftool's raw dump as records; `BtfWriter`: BTF encoded from the format's
  definition, for inputs no tool makes (extra.btf, and the malformed blobs of the tests).

Cache: `${PMDB_FIXTURE_CACHE:-~/.cache/pmdb/fixtures}/btf_types-<hash12>/`, the hash covering
the source, this file and the tools' versions; `.complete` is written last and an flock keeps
parallel builders apart (as tests/fixtures/make_cores.py does). Failures raise FixtureError.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import lzma
import os
import re
import shutil
import struct
import subprocess
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tests" / "fixtures" / "src" / "btf_types.c"
LIVE_KERNEL_BTF = Path("/sys/kernel/btf/vmlinux")
DEBIAN_KERNEL = "linux-image-cloud-amd64"
TIMEOUT = 300
PAHOLE = ("pahole", "--btf_gen_floats")


class FixtureError(RuntimeError):
    """A BTF fixture could not be built; the message is a one-line reason."""


def _run(cmd: Sequence[str], what: str, **kwargs: object) -> str:
    """Run a command and return its stdout, or raise FixtureError with its last stderr line."""
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=TIMEOUT,
                              check=False, **kwargs)  # type: ignore[call-overload]
    except (OSError, subprocess.TimeoutExpired) as e:
        raise FixtureError(f"{what}: cannot run {cmd[0]}: {e}") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        raise FixtureError(f"{what}: {cmd[0]} exited {proc.returncode}: {last}")
    return proc.stdout


def cache_root() -> Path:
    """$PMDB_FIXTURE_CACHE, else ~/.cache/pmdb/fixtures."""
    env = os.environ.get("PMDB_FIXTURE_CACHE")
    return (Path(env).expanduser() if env else Path.home() / ".cache" / "pmdb" / "fixtures").resolve()


@functools.cache
def _version(tool: str) -> str:
    """The first line `tool --version` prints (part of the cache key)."""
    return (_run([tool, "--version"], f"{tool} --version").splitlines() or [""])[0]


def _locked_build(d: Path, build: Callable[[Path], None]) -> Path:
    """`d`, built by `build` unless complete; rebuilt from scratch when a build was interrupted."""
    if (d / ".complete").exists():
        return d
    d.parent.mkdir(parents=True, exist_ok=True)
    with open(d.parent / f"{d.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (d / ".complete").exists():
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir()
            build(d)
            (d / ".complete").write_text("ok\n")
    return d


# ---------------------------------------------------------------- bpftool's raw dump


@dataclass(frozen=True)
class RawItem:
    """A line under a type in bpftool's raw dump: a member, enumerator, parameter or section entry."""

    name: str | None
    attrs: dict[str, str]


@dataclass(frozen=True)
class RawRecord:
    """One type as bpftool prints it: `[id] KIND 'name' key=value ...` and its indented lines.
    A `'(anon)'` name is kept as ""."""

    id: int
    kind: str
    name: str
    attrs: dict[str, str]
    items: list[RawItem] = field(default_factory=list)


_HEAD = re.compile(r"\[(\d+)\] (\w+) '(.*?)'(?: (.*))?$")
_ITEM = re.compile(r"\t(?:'(.*?)' )?(.*?)(?: \(VAR '(.*)'\))?$")
_ATTR = re.compile(r"(\w+)=([^\s,]+)")


def parse_raw(text: str) -> dict[int, RawRecord]:
    """Every record of `bpftool btf dump file F format raw` output, by type id."""
    records: dict[int, RawRecord] = {}
    current: RawRecord | None = None
    for line in text.splitlines():
        if not line.strip():
            continue
        head = _HEAD.match(line)
        if head:
            tid, kind, name, rest = head.groups()
            current = records[int(tid)] = RawRecord(int(tid), kind, "" if name == "(anon)" else name,
                                                    dict(_ATTR.findall(rest or "")))
            continue
        item = _ITEM.match(line)
        if current is None or item is None:
            raise FixtureError(f"unexpected line in bpftool output: {line!r}")
        name, rest, var = item.groups()
        name = var if var is not None else name
        current.items.append(RawItem(None if name is None else "" if name == "(anon)" else name,
                                     dict(_ATTR.findall(rest))))
    return records


def bpftool_raw(path: Path, base: Path | None = None) -> str:
    """bpftool's raw dump of the BTF in `path` (a blob or an ELF file), split from `base`."""
    cmd = ["bpftool", *(["-B", str(base)] if base else []), "btf", "dump", "file", str(path), "format", "raw"]
    return _run(cmd, f"bpftool dump of {path}")


# ---------------------------------------------------------------- encoding BTF by hand


KINDS = {"INT": 1, "PTR": 2, "ARRAY": 3, "STRUCT": 4, "UNION": 5, "ENUM": 6, "FWD": 7, "TYPEDEF": 8,
         "VOLATILE": 9, "CONST": 10, "RESTRICT": 11, "FUNC": 12, "FUNC_PROTO": 13, "VAR": 14,
         "DATASEC": 15, "FLOAT": 16, "DECL_TAG": 17, "TYPE_TAG": 18, "ENUM64": 19}


class BtfWriter:
    """BTF encoded from Documentation/bpf/btf.rst: records appended one by one, then `blob()`.

    A split blob starts its ids and string offsets where its base's end (`start_id`,
    `str_start`)."""

    def __init__(self, start_id: int = 1, str_start: int = 0) -> None:
        self.next_id = start_id
        self.str_start = str_start
        self.types = bytearray()
        self.strings = bytearray(b"\0")
        self._offsets: dict[str, int] = {"": str_start}

    def string(self, text: str) -> int:
        """The offset of `text` in the string section, adding it once."""
        if text not in self._offsets:
            self._offsets[text] = self.str_start + len(self.strings)
            self.strings += text.encode() + b"\0"
        return self._offsets[text]

    def add(self, kind: str | int, name: str = "", size_type: int = 0, vlen: int = 0, kind_flag: bool = False,
            tail: bytes = b"", name_off: int | None = None) -> int:
        """Append a record (common part, then `tail`, its kind-specific bytes); return its id.
        `name_off` and a numeric `kind` write what no valid record has."""
        info = kind_flag << 31 | (KINDS[kind] if isinstance(kind, str) else kind) << 24 | vlen
        self.types += struct.pack("<III", self.string(name) if name_off is None else name_off, info, size_type) + tail
        self.next_id += 1
        return self.next_id - 1

    def int_(self, name: str, size: int, bits: int, offset: int = 0, encoding: int = 0) -> int:
        """An INT record."""
        return self.add("INT", name, size, tail=struct.pack("<I", encoding << 24 | offset << 16 | bits))

    def struct_(self, name: str, size: int, members: Sequence[tuple[str, int, int]], kind_flag: bool = False,
                kind: str = "STRUCT") -> int:
        """A STRUCT (or UNION) of (name, type id, offset word) members."""
        tail = b"".join(struct.pack("<III", self.string(n), t, off) for n, t, off in members)
        return self.add(kind, name, size, len(members), kind_flag, tail)

    def blob(self, type_len: int | None = None) -> bytes:
        """Header, type section, string section (`type_len` overrides the header's type length)."""
        types, strings = bytes(self.types), bytes(self.strings)
        header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0,
                             len(types) if type_len is None else type_len, len(types), len(strings))
        return header + types + strings


def _extra_blob(base: dict[int, RawRecord], base_str_len: int) -> bytes:
    """A split BTF on top of base.btf with what gcc and pahole 1.24 do not produce."""
    ids = {(r.kind, r.name): r.id for r in base.values()}
    w = BtfWriter(max(base) + 1, base_str_len)
    lst, fn, var, myint = (ids["STRUCT", "list"], ids["FUNC", "btf_global_fn"], ids["VAR", "pcpu_counter"],
                           ids["TYPEDEF", "myint_t"])
    # Type tags: a pointer to a tagged struct, a tag on void, tags chained.
    user = w.add("TYPE_TAG", "user", lst)
    w.add("PTR", size_type=user)
    rcu = w.add("TYPE_TAG", "rcu", user)
    w.add("PTR", size_type=rcu)
    w.add("PTR", size_type=w.add("TYPE_TAG", "address_space(1)", 0))
    # Declaration tags on a struct, a member, a function, a parameter, a variable, a typedef.
    for target, component, text in ((lst, -1, "on_struct"), (lst, 2, "on_member"), (fn, -1, "on_func"),
                                    (fn, 1, "on_param"), (var, -1, "on_var"), (myint, -1, "on_typedef")):
        w.add("DECL_TAG", text, target, tail=struct.pack("<i", component))
    # The older bit-field encoding: no kind_flag, widths (and an offset) in the INT types.
    u3 = w.int_("unsigned int", 4, 3)
    s5 = w.int_("int", 4, 5, offset=2, encoding=1)
    u3_t = w.add("TYPEDEF", "u3_t", u3)
    w.struct_("legacy_bits", 8, [("a", u3, 0), ("b", s5, 3), ("c", u3_t, 10), ("d", ids["INT", "int"], 32)])
    # Every linkage: functions static/global/extern, variables static/global; a .bss DATASEC.
    proto = base[fn].attrs["type_id"]
    for linkage in (0, 1, 2):
        w.add("FUNC", f"linkage_{linkage}_fn", int(proto), linkage)
    v_static = w.add("VAR", "static_var", lst, tail=struct.pack("<I", 0))
    v_global = w.add("VAR", "global_var", ids["INT", "int"], tail=struct.pack("<I", 1))
    w.add("DATASEC", ".bss", 28, 2, tail=struct.pack("<6I", v_static, 0, 24, v_global, 24, 4))
    # Enum forward declarations (no enumerators), a signed 64-bit one, a half-precision float.
    w.add("ENUM", "enum_fwd", 4)
    w.add("ENUM64", "enum64_signed", 8, 2, True, struct.pack("<6I", w.string("E64_MIN"), 0, 0x80000000,
                                                             w.string("E64_M1"), 0xFFFFFFFF, 0xFFFFFFFF))
    w.add("FLOAT", "_Float16", 2)
    return w.blob()


# ---------------------------------------------------------------- the small program


@dataclass(frozen=True)
class BtfFixture:
    """The built fixture: the blobs, the object file, and bpftool's dumps (`raw(name)`)."""

    dir: Path

    def path(self, name: str) -> Path:
        """A file of the fixture: base.btf, split.btf, extra.btf, elf.o."""
        return self.dir / name

    def raw(self, name: str) -> dict[int, RawRecord]:
        """bpftool's dump of blob `name` (base, split, extra, elf), parsed."""
        return parse_raw((self.dir / f"{name}.raw").read_text())


def _hash() -> str:
    """12 hex digits naming the source, this builder and the tools' versions."""
    h = hashlib.sha256()
    for part in (SOURCE.read_bytes(), Path(__file__).read_bytes(), _version("gcc").encode(),
                 _version("pahole").encode(), _version("bpftool").encode()):
        h.update(part + b"\0")
    return h.hexdigest()[:12]


def _build(d: Path) -> None:
    """Compile, convert with pahole, encode extra.btf, and dump everything with bpftool."""
    shutil.copy2(SOURCE, d / SOURCE.name)
    for out, flags in (("base.o", []), ("split.o", ["-DBTF_SPLIT"])):
        _run(["gcc", "-g", "-O0", "-Wall", *flags, "-c", SOURCE.name, "-o", out], f"compile {out}", cwd=d)
    _run([*PAHOLE, "--btf_encode_detached=base.btf", "base.o"], "pahole base", cwd=d)
    _run([*PAHOLE, "--btf_base=base.btf", "--btf_encode_detached=split.btf", "split.o"], "pahole split", cwd=d)
    shutil.copy2(d / "base.o", d / "elf.o")
    _run([*PAHOLE, "-J", "elf.o"], "pahole -J", cwd=d)
    base_raw = bpftool_raw(d / "base.btf")
    (d / "base.raw").write_text(base_raw)
    str_len = struct.unpack_from("<I", (d / "base.btf").read_bytes(), 20)[0]
    (d / "extra.btf").write_bytes(_extra_blob(parse_raw(base_raw), str_len))
    for name in ("split", "extra"):
        (d / f"{name}.raw").write_text(bpftool_raw(d / f"{name}.btf", d / "base.btf"))
    (d / "elf.raw").write_text(bpftool_raw(d / "elf.o"))


def ensure() -> BtfFixture:
    """The fixture, built on first use (FixtureError if a tool is missing or fails)."""
    return BtfFixture(_locked_build(cache_root() / f"btf_types-{_hash()}", _build))


# ---------------------------------------------------------------- a kernel's BTF


def kernel_btf() -> tuple[Path, bool]:
    """A kernel's BTF and whether it is an ELF file (with .BTF) rather than a raw blob."""
    if LIVE_KERNEL_BTF.exists():
        return LIVE_KERNEL_BTF, False
    return debian_vmlinux(), True


def debian_vmlinux() -> Path:
    """The vmlinux ELF inside Debian's current cloud kernel package (downloaded once, cached)."""
    depends = _run(["apt-cache", "depends", DEBIAN_KERNEL], f"apt-cache depends {DEBIAN_KERNEL}")
    package = next((m.group(1) for m in re.finditer(r"Depends: (linux-image-\S+)", depends)), None)
    if package is None:
        raise FixtureError(f"apt-cache names no kernel package for {DEBIAN_KERNEL} (apt-get update?)")

    def build(d: Path) -> None:
        _run(["apt-get", "download", package], f"apt-get download {package}", cwd=d)
        deb = next(d.glob("*.deb"))
        _run(["sh", "-c", f"dpkg-deb --fsys-tarfile '{deb.name}' | tar -x --wildcards './boot/vmlinuz-*'"],
             f"unpack {deb.name}", cwd=d)
        (d / "vmlinux").write_bytes(_decompress_bzimage(next(d.glob("boot/vmlinuz-*")).read_bytes()))
        deb.unlink()
        shutil.rmtree(d / "boot")

    return _locked_build(cache_root() / f"debian-{package}", build) / "vmlinux"


def _decompress_bzimage(image: bytes) -> bytes:
    """The vmlinux ELF compressed inside an x86 bzImage (boot protocol 2.08+: payload_offset and
    payload_length in the setup header; the payload ends with its decompressed size)."""
    if image[0x202:0x206] != b"HdrS":
        raise FixtureError("vmlinuz is not an x86 bzImage")
    setup_sects = image[0x1F1] or 4
    payload_offset, payload_length = struct.unpack_from("<II", image, 0x248)
    start = (setup_sects + 1) * 512 + payload_offset
    payload = image[start : start + payload_length - 4]
    if payload.startswith(b"\x02\x21\x4c\x18"):  # LZ4 legacy frame
        proc = subprocess.run(["lz4", "-dc"], input=payload, capture_output=True, timeout=TIMEOUT, check=False)
        if proc.returncode != 0:
            raise FixtureError("lz4 cannot decompress the kernel (is Debian's lz4 installed?)")
        return proc.stdout
    if payload.startswith(b"\xfd7zXZ"):
        return lzma.decompress(payload)
    if payload.startswith(b"\x1f\x8b"):
        return zlib.decompress(payload, 31)
    raise FixtureError(f"unknown kernel compression (payload starts {payload[:4].hex()})")
