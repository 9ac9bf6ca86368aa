"""The format engine behind `addr/fmt`, `addr?fmt` and `value=fmt`, as mdb's mdb_fmt.c does it.

Each format character reads its size, renders the value and places it as a printf field on
mdb's output buffer (pmdb.mdb.output), with autowrap forced on for the character (all but
`j`). `/` and `?` print the `sym:` line and the `addr:` prefix padded to the 16-column
margin on a command's first invocation; `=` formats the value itself, from a 16-blank
indent. After a command, dot is where its last invocation started and the increment is how
far that invocation moved (0 for `=`), which is where `+` and an empty line continue.
"""

from __future__ import annotations

import math
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pmdb.errors import CommandError, FaultError
from pmdb.mdb.output import BUFSIZ, LineWriter
from pmdb.mdb.text import MASK64, c_escapes, c_unescape, numtostr, symbolic

if TYPE_CHECKING:
    from pmdb.arch.disasm import Instruction
    from pmdb.mdb.session import Session
    from pmdb.program import Program

WRITES = "vwzWZ"  # `/v` `/w` `/W` `/Z` `/z` write when they start a format list
SEARCHES = "lLM"  # `/l` `/L` `/M` search memory
_REFUSED = frozenset(WRITES + SEARCHES)
LAST_TABLE_CHAR = "z"  # mdb's format table ends here; later characters are never formats


@dataclass(frozen=True)
class Text:
    """A quoted string in a format list: printed as it is, between the format characters."""

    text: str


Item = int | str | Text  # a repeat count, a format character, or literal text

# What `/` and `?` do with no format characters: the word, back to it, "= ", the instruction.
DEFAULT_FORMAT: tuple[Item, ...] = ("X", "^", Text("= "), "i")


@dataclass(frozen=True)
class FormatRun:
    """One format command's outcome: stdout text, stderr messages, and where dot is left.

    `dot` and `increment` are also stored in the session; `next_addr` is the first address
    plus the increment, for callers that derive the increment by subtracting that address.
    """

    text: str
    errors: tuple[str, ...]
    dot: int
    increment: int
    next_addr: int


def refusal(ch: str) -> str:
    """The one-line error for a write (`/w`) or search (`/l`) format, both of which pmdb refuses."""
    if ch in SEARCHES:
        return f"'{ch}' searches the target: pmdb does not search memory"
    return f"'{ch}' writes to the target: pmdb never writes to a dump"


def parse_format(spec: str) -> tuple[Item, ...]:
    """A format list as mdb's lexer reads it: blanks ignored, digits a decimal repeat count,
    `"..."` literal text with C escapes, any other character a format character."""
    items: list[Item] = []
    i = 0
    while i < len(spec):
        ch = spec[i]
        if ch in " \t":
            i += 1
        elif ch in "0123456789":
            j = i
            while j < len(spec) and spec[j] in "0123456789":
                j += 1
            items.append(int(spec[i:j]))
            i = j
        elif ch == '"':
            end = _closing_quote(spec, i + 1)
            items.append(Text(c_unescape(spec[i + 1 : end])))
            i = end + 1
        else:
            items.append(ch)
            i += 1
    return tuple(items)


def _closing_quote(spec: str, start: int) -> int:
    i = start
    while i < len(spec):
        if spec[i] == "\\":
            i += 2
        elif spec[i] == '"':
            return i
        else:
            i += 1
    raise CommandError('syntax error: " unmatched')


