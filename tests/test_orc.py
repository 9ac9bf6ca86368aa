"""The ORC unwinder: the entry layouts, one step's rules, the last-resort stack scan and the
unwinder's strategy order on synthetic stacks; then the real kernel's tables against readelf,
objdump and the kernel's own DWARF CFI, and the stacks of the fixture's panic against crash,
drgn and the console's oops — through test stand-ins for the dump reader and the personality
(tests/kernel_stand_in.py) and through `pmdb.open` on every dump format.
"""

from __future__ import annotations

import re
import struct
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import pytest
from conftest import load_kernel_fixture
from kernel_stand_in import StandInKernel

from pmdb.arch.x86_64 import X86_64
from pmdb.debuginfo.symbols import ObjectSymbols
from pmdb.errors import FaultError, FaultReason, PmdbError
from pmdb.formats.cfi import CfiRow
from pmdb.formats.elf import ElfFile
from pmdb.memory.space import BufferSource, Region, SegmentMap
from pmdb.unwind.frames import Frame, UnwindMethod
from pmdb.unwind.orc import PT_REGS, OrcStop, orc_step
from pmdb.unwind.orc_kernel import KernelOrc, ModuleOrc, OrcRange
from pmdb.unwind.orc_table import LAYOUTS, OrcEntry, OrcReg, OrcTable, OrcType, layout_for_release
from pmdb.unwind.scan import follows_call, return_address_above
from pmdb.unwind.unwinder import Unwinder

if TYPE_CHECKING:
    from pmdb.program import Program

V1, V1_OLD, V2, V3 = LAYOUTS[1], LAYOUTS[0], LAYOUTS[2], LAYOUTS[3]


# Synthetic memory ------------------------------------------------------------------------


class Words:
    """A sparse memory of 64-bit words and byte strings, for hand-built stacks and code."""

    def __init__(self) -> None:
        self.bytes: dict[int, int] = {}

    def put(self, addr: int, *words: int) -> Words:
        for i, w in enumerate(words):
            self.put_bytes(addr + 8 * i, struct.pack("<Q", w & (1 << 64) - 1))
        return self

    def put_bytes(self, addr: int, data: bytes) -> Words:
        for i, b in enumerate(data):
            self.bytes[addr + i] = b
        return self

    def read(self, addr: int, size: int) -> bytes:
        out = bytearray()
        for a in range(addr, addr + size):
            if a not in self.bytes:
                raise FaultError(a, FaultReason.UNMAPPED)
            out.append(self.bytes[a])
        return bytes(out)

    def word(self, addr: int) -> int:
        return struct.unpack("<Q", self.read(addr, 8))[0]


def entry(sp_reg: int, sp_offset: int, kind: OrcType = OrcType.CALL, bp_reg: int = OrcReg.UNDEFINED,
          bp_offset: int = 0, after: bool = True) -> OrcEntry:
    return OrcEntry(sp_offset, bp_offset, sp_reg, bp_reg, kind, kind in (OrcType.REGS, OrcType.REGS_PARTIAL), after)


# Layouts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("release", "layout"), [
    ("4.19.0-27-amd64", V1_OLD), ("5.11.22", V1_OLD), ("5.15.0-91-generic", V1), ("6.1.0-56-cloud-amd64", V1),
    ("6.2.16", V1), ("6.3.13", V2), ("6.4.0", V3), ("6.12.48+deb13-amd64", V3),
])
def test_layout_follows_the_kernel_release(release: str, layout: object) -> None:
    assert layout_for_release(release) is layout


@pytest.mark.parametrize("release", ["4.9.0", "3.10.0-1160.el7", "linux", ""])
def test_no_layout_before_orc_or_for_nonsense(release: str) -> None:
    with pytest.raises(PmdbError):
        layout_for_release(release)


