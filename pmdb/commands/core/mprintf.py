"""mdb's printf dialect (the engine behind mdb_printf): `%r` in the current radix, `%a`
symbolic addresses, `%?` pointer-wide fields, `%T` tab stops, and mdb's own number spelling.

Built for dcmd output, where mdb's auto-wrap is off: fields are never wrapped. Integer
conversions take C's argument sizes (`%x` prints 32 bits, `%lx`/`%llx` 64, `%hx` 16). The
conversions pmdb has no use for (`%b` bit masks, `%e`/`%g` floats, `%N` IPv6) are not here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pmdb.mdb.text import numtostr

MASK64 = (1 << 64) - 1
TABSTOP = 8
COLUMNS = 80
POINTER_DIGITS = 16  # `%?`: two hex digits per byte of a 64-bit pointer
_SIZES = {"h": 16, "": 32, "l": 64, "ll": 64}


@dataclass
class PrintfContext:
    """What some conversions need from the session: the radix, `%a`'s symbols, `%<_var>`."""

    radix: int = 16
    symbolize: Callable[[int], str | None] = lambda addr: None
    variable: Callable[[str], int | None] = lambda name: None


@dataclass
class _Spec:
    """One parsed `%` conversion's flags."""

    width: int = 0
    size: str = ""
    alt: bool = False
    zero: bool = False
    left: bool = False
    signpos: bool = False


class _Line:
    """Output text with its current column, for `%t`, `%T` and embedded TABs."""

    def __init__(self, column: int) -> None:
        self.parts: list[str] = []
        self.column = column

    def put(self, text: str) -> None:
        for chunk in text.split("\n")[:-1]:
            self._put_line(chunk)
            self.parts.append("\n")
            self.column = 0
        self._put_line(text.split("\n")[-1])

    def _put_line(self, text: str) -> None:
        for i, piece in enumerate(text.split("\t")):
            if i:
                self.tab(TABSTOP)
            self.parts.append(piece)
            self.column += len(piece)

    def tab(self, stop: int) -> None:
        """mdb_iob_tab: blanks to the next multiple of `stop`, or a newline past the page."""
        target = (self.column + stop) // stop * stop
        if target < COLUMNS:
            self.parts.append(" " * (target - self.column))
            self.column = target
        else:
            self.parts.append("\n")
            self.column = 0


def mdb_format(fmt: str, args: Sequence[int | str], ctx: PrintfContext | None = None, column: int = 0) -> str:
    """Format `args` with mdb's printf `fmt`; `column` is where the output line stands."""
    pc = ctx or PrintfContext()
    line = _Line(column)
    argv = list(args)
    i = 0
    while True:
        j = fmt.find("%", i)
        if j < 0:
            line.put(fmt[i:])
            return "".join(line.parts)
        line.put(fmt[i:j])
        i = _conversion(fmt, j + 1, argv, pc, line)


def _next(argv: list[int | str]) -> int | str:
    return argv.pop(0) if argv else 0


def _conversion(fmt: str, i: int, argv: list[int | str], pc: PrintfContext, line: _Line) -> int:
    """Render the conversion starting after the `%` at fmt[i]; return where the text resumes."""
    spec = _Spec()
    digits = False
    while i < len(fmt):
        ch = fmt[i]
        if ch.isdigit():
            if ch == "0" and not digits:
                spec.zero = True
                i += 1
                continue
            j = i
            while j < len(fmt) and fmt[j].isdigit():
                j += 1
            spec.width, digits, i = int(fmt[i:j]), True, j
            continue
        flag = _FLAGS.get(ch)
        if flag is not None:
            flag(spec, argv)
            i += 1
            continue
        if ch == "<":
            return _attribute(fmt, i, pc, line)
        if ch in "tT":
            _tabs(ch, spec, line)
            return i + 1
        text, alt, suffix = _render(ch, spec, argv, pc)
        _field(line, spec, text, alt, suffix)
        return i + 1
    return i


def _size_flag(spec: _Spec, argv: list[int | str]) -> None:
    spec.size = "l" if spec.size == "" else "ll"


def _set(attr: str, value: object) -> Callable[[_Spec, list[int | str]], None]:
    def apply(spec: _Spec, argv: list[int | str]) -> None:
        setattr(spec, attr, value)
    return apply


def _star(spec: _Spec, argv: list[int | str]) -> None:
    spec.width = int(_next(argv)) & 0xFFFFFFFF


_FLAGS: dict[str, Callable[[_Spec, list[int | str]], None]] = {
    "l": _size_flag, "h": _set("size", "h"), "#": _set("alt", True), "-": _set("left", True),
    "+": _set("signpos", True), "?": _set("width", POINTER_DIGITS), "*": _star,
}


def _int_arg(argv: list[int | str], size: str, signed: bool) -> int:
    """The next argument cut to the conversion's C size (and sign-extended for signed ones)."""
    bits = _SIZES[size]
    value = int(_next(argv)) & ((1 << bits) - 1)
    if signed and value >> (bits - 1):
        value -= 1 << bits
    return value & MASK64