def run_format(session: Session, verb: str, spec: str | Sequence[Item], addr: int, count: int = 1,
               inputs: Sequence[int] = ()) -> FormatRun:
    """Run `addr,count<verb>spec` (or the format once per piped-in address of `inputs`).

    `spec` is the format list as text or as items. Errors that stop the command before it
    prints (a write, `=` with nothing to format, no target) raise CommandError; failures of
    single characters (unreadable memory, unknown characters) are returned in `errors`, and
    the other characters still print, as in mdb.
    """
    items = parse_format(spec) if isinstance(spec, str) else tuple(spec)
    if count == 0 and not inputs:  # mdb sets dot and runs nothing
        session.dot = addr
        return FormatRun("", (), addr, session.increment, addr + session.increment)
    if verb == "=":
        if not items:
            raise CommandError("expected one or more format characters following '='")
    else:
        if items and isinstance(items[0], str) and items[0] in _REFUSED:
            raise CommandError(refusal(items[0]))
        if session.program is None:
            raise CommandError("no target")
        items = items or DEFAULT_FORMAT
    engine = _Engine(session)
    dot = engine.values(items, addr, count, inputs) if verb == "=" else engine.memory(items, addr, count, inputs)
    session.dot, session.increment = dot, engine.increment
    if engine.last_value is not None and "0" in session.variables:
        session.variables["0"] = engine.last_value
    return FormatRun(engine.out.finish(), tuple(engine.errors), dot, engine.increment, addr + engine.increment)


# Readers: where a format character's bytes come from ---------------------------------------


class _Memory:
    """`/` and `?`: the target's memory (a core's text comes from its files either way)."""

    def __init__(self, program: Program) -> None:
        self.program = program

    def read(self, addr: int, size: int) -> bytes:
        """Exactly `size` bytes, or FaultError."""
        return self.program.read(addr, size)

    def string(self, addr: int) -> bytes:
        """The bytes up to the NUL, or up to where memory stops being readable."""
        out = b""
        while True:
            try:
                chunk = self.program.read_available((addr + len(out)) & MASK64, BUFSIZ)
            except FaultError:
                if not out:
                    raise
                return out
            end = chunk.find(b"\0")
            if end >= 0:
                return out + chunk[:end]
            out += chunk
            if len(chunk) < BUFSIZ:
                return out

    def instruction(self, addr: int) -> Instruction:
        """The instruction at `addr`, or FaultError when its first byte is unreadable."""
        return self.program.instruction_at(addr)


class _Value:
    """`=`: mdb's immediate-value target. Every read, at any address, gets the low bytes of the
    value (at most its 8), and a string or instruction is made of those 8 bytes."""

    def __init__(self, value: int, program: Program | None) -> None:
        self.raw = (value & MASK64).to_bytes(8, "little")
        self.program = program

    def read(self, addr: int, size: int) -> bytes:
        """The value's low `size` bytes (8 at most)."""
        return self.raw[:size]

    def string(self, addr: int) -> bytes:
        """The value's bytes up to the first NUL."""
        return self.raw.split(b"\0", 1)[0]

    def instruction(self, addr: int) -> Instruction:
        """The value's bytes, then zeros, decoded as if they were at `addr`."""
        if self.program is not None:
            disassembler = self.program.disassembler
        else:
            from pmdb.arch.disasm import Disassembler

            disassembler = Disassembler(lambda _addr: None)
        return disassembler.decode_one(self.raw + bytes(8), addr)


_Reader = _Memory | _Value


# The engine ---------------------------------------------------------------------------


