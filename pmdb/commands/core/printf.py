"""::printf: members of a structure at dot, formatted with mdb's printf dialect (mdb_print.c).

`addr::printf "format" type member ...`: one conversion per member, each member read from
the target with its type's size and signedness; `.` stands for dot itself. mdb accepts a
subset of its printf here: `%a %A %p` take pointers, `%d %q %R` signed and `%H %o %r %u %x
%X` unsigned integers (widened to 64 bits), `%I` a 32-bit IPv4 address, `%s` a string (char
pointer or char array), `%Y` a time; flags are limited to `-`, a width, or `?`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pmdb.commands.core.typeinfo import lookup_type, member_of, session_types, type_name_args
from pmdb.commands.registry import DcmdContext, Failure, dcmd
from pmdb.debuginfo.ctypes import NBBY, ArrayType, CType, IntType, PointerType, resolve, size_of
from pmdb.errors import FaultError, FaultReason, UsageError

_KINDS = {"a": "ptr", "A": "ptr", "p": "ptr", "d": "int", "q": "int", "R": "int", "I": "uint32", "N": "ipv6",
          "H": "uint", "o": "uint", "r": "uint", "u": "uint", "x": "uint", "X": "uint", "s": "string", "Y": "uint"}
_WIDENED = set("dqRHoruxX")  # mdb inserts `ll` before these
STRING_MAX = 1023


@dataclass(frozen=True)
class Conversion:
    """One piece of the format: its text up to and including a conversion, and what it takes."""

    text: str
    kind: str


def parse_format(fmt: str) -> tuple[list[Conversion], str]:
    """Split `fmt` as mdb's ::printf state machine does: conversions, then the trailing text."""
    pieces: list[Conversion] = []
    start, state = 0, "text"
    for i, ch in enumerate(fmt):
        state = _next_state(state, ch)
        if state != "fmt":
            continue
        kind = _KINDS.get(ch)
        if kind is None:
            raise Failure(f"illegal format string at or near '{ch}' (position {i + 1})")
        pieces.append(Conversion(fmt[start:i] + ("ll" if ch in _WIDENED else "") + ch, kind))
        start, state = i + 1, "text"
    return pieces, fmt[start:]


def _next_state(state: str, ch: str) -> str:
    if state == "text":
        return "percent" if ch == "%" else "text"
    if state == "percent":
        return {"-": "left", "?": "ques", "%": "text"}.get(ch, "width" if ch.isdigit() else "fmt")
    if state == "left":
        return "width" if ch.isdigit() else "ques" if ch == "?" else "fmt"
    if state == "width":
        return "width" if ch.isdigit() else "fmt"
    return "fmt"  # after `?`: the conversion character


@dcmd("printf", usage="?format type member ...", needs_target=False)
def printf_(ctx: DcmdContext) -> None:
    """print and format the member(s) of a data structure

    The format is a printf-like string, a subset of mdb's own printf: each
    conversion takes one member, in order. The type names how to read the
    memory at the address; each member is a member of that type (`a.b`,
    `a[2]`), or `.` for the address itself.

    EXAMPLES
      ::typedef -c LP64
      ::typedef "struct { int pid; char *name; }" task_t
      addr::printf "%d %s\\n" task_t pid name
      0t42::printf "%r\\n" int .
    """
    if not ctx.has_addr:
        raise UsageError("")
    if not ctx.args or not isinstance(ctx.args[0], str):
        raise UsageError("expected a format string")
    pieces, trailing = parse_format(ctx.args[0])
    name, members = type_name_args(list(ctx.args[1:]))
    t = lookup_type(ctx, name)
    if not members:
        raise UsageError("at least one member must be specified")
    if len(members) != len(pieces):
        which = "missing" if len(members) > len(pieces) else "extra"
        raise Failure(f"{which} format specifiers (found {len(pieces)}, expected {len(members)})")
    for member, piece in zip(members, pieces, strict=True):
        ctx.printf(piece.text, _value(ctx, t, name, member, piece))
    ctx.write(trailing)


