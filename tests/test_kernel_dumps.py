"""Kernel crash dumps opened as Dumps: QEMU's ELF vmcore, its kdump-zlib dump (flattened and
reassembled), makedumpfile's lzo -d 31 dump, and zstd and snappy copies made here.

Checked against the fixture's truth.json (VMCOREINFO, KASLR offset, phys_base, eu-readelf's
NT_PRSTATUS registers, the kernel release), against objdump on the -dbg vmlinux and the
module, and the formats against each other (every page a kdump holds is the ELF's page).
"""

from __future__ import annotations

import functools
import re
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ROOT, KernelFixture, run_pmdb

from pmdb.dumps import Dump, DumpKind
from pmdb.dumps.detect import open_dump
from pmdb.dumps.locate import FileLocator
from pmdb.errors import FaultError, FaultReason

DUMPS = ("elf", "kdump-zlib-flat", "kdump-zlib", "kdump-lzo-d31")
RELEASE_OFFSET = 2 * 65  # new_utsname: sysname, nodename, release...
PAGE = 4096


@functools.cache
def opened(path: str) -> Dump:
    """Each dump opened once for the whole module (they are read-only)."""
    return open_dump(path, FileLocator(None, []))


@pytest.fixture(params=DUMPS)
def any_dump(request: pytest.FixtureRequest, kernel: KernelFixture) -> Dump:
    """Each fixture dump in turn."""
    return opened(kernel.dump(request.param))


def uts_release_address(dump: Dump) -> int:
    """init_uts_ns.name.release, from VMCOREINFO alone."""
    info = dump.notes["vmcoreinfo"]
    return info.symbol("init_uts_ns") + info.offset("uts_namespace.name") + RELEASE_OFFSET