class _Engine:
    """One format command: the output buffer, the messages, and mdb's running increment."""

    def __init__(self, session: Session) -> None:
        self.program = session.program
        self.radix = session.radix
        self.out = LineWriter(session.page_width, autowrap=session.autowrap)
        self.errors: list[str] = []
        self.increment = session.increment
        self.last_value: int | None = None  # the last integer printed: mdb's variable `0`

    # Commands ---------------------------------------------------------------------

    def memory(self, items: tuple[Item, ...], addr: int, count: int, inputs: Sequence[int]) -> int:
        """`/` and `?`: one invocation per piped address, or `count` from addr, each at dot
        plus the increment; only the first prints the prefix. Returns the final dot."""
        assert self.program is not None
        reader = _Memory(self.program)
        dot = inputs[0] if inputs else addr
        self._print_list(reader, items, dot, header=True)
        if inputs:
            for dot in inputs[1:]:
                self._print_list(reader, items, dot, header=False)
            return dot
        for _ in range(1, count):
            dot = (dot + self.increment) & MASK64
            self._print_list(reader, items, dot, header=False)
        return dot

    def values(self, items: tuple[Item, ...], addr: int, count: int, inputs: Sequence[int]) -> int:
        """`=`: each invocation formats dot, which only `+` and `-` move. Returns the final dot."""
        dot = addr
        if inputs:
            for start in inputs:
                dot = self._value_list(items, start)
        else:
            for _ in range(count):
                dot = self._value_list(items, dot)
        self.increment = 0
        return dot

    def _print_list(self, reader: _Memory, items: tuple[Item, ...], addr: int, header: bool) -> None:
        """mdb's print_arglist: the prefix, then each item; the increment is the distance moved."""
        start = addr
        if header:
            self._prefix(addr, items)

        def step(ch: str, n: int) -> None:
            nonlocal addr
            moved = self.character(reader, addr, n, ch)
            self.increment, addr = moved - addr, moved  # `^` steps back by the last character's move

        self._walk(items, step)
        self.increment = addr - start

    def _value_list(self, items: tuple[Item, ...], dot: int) -> int:
        """mdb's cmd_print_value: every read sees the value dot had at the start; `+` and `-`
        move dot."""
        reader = _Value(dot, self.program)

        def step(ch: str, n: int) -> None:
            nonlocal dot
            moved = self.character(reader, dot, n, ch)
            if ch in ("+", "-"):
                dot = moved

        self._walk(items, step)
        return dot

    def _walk(self, items: tuple[Item, ...], step: Callable[[str, int], None]) -> None:
        """A format list under the indent: a count sets the next character's repeat count, text
        is printed as it is, each character goes to `step` with its count."""
        self.out.set_indent(True)
        n = 1
        for item in items:
            if isinstance(item, int):
                n = item
                continue
            if isinstance(item, Text):
                self.out.text(_c_string(item.text))
            else:
                step(item, n)
            n = 1
        self.out.set_indent(False)

    def _prefix(self, addr: int, items: tuple[Item, ...]) -> None:
        """`sym:` alone on a line when addr is a symbol's start, then `addr:` in the margin and
        a tab to the next multiple of 16 (`ai` and `ia`, adb's disassembly idioms, differ)."""
        first = tuple(items[:2])
        disassembly = first in (("a", "i"), ("i", "a"))
        if not disassembly:
            name = self._exact_symbol(addr)
            if name is not None:
                _printf(self.out, name, ":\n")
        self.out.field(self.symbolic(addr) + ":", self.out.margin)
        if first == ("a", "i"):
            self.out.literal("\n")
        elif not disassembly:
            self.out.tab_to(16)

    def _exact_symbol(self, addr: int) -> str | None:
        assert self.program is not None
        sym = self.program.symbolize(addr)
        return str(sym) if sym.symbol is not None and sym.offset == 0 else None

    # Characters -------------------------------------------------------------------

    def character(self, reader: _Reader, addr: int, n: int, ch: str) -> int:
        """mdb_fmt_print: format character `ch` with repeat count `n` at addr; returns the
        address after what it consumed (addr itself when it failed or moves nothing)."""
        if len(ch) != 1 or not 0 <= ord(ch) <= ord(LAST_TABLE_CHAR):
            self.errors.append(f"invalid format character -- '{ch}'")
            return addr
        saved = self.out.autowrap
        if ch != "j":  # every format but the bit diagram wraps, whatever the autowrap option
            self.out.force_autowrap()
        try:
            printf = _PRINTF.get(ch)
            if printf is not None:
                return printf.run(self, reader, addr, n)
            special = _SPECIAL.get(ch)
            if special is not None:
                return special(self, reader, addr, n) & MASK64
            self.errors.append(f"invalid format character -- '{ch}'")
            return addr
        finally:
            self.out.autowrap = saved

    def read_failed(self, error: FaultError) -> None:
        """mdb's warning for a read that failed: the rest of this character is skipped."""
        self.errors.append(f"failed to read data from target: {error}")

    def symbolic(self, addr: int) -> str:
        """mdb's %a: `sym+0x10`, or the number (`0x` above 9) when no symbol covers addr."""
        return symbolic(self.program, addr)


