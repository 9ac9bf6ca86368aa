"""::sizeof and ::offsetof (mdb_print.c), over the session's types, and the type-name
helpers ::printf and ::typedef share: `struct x` given as two words, lookups with mdb's
failure wording.
"""

from __future__ import annotations

from pmdb.commands.registry import DcmdContext, Failure, dcmd
from pmdb.debuginfo.ctypes import NBBY, CType, Member, StructType, find_member, resolve, size_of
from pmdb.errors import UsageError
from pmdb.mdb.text import numtostr

_KEYWORDS = ("struct", "enum", "union")


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


def lookup_type(ctx: DcmdContext, name: str, verb: str = "look up") -> CType:
    """The session's type `name`, or Failure as mdb words it (`failed to look up type x: ...`)."""
    t = ctx.session.types.lookup(name)
    if t is None:
        # mdb reports the target's reason for having no type data: BEST GUESS, see the report
        why = ("no symbolic debug information available for module" if ctx.session.program is not None
               else "operation not supported by target")
        raise Failure(f"failed to {verb} type {name}: {why}")
    return t


def member_of(ctx: DcmdContext, t: CType, name: str, type_text: str) -> Member:
    """Member `name` of struct/union `t`, or Failure in mdb's words."""
    if not isinstance(resolve(t, ctx.session.types), StructType):
        raise Failure(f"failed to find member {name} of type {type_text}: Type is not a struct or union")
    member = find_member(t, name, ctx.session.types)
    if member is None:
        raise Failure(f"failed to find member {name} of type {type_text}: no such member of structure or union")
    return member


@dcmd("sizeof", usage="type", needs_target=False)
def sizeof(ctx: DcmdContext) -> None:
    """print the size of a type"""
    if ctx.has_addr:
        raise UsageError("")
    name, rest = type_name_args(list(ctx.args))
    if rest:
        raise UsageError("")
    size = size_of(lookup_type(ctx, name), ctx.session.types)
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
    size = size_of(member.type, ctx.session.types)
    if size > 0:
        text += f", sizeof (...->{rest[0]}) = {numtostr(size, radix, showbase=True)}"
    ctx.write(text + "\n")
