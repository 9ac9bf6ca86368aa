"""::sizeof and ::offsetof (mdb_print.c), and what every type command shares: the session's
TypeSystem (`::typedef` types first, then the target's DWARF), type names given as two words
(`struct x`), and lookups and member paths with mdb's failure wording.
"""

from __future__ import annotations

from pmdb.commands.registry import DcmdContext, Failure, dcmd
from pmdb.debuginfo.cdecl import CDeclError
from pmdb.debuginfo.ctypes import NBBY, BadTypeError, CType, Member, StructType, find_member, resolve, size_of
from pmdb.debuginfo.typesystem import TypeSystem
from pmdb.errors import ParseError, UsageError
from pmdb.mdb.lexer import number
from pmdb.mdb.text import numtostr

_KEYWORDS = ("struct", "enum", "union")
_RADIX_PREFIXES = {"i": 2, "o": 8, "t": 10, "x": 16}


def session_types(ctx: DcmdContext) -> TypeSystem:
    """The types a command sees: those made with ::typedef, then the target's (mdb searches
    its synthetic types last; pmdb lets a ::typedef name stand in for the target's)."""
    table = ctx.session.types
    program = ctx.session.program
    if program is None:
        return TypeSystem([table], pointer_size=table.pointer_size)
    return TypeSystem([table, *program.types.sources], pointer_size=program.types.pointer_size)


def type_name_args(args: list[str | int]) -> tuple[str, list[str | int]]:
    """mdb's args_to_typename: the type name (`struct proc` may come as two words) and the
    arguments after it."""
    if not args or not isinstance(args[0], str):
        raise UsageError("")
    first = args[0]
    if first in _KEYWORDS:
        if len(args) <= 1:
            raise Failure(f"{first} is not a valid type")
        if not isinstance(args[1], str):
            raise UsageError("")
        return f"{first} {args[1]}", args[2:]
    return first, args[1:]


def find_type(ctx: DcmdContext, name: str) -> CType | None:
    """The session's type `name`, or None; Failure when `name` is not C or its debug information
    is broken (`failed to look up type x: ...`)."""
    try:
        return session_types(ctx).find(name)
    except CDeclError:
        raise Failure(f"failed to look up type {name}: Syntax error in type name") from None
    except BadTypeError as e:
        raise Failure(f"failed to look up type {name}: {e}") from None


def lookup_type(ctx: DcmdContext, name: str, verb: str = "look up") -> CType:
    """The session's type `name`, or Failure as mdb words it (`failed to look up type x: ...`),
    followed by what of the target's debug information could not be read, if anything."""
    t = find_type(ctx, name)
    if t is None:
        raise Failure(f"failed to {verb} type {name}: {no_type_reason(ctx)}", *type_problems(ctx))
    return t


def type_problems(ctx: DcmdContext) -> list[str]:
    """Why some of the target's types may be missing: unreadable debug files or units (from
    sources that say, through an optional `problems` attribute)."""
    program = ctx.session.program
    if program is None:
        return []
    return [line for source in program.types.sources for line in getattr(source, "problems", ())]


def no_type_reason(ctx: DcmdContext) -> str:
    """Why a name found no type, in mdb's words: the target has no types at all, or not that one."""
    program = ctx.session.program
    if program is None:
        return "operation not supported by target"
    if not program.types.sources:
        # mdb reports the target's reason for having no type data: BEST GUESS, see the report
        return "no symbolic debug information available for module"
    return "No type information available for that name"


def member_of(ctx: DcmdContext, t: CType, name: str, type_text: str) -> Member:
    """Member `name` of struct/union `t`, or Failure in mdb's words."""
    types = session_types(ctx)
    try:
        if not isinstance(resolve(t, types), StructType):
            raise Failure(f"failed to find member {name} of type {type_text}: Type is not a struct or union")
        member = find_member(t, name, types)
    except BadTypeError as e:
        raise Failure(f"failed to find member {name} of type {type_text}: {e}") from None
    if member is None:
        raise Failure(f"failed to find member {name} of type {type_text}: no such member of structure or union")
    return member


def sized(ctx: DcmdContext, t: CType) -> int:
    """size_of through the session's types, with a broken type as a Failure."""
    try:
        return size_of(t, session_types(ctx))
    except BadTypeError as e:
        raise Failure(str(e)) from None


@dcmd("sizeof", usage="type", needs_target=False)
def sizeof(ctx: DcmdContext) -> None:
    """print the size of a type"""
    if ctx.has_addr:
        raise UsageError("")
    name, rest = type_name_args(list(ctx.args))
    if rest:
        raise UsageError("")
    size = sized(ctx, lookup_type(ctx, name))
    shown = numtostr(size, ctx.session.radix, showbase=True)
    ctx.emit(size, f"sizeof ({name}) = {shown}")


@dcmd("offsetof", usage="type member", needs_target=False)
def offsetof(ctx: DcmdContext) -> None:
    """print the offset of a given struct or union member"""
    if ctx.has_addr:
        raise UsageError("")
    name, rest = type_name_args(list(ctx.args))
    if len(rest) != 1 or not isinstance(rest[0], str):
        raise UsageError("")
    member = member_of(ctx, lookup_type(ctx, name), rest[0], name)
    radix = ctx.session.radix
    off, bits = divmod(member.offset_bits, NBBY)
    if ctx.piped_out:
        if bits:
            raise Failure(f"member {rest[0]} of type {name} is not byte-aligned")
        ctx.emit(off)
        return
    text = f"offsetof ({name}, {rest[0]}) = {numtostr(off, radix, showbase=True)}"
    if bits:
        text += "." + numtostr(bits, radix)
    size = _member_size(ctx, member)
    if size > 0:
        text += f", sizeof (...->{rest[0]}) = {numtostr(size, radix, showbase=True)}"
    ctx.write(text + "\n")


def _member_size(ctx: DcmdContext, member: Member) -> int:
    """The size mdb reports for a member: its type's, or for a bit-field the size of the integer
    ctfconvert makes for it (its width in bytes, rounded up to a power of two)."""
    if member.bit_size is None:
        return sized(ctx, member.type)
    return bitfield_size(member.bit_size)


def strtoull(ctx: DcmdContext, text: str) -> int:
    """mdb_strtoull: a number in the session's radix, or with a 0x/0t/0o/0i prefix."""
    radix = ctx.session.radix
    if len(text) > 2 and text[0] == "0" and text[1].lower() in _RADIX_PREFIXES:
        radix, text = _RADIX_PREFIXES[text[1].lower()], text[2:]
    try:
        return number(text, radix) if text else 0
    except ParseError as e:
        raise Failure(str(e)) from None


def bitfield_size(bits: int) -> int:
    """libctf's size of a `bits`-wide integer: whole bytes, rounded up to a power of two."""
    size = 1
    while size * NBBY < bits:
        size *= 2
    return size