def test_layouts_decode_their_bit_fields() -> None:
    # 4.14-6.2: sp_reg:4 bp_reg:4 type:2 end:1
    e = V1.decode(16, -16, OrcReg.SP | OrcReg.PREV_SP << 4)
    assert (e.sp_reg, e.sp_offset, e.bp_reg, e.bp_offset, e.type, e.signal) == (OrcReg.SP, 16, OrcReg.PREV_SP, -16,
                                                                               OrcType.CALL, False)
    assert V1.decode(0, 0, OrcReg.SP | 1 << 8).type is OrcType.REGS
    assert V1.decode(0, 0, OrcReg.SP | 1 << 8).signal
    assert V1.decode(8, 0, OrcReg.SP | 2 << 8).type is OrcType.REGS_PARTIAL
    assert V1.decode(0, 0, 1 << 10).type is OrcType.END_OF_STACK
    assert V1.decode(0, 0, 0).type is OrcType.UNDEFINED
    assert V1.decode(0, 0, OrcReg.SP_INDIRECT).offset_after_indirect
    assert not V1_OLD.decode(0, 0, OrcReg.SP_INDIRECT).offset_after_indirect
    # 6.3: the signal bit made explicit (bit 10), end moves to bit 11
    assert V2.decode(0, 0, OrcReg.SP | 1 << 10).signal
    assert V2.decode(0, 0, 1 << 11).type is OrcType.END_OF_STACK
    assert V2.decode(0, 0, 1 << 10).type is OrcType.UNDEFINED
    # 6.4+: type:3 with undefined and end of stack as types, signal at bit 11
    kinds = [V3.decode(0, 0, OrcReg.SP | t << 8).type for t in range(5)]
    assert kinds == [OrcType.UNDEFINED, OrcType.END_OF_STACK, OrcType.CALL, OrcType.REGS, OrcType.REGS_PARTIAL]
    assert V3.decode(0, 0, OrcReg.SP | 3 << 8 | 1 << 11).signal


# One step ----------------------------------------------------------------------------------

SP = 0xFFFFC90000010F00


def test_call_step_reads_the_return_address_and_saved_bp() -> None:
    mem = Words().put(SP + 0x20, 0xFFFFFFFF81000123, 0xFFFFFFFF81000456)  # [cfa-16]=rbp, [cfa-8]=ra
    step = orc_step(entry(OrcReg.SP, 0x30, bp_reg=OrcReg.PREV_SP, bp_offset=-16),
                    {"rip": 1, "rsp": SP, "rbp": 5, "rbx": 7}, mem.word)
    assert step.registers == {"rip": 0xFFFFFFFF81000456, "rsp": SP + 0x30, "rbp": 0xFFFFFFFF81000123}
    assert step.cfa == SP + 0x30 and step.regs_address is None and not step.exact_pc and not step.switches_stack


def test_call_step_from_bp_keeps_an_undefined_bp() -> None:
    mem = Words().put(SP + 0x48, 0xFFFFFFFF81000456)
    step = orc_step(entry(OrcReg.BP, 0x10), {"rip": 1, "rsp": SP, "rbp": SP + 0x40}, mem.word)
    assert step.registers == {"rip": 0xFFFFFFFF81000456, "rsp": SP + 0x50, "rbp": SP + 0x40}


def test_regs_step_takes_every_register_from_pt_regs() -> None:
    values = {name: 0x1000 + i for i, name in enumerate(PT_REGS)}
    values.update(cs=0x10, rip=0xFFFFFFFFC0263092, rsp=SP + 0x400)
    mem = Words().put(SP + 8, *(values[n] for n in PT_REGS))
    step = orc_step(entry(OrcReg.SP, 8, OrcType.REGS), {"rip": 1, "rsp": SP}, mem.word)
    assert step.registers == values
    assert step.regs_address == SP + 8 and step.exact_pc and step.switches_stack


def test_partial_regs_step_reads_the_iret_frame_and_keeps_the_rest() -> None:
    mem = Words().put(SP + 0x10, 0xFFFFFFFF81000789, 0x10, 0x246, SP + 0x800, 0x18)
    step = orc_step(entry(OrcReg.SP, 0x10, OrcType.REGS_PARTIAL), {"rip": 1, "rsp": SP, "rax": 3}, mem.word)
    assert step.registers == {"rip": 0xFFFFFFFF81000789, "cs": 0x10, "rflags": 0x246, "rsp": SP + 0x800, "ss": 0x18,
                              "rax": 3}
    assert step.regs_address == SP + 0x10 - 8 * PT_REGS.index("rip")


def test_user_mode_pt_regs_end_the_kernel_stack() -> None:
    mem = Words().put(SP, *([0] * 17 + [0x33] + [0] * 3))
    with pytest.raises(OrcStop, match="user-mode") as stop:
        orc_step(entry(OrcReg.SP, 0, OrcType.REGS), {"rip": 1, "rsp": SP}, mem.word)
    assert stop.value.outermost


def test_indirect_sp_since_5_12_adds_the_offset_after_reading() -> None:
    task_sp = SP - 0x4000
    mem = Words().put(SP, task_sp).put(task_sp + 0x18, 0xFFFFFFFF81000AAA)
    step = orc_step(entry(OrcReg.SP_INDIRECT, 0x20), {"rip": 1, "rsp": SP}, mem.word)
    assert step.registers["rsp"] == task_sp + 0x20 and step.registers["rip"] == 0xFFFFFFFF81000AAA
    assert step.switches_stack


