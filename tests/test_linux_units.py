"""The Linux personality's parts on small hand-made inputs: kallsyms tables encoded here, the
printk ring buffers laid out with VMCOREINFO's offsets, System.map files, symbol tables and
the panic report, with the bad input each must survive."""

from __future__ import annotations

import array
import struct
from pathlib import Path

import pytest

from pmdb.errors import BadDumpError
from pmdb.memory.space import BufferSource, Region, SegmentMap
from pmdb.os.linux.coreinfo import CoreInfo
from pmdb.os.linux.kallsyms import KallsymsTables, read_kallsyms
from pmdb.os.linux.ksyms import KernelSymbol, TableSymbols
from pmdb.os.linux.layout import Layout
from pmdb.os.linux.panic import panic_report
from pmdb.os.linux.printk import LegacyLog, LockLessLog, LogRecord
from pmdb.os.linux.reader import KernelReader
from pmdb.os.linux.sysmap import SystemMapError, check_against_dump, read_system_map

BASE = 0xFFFFFFFF81000000


def memory(*chunks: tuple[int, bytes]) -> KernelReader:
    """A kernel reader over byte strings placed at addresses."""
    return KernelReader(SegmentMap([Region(a, a + len(b), BufferSource(b)) for a, b in chunks]))


# kallsyms --------------------------------------------------------------------------------

def encode_kallsyms(symbols: list[tuple[int, str]], at: int = 0xFFFFFFFF82000000) -> tuple[KernelReader, CoreInfo]:
    """Tables as the kernel lays them out for (offset, letter+name) pairs, base-relative with
    absolute per-CPU symbols: token 0x80 stands for "net", the others for their own byte."""
    tokens = [bytes([i]) if i != 0x80 else b"net" for i in range(256)]
    table = b"".join(t + b"\0" for t in tokens)
    index = array.array("H", [sum(len(t) + 1 for t in tokens[:i]) for i in range(256)]).tobytes()
    names = bytearray()
    for _off, name in symbols:
        raw = name.encode().replace(b"net", b"\x80")
        names += bytes([len(raw)]) if len(raw) < 0x80 else bytes([len(raw) & 0x7F | 0x80, len(raw) >> 7])
        names += raw
    offsets = array.array("i", [off for off, _ in symbols]).tobytes()
    layout = {"kallsyms_offsets": offsets, "kallsyms_relative_base": struct.pack("<Q", BASE),
              "kallsyms_num_syms": struct.pack("<I", len(symbols)), "kallsyms_names": bytes(names),
              "kallsyms_token_table": table, "kallsyms_token_index": index}
    chunks, entries, addr = [], {}, at
    for name, data in layout.items():
        chunks.append((addr, data))
        entries[f"SYMBOL({name})"] = f"{addr:x}"
        addr += (len(data) + 15) & ~15
    return memory(*chunks), CoreInfo(entries)


def test_kallsyms_decodes_names_letters_and_addresses() -> None:
    long_name = "T" + "x" * 200  # a two-byte length
    reader, info = encode_kallsyms([(0, "A__per_cpu_start"), (0x1F000, "Acurrent_task"), (-1, "T_text"),
                                    (-1, "Tstartup_64"), (-0x11, "tnetif_rx"), (-0x21, long_name),
                                    (-0x31, "Dnetstacks")])
    tables, missing = KallsymsTables.from_coreinfo(info)
    assert tables is not None and not missing
    ks = read_kallsyms(reader, tables)
    assert ks.names == ["__per_cpu_start", "current_task", "_text", "startup_64", "netif_rx", "x" * 200, "netstacks"]
    assert ks.letters == ["A", "A", "T", "T", "t", "T", "D"]
    assert ks.addresses == [0, 0x1F000, BASE, BASE, BASE + 0x10, BASE + 0x20, BASE + 0x30]
    syms = TableSymbols("vmlinux", ks.addresses, ks.letters, ks.names)
    assert syms.by_address(BASE + 0x15).name == "netif_rx"
    assert syms.by_address(BASE + 0x15).size == 0x10
    assert syms.by_address(BASE).name == "startup_64"  # fewer underscores among aliases
    assert syms.by_address(8) is None  # per-CPU offsets cover no address
    assert syms.by_name("current_task").address == 0x1F000


