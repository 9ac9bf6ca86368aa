"""The format engine behind `addr/fmt`, `addr?fmt` and `value=fmt`: each format character's size,
width and rendering, repeat counts, the `sym:` prefix with its 16-column margin, and wrapping.

Widths and rules follow mdb's format table (docs/mdb-output-shapes.md, section 1): numeric
fields are left-justified, a hex field gains a column when its digits fill it, `p` is 19 wide.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pmdb.errors import CommandError, FaultError
from pmdb.mdb.output import LineWriter
from pmdb.mdb.text import num, symbolic

if TYPE_CHECKING:
    from pmdb.mdb.session import Session

_MASK64 = (1 << 64) - 1
STRING_LIMIT = 4096


@dataclass(frozen=True)
class IntFormat:
    """A format character that reads `size` bytes and prints an integer in a field of `width`."""

    size: int
    width: int
    render: Callable[[int, int], str]  # (value, size) -> text
    grows: bool = False  # a field its digits fill gains one column (hex J/K, binary R)


def _hex(v: int, size: int) -> str:
    return f"{v:x}"


def _unsigned(v: int, size: int) -> str:
    return str(v)


def _signed(v: int, size: int) -> str:
    bits = 8 * size
    return str(v - (1 << bits) if v >> (bits - 1) else v)


def _octal(v: int, size: int) -> str:
    return f"0{v:o}" if v else "0"


def _signed_octal(v: int, size: int) -> str:
    s = int(_signed(v, size))
    return f"0{s:o}" if s else "0"


def _plain_octal(v: int, size: int) -> str:
    return f"{v:o}"


def _signed_plain_octal(v: int, size: int) -> str:
    return f"{int(_signed(v, size)):o}"


def _binary(v: int, size: int) -> str:
    return f"{v:b}"


def _swap(v: int, size: int) -> str:
    return f"{int.from_bytes(v.to_bytes(size, 'little'), 'big'):x}"


INT_FORMATS: dict[str, IntFormat] = {
    "X": IntFormat(4, 16, _hex), "x": IntFormat(2, 8, _hex), "B": IntFormat(1, 8, _hex),
    "J": IntFormat(8, 16, _hex, grows=True), "K": IntFormat(8, 16, _hex, grows=True),
    "D": IntFormat(4, 16, _signed), "d": IntFormat(2, 8, _signed), "e": IntFormat(8, 21, _signed),
    "U": IntFormat(4, 16, _unsigned), "u": IntFormat(2, 8, _unsigned), "E": IntFormat(8, 21, _unsigned),
    "V": IntFormat(1, 8, _unsigned),
    "O": IntFormat(4, 16, _octal), "o": IntFormat(2, 8, _octal), "b": IntFormat(1, 8, _octal),
    "Q": IntFormat(4, 16, _signed_octal), "q": IntFormat(2, 8, _signed_octal),
    "G": IntFormat(8, 23, _plain_octal), "g": IntFormat(8, 24, _signed_plain_octal),
    "h": IntFormat(2, 8, _swap), "H": IntFormat(4, 16, _swap),
    "R": IntFormat(8, 64, _binary, grows=True),
}
VALUE_ONLY = {"v": IntFormat(1, 8, _signed)}  # in `/` these letters write, so only `=` has them
WRITES = set("vwWZz")
POINTER_WIDTH = 19


@dataclass
class FormatRun:
    """The outcome of one format command: text for stdout, messages for stderr, the next dot."""

    text: str = ""
    errors: list[str] = field(default_factory=list)
    next_addr: int = 0


def parse_spec(spec: str) -> list[tuple[int, str]]:
    """`4X2d` -> [(4, 'X'), (2, 'd')]; a missing count is 1."""
    out = []
    i = 0
    while i < len(spec):
        j = i
        while j < len(spec) and spec[j].isdigit():
            j += 1
        if j >= len(spec):
            raise CommandError(f"missing format character after count '{spec[i:]}'")
        out.append((int(spec[i:j]) if j > i else 1, spec[j]))
        i = j + 1
    return out


def run_format(session: Session, verb: str, spec: str, addr: int, count: int) -> FormatRun:
    """Run `addr,count<verb>spec` and return its output; reads go through the session's program."""
    if not spec:
        if verb == "=":
            raise CommandError("expected one or more format characters following '='")
        spec = session.last_format.get(verb, "X")
    session.last_format[verb] = spec
    items = parse_spec(spec)
    for _n, ch in items:
        if verb != "=" and ch in WRITES:
            raise CommandError(f"'{ch}' writes to the target: pmdb never writes to a dump")
        if ch not in INT_FORMATS and ch not in _OTHER and not (verb == "=" and ch in VALUE_ONLY):
            raise CommandError(f"invalid format character -- '{ch}'")
    engine = _Engine(session, verb, addr)
    for i in range(max(count, 1)):
        if verb == "=":
            engine.value_pass(items)
        else:
            engine.memory_pass(items, first=i == 0)
    return FormatRun(engine.out.finish(), engine.errors, engine.addr)