def _printf(out: LineWriter, *pieces: str) -> None:
    """A printf of `%s` conversions and literal text, alternating from a conversion: each
    conversion may wrap before it, each literal may wrap unless it starts with a newline."""
    for i, piece in enumerate(pieces):
        if i % 2:
            out.literal(piece)
        else:
            out.field(piece)


def _c_string(text: str) -> str:
    """A format-list string is a C string: it ends at its first NUL."""
    return text.split("\0", 1)[0]


@contextmanager
def _no_indent(out: LineWriter) -> Iterator[None]:
    """Suspend INDENT (a line holding only the margin is dropped) and restore it after."""
    saved = out.indent
    if saved:
        out.set_indent(False)
    try:
        yield
    finally:
        if saved:
            out.set_indent(True)


# Printf-style characters: one field per value read ----------------------------------------


@dataclass(frozen=True)
class _Printf:
    """A character that reads `size` bytes per repeat and prints one left-justified field of
    `width`, one column wider when the value has a bit of `wide_mask` (J, K, Z, R)."""

    size: int
    width: int
    render: Callable[[int, _Engine], str]
    wide_mask: int = 0

    def run(self, engine: _Engine, reader: _Reader, addr: int, n: int) -> int:
        for _ in range(n):
            try:
                data = reader.read(addr, self.size)
            except FaultError as e:
                engine.read_failed(e)
                return addr
            value = int.from_bytes(data, "little")
            engine.last_value = value
            width = self.width + 1 if value & self.wide_mask else self.width
            engine.out.field(self.render(value, engine), width)
            addr = (addr + self.size) & MASK64
        return addr


def _sign_extend(value: int, size: int) -> int:
    bits = 8 * size
    return value - (1 << bits) if value >> (bits - 1) else value


def _hex(value: int, engine: _Engine) -> str:
    return f"{value:x}"


def _unsigned(value: int, engine: _Engine) -> str:
    return str(value)


def _signed(size: int) -> Callable[[int, _Engine], str]:
    return lambda value, engine: str(_sign_extend(value, size))


def _octal(value: int, engine: _Engine) -> str:
    """`%#o`: octal with a leading 0 unless the value is 0."""
    return f"0{value:o}" if value else "0"


def _signed_octal(size: int, alternate: bool) -> Callable[[int, _Engine], str]:
    """`%q`: signed octal; with `#` a leading 0 is written even before a minus (`0-1`)."""

    def render(value: int, engine: _Engine) -> str:
        text = numtostr(_sign_extend(value, size), 8, signed=True)
        return "0" + text if alternate and value else text

    return render


def _plain_octal(value: int, engine: _Engine) -> str:
    return f"{value:o}"


def _radix(value: int, engine: _Engine) -> str:
    """`%r`: unsigned in the current radix."""
    return numtostr(value, engine.radix)


def _binary(value: int, engine: _Engine) -> str:
    return f"{value:b}"


def _pointer(value: int, engine: _Engine) -> str:
    return engine.symbolic(value)


def _char(value: int, engine: _Engine) -> str:
    """`%c`: the byte itself (a NUL prints nothing)."""
    return chr(value) if value else ""


def _swapped(size: int) -> Callable[[int, _Engine], str]:
    return lambda value, engine: f"{int.from_bytes(value.to_bytes(size, 'little'), 'big'):x}"


def _time(size: int) -> Callable[[int, _Engine], str]:
    return lambda value, engine: time_text(_sign_extend(value, size), engine.radix)


def _float(size: int) -> Callable[[int, _Engine], str]:
    """`f` prints a float as mdb's %e (8 significant digits), `F` a double as its %g (17)."""
    code, digits = ("<f", 7) if size == 4 else ("<d", 16)
    return lambda value, engine: float_text(struct.unpack(code, value.to_bytes(size, "little"))[0], digits)


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def time_text(seconds: int, radix: int = 16) -> str:
    """mdb's %Y: ctime(3C) in local time rearranged as `YYYY Mon DD HH:MM:SS`; a time ctime
    cannot express is printed as a signed number in the radix."""
    try:
        t = time.localtime(seconds)
    except (OverflowError, OSError, ValueError):
        return numtostr(seconds, radix, signed=True)
    ctime = (f"{_DAYS[t.tm_wday]} {_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} "
             f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} {t.tm_year}\n")
    return ctime[20:24] + ctime[3:19]  # the year, then month, day and time, as mdb copies them


