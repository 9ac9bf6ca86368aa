"""`::fpregs`: a thread's x87 and SSE state (from NT_FPREGSET / NT_X86_XSTATE) in mdb's amd64 shape."""

from __future__ import annotations

from pmdb.commands.registry import DcmdContext, dcmd
from pmdb.errors import CommandError
from pmdb.formats.elfnotes import FpRegs

_CW_MASKS = ("IM", "DM", "ZM", "OM", "UM", "PM")
_CW_PRECISION = {0: "SIG24", 2: "SIG53", 3: "SIG64"}
_ROUNDING = ("RTN", "RD", "RU", "RTZ")
_SW_FLAGS = ((0, "IE"), (1, "DE"), (2, "ZE"), (3, "OE"), (4, "UE"), (5, "PE"), (6, "SF"), (7, "ES"),
             (8, "C0"), (9, "C1"), (10, "C2"), (14, "C3"), (15, "B"))
_MXCSR_FLAGS = ((0, "IE"), (1, "DE"), (2, "ZE"), (3, "OE"), (4, "UE"), (5, "PE"), (6, "DAZ"), (7, "IM"),
                (8, "DM"), (9, "ZM"), (10, "OM"), (11, "UM"), (12, "PM"))
_TAGS = ("valid", "zero", "special", "empty")


def _flags(names: list[str]) -> str:
    return "|".join(names) or "0"


def control_word(cw: int) -> str:
    """The x87 control word's masks, precision, rounding and infinity control."""
    names = [n for bit, n in enumerate(_CW_MASKS) if cw >> bit & 1]
    if (cw >> 8) & 3 in _CW_PRECISION:
        names.append(_CW_PRECISION[(cw >> 8) & 3])
    names.append(_ROUNDING[(cw >> 10) & 3])
    names.append("A" if cw & 0x1000 else "P")
    return _flags(names)


def status_word(sw: int) -> str:
    """The x87 status word's exception and condition flags."""
    return _flags([n for bit, n in _SW_FLAGS if sw >> bit & 1])


def mxcsr_text(mxcsr: int) -> str:
    """MXCSR's flags, masks, rounding mode and flush-to-zero."""
    names = [n for bit, n in _MXCSR_FLAGS if mxcsr >> bit & 1]
    names.append(_ROUNDING[(mxcsr >> 13) & 3])
    if mxcsr & 0x8000:
        names.append("FZ")
    return _flags(names)


def x87_tag(fp: FpRegs, i: int) -> str:
    """The full tag of %st(i), rebuilt from FXSAVE's abridged tag and the register's contents."""
    top = (fp.fsw >> 11) & 7
    if not (fp.ftw >> ((i + top) & 7)) & 1:
        return _TAGS[3]
    exponent = int.from_bytes(fp.st[i][8:10], "little") & 0x7FFF
    significand = int.from_bytes(fp.st[i][:8], "little")
    if exponent == 0:
        return _TAGS[1] if significand == 0 else _TAGS[2]
    if exponent == 0x7FFF or not significand >> 63:
        return _TAGS[2]
    return _TAGS[0]


def extended_value(raw: bytes) -> float:
    """The value of an 80-bit extended-precision number (inf when it does not fit a double)."""
    exp_word = int.from_bytes(raw[8:10], "little")
    significand = int.from_bytes(raw[:8], "little")
    sign = -1.0 if exp_word >> 15 else 1.0
    exponent = exp_word & 0x7FFF
    if exponent == 0x7FFF:
        return sign * (float("nan") if significand << 1 & (1 << 64) - 1 else float("inf"))
    try:
        return sign * significand * 2.0 ** (max(exponent, 1) - 16383 - 63)
    except OverflowError:
        return sign * float("inf")


def _vector(name: str, i: int, bits: str, value: int) -> str:
    words = [(value >> (32 * k)) & 0xFFFFFFFF for k in (3, 2, 1, 0)]
    pad = " " if i >= 10 else "  "
    return f"%{name}{i}{pad}{bits} 0x{words[0]:08x} {words[1]:08x} {words[2]:08x} {words[3]:08x}"


@dcmd("fpregs", usage="[tid]")
def fpregs(ctx: DcmdContext) -> None:
    """Print the floating point registers of the current thread, or of thread `tid`.

    The SSE registers (and the upper halves of the AVX ones when the core has them), then the
    x87 control state and stack, then MXCSR.
    """
    thread = ctx.program.thread(ctx.addr) if ctx.has_addr else ctx.session.thread
    fp: FpRegs | None = thread.fpregs if thread is not None else None
    if fp is None:
        raise CommandError("failed to get floating point registers: the core has none for this thread")
    lines = [f"x86 FPU with {'256-bit %ymm' if fp.ymm_hi else '128-bit %xmm'} registers"]
    if fp.xstate_bv is not None:
        lines += [f"xstate_bv\t{fp.xstate_bv:#x}".expandtabs(8), f"xcomp_bv\t{fp.xcomp_bv:#x}".expandtabs(8), ""]
    for i in range(16):
        if fp.ymm_hi:
            lines.append(_vector("ymm", i, "[255:128]", fp.ymm_hi[i]))
        lines.append(_vector("xmm", i, "[127:0]  ", fp.xmm[i]))
        if fp.ymm_hi:
            lines.append("")
    if not fp.ymm_hi:
        lines.append("")
    lines += [
        "387 and FP Control State",
        f"cw     0x{fp.fcw:04x} ({control_word(fp.fcw)})",
        f"sw     0x{fp.fsw:04x} (TOP=0t{(fp.fsw >> 11) & 7}) ({status_word(fp.fsw)})",
        "",
        f"fop    {fp.fop:#x}",
        f"rip    {fp.rip:#x}",
        f"rdp    {fp.rdp:#x}",
        "",
    ]
    for i, raw in enumerate(fp.st):
        exp = int.from_bytes(raw[8:10], "little")
        sig = [int.from_bytes(raw[2 * k : 2 * k + 2], "little") for k in (3, 2, 1, 0)]
        lines.append(f"%st{i}   0x{exp:04x}.{sig[0]:04x}{sig[1]:04x}{sig[2]:04x}{sig[3]:04x} = "
                     f"{extended_value(raw):g} {x87_tag(fp, i)}")
    lines += ["", "SSE Control State", f"mxcsr  0x{fp.mxcsr:04x} ({mxcsr_text(fp.mxcsr)})"]
    ctx.write("\n".join(lines) + "\n")