def _render(ch: str, spec: _Spec, argv: list[int | str], pc: PrintfContext) -> tuple[str, str, bool]:
    """(text, alternate-form text, alternate is a suffix) for conversion `ch`."""
    if ch in _INTEGER:
        base, signed, alt_prefix = _INTEGER[ch](pc)
        value = _int_arg(argv, spec.size, signed)
        showbase = spec.alt and alt_prefix is None
        signpos = spec.signpos and ch not in "xXo"  # mdb drops `+` for these three
        text = numtostr(value, base, signed=signed, showbase=showbase, signpos=signpos, upcase=ch == "X")
        alt = alt_prefix if spec.alt and alt_prefix and value else ""
        return text, alt, False
    if ch in "aA":
        value = _int_arg(argv, spec.size or "l", False)
        name = pc.symbolize(value)
        if ch == "a":
            return name or numtostr(value, 16, showbase=True), ":" if spec.alt else "", True
        return name if name is not None else ("?" if spec.alt else ""), "", False
    return _OTHER.get(ch, lambda s, a, p: ch)(spec, argv, pc), "", False


_INTEGER: dict[str, Callable[[PrintfContext], tuple[int, bool, str | None]]] = {
    "d": lambda pc: (10, True, None), "i": lambda pc: (10, True, None),
    "u": lambda pc: (10, False, None),
    "r": lambda pc: (pc.radix, False, None), "R": lambda pc: (pc.radix, True, None),
    "x": lambda pc: (16, False, "0x"), "X": lambda pc: (16, False, "0X"),
    "o": lambda pc: (8, False, "0"), "q": lambda pc: (8, True, "0"),
}


def _pointer(spec: _Spec, argv: list[int | str], pc: PrintfContext) -> str:
    return numtostr(int(_next(argv)), 16)


def _string(spec: _Spec, argv: list[int | str], pc: PrintfContext) -> str:
    value = _next(argv)
    return value if isinstance(value, str) else "<NULL>"


def _char(spec: _Spec, argv: list[int | str], pc: PrintfContext) -> str:
    return chr(int(_next(argv)) & 0xFF)


def _ipv4(spec: _Spec, argv: list[int | str], pc: PrintfContext) -> str:
    import socket  # only %I needs it; importing it costs a few milliseconds at start-up

    return socket.inet_ntoa((int(_next(argv)) & 0xFFFFFFFF).to_bytes(4, "little"))


def _time(spec: _Spec, argv: list[int | str], pc: PrintfContext) -> str:
    """ctime(3C) rearranged as adb's `1986 Sep 13 00:00:00`."""
    value = int(_next(argv))
    signed = value - (1 << 64) if value >> 63 else value
    try:
        tm = time.localtime(signed)
    except (OverflowError, OSError, ValueError):
        return numtostr(value, pc.radix, signed=True)
    return f"{tm.tm_year} {time.strftime('%b', tm)} {tm.tm_mday:2d} {tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}"


def _bytes(spec: _Spec, argv: list[int | str], pc: PrintfContext) -> str:
    return human_size(_int_arg(argv, spec.size, False))


def human_size(n: int) -> str:
    """mdb's `%H` (zfs_nicenum): 1023, 1K, 1.50K, 10.0K, 1020K; three significant figures."""
    index, whole = 0, n
    while whole >= 1024:
        whole //= 1024
        index += 1
    if index == 0:
        return str(whole)
    unit = " KMGTPE"[index]
    if n % (1 << (10 * index)) == 0:
        return f"{whole}{unit}"
    value = n / (1 << (10 * index))
    for decimals in (2, 1, 0):
        mult = value * 10**decimals
        v = round(mult)  # round-half-even, as mdb's explicit tie handling does
        if decimals == 0 or v < 1000:
            text = str(v // 10**decimals) + ("." + str(v % 10**decimals).zfill(decimals) if decimals else "")
            return text + unit
    return f"{whole}{unit}"


_OTHER: dict[str, Callable[[_Spec, list[int | str], PrintfContext], str]] = {
    "p": _pointer, "s": _string, "c": _char, "I": _ipv4, "Y": _time, "H": _bytes, "%": lambda s, a, p: "%",
}


def _field(line: _Line, spec: _Spec, text: str, alt: str, suffix: bool) -> None:
    """Pad `text` (and its alternate-form prefix or suffix) to the field width, mdb's way."""
    width = max(spec.width, len(text) + len(alt))
    fill = width - len(alt) - len(text)
    if fill and not spec.left:
        line.put(("0" if spec.zero else " ") * fill)  # zeroes go before a `0x` prefix, as in mdb
    line.put(text + alt if suffix else alt + text)
    if fill and spec.left:
        line.put(" " * fill)


def _tabs(ch: str, spec: _Spec, line: _Line) -> None:
    if ch == "t":
        for _ in range(max(spec.width, 1)):
            line.tab(TABSTOP)
    elif spec.width and line.column % spec.width:
        line.tab(spec.width)


def _attribute(fmt: str, i: int, pc: PrintfContext, line: _Line) -> int:
    """`%<b>`/`%</b>` (terminal attributes: nothing off a terminal) and `%<_var>` (a variable)."""
    end = fmt.find(">", i)
    if end < 0:
        return len(fmt)
    param = fmt[i + 1 : end]
    if param.startswith("_"):
        value = pc.variable(param[1:])
        if value is not None:
            line.put(numtostr(value, 10, signed=True))
    return end + 1