def float_text(x: float, digits: int) -> str:
    """mdb's doubletos: `%+.<digits>e` with a two-digit exponent at least; NaN and Infinity
    spelt out after their sign."""
    sign = "-" if math.copysign(1.0, x) < 0 else "+"
    if math.isnan(x):
        return sign + "NaN"
    if math.isinf(x):
        return sign + ("Infinity" if digits + 1 >= 8 else "Inf")
    return f"{x:+.{digits}e}"


_TOP_NIBBLE = 0xF << 60
_TOP_BIT = 1 << 63

_PRINTF: dict[str, _Printf] = {
    "B": _Printf(1, 8, _hex), "V": _Printf(1, 8, _unsigned), "b": _Printf(1, 8, _octal),
    "v": _Printf(1, 8, _signed(1)), "c": _Printf(1, 0, _char),
    "x": _Printf(2, 8, _hex), "d": _Printf(2, 8, _signed(2)), "u": _Printf(2, 8, _unsigned),
    "o": _Printf(2, 8, _octal), "q": _Printf(2, 8, _signed_octal(2, True)), "w": _Printf(2, 8, _radix),
    "h": _Printf(2, 8, _swapped(2)),
    "X": _Printf(4, 16, _hex), "D": _Printf(4, 16, _signed(4)), "U": _Printf(4, 16, _unsigned),
    "O": _Printf(4, 16, _octal), "Q": _Printf(4, 16, _signed_octal(4, True)), "W": _Printf(4, 16, _radix),
    "H": _Printf(4, 16, _swapped(4)), "Y": _Printf(4, 24, _time(4)), "f": _Printf(4, 0, _float(4)),
    "J": _Printf(8, 16, _hex, _TOP_NIBBLE), "K": _Printf(8, 16, _hex, _TOP_NIBBLE),
    "Z": _Printf(8, 16, _hex, _TOP_NIBBLE), "R": _Printf(8, 64, _binary, _TOP_BIT),
    "E": _Printf(8, 21, _unsigned), "e": _Printf(8, 21, _signed(8)),
    "G": _Printf(8, 23, _plain_octal), "g": _Printf(8, 24, _signed_octal(8, False)),
    "p": _Printf(8, 19, _pointer), "P": _Printf(8, 19, _pointer),
    "y": _Printf(8, 24, _time(8)), "F": _Printf(8, 0, _float(8)),
}


# The other characters: strings, instructions, layout, dot motion -----------------------------


def _dot(engine: _Engine, reader: _Reader, addr: int, n: int) -> int:
    """`a`: dot as `sym+0x10:` in the margin, outside the indent."""
    with _no_indent(engine.out):
        for _ in range(n):
            engine.out.field(engine.symbolic(addr) + ":", engine.out.margin)
            engine.out.tab_to(16)
    return addr


def _strings(engine: _Engine, reader: _Reader, addr: int, n: int, escape: bool = False) -> int:
    """`s` (raw) and `S` (C escapes): n strings, `\\0` between them, dot past each NUL; the
    indent is suspended, so a string that starts a line starts at column 0."""
    with _no_indent(engine.out):
        for i in range(n):
            try:
                data = reader.string(addr)
            except FaultError as e:
                engine.read_failed(e)
                break
            engine.out.text(c_escapes(data) if escape else data.decode("latin-1"))
            addr += len(data)
            if i < n - 1:
                engine.out.text("\\0")
            addr += 1
    return addr


def _escaped_strings(engine: _Engine, reader: _Reader, addr: int, n: int) -> int:
    return _strings(engine, reader, addr, n, escape=True)