class _Engine:
    """One format command's state: where it reads, what it printed, what failed."""

    def __init__(self, session: Session, verb: str, addr: int) -> None:
        self.session = session
        self.program = session.program
        self.verb = verb
        self.addr = addr
        self.value = addr
        self.out = LineWriter()
        self.errors: list[str] = []

    # Passes ------------------------------------------------------------------------

    def memory_pass(self, items: list[tuple[int, str]], first: bool) -> None:
        if first:
            self._prefix()
        for n, ch in items:
            try:
                for _ in range(n):
                    self._memory_char(ch, n)
                    if ch in "rtT+-^nN":
                        break
            except FaultError as e:
                self.errors.append(f"failed to read data from target: {e}")

    def value_pass(self, items: list[tuple[int, str]]) -> None:
        self.out.start_indent()
        raw = (self.value & _MASK64).to_bytes(8, "little")
        for n, ch in items:
            for _ in range(n):
                self._value_char(ch, raw, n)
                if ch in "rtTnN":
                    break

    def _prefix(self) -> None:
        prog = self.program
        sym = prog.symbolize(self.addr) if prog else None
        if sym is not None and sym.symbol is not None and sym.offset == 0:
            self.out.text(f"{sym}:\n")
        self._address_field()
        self.out.start_indent()

    def _address_field(self) -> None:
        label = symbolic(self.program, self.addr) if self.program else num(self.addr)
        self.out.field(label + ":", 16)
        self.out.tab_to(16)

    # Characters ----------------------------------------------------------------------

    def _read(self, size: int) -> bytes:
        """Bytes at the current address (`?` reads the same image: a core's text comes from its files)."""
        if self.program is None:
            raise CommandError("no target")
        return self.program.read(self.addr, size)

    def _memory_char(self, ch: str, n: int) -> None:
        fmt = INT_FORMATS.get(ch)
        if fmt is not None:
            value = int.from_bytes(self._read(fmt.size), "little")
            self._int_field(fmt, value)
            self.addr += fmt.size
            return
        _OTHER[ch](self, n, None)

    def _value_char(self, ch: str, raw: bytes, n: int) -> None:
        fmt = INT_FORMATS.get(ch) or VALUE_ONLY.get(ch)
        if fmt is not None:
            self._int_field(fmt, int.from_bytes(raw[: fmt.size], "little"))
            return
        _OTHER[ch](self, n, raw)

    def _int_field(self, fmt: IntFormat, value: int) -> None:
        text = fmt.render(value, fmt.size)
        width = len(text) + 1 if fmt.grows and len(text) >= fmt.width else fmt.width
        self.out.field(text, width)

    # Non-integer characters (each takes the repeat count and, for `=`, the value's bytes) ---

    def pointer(self, n: int, raw: bytes | None) -> None:
        value = int.from_bytes(raw if raw is not None else self._read(8), "little")
        self.out.field(symbolic(self.program, value), POINTER_WIDTH)
        if raw is None:
            self.addr += 8

    def char(self, n: int, raw: bytes | None) -> None:
        data = raw[:1] if raw is not None else self._read(1)
        self.out.text(data.decode("latin-1"))
        if raw is None:
            self.addr += 1

    def escaped_chars(self, n: int, raw: bytes | None) -> None:
        data = raw[:1] if raw is not None else self._read(n)
        self.out.text("".join(_escape(b) for b in data))
        if raw is None:
            self.addr += len(data)

    def string(self, n: int, raw: bytes | None, escape: bool = False) -> None:
        data = self._cstring() if raw is None else raw.split(b"\0", 1)[0]
        text = "".join(_escape(b) for b in data) if escape else data.decode("latin-1")
        was = self.out.indent
        self.out.indent = False
        self.out.text(text)
        self.out.indent = was
        if raw is None:
            self.addr += len(data) + 1

    def escaped_string(self, n: int, raw: bytes | None) -> None:
        self.string(n, raw, escape=True)

    def _cstring(self) -> bytes:
        assert self.program is not None
        chunk = self.program.read_available(self.addr, STRING_LIMIT)
        end = chunk.find(b"\0")
        return chunk if end < 0 else chunk[:end]

    def instruction(self, n: int, raw: bytes | None) -> None:
        if self.program is None:
            raise CommandError("no target")
        if raw is not None:
            insn = self.program.disassembler.decode_one(raw, self.value)
        else:
            insn = self.program.instruction_at(self.addr)
            self.addr += insn.size
        self.out.text(insn.text)
        self.out.newline()

    def instruction_with_bytes(self, n: int, raw: bytes | None) -> None:
        if self.program is None:
            raise CommandError("no target")
        insn = self.program.instruction_at(self.addr)
        first4 = int.from_bytes(insn.raw[:4].ljust(4, b"\0"), "big")
        self.out.text(f"{insn.address:x} {first4:x}: {insn.text}")
        self.out.newline()
        self.addr += insn.size

    def dot_address(self, n: int, raw: bytes | None) -> None:
        was = self.out.indent
        self.out.indent = False
        self._address_field()
        self.out.indent = was

    def newline(self, n: int, raw: bytes | None) -> None:
        for _ in range(n):
            self.out.newline()

    def blanks(self, n: int, raw: bytes | None) -> None:
        self.out.text(" " * n)

    def tab(self, n: int, raw: bytes | None) -> None:
        if n > 1:
            self.out.tab_to(n)
        else:
            self.out.text(" ")

    def advance(self, n: int, raw: bytes | None) -> None:
        self.addr += n

    def retreat(self, n: int, raw: bytes | None) -> None:
        self.addr -= n

    def floating(self, n: int, raw: bytes | None, size: int = 4) -> None:
        data = raw[:size] if raw is not None else self._read(size)
        (value,) = struct.unpack("<f" if size == 4 else "<d", data)
        self.out.field(f"{value:e}" if size == 4 else f"{value:g}", 0)
        if raw is None:
            self.addr += size

    def double(self, n: int, raw: bytes | None) -> None:
        self.floating(n, raw, 8)


def _escape(b: int) -> str:
    specials = {0: "\\0", 7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r", 92: "\\\\"}
    if b in specials:
        return specials[b]
    return chr(b) if 32 <= b < 127 else f"\\{b:03o}"


_OTHER: dict[str, Callable[[_Engine, int, bytes | None], None]] = {
    "p": _Engine.pointer, "P": _Engine.pointer, "c": _Engine.char, "C": _Engine.escaped_chars,
    "s": _Engine.string, "S": _Engine.escaped_string, "i": _Engine.instruction,
    "I": _Engine.instruction_with_bytes, "a": _Engine.dot_address, "n": _Engine.newline,
    "N": _Engine.newline, "r": _Engine.blanks, "t": _Engine.tab, "T": _Engine.tab,
    "+": _Engine.advance, "-": _Engine.retreat, "f": _Engine.floating, "F": _Engine.double,
}