def test_indirect_sp_before_5_12_reads_at_the_offset() -> None:
    mem = Words().put(SP + 0x20, SP + 0x100).put(SP + 0xF8, 0xFFFFFFFF81000BBB)
    step = orc_step(entry(OrcReg.SP_INDIRECT, 0x20, after=False), {"rip": 1, "rsp": SP}, mem.word)
    assert step.registers["rsp"] == SP + 0x100


def test_indirect_bp_reads_at_bp_plus_offset() -> None:
    mem = Words().put(SP + 0x40 - 8, SP + 0x200).put(SP + 0x1F8, 0xFFFFFFFF81000CCC)
    step = orc_step(entry(OrcReg.BP_INDIRECT, -8), {"rip": 1, "rsp": SP, "rbp": SP + 0x40}, mem.word)
    assert step.registers["rsp"] == SP + 0x200


def test_named_base_registers_come_from_the_frame() -> None:
    mem = Words().put(SP + 0x98, 0xFFFFFFFF81000DDD)
    step = orc_step(entry(OrcReg.R10, 0x20), {"rip": 1, "rsp": SP, "r10": SP + 0x80}, mem.word)
    assert step.registers["rsp"] == SP + 0xA0


@pytest.mark.parametrize(("e", "outermost", "message"), [
    (entry(OrcReg.UNDEFINED, 0, OrcType.END_OF_STACK), True, "end of stack"),
    (entry(OrcReg.UNDEFINED, 0, OrcType.UNDEFINED), False, "no unwind information"),
    (entry(OrcReg.BP, 16), False, "needs %rbp"),
    (entry(OrcReg.DX, 8), False, "needs %rdx"),
    (entry(12, 8), False, "unknown base register 12"),
    (entry(OrcReg.SP, 8, bp_reg=9), False, "unknown base register 9 for the previous bp"),
])
def test_steps_that_end_the_stack(e: OrcEntry, outermost: bool, message: str) -> None:
    mem = Words().put(SP, 0xFFFFFFFF81000EEE)
    with pytest.raises(OrcStop, match=message) as stop:
        orc_step(e, {"rip": 1, "rsp": SP}, mem.word)
    assert stop.value.outermost is outermost


# The stack scan ------------------------------------------------------------------------------

CODE = 0xFFFFFFFF81000000


@pytest.mark.parametrize(("insn", "is_call"), [
    (bytes.fromhex("e8 10 20 30 40"), True),  # call rel32
    (bytes.fromhex("ff d0"), True),  # call *%rax
    (bytes.fromhex("41 ff d3"), True),  # call *%r11
    (bytes.fromhex("ff 15 44 33 22 11"), True),  # call *0x11223344(%rip)
    (bytes.fromhex("ff 14 25 44 33 22 11"), True),  # call *0x11223344 (SIB, no base)
    (bytes.fromhex("ff 50 18"), True),  # call *0x18(%rax)
    (bytes.fromhex("ff 54 24 08"), True),  # call *0x8(%rsp)
    (bytes.fromhex("ff 90 44 33 22 11"), True),  # call *0x11223344(%rax)
    (bytes.fromhex("ff e0"), False),  # jmp *%rax
    (bytes.fromhex("48 89 c7"), False),  # mov %rax,%rdi
    (bytes.fromhex("c3"), False),
])
def test_follows_call_recognises_call_instructions(insn: bytes, is_call: bool) -> None:
    mem = Words().put_bytes(CODE, b"\x90" * 16).put_bytes(CODE + 16 - len(insn), insn)
    assert follows_call(mem, CODE + 16) is is_call


def test_scan_takes_the_first_return_address_after_a_call() -> None:
    mem = Words().put_bytes(CODE, b"\x90" * 11 + bytes.fromhex("e8 00 00 00 00") + b"\x90" * 16)
    # a code pointer not after a call, a data word, then the real return address
    mem.put(SP, CODE + 8, 0x1234, CODE + 16)
    assert return_address_above(mem, SP, lambda a: CODE <= a < CODE + 32) == (SP + 16, CODE + 16)
    assert return_address_above(mem, SP, lambda a: False) is None


# The unwinder's strategies on a synthetic kernel stack -------------------------------------------


@dataclass
class FakeKernel:
    """A CodeMap with ORC: entries by pc range."""

    entries: dict[tuple[int, int], OrcEntry]

    def orc_entry(self, pc: int) -> OrcEntry | None:
        return next((e for (lo, hi), e in self.entries.items() if lo <= pc < hi), None)

    def cfi_row(self, pc: int) -> CfiRow | None:
        return None