def _chars(engine: _Engine, reader: _Reader, addr: int, n: int) -> int:
    """`C`: n bytes read at once, in C escapes; nothing (and no message) when unreadable."""
    try:
        data = reader.read(addr, n)
    except FaultError:
        return addr
    engine.out.text(c_escapes(data))
    return addr + len(data)


def _instructions(engine: _Engine, reader: _Reader, addr: int, n: int) -> int:
    """`i`: n instructions, each followed by a newline (continuation lines are indented)."""
    for _ in range(n):
        try:
            insn = reader.instruction(addr)
        except FaultError as e:
            where = numtostr(addr, engine.radix, showbase=True)
            engine.errors.append(f"failed to read instruction at {where}: {e}")
            break
        _printf(engine.out, insn.text, "\n")
        addr += insn.size
    return addr


def _addressed_instructions(engine: _Engine, reader: _Reader, addr: int, n: int) -> int:
    """`I`: `address word: instruction` lines (the word is the first 4 bytes, little-endian),
    outside the indent."""
    with _no_indent(engine.out):
        for _ in range(n):
            try:
                word = int.from_bytes(reader.read(addr, 4), "little")
                insn = reader.instruction(addr)
            except FaultError as e:
                engine.read_failed(e)
                break
            _printf(engine.out, f"{addr:x}", " ", f"{word:x}", ": ", insn.text, "\n")
            addr += insn.size
    return addr


def _jazzed(engine: _Engine, reader: _Reader, addr: int, n: int) -> int:
    """`j`: the value in binary, then a diagram with an arm down to a `bit N mask 0x..` line
    for every set bit, lowest first."""
    out = engine.out
    for _ in range(n):
        try:
            value = int.from_bytes(reader.read(addr, 8), "little")
        except FaultError as e:
            engine.read_failed(e)
            break
        addr += 8
        _printf(out, f"{value:b}", "\n")
        for arms, bit, high in bit_diagram(value):
            if bit is None:
                _printf(out, arms, "|\n")
            else:
                extra = " " if bit < 10 <= high else ""
                _printf(out, arms, " bit ", str(bit), " ", extra, "mask 0x", f"{1 << bit:0{high // 4 + 1}x}", "\n")
    return addr


def bit_diagram(value: int) -> Iterator[tuple[str, int | None, int]]:
    """mdb's `j` rows as (drawing, bit, highest bit): first a row of `|` for every set bit (bit
    None), then for each set bit from the lowest an arm `+--` reaching the same column."""
    header = True
    while value:
        high = value.bit_length() - 1
        b = high
        arms = ""
        while value & ((1 << b) - 1):
            arms += "|" if value & (1 << b) else " "
            b -= 1
        if header:
            header = False
            yield arms, None, high
            continue
        yield arms + "+" + "-" * (b + 2), b, high
        value &= ~(1 << b)


def _newlines(engine: _Engine, reader: _Reader, addr: int, n: int) -> int:
    for _ in range(n):
        engine.out.newline()
    return addr


def _blanks(engine: _Engine, reader: _Reader, addr: int, n: int) -> int:
    engine.out.blanks(n)
    return addr


def _tab(engine: _Engine, reader: _Reader, addr: int, n: int) -> int:
    """`t`/`T`: to the next multiple of n (always moving; `t` alone is one blank)."""
    engine.out.tab(n)
    return addr


def _plus(engine: _Engine, reader: _Reader, addr: int, n: int) -> int:
    return addr + n


def _minus(engine: _Engine, reader: _Reader, addr: int, n: int) -> int:
    return addr - n


def _caret(engine: _Engine, reader: _Reader, addr: int, n: int) -> int:
    """`^`: back by the increment (what the previous character moved) n times."""
    return addr - engine.increment * n


_SPECIAL: dict[str, Callable[[_Engine, _Reader, int, int], int]] = {
    "a": _dot, "s": _strings, "S": _escaped_strings, "C": _chars, "i": _instructions,
    "I": _addressed_instructions, "j": _jazzed, "n": _newlines, "N": _newlines, "r": _blanks,
    "t": _tab, "T": _tab, "+": _plus, "-": _minus, "^": _caret,
}