def _value(ctx: DcmdContext, t: CType, type_text: str, member: str | int, piece: Conversion) -> int | str:
    if not isinstance(member, str):
        raise Failure("expected only type member arguments")
    if member == ".":
        if piece.kind not in ("ptr", "uint", "int"):
            raise Failure("expected integer or pointer format specifier for '.'")
        return ctx.addr
    mtype, offset = _member_path(ctx, t, type_text, member)
    try:
        return _READERS[piece.kind](ctx, resolve(mtype, session_types(ctx)), ctx.addr + offset)
    except Failure as e:
        raise Failure(*e.messages, f"failed to print member '{member}'") from None


def _member_path(ctx: DcmdContext, t: CType, type_text: str, path: str) -> tuple[CType, int]:
    """The type and byte offset of `a.b[2].c` within `t`."""
    offset = 0
    for part in path.replace("[", ".[").split("."):
        if not part:
            continue
        if part.startswith("["):
            array = resolve(t, session_types(ctx))
            if not isinstance(array, ArrayType):
                raise Failure(f"{path} is not an array")
            t = array.element
            offset += int(part.strip("[]"), 0) * size_of(t, session_types(ctx))
            continue
        member = member_of(ctx, t, part, type_text)
        t, offset = member.type, offset + member.offset_bits // NBBY
    return t, offset


def _read(ctx: DcmdContext, addr: int, size: int) -> bytes:
    program = ctx.session.program
    try:
        if program is None:
            raise FaultError(addr, FaultReason.UNMAPPED)
        return program.read(addr, size)
    except FaultError as e:
        raise Failure(f"failed to read {size} bytes at {addr:x}: {e}") from None


def _integer(ctx: DcmdContext, t: CType, addr: int, signed: bool) -> int:
    if not isinstance(t, IntType):
        raise Failure("expected integer type")
    raw = int.from_bytes(_read(ctx, addr, t.size), "little")
    if signed and t.signed and t.size and raw >> (8 * t.size - 1):
        raw -= 1 << (8 * t.size)
    return raw


def _uint32(ctx: DcmdContext, t: CType, addr: int) -> int:
    if not isinstance(t, IntType) or t.size != 4:
        raise Failure("expected 32-bit integer type")
    return int.from_bytes(_read(ctx, addr, 4), "little")


def _pointer(ctx: DcmdContext, t: CType, addr: int) -> int:
    if not isinstance(t, PointerType):
        raise Failure("expected pointer type")
    return int.from_bytes(_read(ctx, addr, t.size), "little")


def _string(ctx: DcmdContext, t: CType, addr: int) -> str:
    if isinstance(t, PointerType):
        target = int.from_bytes(_read(ctx, addr, t.size), "little")
        program = ctx.session.program
        data = program.read_available(target, STRING_MAX) if program is not None else b""
        if not data:
            raise Failure(f"failed to read string at {target:x}")
        return data.split(b"\0", 1)[0].decode("latin-1")
    if not isinstance(t, ArrayType):
        raise Failure("exepected pointer or array type")  # sic: mdb's spelling
    if size_of(t.element, session_types(ctx)) != 1:
        raise Failure("string format specifier requires an array of characters")
    return _read(ctx, addr, min(t.count, STRING_MAX)).split(b"\0", 1)[0].decode("latin-1")


def _ipv6(ctx: DcmdContext, t: CType, addr: int) -> int:
    raise Failure("could not resolve in6_addr_t type")


_READERS = {
    "int": lambda ctx, t, addr: _integer(ctx, t, addr, True),
    "uint": lambda ctx, t, addr: _integer(ctx, t, addr, False),
    "uint32": _uint32, "ptr": _pointer, "string": _string, "ipv6": _ipv6,
}