def cstring(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode()


# --- ground truth ---------------------------------------------------------------------------


def test_every_format_is_recognised(kernel: KernelFixture) -> None:
    for d in kernel.truth["dumps"]:
        dump = opened(kernel.dump(d["name"]))
        assert dump.kind == (DumpKind.KERNEL_ELF if d["format"] == "elf" else DumpKind.KDUMP)
        assert dump.warnings == []
        assert dump.arch.name == "x86_64"
        if d["format"] == "kdump":
            info = dump.notes["kdump"]
            assert (info.flattened, info.compression, info.dump_level) == (
                d["flattened"], d["compression"], d["dump_level"])


def test_vmcoreinfo_values(any_dump: Dump, kernel: KernelFixture) -> None:
    truth = kernel.truth
    info = any_dump.notes["vmcoreinfo"]
    assert info.entries == truth["vmcoreinfo"]
    assert info.osrelease == truth["osrelease"]
    assert info.build_id == truth["build_id"]
    assert info.page_size == PAGE
    assert info.kernel_offset == truth["kaslr_offset"]
    assert info.phys_base == truth["phys_base"] < 0  # negative here: the signed decimal matters
    assert info.pgtable_l5_enabled is bool(truth["pgtable_l5_enabled"])
    assert info.crash_time is None  # QEMU took the dump, not kdump


def test_kaslr_offset_and_phys_base(any_dump: Dump, kernel: KernelFixture) -> None:
    layout = any_dump.notes["kernel_layout"]
    assert layout.kaslr_offset == kernel.truth["kaslr_offset"] == kernel.truth["drgn"]["elf"]["kaslr_offset"]
    assert layout.phys_base == kernel.truth["phys_base"]
    assert layout.levels == (5 if kernel.truth["pgtable_l5_enabled"] else 4)
    assert layout.root_source == "SYMBOL(swapper_pg_dir), phys_base from VMCOREINFO NUMBER(phys_base)"


def test_vmcoreinfo_symbols_are_already_relocated(kernel: KernelFixture) -> None:
    """SYMBOL() is the run-time address: System.map's address plus KERNELOFFSET, not plus it again."""
    info = opened(kernel.dump("elf")).notes["vmcoreinfo"]
    system_map = {}
    for line in Path(kernel.truth["paths"]["system_map"]).read_text().splitlines():
        addr, _kind, name = line.split()[:3]
        system_map[name] = int(addr, 16)
    for name in ("init_uts_ns", "_stext", "init_top_pgt", "prb"):
        assert info.symbol(name) == system_map[name] + kernel.truth["kaslr_offset"], name


def test_registers_per_cpu_match_readelf(any_dump: Dump, kernel: KernelFixture) -> None:
    prstatus = kernel.truth["elf_notes"]["prstatus"]
    assert [(t.cpu, t.tid) for t in any_dump.threads] == [(p["cpu"], p["pid"]) for p in prstatus]
    rename = {"fs_base": "fsbase", "gs_base": "gsbase"}
    for thread, truth in zip(any_dump.threads, prstatus, strict=True):
        want = {rename.get(k, k): v for k, v in truth["registers"].items()}
        assert {k: thread.registers[k] for k in want} == want
        assert thread.registers["orig_rax"] == truth["orig_rax"]
        assert thread.tid == thread.cpu + 1  # QEMU: pr_pid is cpu+1


def test_qemu_cpu_state(any_dump: Dump, kernel: KernelFixture) -> None:
    """QEMU's notes give each vCPU's control registers: CR3 roots page tables that map the kernel
    like swapper_pg_dir, and CR4 agrees with VMCOREINFO on 5-level paging."""
    cpus = any_dump.notes["qemu_cpus"]
    assert len(cpus) == len(any_dump.threads)
    for cpu, thread in zip(cpus, any_dump.threads, strict=True):
        assert cpu.la57 is bool(kernel.truth["pgtable_l5_enabled"])
        assert cpu.gs_base == thread.registers["gsbase"]


def test_init_uts_ns_release_in_every_format(any_dump: Dump, kernel: KernelFixture) -> None:
    raw = any_dump.memory.read(uts_release_address(any_dump), 65)
    assert cstring(raw) == kernel.truth["osrelease"] == kernel.truth["console"]["oops"]["release"]


def test_direct_map_and_kernel_text_mapping(any_dump: Dump, kernel: KernelFixture) -> None:
    """The direct map at page_offset_base and __START_KERNEL_map + phys_base give the bytes of
    the physical address the page tables translate to."""
    layout = any_dump.notes["kernel_layout"]
    assert layout.page_offset_base % (1 << 30) == 0 and layout.page_offset_base >= 0xFFFF888000000000
    uts = uts_release_address(any_dump)
    pa = any_dump.memory.translate(uts)
    assert pa == uts - 0xFFFFFFFF80000000 + kernel.truth["phys_base"]
    direct = any_dump.memory.read(layout.page_offset_base + pa, 65)
    assert direct == any_dump.physical.read(pa, 65) == any_dump.memory.read(uts, 65)


def test_faulting_pc_bytes_are_the_same_in_every_dump(kernel: KernelFixture) -> None:
    pc = kernel.truth["story"]["faulting_pc"]
    seen = {name: opened(kernel.dump(name)).memory.read(pc - 64, 128) for name in DUMPS}
    assert len(set(seen.values())) == 1, seen


def _objdump_bytes(path: str, start: int, size: int, section: str | None = None) -> bytes:
    """Bytes of a file's section contents at [start, start+size), as objdump -s shows them."""
    cmd = ["objdump", "-s", f"--start-address={start:#x}", f"--stop-address={start + size:#x}", path]
    if section:
        cmd[2:2] = ["-j", section]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    data = b"".join(bytes.fromhex(line[1:].split("  ")[0].split(" ", 1)[1].replace(" ", ""))
                    for line in out.splitlines() if re.match(r" [0-9a-f]+ [0-9a-f]", line))
    assert len(data) == size, out
    return data


def test_faulting_function_matches_the_module_file(any_dump: Dump, kernel: KernelFixture) -> None:
    """The faulting pc is in ipnet.ko: every instruction of ipnet_nicevent_task that carries no
    relocation (objdump -dr) has the .ko's bytes, the faulting `mov 0x8(%r12),%r15` included."""
    story = kernel.truth["story"]
    ko = kernel.truth["paths"]["module_ko"]
    out = subprocess.run(["objdump", "-dr", "-j", ".text", ko], capture_output=True, text=True, check=True).stdout
    body = out.split(f"<{story['faulting_function']}>:\n", 1)[1].split("\n\n", 1)[0]
    insns, relocated = [], set()
    for line in body.splitlines():
        if m := re.match(r"\s+([0-9a-f]+):\s+((?:[0-9a-f]{2} )+)", line):
            insns.append((int(m.group(1), 16), bytes.fromhex(m.group(2))))
        elif m := re.match(r"\s+([0-9a-f]+): R_X86_64", line):
            relocated.add(int(m.group(1), 16))
    start = insns[0][0]
    function_at = story["faulting_pc"] - story["faulting_insn"]["offset"]
    checked = 0
    for offset, code in insns:
        if any(offset <= r < offset + len(code) for r in relocated):
            continue
        assert any_dump.memory.read(function_at + offset - start, len(code)) == code, hex(offset - start)
        checked += 1
    assert checked > 20
    assert any_dump.memory.read(story["faulting_pc"], 5) == bytes.fromhex("4d8b7c2408")  # mov 0x8(%r12),%r15


def test_kernel_image_matches_vmlinux(any_dump: Dump, kernel: KernelFixture) -> None:
    """At link-time address = run-time address - KASLR offset, the -dbg vmlinux holds the same
    bytes: the start of _stext (RIP-relative code, untouched by boot-time patching and KASLR
    relocation) and init_uts_ns's sysname and release (static initialisers)."""
    vmlinux = kernel.truth["paths"]["vmlinux_debug"]
    if not Path(vmlinux).exists():
        pytest.skip("the -dbg vmlinux is not extracted")
    info = any_dump.notes["vmcoreinfo"]
    kaslr = any_dump.notes["kernel_layout"].kaslr_offset
    stext = info.symbol("_stext")
    assert any_dump.memory.read(stext, 14) == _objdump_bytes(vmlinux, stext - kaslr, 14, ".text")
    uts = info.symbol("init_uts_ns")
    want = _objdump_bytes(vmlinux, uts - kaslr, 3 * 65, ".data")
    got = any_dump.memory.read(uts, 3 * 65)
    assert (got[:65], got[130:]) == (want[:65], want[130:])  # nodename is set at run time


# --- the formats against each other ---------------------------------------------------------


def _elf_pages(kernel: KernelFixture, pfns: list[int]) -> list[bytes]:
    """Physical pages straight from vmcore.elf, placed by readelf's segment table (truth.json)."""
    segs = [s for s in kernel.truth["elf_notes"]["segments"] if s["type"] == "LOAD"]
    out = []
    with open(kernel.dump("elf"), "rb") as f:
        for pfn in pfns:
            seg = next(s for s in segs if s["paddr"] <= pfn * PAGE < s["paddr"] + s["filesz"])
            f.seek(seg["offset"] + pfn * PAGE - seg["paddr"])
            out.append(f.read(PAGE))
    return out


@functools.cache
def _kdump_layout(path: str) -> tuple[int, int, int, int, int]:
    """(block size, bitmap offset, one bitmap's length, descriptors' offset, max pfn) from the
    file's own header, read here independently of pmdb."""
    with open(path, "rb") as f:
        head = f.read(464)
        block, sub_blocks, bitmap_blocks = struct.unpack_from("<iiI", head, 428)
        f.seek(block + 96)
        (max_pfn,) = struct.unpack("<Q", f.read(8))
    bitmap = block * (1 + sub_blocks)
    half = block * bitmap_blocks // 2
    return block, bitmap, half, bitmap + 2 * half, max_pfn


def _bitmaps(path: str) -> tuple[int, int]:
    """The two bitmaps of a reassembled kdump as integers (bit n: pfn n)."""
    _block, bitmap, half, _data, _max = _kdump_layout(path)
    with open(path, "rb") as f:
        f.seek(bitmap)
        raw = f.read(2 * half)
    return int.from_bytes(raw[:half], "little"), int.from_bytes(raw[half:], "little")


def _set_bits(x: int) -> list[int]:
    """The indexes of the set bits of x, lowest first."""
    return [i for i, c in enumerate(reversed(bin(x))) if c == "1"]


def test_kdump_pages_equal_the_elf_pages(kernel: KernelFixture) -> None:
    """Every dumped page of each kdump decompresses to the ELF vmcore's page."""
    for name in ("kdump-zlib-flat", "kdump-zlib", "kdump-lzo-d31"):
        dump = opened(kernel.dump(name))
        _memory, dumped = _bitmaps(kernel.dump(name.removesuffix("-flat")))
        pfns = _set_bits(dumped)
        assert len(pfns) > 15000
        for pfn, page in zip(pfns, _elf_pages(kernel, pfns), strict=True):
            assert dump.physical.read(pfn * PAGE, PAGE) == page, (name, hex(pfn))


def test_flattened_stream_reads_as_the_reassembled_file(kernel: KernelFixture) -> None:
    from pmdb.formats.flattened import FlattenedFile
    from pmdb.formats.mapped import MappedFile

    flat = FlattenedFile(MappedFile(kernel.dump("kdump-zlib-flat")))
    whole = Path(kernel.dump("kdump-zlib")).read_bytes()
    assert flat.size == len(whole) and flat.warnings == []
    step = 1 << 20
    for at in range(0, len(whole), step):
        assert flat.read(at, step) == whole[at : at + step], hex(at)
    assert flat.read(len(whole) - 10, 100) == whole[-10:]


def test_filtered_pages_are_reported_as_filtered(kernel: KernelFixture) -> None:
    """In the -d 31 dump a page of memory that makedumpfile excluded faults as "filtered out",
    physically and through the direct map, while the ELF dump has it; a hole in memory and a
    virtual address nothing maps fault as unmapped."""
    path = kernel.dump("kdump-lzo-d31")
    dump, elf = opened(path), opened(kernel.dump("elf"))
    memory, dumped = _bitmaps(path)
    filtered = memory & ~dumped
    pfn = next(p for p in _set_bits(filtered) if p >= 0x1000)
    with pytest.raises(FaultError) as e:
        dump.physical.read(pfn * PAGE + 8, 8)
    assert (e.value.reason, e.value.address) == (FaultReason.FILTERED, pfn * PAGE + 8)
    assert "filtered out" in str(e.value) and "dump level 31" in str(e.value)
    direct = dump.notes["kernel_layout"].page_offset_base + pfn * PAGE
    with pytest.raises(FaultError) as e:
        dump.memory.read(direct - 8, 16)
    assert (e.value.reason, e.value.address) == (FaultReason.FILTERED, direct)
    assert len(elf.memory.read(direct - 8, 16)) == 16
    hole = 0xA0 * PAGE  # legacy VGA memory: not RAM, in no dump
    assert not memory >> 0xA0 & 1
    for d in (dump, elf):
        with pytest.raises(FaultError) as e:
            d.physical.read(hole, 8)
        assert e.value.reason == FaultReason.UNMAPPED
    for addr in (0x1000, 0x8000_0000_0000_0000):
        with pytest.raises(FaultError) as e:
            dump.memory.read(addr, 8)
        assert e.value.reason == FaultReason.UNMAPPED


# --- zstd and snappy: copies of the -d 31 dump, recompressed here from the ELF's pages --------


def _recompress(kernel: KernelFixture, out: Path, codec: str) -> str:
    """The -d 31 dump with every page stored as `codec` (from the ELF dump's pages), written by
    this test's own kdump writer: same headers and bitmaps, new descriptors and data."""
    import cramjam

    flag, compress = {"zstd": (0x20, cramjam.zstd.compress), "snappy": (0x4, cramjam.snappy.compress_raw)}[codec]
    src = kernel.dump("kdump-lzo-d31")
    _block, _bitmap, _half, data_offset, _max = _kdump_layout(src)
    head = bytearray(Path(src).read_bytes()[:data_offset])
    (status,) = struct.unpack_from("<I", head, 424)
    struct.pack_into("<I", head, 424, (status & ~0x27) | flag)
    _memory, dumped = _bitmaps(src)
    pfns = _set_bits(dumped)
    offset = data_offset + 24 * len(pfns)
    descs, blobs = bytearray(), []
    for page in _elf_pages(kernel, pfns):
        blob = bytes(compress(page))
        descs += struct.pack("<qIIQ", offset, len(blob), flag, 0)
        blobs.append(blob)
        offset += len(blob)
    out.write_bytes(bytes(head) + bytes(descs) + b"".join(blobs))
    return str(out)


@pytest.mark.parametrize("codec", ["zstd", "snappy"])
def test_zstd_and_snappy_pages(codec: str, kernel: KernelFixture, tmp_path: Path) -> None:
    dump = open_dump(_recompress(kernel, tmp_path / f"vmcore.{codec}", codec), FileLocator(None, []))
    assert dump.notes["kdump"].compression == codec and dump.warnings == []
    assert cstring(dump.memory.read(uts_release_address(dump), 65)) == kernel.truth["osrelease"]
    pc = kernel.truth["story"]["faulting_pc"]
    assert dump.memory.read(pc, 64) == opened(kernel.dump("elf")).memory.read(pc, 64)


def test_compression_libraries_load_only_when_a_page_needs_them(kernel: KernelFixture) -> None:
    code = (
        "import sys; from pmdb.dumps.detect import open_dump; from pmdb.dumps.locate import FileLocator\n"
        "d = open_dump(sys.argv[1], FileLocator(None, [])); i = d.notes['vmcoreinfo']\n"
        "d.memory.read(i.symbol('init_uts_ns'), 400)\n"
        "print('lzallright' in sys.modules, 'cramjam' in sys.modules)"
    )
    for name, want in (("elf", "False False"), ("kdump-zlib", "False False"), ("kdump-lzo-d31", "True False")):
        done = subprocess.run([sys.executable, "-c", code, kernel.dump(name)], capture_output=True, text=True,
                              cwd=ROOT, check=True)
        assert done.stdout.strip() == want, name


def test_memory_stays_bounded(kernel: KernelFixture) -> None:
    """Opening a dump (the ELF one is 272 MiB) and reading kernel memory maps only what is read.

    The peak is the child's VmHWM: ru_maxrss would include the pytest process's pages that
    the child had between fork and exec.
    """
    code = (
        "import re, sys; from pmdb.dumps.detect import open_dump; from pmdb.dumps.locate import FileLocator\n"
        "d = open_dump(sys.argv[1], FileLocator(None, [])); i = d.notes['vmcoreinfo']\n"
        "d.memory.read(i.symbol('init_uts_ns'), 400)\n"
        "print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))"
    )
    for name in DUMPS:
        done = subprocess.run([sys.executable, "-c", code, kernel.dump(name)], capture_output=True, text=True,
                              cwd=ROOT, check=True)
        assert int(done.stdout) < 64 * 1024, (name, done.stdout)  # KiB


def test_cli_reads_kernel_memory(kernel: KernelFixture) -> None:
    addr = uts_release_address(opened(kernel.dump("elf")))
    for name in DUMPS:
        r = run_pmdb(kernel.dump(name), "-e", f"{addr:x}/s")
        assert (r.status, r.out.split(":")[-1].strip()) == (0, kernel.truth["osrelease"]), (name, r)



# --- bad input: copies of the fixture dumps with fields changed at computed offsets ----------

STATUS_OFFSET = 424  # disk_dump_header.status
SUB_VMCOREINFO_OFFSET = 32  # kdump_sub_header.offset_vmcoreinfo (size follows)


def _no_traceback(r) -> None:
    assert "Traceback" not in r.err, r.err
    if r.status == 2:
        assert r.out == "" and r.err.count("\n") == 1 and r.err.startswith("pmdb: "), r.err


def _copy_prefix(src: str, dst: Path, size: int) -> str:
    """The first `size` bytes of `src` as `dst` (copied in the kernel, not through Python)."""
    import os

    with open(src, "rb") as fin, open(dst, "wb") as fout:
        left = size
        while left:
            left -= os.copy_file_range(fin.fileno(), fout.fileno(), left)
    return str(dst)


def _open(path: str) -> Dump:
    return open_dump(path, FileLocator(None, []))


def _lzo(kernel: KernelFixture) -> bytearray:
    return bytearray(Path(kernel.dump("kdump-lzo-d31")).read_bytes())


def _descriptor_offset(kernel: KernelFixture, pfn: int) -> int:
    """File offset of pfn's page descriptor in the -d 31 dump: one per set bit of the second
    bitmap below it (computed here from the bitmap bytes)."""
    path = kernel.dump("kdump-lzo-d31")
    _block, _bitmap, _half, data_offset, _max = _kdump_layout(path)
    _memory, dumped = _bitmaps(path)
    assert dumped >> pfn & 1
    return data_offset + 24 * (dumped & ((1 << pfn) - 1)).bit_count()


def _uts_pfn(kernel: KernelFixture) -> int:
    """The pfn of init_uts_ns's release string (VMCOREINFO's symbol, placed by phys_base)."""
    truth = kernel.truth
    addr = int(truth["vmcoreinfo"]["SYMBOL(init_uts_ns)"], 16) + RELEASE_OFFSET
    return (addr - 0xFFFFFFFF80000000 + truth["phys_base"]) // PAGE


def test_truncated_elf_vmcore_is_a_partial_answer(kernel: KernelFixture, tmp_path: Path) -> None:
    """Cut after the kernel's page tables: kernel memory reads, the lost segments say why."""
    path = _copy_prefix(kernel.dump("elf"), tmp_path / "vmcore", 230 << 20)
    dump = _open(path)
    assert dump.warnings == ["vmcore is truncated: 3 of 4 memory segments are incomplete"]
    assert cstring(dump.memory.read(uts_release_address(dump), 65)) == kernel.truth["osrelease"]
    lost = 0xFFFFF000  # the BIOS ROM, the file's last segment
    with pytest.raises(FaultError) as e:
        dump.physical.read(lost, 8)
    assert e.value.reason == FaultReason.NOT_IN_DUMP and "truncated" in str(e.value)
    r = run_pmdb(path, "-e", f"{uts_release_address(dump):x}/s")
    _no_traceback(r)
    assert r.status == 0 and kernel.truth["osrelease"] in r.out and "truncated" in r.err


def test_truncated_elf_vmcore_without_its_page_tables(kernel: KernelFixture, tmp_path: Path) -> None:
    """Cut before the page tables: physical memory reads, kernel addresses fault, and the
    warning says why."""
    path = _copy_prefix(kernel.dump("elf"), tmp_path / "vmcore", 100 << 20)
    dump = _open(path)
    assert any("swapper_pg_dir" in w and "kernel virtual addresses are unreadable" in w and "truncated" in w
               for w in dump.warnings), dump.warnings
    assert len(dump.physical.read(0x100000, PAGE)) == PAGE
    with pytest.raises(FaultError, match="page tables could not be read"):
        dump.memory.read(uts_release_address(opened(kernel.dump("elf"))), 8)
    _no_traceback(run_pmdb(path, "-e", "::status"))


@pytest.mark.parametrize("size", [40, 1000])
def test_elf_vmcore_cut_in_its_headers(kernel: KernelFixture, tmp_path: Path, size: int) -> None:
    r = run_pmdb(_copy_prefix(kernel.dump("elf"), tmp_path / "vmcore", size), "-e", "::status")
    _no_traceback(r)
    assert r.status == 2 or "truncated" in r.err


def test_incomplete_kdump(kernel: KernelFixture, tmp_path: Path) -> None:
    """What makedumpfile leaves when the disk fills: INCOMPLETE status, the file ending after
    the last page it wrote, the descriptors after it never written (zero) or pointing past the
    end. Pages before the cut read; the others say the dump is incomplete."""
    data = _lzo(kernel)
    (status,) = struct.unpack_from("<I", data, STATUS_OFFSET)
    struct.pack_into("<I", data, STATUS_OFFSET, status | 0x8)
    _memory, dumped = _bitmaps(kernel.dump("kdump-lzo-d31"))
    last = max(_uts_pfn(kernel), 0xCE20)  # past the page tables of the kernel image too
    later = [p for p in _set_bits(dumped) if p > last]
    offset, size = struct.unpack_from("<qI", data, _descriptor_offset(kernel, last))
    for i, pfn in enumerate(later[::2]):  # half were never written, half point past the end
        at = _descriptor_offset(kernel, pfn)
        data[at : at + 24] = bytes(24)
        assert i < len(later)
    path = tmp_path / "vmcore"
    path.write_bytes(bytes(data[: offset + size]))
    dump = _open(str(path))
    assert dump.warnings[0] == "the dump is incomplete (makedumpfile could not write all of it): some pages are missing"
    assert dump.warnings[1:] in ([], ["the direct map (page_offset_base) was not found in the page tables"])
    assert cstring(dump.memory.read(uts_release_address(dump), 65)) == kernel.truth["osrelease"]
    messages = set()
    for pfn in later[:2]:
        with pytest.raises(FaultError) as e:
            dump.physical.read(pfn * PAGE, 8)
        assert e.value.reason == FaultReason.NOT_IN_DUMP
        messages.add(str(e.value).split(": ", 1)[1])
    assert messages == {"never written: the dump is incomplete",
                        f"its data at {struct.unpack_from('<q', data, _descriptor_offset(kernel, later[1]))[0]:#x} "
                        "lies past the end of the file: the dump is incomplete"}
    r = run_pmdb(str(path), "-e", f"{uts_release_address(dump):x}/s")
    _no_traceback(r)
    assert r.status == 0 and kernel.truth["osrelease"] in r.out and "incomplete" in r.err


def test_corrupt_bitmaps(kernel: KernelFixture, tmp_path: Path) -> None:
    """A second bitmap that claims every pfn: warnings at open, and pages fault as corrupt
    rather than reading garbage; bitmaps that run past the file: a one-line error."""
    path = kernel.dump("kdump-lzo-d31")
    _block, bitmap, half, _data, _max = _kdump_layout(path)
    data = _lzo(kernel)
    data[bitmap + half : bitmap + 2 * half] = b"\xff" * half
    ones = tmp_path / "ones"
    ones.write_bytes(bytes(data))
    dump = _open(str(ones))
    assert "32 pages are in the dump but not marked as memory in its first bitmap (corrupt bitmaps?)" in dump.warnings
    assert any("page descriptor 0 of 65536 is corrupt" in w for w in dump.warnings), dump.warnings
    with pytest.raises(FaultError, match="corrupt page descriptor"):
        dump.physical.read(_uts_pfn(kernel) * PAGE, 8)
    _no_traceback(run_pmdb(str(ones), "-e", "::status"))

    data = _lzo(kernel)
    struct.pack_into("<I", data, 436, 0x7FFFFFFF)  # bitmap_blocks
    huge = tmp_path / "huge"
    huge.write_bytes(bytes(data))
    r = run_pmdb(str(huge), "-e", "::status")
    _no_traceback(r)
    assert (r.status, r.err) == (2, f"pmdb: {huge}: kdump bitmaps end at 0x80000002000, past the end of the file "
                                    f"({len(data):#x} bytes)\n")


@pytest.mark.parametrize(("change", "message"), [
    ("size", "corrupt page descriptor: size 0x2000 (flags 0x2, page size 0x1000)"),
    ("flags", "corrupt page descriptor: flags 0x3 name more than one compression"),
    ("offset-past-end", "its data at 0x7fffffff0000 lies past the end of the file: the file is truncated"),
    ("offset-into-header", "corrupt page descriptor: data at 0x100 lies outside the page data"),
    ("data", "the page fails to decompress: lzo: "),
])
def test_corrupt_page_descriptor(kernel: KernelFixture, tmp_path: Path, change: str, message: str) -> None:
    """init_uts_ns's page with one thing wrong: reading it faults, naming what is wrong;
    the rest of the dump reads."""
    data = _lzo(kernel)
    at = _descriptor_offset(kernel, _uts_pfn(kernel))
    offset, size, flags, _page_flags = struct.unpack_from("<qIIQ", data, at)
    assert flags == 0x2  # lzo
    if change == "size":
        struct.pack_into("<I", data, at + 8, 0x2000)
    elif change == "flags":
        struct.pack_into("<I", data, at + 12, 0x3)
    elif change == "offset-past-end":
        struct.pack_into("<q", data, at, 0x7FFFFFFF0000)
    elif change == "offset-into-header":
        struct.pack_into("<q", data, at, 0x100)
    else:
        data[offset : offset + size] = bytes(i * 37 % 256 for i in range(size))
    path = tmp_path / "vmcore"
    path.write_bytes(bytes(data))
    dump = _open(str(path))
    assert dump.warnings == []
    addr = uts_release_address(dump)
    with pytest.raises(FaultError) as e:
        dump.memory.read(addr, 65)
    assert e.value.reason == FaultReason.NOT_IN_DUMP and e.value.address == addr
    assert message in str(e.value)
    pc = kernel.truth["story"]["faulting_pc"]
    assert dump.memory.read(pc, 16) == opened(kernel.dump("elf")).memory.read(pc, 16)
    r = run_pmdb(str(path), "-e", f"{addr:x}/s")
    _no_traceback(r)
    assert r.status == 1 and message in r.err


def _edit_vmcoreinfo(kernel: KernelFixture, tmp_path: Path, edits: dict[str, str]) -> str:
    """The -d 31 dump with VMCOREINFO entries changed in place, each KEY=value to KEY=new (the
    same length) or, for a new key of the same length, renamed (the sub-header's copy, which is
    the note's too)."""
    data = _lzo(kernel)
    offset, size = struct.unpack_from("<qQ", data, PAGE + SUB_VMCOREINFO_OFFSET)
    for key, new in edits.items():
        old = f"{key}={kernel.truth['vmcoreinfo'][key]}".encode()
        new_entry = new.encode() if "=" in new else f"{key}={new}".encode()
        assert len(new_entry) == len(old)
        at = data.index(old + b"\n", offset, offset + size)
        data[at : at + len(old)] = new_entry
    path = tmp_path / "vmcore"
    path.write_bytes(bytes(data))
    return str(path)


_CR3 = "kernel page tables taken from CR3 of CPU 0 (QEMU note)"


def _unaligned(old: str) -> str:
    """A KERNELOFFSET of the same length that is not page-aligned (the boot's KASLR varies)."""
    return old[:-1] + ("1" if old[-1] != "1" else "2")


# Each case: the entries to change (a function of this boot's VMCOREINFO, whose values and their
# lengths change from boot to boot) and the one warning that must name what was wrong.
_VMCOREINFO_EDITS: list[tuple[Callable[[dict[str, str]], dict[str, str]], Callable[[dict[str, str]], str]]] = [
    (lambda v: {"SYMBOL(swapper_pg_dir)": "z" * len(v["SYMBOL(swapper_pg_dir)"])},
     lambda v: f"VMCOREINFO SYMBOL(swapper_pg_dir)='{'z' * len(v['SYMBOL(swapper_pg_dir)'])}': "
               f"not a 64-bit hexadecimal number: {_CR3}"),
    (lambda v: {"SYMBOL(swapper_pg_dir)": f"SYMBOL(swapper_pg_dxx)={v['SYMBOL(swapper_pg_dir)']}",
                "SYMBOL(init_top_pgt)": f"SYMBOL(init_top_pxx)={v['SYMBOL(init_top_pgt)']}"},
     lambda v: f"VMCOREINFO has no SYMBOL(swapper_pg_dir): {_CR3}"),
    (lambda v: {"SYMBOL(swapper_pg_dir)": "0" * len(v["SYMBOL(swapper_pg_dir)"])},
     lambda v: f"VMCOREINFO SYMBOL(swapper_pg_dir)=0: not a page of the kernel image mapping: {_CR3}"),
    (lambda v: {"NUMBER(phys_base)": v["NUMBER(phys_base)"][:-1] + "x"},
     lambda v: f"VMCOREINFO NUMBER(phys_base)='{v['NUMBER(phys_base)'][:-1]}x': not a decimal number: "
               "trying the phys_base the dump format gives"),
    (lambda v: {"PAGESIZE": "4095"},
     lambda v: "VMCOREINFO PAGESIZE=4095: not a power of two from 1024 to 1048576: ignored"),
    (lambda v: {"KERNELOFFSET": _unaligned(v["KERNELOFFSET"])},
     lambda v: f"VMCOREINFO KERNELOFFSET={_unaligned(v['KERNELOFFSET'])}: not a page-aligned offset within the "
               "kernel image mapping (0x40000000 bytes): ignored"),
    (lambda v: {"NUMBER(pgtable_l5_enabled)": "7"},
     lambda v: "VMCOREINFO NUMBER(pgtable_l5_enabled)=7: not 0 or 1: ignored"),
]


@pytest.mark.parametrize("case", range(len(_VMCOREINFO_EDITS)))
def test_vmcoreinfo_with_missing_or_absurd_values(kernel: KernelFixture, tmp_path: Path, case: int) -> None:
    """Each names the entry; the kernel's memory still reads through what is left (QEMU's CR3,
    the sub-header's phys_base, the format's page size, 4-level paging)."""
    make_edits, make_warning = _VMCOREINFO_EDITS[case]
    edits, warning = make_edits(kernel.truth["vmcoreinfo"]), make_warning(kernel.truth["vmcoreinfo"])
    path = _edit_vmcoreinfo(kernel, tmp_path, edits)
    dump = _open(path)
    assert dump.warnings == [warning]
    addr = uts_release_address(opened(kernel.dump("elf")))
    assert cstring(dump.memory.read(addr, 65)) == kernel.truth["osrelease"]
    r = run_pmdb(path, "-e", f"{addr:x}/s")
    _no_traceback(r)
    assert r.status == 0 and kernel.truth["osrelease"] in r.out and warning in r.err


def test_vmcoreinfo_absent(kernel: KernelFixture, tmp_path: Path) -> None:
    """No VMCOREINFO at all (the sub-header's pointer cleared, the note renamed): the CPUs and,
    through QEMU's CR3, kernel memory are still there."""
    data = _lzo(kernel)
    struct.pack_into("<q", data, PAGE + SUB_VMCOREINFO_OFFSET, 0)
    offset, size = struct.unpack_from("<qQ", data, PAGE + 48)  # the notes
    at = data.index(b"VMCOREINFO\0", offset, offset + size)
    data[at : at + 10] = b"VMCOREINFX"
    path = tmp_path / "vmcore"
    path.write_bytes(bytes(data))
    dump = _open(str(path))
    assert dump.warnings == ["the dump has no VMCOREINFO: kernel symbols and layout must come from elsewhere",
                             "no VMCOREINFO: kernel page tables taken from CR3 of CPU 0 (QEMU note)"]
    assert "vmcoreinfo" not in dump.notes and len(dump.threads) == 2
    addr = uts_release_address(opened(kernel.dump("elf")))
    assert cstring(dump.memory.read(addr, 65)) == kernel.truth["osrelease"]
    _no_traceback(run_pmdb(str(path), "-e", f"{addr:x}/s"))


def test_vmcoreinfo_size_absurd(kernel: KernelFixture, tmp_path: Path) -> None:
    """A sub-header that claims a huge VMCOREINFO is not believed (and allocates nothing): the
    note's copy is used."""
    data = _lzo(kernel)
    struct.pack_into("<Q", data, PAGE + SUB_VMCOREINFO_OFFSET + 8, 0x7FFF_FFFF_FFFF)
    path = tmp_path / "vmcore"
    path.write_bytes(bytes(data))
    dump = _open(str(path))
    assert dump.warnings == ["kdump sub-header puts the VMCOREINFO at 0x16e0 (0x7fffffffffff bytes), outside the "
                             "file or too large: ignored"]
    assert dump.notes["vmcoreinfo"].entries == kernel.truth["vmcoreinfo"]


@pytest.mark.parametrize(("where", "value", "error"), [
    (428, 1000, "kdump block_size 1000 is not a power of two from 1024 to 1048576"),
    (432, 0, "kdump sub_hdr_size 0 blocks is out of range (1 to 1024)"),
    (436, 0, "kdump bitmap_blocks is 0: the dump has no bitmaps"),
])
def test_absurd_kdump_header(kernel: KernelFixture, tmp_path: Path, where: int, value: int, error: str) -> None:
    data = _lzo(kernel)
    struct.pack_into("<i", data, where, value)
    path = tmp_path / "vmcore"
    path.write_bytes(bytes(data))
    r = run_pmdb(str(path), "-e", "::status")
    assert (r.status, r.err) == (2, f"pmdb: {path}: {error}\n")


def test_kdump_cut_in_its_header(kernel: KernelFixture, tmp_path: Path) -> None:
    path = _copy_prefix(kernel.dump("kdump-lzo-d31"), tmp_path / "vmcore", 300)
    r = run_pmdb(path, "-e", "::status")
    assert (r.status, r.err) == (2, f"pmdb: {path}: truncated kdump header (300 of 464 bytes)\n")


def test_truncated_flattened_stream(kernel: KernelFixture, tmp_path: Path) -> None:
    """A flattened stream cut in a record: the records before it read, a warning says so."""
    src = kernel.dump("kdump-zlib-flat")
    path = _copy_prefix(src, tmp_path / "vmcore", Path(src).stat().st_size - 100_000)
    dump = _open(path)
    assert dump.warnings[0].startswith("flattened record at ") and "the dump was cut short" in dump.warnings[0]
    assert cstring(dump.memory.read(uts_release_address(dump), 65)) == kernel.truth["osrelease"]
    _no_traceback(run_pmdb(path, "-e", "::status"))


def test_random_damage_never_escapes_as_a_bug(kernel: KernelFixture, tmp_path: Path) -> None:
    """Bytes of the -d 31 dump's headers, notes, bitmaps and descriptors overwritten at random
    (a fixed seed): opening and reading either work or fail with pmdb's own errors."""
    import random

    from pmdb.errors import PmdbError

    rng = random.Random(5)
    clean = _lzo(kernel)
    _block, _bitmap, _half, data_offset, _max = _kdump_layout(kernel.dump("kdump-lzo-d31"))
    addr = uts_release_address(opened(kernel.dump("elf")))
    path = tmp_path / "vmcore"
    for _ in range(60):
        data = bytearray(clean)
        for _ in range(rng.choice((1, 4, 16))):
            at = rng.randrange(data_offset + 24 * 16000)
            data[at : at + 8] = rng.randbytes(8)
        path.write_bytes(bytes(data))
        try:
            dump = _open(str(path))
        except PmdbError:
            continue
        for where in (addr, kernel.truth["story"]["faulting_pc"]):
            try:
                dump.memory.read(where, 64)
            except PmdbError:
                pass


# --- the pieces on synthetic input ----------------------------------------------------------


def test_vmcoreinfo_parser() -> None:
    from pmdb.formats.vmcoreinfo import VmcoreInfoError, parse_vmcoreinfo

    info = parse_vmcoreinfo(b"OSRELEASE=6.1.0\nPAGESIZE=4096\nSYMBOL(x)=ffffffff81000000\nOFFSET(a.b)=16\n"
                            b"NUMBER(phys_base)=-461373440\nNUMBER(m)=0x10\nKERNELOFFSET=25c00000\n"
                            b"CRASHTIME=1700000000\nnot an entry\nOSRELEASE=second\n\0\0\0")
    assert (info.osrelease, info.page_size, info.symbol("x"), info.offset("a.b")) == ("6.1.0", 4096, 0xFFFFFFFF81000000,
                                                                                     16)
    assert (info.phys_base, info.number("m"), info.kernel_offset, info.crash_time) == (-461373440, 16, 0x25C00000,
                                                                                       1700000000)
    assert (info.symbol("y"), info.size("t"), info.pgtable_l5_enabled, info.ignored) == (None, None, None,
                                                                                          ("not an entry",))
    with pytest.raises(VmcoreInfoError, match=r"VMCOREINFO has no SYMBOL\(y\) entry"):
        info.require("SYMBOL(y)")
    bad = parse_vmcoreinfo(b"PAGESIZE=3000\nOFFSET(a.b)=-1\nSYMBOL(x)=12345678901234567\nLENGTH(z)=1e3\n")
    for call, message in ((lambda: bad.page_size, "PAGESIZE=3000: not a power of two"),
                          (lambda: bad.offset("a.b"), r"OFFSET\(a.b\)='-1': negative"),
                          (lambda: bad.symbol("x"), r"SYMBOL\(x\)='12345678901234567': not a 64-bit hexadecimal"),
                          (lambda: bad.length("z"), r"LENGTH\(z\)='1e3': not a decimal number")):
        with pytest.raises(VmcoreInfoError, match=message):
            call()
    with pytest.raises(VmcoreInfoError, match="no KEY=value entries"):
        parse_vmcoreinfo(b"\0" * 64)
    with pytest.raises(VmcoreInfoError, match="more than the"):
        parse_vmcoreinfo(b"A=1\n" * (1 << 19))


def test_flattened_records_later_ones_win(tmp_path: Path) -> None:
    """makedumpfile -R writes records in order: a later record overwrites an earlier one, and
    ranges no record wrote are zeros. A stream without its end marker still reads, with a warning."""
    from pmdb.formats.flattened import FlattenedFile
    from pmdb.formats.mapped import MappedFile

    def record(offset: int, data: bytes) -> bytes:
        return struct.pack(">qq", offset, len(data)) + data

    head = b"makedumpfile".ljust(16, b"\0") + struct.pack(">qq", 1, 1)
    body = record(0, b"aaaaaaaa") + record(2, b"bb") + record(12, b"cc") + record(6, b"dddd") + record(20, b"")
    path = tmp_path / "flat"
    path.write_bytes(head.ljust(4096, b"\0") + body + struct.pack(">qq", -1, 0))
    flat = FlattenedFile(MappedFile(str(path)))
    assert flat.read(0, 100) == b"aabbaadddd\0\0cc" and flat.size == 14
    assert flat.warnings == ["flattened stream rewrites some ranges: later records win"]
    assert [flat.read(i, 3) for i in (5, 9, 13)] == [b"add", b"d\0\0", b"c"]
    path.write_bytes(head.ljust(4096, b"\0") + record(0, b"abcdef")[:-2])
    flat = FlattenedFile(MappedFile(str(path)))
    assert flat.read(0, 10) == b"abcd"
    assert flat.warnings == ["flattened record at 0x1000 claims 0x6 bytes but only 0x4 remain: the dump was cut short"]


class _PhysicalMemory:
    """Physical memory made of pages set one by one (a test's page tables and data)."""

    def __init__(self) -> None:
        self.pages: dict[int, bytearray] = {}

    def page(self, pa: int) -> bytearray:
        return self.pages.setdefault(pa // PAGE, bytearray(PAGE))

    def entry(self, table: int, index: int, value: int) -> None:
        struct.pack_into("<Q", self.page(table), 8 * index, value)

    def read(self, addr: int, size: int) -> bytes:
        if addr // PAGE not in self.pages or (addr + size - 1) // PAGE != addr // PAGE:
            raise FaultError(addr, FaultReason.NOT_IN_DUMP, "synthetic")
        return bytes(self.pages[addr // PAGE][addr % PAGE : addr % PAGE + size])


@pytest.mark.parametrize("levels", [4, 5])
def test_page_walk_levels_and_large_pages(levels: int) -> None:
    """A 4 KiB page, a 2 MiB page and a 1 GiB page, under 4- and 5-level tables, with an
    encryption bit in every entry; the direct map found where it maps physical 0."""
    from pmdb.memory.paging import DIRECT_MAP_BASE, KernelVirtualSpace, X86_64PageTables

    sme = 1 << 47
    mem = _PhysicalMemory()
    shifts = (48, 39, 30, 21, 12)[5 - levels :]
    next_table = iter(range(0x10000, 0x100000, PAGE))
    root = next(next_table)

    def map_page(va: int, pa: int, size_shift: int) -> None:
        table = root
        for shift in shifts:
            index = (va >> shift) & 0x1FF
            if shift == size_shift:
                mem.entry(table, index, pa | sme | 0x63 | (0x80 if shift > 12 else 0))
                return
            raw = struct.unpack_from("<Q", mem.page(table), 8 * index)[0]
            if not raw:
                raw = next(next_table) | sme | 0x63
                mem.entry(table, index, raw)
            table = raw & 0x000F_FFFF_FFFF_F000 & ~sme

    small, medium, large = 0xFFFF_FFFF_8123_4000, 0xFFFF_FFFF_C040_0000, DIRECT_MAP_BASE[levels] + (3 << 30)
    map_page(small, 0x200000, 12)
    map_page(medium, 0x400000, 21)
    map_page(large, 0, 30)
    for pa, text in ((0x200000 + 0x10, b"small"), (0x400000 + 0x1234, b"medium"), (0x777, b"large")):
        mem.page(pa)[pa % PAGE : pa % PAGE + len(text)] = text
    tables = X86_64PageTables(mem, root | sme, levels, sme)
    space = KernelVirtualSpace(tables)
    assert space.read(small + 0x10, 5) == b"small"
    assert space.read(medium + 0x1234, 6) == b"medium"
    assert space.read(large + 0x777, 5) == b"large"
    assert [tables.translate(v)[1] for v in (small, medium, large)] == [1 << 12, 1 << 21, 1 << 30]
    assert tables.first_mapped(DIRECT_MAP_BASE[levels]) == large
    with pytest.raises(FaultError) as e:
        space.read(medium + (2 << 21), 4)
    assert e.value.reason == FaultReason.UNMAPPED and e.value.detail == "PMD entry not present"
    assert str(e.value) == "no mapping for address"  # mdb's words; the level stays in .detail
    with pytest.raises(FaultError) as e:
        space.read(1 << 60, 4)
    assert e.value.detail == "not a canonical address"
    with pytest.raises(FaultError, match="synthetic") as e:  # mapped, but the page is not in the "dump"
        space.read(large + PAGE * 5, 4)
    assert e.value.reason == FaultReason.NOT_IN_DUMP and e.value.address == large + PAGE * 5


def test_lru_cache_is_bounded() -> None:
    from pmdb.memory.lru import LruCache

    cache: LruCache[int, str] = LruCache(2)
    cache.put(1, "a")
    cache.put(2, "b")
    assert cache.get(1) == "a"  # 1 is now the most recent
    cache.put(3, "c")
    assert (cache.get(2), cache.get(1), cache.get(3), len(cache)) == (None, "a", "c", 2)


def test_overlapping_segments_of_a_kexec_vmcore() -> None:
    """kexec describes the kernel text twice (its own segment and System RAM); the first
    segment covering an address serves it, and bytes the file has go before bytes it lost."""
    from pmdb.dumps.vmcore import _first_covers
    from pmdb.memory.space import BufferSource, Region, SegmentMap

    ram, text = BufferSource(bytes(range(100))), BufferSource(bytes(range(100, 200)))
    regions = [Region(10, 60, ram, 0, "ram"), Region(30, 40, text, 0, "text"),
               Region(50, 90, None, 0, "cut"), Region(0, 20, None, 0, "lost")]
    pieces = _first_covers(regions)
    assert [(r.start, r.end, r.name) for r in pieces] == [(0, 10, "lost"), (10, 60, "ram"), (60, 90, "cut")]
    space = SegmentMap(pieces)
    assert space.read(28, 4) == bytes(range(18, 22))
    with pytest.raises(FaultError):
        space.read(58, 4)