F1, F2, F3, F4 = (CODE + 0x100 * i for i in range(1, 5))


def _code(mem: Words) -> Words:
    """Four functions of nops, each calling the next: a call ends at each +0x10."""
    for f in (F1, F2, F3, F4):
        mem.put_bytes(f, b"\x90" * 11 + bytes.fromhex("e8 00 00 00 00") + b"\x90" * 0xF0)
    return mem


def test_frames_are_marked_orc_and_pt_regs() -> None:
    stack = SP - 0x400
    mem = _code(Words())
    mem.put(stack + 8, F2 + 0x10)  # F1 (CALL, sp+16): returns into F2
    regs = dict.fromkeys(PT_REGS, 0) | {"rip": F3 + 0x20, "cs": 0x10, "rsp": SP, "rbp": 0xBB, "rax": 0xAA}
    mem.put(stack + 16, *(regs[n] for n in PT_REGS))  # F2 (REGS at sp): interrupted F3 at F3+0x20
    mem.put(SP + 8, F4 + 0x10)  # F3: a return into F4, which ends the stack
    code = FakeKernel({(F1, F1 + 0x100): entry(OrcReg.SP, 16),
                       (F2, F2 + 0x100): entry(OrcReg.SP, 0, OrcType.REGS),
                       (F3, F3 + 0x100): entry(OrcReg.SP, 16),
                       (F4, F4 + 0x100): entry(OrcReg.UNDEFINED, 0, OrcType.END_OF_STACK)})
    st = Unwinder(X86_64, mem, code).unwind({"rip": F1 + 0x20, "rsp": stack, "rbp": 1, "cs": 0x10})
    assert [f.pc for f in st.frames] == [F1 + 0x20, F2 + 0x10, F3 + 0x20, F4 + 0x10]
    assert [f.method for f in st.frames] == [UnwindMethod.DUMP, UnwindMethod.ORC, UnwindMethod.PT_REGS,
                                             UnwindMethod.ORC]
    assert [f.signal_frame for f in st.frames] == [False, True, False, False]
    assert st.frames[2].exact_pc and st.frames[2].registers["rax"] == 0xAA
    assert st.complete and "end of stack" in st.stop_reason


def test_no_orc_information_falls_back_to_a_marked_guess() -> None:
    mem = _code(Words()).put(SP, 0x42, F1 + 5, F2 + 0x10)  # a non-return then a return into F2
    code = FakeKernel({(F1, F1 + 0x100): entry(OrcReg.UNDEFINED, 0, OrcType.UNDEFINED),
                       (F2, F2 + 0x100): entry(OrcReg.UNDEFINED, 0, OrcType.END_OF_STACK)})
    st = Unwinder(X86_64, mem, code).unwind({"rip": F1 + 0x20, "rsp": SP, "cs": 0x10})
    assert [(f.pc, f.method) for f in st.frames] == [(F1 + 0x20, UnwindMethod.DUMP), (F2 + 0x10, UnwindMethod.GUESSED)]
    assert st.frames[1].sp == SP + 24 and st.complete


def test_code_without_orc_follows_a_frame_pointer_into_orc_code() -> None:
    jit = 0xFFFFFFFFA0000000  # e.g. a BPF program: no ORC, but a frame pointer
    mem = _code(Words()).put_bytes(jit, b"\x90" * 0x40).put(SP + 0x30, 0xDEAD, F2 + 0x10)
    code = FakeKernel({(F2, F2 + 0x100): entry(OrcReg.UNDEFINED, 0, OrcType.END_OF_STACK)})
    st = Unwinder(X86_64, mem, code).unwind({"rip": jit + 0x20, "rsp": SP, "rbp": SP + 0x30, "cs": 0x10})
    assert [(f.pc, f.method) for f in st.frames] == [(jit + 0x20, UnwindMethod.DUMP),
                                                     (F2 + 0x10, UnwindMethod.FRAME_POINTER)]


def test_a_cpu_in_user_mode_has_no_kernel_stack() -> None:
    st = Unwinder(X86_64, Words(), FakeKernel({})).unwind({"rip": 0x401000, "rsp": 0x7FFC0000, "cs": 0x33})
    assert len(st.frames) == 1 and st.complete and "user mode" in st.stop_reason


# The real kernel: tables in the -dbg vmlinux -----------------------------------------------------


def vmlinux_path() -> str:
    """The -dbg package's vmlinux: full DWARF, .debug_frame and the ORC sections."""
    return load_kernel_fixture().truth["paths"]["vmlinux_debug"]