def test_missing_kallsyms_entries_are_named() -> None:
    _reader, info = encode_kallsyms([(-1, "T_text")])
    del info.entries["SYMBOL(kallsyms_token_index)"], info.entries["SYMBOL(kallsyms_names)"]
    tables, missing = KallsymsTables.from_coreinfo(info)
    assert tables is None
    assert missing == ["SYMBOL(kallsyms_names)", "SYMBOL(kallsyms_token_index)"]


def test_truncated_kallsyms_names_are_a_bad_dump() -> None:
    reader, info = encode_kallsyms([(-1, "T_text"), (-2, "Tfoo")])
    tables, _ = KallsymsTables.from_coreinfo(info)
    assert tables is not None
    reader.u32(tables.num_syms)
    bad = memory((tables.num_syms, struct.pack("<I", 1 << 23)))
    with pytest.raises(BadDumpError, match="not a kernel's symbol count"):
        read_kallsyms(bad, tables)


# symbol tables ---------------------------------------------------------------------------

def test_table_symbols_sizes_and_kinds() -> None:
    rows = [KernelSymbol(BASE + 0x100, "T", "f"), KernelSymbol(BASE + 0x180, "t", "g", 0x20),
            KernelSymbol(BASE + 0x200, "D", "v"), KernelSymbol(0x40, "A", "pcpu")]
    syms = TableSymbols.from_rows("mod", rows)
    assert syms.by_address(BASE + 0x17F).name == "f"
    assert syms.by_address(BASE + 0x1A0) is None  # g's own size ends before v
    assert syms.by_name("v").kind.value == "OBJT" and syms.by_name("f").binding.value == "GLOB"
    assert [r.name for r in syms.table()] == ["pcpu", "f", "g", "v"]
    assert syms.placed_range == (BASE + 0x100, BASE + 0x200)


# System.map ------------------------------------------------------------------------------

def test_system_map_relocates_text_not_per_cpu(tmp_path: Path) -> None:
    path = tmp_path / "System.map"
    path.write_text("0000000000000000 D __per_cpu_start\nffffffff81000000 T _stext\nffffffff82000000 D linux_banner\n")
    rows = read_system_map(str(path), 0x1000000)
    assert [(r.name, r.address, r.letter) for r in rows] == [
        ("__per_cpu_start", 0, "A"), ("_stext", 0xFFFFFFFF82000000, "T"), ("linux_banner", 0xFFFFFFFF83000000, "D")]


def test_debian_placeholder_is_named(tmp_path: Path) -> None:
    path = tmp_path / "System.map-6.1.0-56-cloud-amd64"
    path.write_text("ffffffffffffffff B The real System.map is in the linux-image-<version>-dbg package\n")
    with pytest.raises(SystemMapError, match=r"Debian's placeholder System\.map"):
        read_system_map(str(path), 0)


def test_a_system_map_of_another_kernel_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "System.map"
    path.write_text("ffffffff81000000 T _stext\nffffffff82000000 D linux_banner\n")
    rows = read_system_map(str(path), 0)
    banners = {0xFFFFFFFF82000000: "Linux version 5.10.0-9-amd64 (debian-kernel@lists.debian.org) ..."}
    with pytest.raises(SystemMapError, match=r"not this kernel's System\.map: at its linux_banner"):
        check_against_dump(str(path), rows, "6.1.0-56-cloud-amd64", banners.__getitem__, {})
    with pytest.raises(SystemMapError, match="puts _stext at 0xffffffff81000000, the dump's VMCOREINFO at"):
        check_against_dump(str(path), rows, "6.1.0-56-cloud-amd64", banners.__getitem__, {"_stext": BASE + 0x1000})
    good = {0xFFFFFFFF82000000: "Linux version 6.1.0-56-cloud-amd64 (debian-kernel@lists.debian.org) ..."}
    check_against_dump(str(path), rows, "6.1.0-56-cloud-amd64", good.__getitem__, {"_stext": BASE})


