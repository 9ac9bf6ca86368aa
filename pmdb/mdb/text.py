"""How mdb spells numbers, addresses and bytes: numtostr's bases and prefixes, `obj`sym+0xoff`, C escapes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pmdb.program import Program

MASK64 = (1 << 64) - 1
_DIGITS = "0123456789abcdef"
# numtostr's base prefixes and the largest value written without one (a lone digit).
_BASE_PREFIX = {2: ("0i", 1), 8: ("0o", 7), 10: ("0t", 9), 16: ("0x", 9)}


def numtostr(value: int, base: int = 16, signed: bool = False, showbase: bool = False,
             signpos: bool = False, upcase: bool = False) -> str:
    """mdb's numtostr: a 64-bit value in `base`, negative when `signed` and its top bit is set.

    `showbase` adds `0x`/`0t`/`0o`/`0i` when the unsigned value is above the base's largest
    lone digit (so `-5` shows as `-0x5`); `signpos` writes `+` before a non-negative value;
    `upcase` writes hex digits in capitals.
    """
    value &= MASK64
    negative = signed and value >> 63
    rest = (1 << 64) - value if negative else value
    digits = ""
    while True:
        digits = (_DIGITS.upper() if upcase else _DIGITS)[rest % base] + digits
        rest //= base
        if not rest:
            break
    prefix, largest = _BASE_PREFIX.get(base, ("", MASK64))
    if showbase and value > largest:
        digits = prefix + digits
    if negative:
        return "-" + digits
    return "+" + digits if signpos else digits


def num(value: int) -> str:
    """Hex with `0x` only when the value is above 9 (mdb's numtostr rule)."""
    return numtostr(value, 16, showbase=True)


def signed_num(value: int) -> str:
    """`+0x10`, `-0x10`, `+8`: an offset with its sign."""
    return ("-" if value < 0 else "+") + num(abs(value))


def symbolic(program: Program | None, addr: int) -> str:
    """mdb's %a: `sym`, `sym+0x1c`, `libc.so.6`sym+8`, or the address as a number."""
    return num(addr) if program is None else str(program.symbolize(addr))


def c_escapes(data: bytes) -> str:
    """mdb's strchr2esc: C escapes for `\\0 \\a \\b \\f \\n \\r \\t \\v " \\\\`, `\\ooo` for other
    bytes outside `!`..`~`; the blank stays a blank."""
    return "".join(_ESCAPES.get(b) or (chr(b) if 0x20 <= b <= 0x7E else f"\\{b:03o}") for b in data)


_ESCAPES = {0: "\\0", 7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v",
            0x22: '\\"', 0x5C: "\\\\"}


def c_unescape(text: str) -> str:
    """mdb's stresc2chr: `\\n`, `\\t`... and up to three octal digits become the characters they
    name; an unknown escape keeps its backslash (how mdb reads a quoted string)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        i += 1
        if ch != "\\":
            out.append(ch)
            continue
        if i >= len(text):  # a final lone backslash is dropped
            break
        esc = text[i]
        i += 1
        if esc in "01234567":
            digits = esc
            while len(digits) < 3 and i < len(text) and text[i] in "01234567":
                digits += text[i]
                i += 1
            out.append(chr(int(digits, 8) & 0xFF))
        else:
            out.append(_UNESCAPES.get(esc, "\\" + esc))
    return "".join(out)


_UNESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", '"': '"', "\\": "\\"}