@cache
def vmlinux() -> ElfFile:
    return ElfFile(vmlinux_path())


@cache
def file_table() -> OrcTable:
    """vmlinux's ORC table read from its own sections (sorted at build time; no lookup table)."""
    elf = vmlinux()
    secs = [elf.section(".orc_unwind_ip"), elf.section(".orc_unwind")]
    assert secs[0] is not None and secs[1] is not None
    mem = SegmentMap([Region(s.addr, s.addr + s.size, BufferSource(elf.section_data(s))) for s in secs])
    layout = layout_for_release(load_kernel_fixture().truth["abi"])
    return OrcTable(mem, secs[0].addr, secs[1].addr, secs[0].size // 4, layout)


def readelf_sections() -> dict[str, tuple[int, int, str]]:
    """name -> (address, size, flags) from `readelf -SW`."""
    out = subprocess.run(["readelf", "-SW", vmlinux_path()], capture_output=True,
                         text=True, check=True).stdout
    found = {}
    for m in re.finditer(r"\]\s+(\S+)\s+\S+\s+([0-9a-f]{16})\s+[0-9a-f]+\s+([0-9a-f]+)\s+[0-9a-f]+\s+(\S*)", out):
        found[m.group(1)] = (int(m.group(2), 16), int(m.group(3), 16), m.group(4))
    return found


def test_vmlinux_table_agrees_with_readelf() -> None:
    secs = readelf_sections()
    table = file_table()
    (ip_addr, ip_size, _), (addr, size, _) = secs[".orc_unwind_ip"], secs[".orc_unwind"]
    assert table.ip_table == ip_addr and table.entries == addr
    assert len(table) == ip_size // 4 == size // 6 > 100_000
    ips = [table.ip(i) for i in range(0, len(table), 97)] + [table.ip(len(table) - 1)]
    assert ips == sorted(ips)
    code = [(a, a + n) for a, n, flags in secs.values() if "X" in flags]
    assert all(any(lo <= ip <= hi for lo, hi in code) for ip in ips)
    kinds = {table.entry(i).type for i in range(0, len(table), 13)}
    assert {OrcType.CALL, OrcType.UNDEFINED} <= kinds


def test_every_function_entry_is_a_call_frame() -> None:
    """At the first instruction of a C function the return address is at sp: SP+8, CALL."""
    table = file_table()
    for name, addr in system_map_functions(("panic", "page_fault_oops", "process_one_work", "worker_thread",
                                            "kthread", "exc_page_fault", "__schedule", "schedule", "do_idle")):
        e = table.find(addr)
        assert e is not None and (e.type, e.sp_reg, e.sp_offset) == (OrcType.CALL, OrcReg.SP, 8), name


def system_map_functions(names: tuple[str, ...]) -> Iterator[tuple[str, int]]:
    wanted = set(names)
    with open(load_kernel_fixture().truth["paths"]["system_map"]) as f:
        for line in f:
            addr, letter, name = line.split()[:3]
            if name in wanted and letter in "tT":
                wanted.discard(name)
                yield name, int(addr, 16)
    assert not wanted


FUNCTIONS = ("panic", "page_fault_oops", "process_one_work", "worker_thread", "kthread", "exc_page_fault",
             "__schedule", "do_idle", "rescuer_thread", "smpboot_thread_fn")


def test_stack_offsets_agree_with_the_kernels_dwarf_cfi() -> None:
    """At every row of readelf's interpreted .debug_frame for these functions, the CFA (rsp+N or
    rbp+N) is ORC's previous sp (SP+N or BP+N); objtool and gcc agree at nearly every row."""
    table = file_table()
    starts = dict(system_map_functions(FUNCTIONS))
    rows = list(cfi_rows(set(starts.values())))
    agree = disagree = 0
    for pc, cfa in rows:
        e = table.find(pc)
        assert e is not None
        reg = {"rsp": OrcReg.SP, "rbp": OrcReg.BP}.get(cfa[0])
        if reg is None or e.type is not OrcType.CALL:
            continue
        if (e.sp_reg, e.sp_offset) == (reg, cfa[1]):
            agree += 1
        else:
            disagree += 1
    assert agree > 100 and disagree <= agree // 50, (agree, disagree)


def cfi_rows(fde_starts: set[int]) -> Iterator[tuple[int, tuple[str, int]]]:
    """(pc, (CFA register, offset)) of each row of the FDEs starting at `fde_starts`."""
    proc = subprocess.Popen(["readelf", "--debug-dump=frames-interp", vmlinux_path()],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    inside, left = False, set(fde_starts)
    for line in proc.stdout:
        if " FDE " in line or " CIE" in line:
            if not left:
                break
            m = re.search(r"FDE cie=\S+ pc=([0-9a-f]+)\.\.", line)
            inside = m is not None and int(m.group(1), 16) in left
            left.discard(int(m.group(1), 16) if inside and m else 0)
            continue
        m = re.match(r"([0-9a-f]{16}) (r[sb]p|\S+)\+?(-?\d*)", line) if inside else None
        if m and m.group(3):
            yield int(m.group(1), 16), (m.group(2), int(m.group(3)))
    proc.kill()
    proc.wait()
    assert not left, f"no FDE at {sorted(map(hex, left))}"


def test_prologue_offsets_agree_with_objdump() -> None:
    """Walk each function's straight-line prologue as objdump disassembles it, counting what
    push, pop, sub and add do to rsp: ORC's SP offset at each instruction is that count."""
    table = file_table()
    path = vmlinux_path()
    checked = 0
    for name, start in system_map_functions(FUNCTIONS):
        out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", f"--start-address={start:#x}",
                              f"--stop-address={start + 96:#x}", path], capture_output=True, text=True,
                             check=True).stdout
        offset = 8
        for m in re.finditer(r"^([0-9a-f]+):\s+(\S+)\s*(.*)$", out, re.M):
            pc, op, args = int(m.group(1), 16), m.group(2), m.group(3)
            e = table.find(pc)
            assert e is not None and (e.sp_reg, e.sp_offset) == (OrcReg.SP, offset), (name, hex(pc), op, args, e)
            checked += 1
            if "<__fentry__>" in args:  # the ftrace call site every function starts with
                continue
            if op.startswith(("j", "call", "ret")) or ("rsp" in args and not op.startswith(("push", "sub", "add"))):
                break
            if op.startswith("push"):
                offset += 8
            elif op.startswith("pop"):
                offset -= 8
            elif op in ("sub", "add") and args.endswith(",%rsp"):
                imm = int(args.split(",")[0].lstrip("$"), 16)
                offset += imm if op == "sub" else -imm
    assert checked > 50


# The real kernel: stacks in the dump ----------------------------------------------------------------


@cache
def stand_in() -> StandInKernel:
    """The panic's ELF vmcore through the test stand-ins for the dump reader and personality."""
    k = load_kernel_fixture()
    return StandInKernel(k.dump("elf"), k.truth["paths"]["system_map"], k.truth["paths"]["vmlinux_debug"])


@cache
def unwinder() -> Unwinder:
    k = stand_in()
    return Unwinder(X86_64, k.memory, k)


def panic_cpu_registers() -> dict[str, int]:
    truth = load_kernel_fixture().truth
    cpu = truth["story"]["crashed_cpu"]
    return dict(next(p for p in truth["elf_notes"]["prstatus"] if p["cpu"] == cpu)["registers"])


@cache
def vmlinux_symbols() -> ObjectSymbols:
    """The -dbg vmlinux's symbols, moved by the dump's KASLR offset."""
    return ObjectSymbols("vmlinux", load_kernel_fixture().truth["kaslr_offset"], [vmlinux()])


def vmlinux_name(addr: int) -> str:
    sym = vmlinux_symbols().by_address(addr)
    return sym.name if sym is not None else hex(addr)


def test_panicking_cpu_unwinds_like_drgn() -> None:
    """Every physical frame of drgn's trace, at the same pc and sp, from the pvpanic notifier
    through the exception frame to ret_from_fork."""
    truth = load_kernel_fixture().truth
    st = unwinder().unwind(panic_cpu_registers())
    physical = [f for f in truth["drgn"]["elf"]["crashed_thread"]["frames"] if not f["inline"]]
    assert [(f.pc, f.sp) for f in st.frames] == [(f["pc"], f["sp"]) for f in physical]
    assert st.complete and "end of stack" in st.stop_reason


def test_the_other_cpu_unwinds_from_its_irq_stack_to_its_task() -> None:
    """The stopped CPU took the reboot IPI on its IRQ stack: ORC switches back to the stack of
    the task it interrupted (an indirect sp) and reads the interrupt's pt_regs there. Which task
    that was changes from boot to boot: the idle task, or one in the middle of a system call."""
    truth = load_kernel_fixture().truth
    other = next(p for p in truth["elf_notes"]["prstatus"] if p["cpu"] != truth["story"]["crashed_cpu"])
    current = truth["drgn"]["elf"]["cpus"]["current"][str(other["cpu"])]
    st = unwinder().unwind(dict(other["registers"]))
    got = [vmlinux_name(f.lookup_pc) for f in st.frames]
    assert got[0] == "stop_this_cpu" and "sysvec_reboot" in got and "asm_sysvec_reboot" in got
    assert any(f.method is UnwindMethod.PT_REGS for f in st.frames)
    assert len({f.sp >> 14 for f in st.frames}) == 2 and st.complete  # the IRQ stack, then the task's
    if current["pid"] == 0:  # idle: down to the CPU's start
        assert got[-3:-1] == ["arch_call_rest_init", "start_kernel"] and got[-1].startswith("secondary_startup_64")
        interrupted = next(f for f in st.frames if f.method is UnwindMethod.PT_REGS)
        assert vmlinux_name(interrupted.pc) in ("native_safe_halt", "default_idle", "amd_e400_idle")
    else:  # a task in the kernel on a system call's behalf: down to the syscall entry
        assert got[-1].startswith("entry_SYSCALL_64")


def test_vmlinux_lookup_table_is_found_and_agrees_with_a_search() -> None:
    k = stand_in()
    table = k.orc.vmlinux[0].table
    assert table.lookup is not None and table.lookup.start == k.symbols["_stext"]
    plain = OrcTable(table.memory, table.ip_table, table.entries, table.count, table.layout)
    step = (table.lookup.stop - table.lookup.start) // 997
    for pc in range(table.lookup.start, table.lookup.stop, step):
        assert table.index(pc) == plain.index(pc)


def test_module_tables_come_from_struct_module() -> None:
    k = stand_in()
    truth = load_kernel_fixture().truth
    ipnet = next(m for m in truth["drgn"]["elf"]["modules"] if m["name"] == "ipnet")
    table = k.orc.table_for(truth["story"]["faulting_pc"])
    assert table is not None and table is not k.orc.vmlinux[0].table
    assert ipnet["base"] <= table.ip(0) < ipnet["base"] + ipnet["size"]
    assert k.orc.orc_entry(0x1000) is None


def test_an_unreadable_module_list_leaves_vmlinux_working() -> None:
    k = stand_in()

    def broken() -> list[ModuleOrc]:
        raise PmdbError("module list unreadable")

    orc = KernelOrc(k.memory, k.orc.layout, k.orc.vmlinux, broken)
    assert orc.orc_entry(load_kernel_fixture().truth["story"]["faulting_pc"]) is None
    assert orc.module_error == "module list unreadable"
    assert orc.orc_entry(k.symbols["panic"]) is not None


def test_an_orc_version_header_means_the_newest_layout() -> None:
    """A vendor kernel that backported .orc_header (6.5) has the 6.4 entry layout, whatever its
    release number says; this 6.1 kernel has no header."""
    k = stand_in()
    release = load_kernel_fixture().truth["abi"]
    assert KernelOrc.for_kernel(k.memory, k.symbols.get, release, list).layout is V1
    with_header = {**k.symbols, "__start_orc_header": k.symbols["__start_orc_unwind_ip"] - 20}
    assert KernelOrc.for_kernel(k.memory, with_header.get, release, list).layout is V3


class CountingMemory:
    """Counts reads and the distinct pages they touch."""

    def __init__(self, memory: object) -> None:
        self.memory = memory
        self.reads = 0
        self.pages: set[int] = set()

    def read(self, addr: int, size: int) -> bytes:
        self.reads += 1
        self.pages.update(range(addr >> 12, ((addr + size - 1) >> 12) + 1))
        return self.memory.read(addr, size)  # type: ignore[attr-defined]


def test_the_panic_stack_reads_few_pages() -> None:
    """A `$c` of the panicking task reads a handful of pages: the lookup pair, a slice of ips
    and one entry per frame, the stack, the module structs; never a whole table."""
    k = stand_in()
    mem = CountingMemory(k.memory)
    orc = KernelOrc.for_kernel(mem, k.symbols.get, load_kernel_fixture().truth["abi"], k.module_orcs)
    st = Unwinder(X86_64, mem, OrcOnly(orc)).unwind(panic_cpu_registers())
    assert len(st.frames) == 12
    assert mem.reads < 120 and len(mem.pages) < 40, (mem.reads, len(mem.pages))


@dataclass(frozen=True)
class OrcOnly:
    orc: KernelOrc

    def orc_entry(self, pc: int) -> OrcEntry | None:
        return self.orc.orc_entry(pc)

    def cfi_row(self, pc: int) -> CfiRow | None:
        return None


def test_orc_ranges_cover_text_and_init_text() -> None:
    k = stand_in()
    ranges = k.orc.vmlinux
    assert [(r.start, r.end) for r in ranges] == [(k.symbols["_stext"], k.symbols["_etext"]),
                                                  (k.symbols["_sinittext"], k.symbols["_einittext"])]
    assert isinstance(ranges[0], OrcRange)


# The real kernel through pmdb.open, on every dump format --------------------------------------

DUMPS = ("elf", "kdump-zlib-flat", "kdump-zlib", "kdump-lzo-d31")
# drgn names a frame by its DWARF function; kallsyms by the nearest symbol, which may be a
# label inside it (entry_SYSCALL_64_after_hwframe) or a cold part (oops_end.cold).
_ALIASES = {"entry_SYSCALL_64_after_hwframe": "entry_SYSCALL_64"}


@cache
def program(dump: str) -> Program:
    import pmdb

    return pmdb.open(load_kernel_fixture().dump(dump))


def frame_names(prog: Program, frames: Sequence[Frame]) -> list[str]:
    """The frames' function names as drgn gives them."""
    names = []
    for f in frames:
        sym = prog.symbol_at(f.lookup_pc)
        name = sym.name if sym is not None else hex(f.pc)
        names.append(_ALIASES.get(name, name.removesuffix(".cold")))
    return names


@pytest.mark.parametrize("dump", DUMPS)
def test_panic_stack_on_every_dump(dump: str) -> None:
    """`$c` of the panicking task: drgn's physical frames (pc, sp, name) from the pvpanic
    notifier through the exception frame to ret_from_fork, crash's frames among them."""
    truth = load_kernel_fixture().truth
    prog = program(dump)
    st = prog.stack(prog.crashed_thread)
    physical = [f for f in truth["drgn"]["elf"]["crashed_thread"]["frames"] if not f["inline"]]
    assert [(f.pc, f.sp) for f in st.frames] == [(f["pc"], f["sp"]) for f in physical]
    names = frame_names(prog, st.frames)
    assert names == truth["story"]["drgn_physical_functions"]
    assert [n for n in names if n in truth["story"]["crash_functions"]] == truth["story"]["crash_functions"]
    assert st.complete


@pytest.mark.parametrize("dump", DUMPS)
def test_exception_frame_registers_on_every_dump(dump: str) -> None:
    """The frame reached through pt_regs holds the oops's registers: the console's, drgn's
    fault_registers and crash's exception frame."""
    truth = load_kernel_fixture().truth
    prog = program(dump)
    st = prog.stack(prog.crashed_thread)
    fault = [f for f in st.frames if f.method is UnwindMethod.PT_REGS]
    assert len(fault) == 1 and frame_names(prog, fault) == ["ipnet_nicevent_task"]
    regs = fault[0].registers
    assert st.frames[fault[0].level - 1].signal_frame
    console = {{"eflags": "rflags"}.get(k, k): v for k, v in truth["console"]["oops"]["registers"].items()}
    assert {k: regs[k] for k in console if k in regs} == {k: v for k, v in console.items() if k in regs}
    drgn = truth["drgn"]["elf"]["crashed_thread"]["fault_registers"]
    assert {k: regs[k] for k in drgn if k in regs} == {k: v for k, v in drgn.items() if k in regs}
    assert set(PT_REGS) - {"orig_rax"} <= set(drgn) | {"rip", "rsp"}
    crash = truth["crash"][dump]["bt"]["exceptions"][0]["registers"]
    assert {k: regs[k] for k in crash} == crash


@pytest.mark.parametrize("dump", DUMPS)
def test_sleeping_tasks_on_every_dump(dump: str) -> None:
    """Every task drgn lists unwinds to the same functions (the dumps hold the same memory,
    so drgn's ELF truth serves all four)."""
    truth = load_kernel_fixture().truth
    prog = program(dump)
    for task in truth["drgn"]["elf"]["tasks"]:
        st = prog.stack(prog.thread(task["task"]))
        assert frame_names(prog, st.frames) == task["stack"], (task["pid"], task["comm"], st.stop_reason)
        assert st.complete


def test_dollar_c_v_says_how_each_frame_was_found() -> None:
    from conftest import run_pmdb

    run = run_pmdb(load_kernel_fixture().dump("kdump-lzo-d31"), "-e", "$c -v")
    assert run.status == 0, run.err
    lines = run.out.splitlines()
    assert lines[0].endswith("[registers from the dump]")
    fault = next(line for line in lines if "ipnet_nicevent_task+0x32" in line)
    assert fault.endswith(f"[{UnwindMethod.PT_REGS.value}]")
    assert sum(line.endswith("[ORC]") for line in lines) == 10
    assert lines[-1] == "[stopped: outermost frame (ORC: end of stack)]"