def test_a_system_map_that_is_not_one(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello world\n")
    with pytest.raises(SystemMapError, match=r"not a System\.map line"):
        read_system_map(str(path), 0)
    with pytest.raises(SystemMapError, match=r"cannot read System\.map"):
        read_system_map(str(tmp_path / "missing"), 0)


# printk ----------------------------------------------------------------------------------

PRB_INFO = {  # VMCOREINFO's entries of a 6.1 kernel: Layout falls back to them without BTF
    "OFFSET(printk_ringbuffer.desc_ring)": "0", "OFFSET(printk_ringbuffer.text_data_ring)": "48",
    "SIZE(prb_desc_ring)": "48", "OFFSET(prb_desc_ring.count_bits)": "0", "OFFSET(prb_desc_ring.descs)": "8",
    "OFFSET(prb_desc_ring.infos)": "16", "OFFSET(prb_desc_ring.head_id)": "24", "OFFSET(prb_desc_ring.tail_id)": "32",
    "SIZE(prb_desc)": "24", "OFFSET(prb_desc.state_var)": "0", "OFFSET(prb_desc.text_blk_lpos)": "8",
    "OFFSET(prb_data_blk_lpos.begin)": "0", "OFFSET(prb_data_blk_lpos.next)": "8", "SIZE(printk_info)": "88",
    "OFFSET(printk_info.seq)": "0", "OFFSET(printk_info.ts_nsec)": "8", "OFFSET(printk_info.text_len)": "16",
    "OFFSET(printk_info.caller_id)": "20", "OFFSET(prb_data_ring.size_bits)": "0", "OFFSET(prb_data_ring.data)": "8",
}
RB, DESCS, INFOS, DATA = 0xFFFF888000000000, 0xFFFF888000001000, 0xFFFF888000002000, 0xFFFF888000004000


def lockless_ring(texts: list[tuple[str, int]], head: int, data_bits: int = 8) -> KernelReader:
    """A ring of 4 descriptors holding records id 0..head (the older overwritten), each
    (text, caller_id); blocks placed one after another in a 2**data_bits data ring."""
    count_bits, size = 2, 1 << data_bits
    descs, infos, data = bytearray(24 * 4), bytearray(88 * 4), bytearray(size)
    lpos = 0
    tail = max(0, head - 3)
    for ident in range(head + 1):
        text, caller = texts[ident]
        need = (8 + len(text) + 7) & ~7
        begin = lpos
        if lpos % size + need > size:  # wraps: the block starts again at the ring's start
            lpos += size - lpos % size
        start, lpos = lpos, lpos + need
        data[start % size : start % size + 8] = struct.pack("<Q", ident)
        data[start % size + 8 : start % size + 8 + len(text)] = text.encode()
        slot = ident % 4
        struct.pack_into("<QQQ", descs, 24 * slot, (2 << 62) | ident, begin, lpos)
        struct.pack_into("<QQHxxI", infos, 88 * slot, ident, 1_000_000_000 + ident * 1000, len(text), caller)
    rb = struct.pack("<I4xQQQQ8x", count_bits, DESCS, INFOS, head, tail) + struct.pack("<I4xQ", data_bits, DATA)
    return memory((RB, rb), (DESCS, bytes(descs)), (INFOS, bytes(infos)), (DATA, bytes(data)))


def test_lockless_ring_buffer_with_a_wrapped_block() -> None:
    texts = [(f"message number {i} " + "x" * (15 + i * 3), 0x80000000 | 1 if i == 4 else 42) for i in range(6)]
    log = LockLessLog(lockless_ring(texts, head=5), Layout(None, CoreInfo(PRB_INFO)), RB).records()
    assert [r.seq for r in log] == [2, 3, 4, 5]
    assert [r.text for r in log] == [t for t, _ in texts[2:]]
    assert (log[2].caller_cpu, log[2].caller_pid, log[1].caller_pid) == (1, None, 42)
    assert log[0].lines == ["[    1.000002] message number 2 " + "x" * 21]


def test_lockless_ring_with_absurd_ids_is_a_bad_dump() -> None:
    reader = lockless_ring([("a", 1)], head=0)
    bad = memory((RB, struct.pack("<I4xQQQQ8x", 2, DESCS, INFOS, 100, 0) + struct.pack("<I4xQ", 7, DATA)))
    with pytest.raises(BadDumpError, match="printk ring buffer"):
        LockLessLog(bad, Layout(None, CoreInfo(PRB_INFO)), RB).records()
    assert LockLessLog(reader, Layout(None, CoreInfo(PRB_INFO)), RB).records()[0].text == "a"


LOG_INFO = {"SIZE(printk_log)": "16", "OFFSET(printk_log.ts_nsec)": "0", "OFFSET(printk_log.len)": "8",
            "OFFSET(printk_log.text_len)": "10"}


def test_legacy_log_buf_wraps_at_a_zero_length_record() -> None:
    buf = bytearray(96)

    def put(at: int, ts: int, text: str) -> int:
        length = (16 + len(text) + 7) & ~7
        struct.pack_into("<QHH", buf, at, ts, length, len(text))
        buf[at + 16 : at + 16 + len(text)] = text.encode()
        return at + length

    end = put(48, 5_000, "older")  # first record at 48, then a wrap marker, then index 0
    struct.pack_into("<QH", buf, end, 0, 0)
    nxt = put(0, 7_000_000, "newer")
    log = LegacyLog(memory((DATA, bytes(buf))), Layout(None, CoreInfo(LOG_INFO)), DATA, 96, 48, nxt, 10).records()
    assert [(r.seq, r.text) for r in log] == [(10, "older"), (11, "newer")]
    assert log[1].lines == ["[    0.007000] newer"]


# the panic -------------------------------------------------------------------------------

def _records(*texts: str, pid: int = 9) -> list[LogRecord]:
    return [LogRecord(i, i, t, pid) for i, t in enumerate(texts)]


def test_panic_report_of_an_oops_names_its_first_line() -> None:
    log = _records("ipnet: dispatching", "BUG: kernel NULL pointer dereference, address: 0000000000000008",
                   "#PF: supervisor read access in kernel mode", "PGD 0 P4D 0 ",
                   "Oops: 0000 [#1] PREEMPT SMP NOPTI", "CPU: 1 PID: 9", "Kernel panic - not syncing: Fatal exception")
    report = panic_report(log)
    assert report.cause == "BUG: kernel NULL pointer dereference, address: 0000000000000008"
    assert report.panic == "Kernel panic - not syncing: Fatal exception"


def test_panic_report_of_a_general_protection_fault_and_a_plain_panic() -> None:
    gpf = "general protection fault, probably for non-canonical address 0xdead000000000100: 0000 [#1] SMP PTI"
    assert panic_report(_records("x", gpf, "RIP: ...", "Kernel panic - not syncing: Fatal exception")).cause == gpf
    plain = "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)"
    assert panic_report(_records("x", plain)) == panic_report(_records(plain))
    assert panic_report(_records(plain)).cause == plain
    assert panic_report(_records("nothing happened")).panic is None


# kdump's crash_notes ---------------------------------------------------------------------

def test_kdump_registers_come_from_crash_notes() -> None:
    """A dump kdump took (CRASHTIME) has each CPU's crash-time registers in its crash_notes,
    a per-CPU note buffer holding an NT_PRSTATUS; the dump's own notes are not used."""
    from pmdb.arch.x86_64 import X86_64
    from pmdb.dumps import Dump, DumpKind, ThreadState
    from pmdb.os.linux.kernel import LinuxKernel

    percpu, notes_ptr, area = 0xFFFFFFFF82100000, 0xFFFFFFFF82200000, 0xFFFF888010000000
    regs = [0x1000 + i for i in range(len(X86_64.gregset))]
    desc = bytes(112) + struct.pack(f"<{len(regs)}Q", *regs) + bytes(8)
    note = struct.pack("<III", 5, len(desc), 1) + b"CORE\0\0\0\0" + desc
    mem = memory((percpu, struct.pack("<QQ", area, area + 0x8000)), (notes_ptr, struct.pack("<Q", 0x40)),
                 (area + 0x8000 + 0x40, note.ljust(1024, b"\0")))
    info = {"CRASHTIME": "1795641150"}
    dump = Dump("vmcore", DumpKind.KDUMP, X86_64, mem.memory, [ThreadState(9, {"rip": 1})], notes={"vmcoreinfo": info})
    kernel = LinuxKernel(dump)
    kernel.__dict__["vmlinux_symbols"] = TableSymbols.from_rows("vmlinux", [
        KernelSymbol(percpu, "D", "__per_cpu_offset"), KernelSymbol(notes_ptr, "B", "crash_notes")])
    assert kernel.cpu_registers(1) == dict(zip(X86_64.gregset, regs, strict=True))
    assert kernel.cpu_registers(0) is None and "CPU 0: crash_notes" in kernel.problems[0]
