"""::list and ::array (mdb_print.c's cmd_list, cmd_array): the addresses of a linked list's
nodes and of an array's elements, one a line, or down a pipe with their type.

`addr::list type member [variable]` follows `member` (a pointer, word-aligned in `type`) from
node to node until NULL or back at `addr`; `addr::list offset [variable]` follows the pointer
at a byte offset. A list that loops back to a node other than the first would make mdb walk
forever; pmdb stops when a node comes round again. `addr::array [type count] [variable]`
steps through `count` elements of `type`, or, without a type, through the array the symbol at
`addr` is.
"""

from __future__ import annotations

from pmdb.commands.core.builtins import _walk_variable  # mdb's setup_vcb, shared with ::walk
from pmdb.commands.core.typeinfo import lookup_type, member_of, sized, strtoull, type_name_args
from pmdb.commands.registry import DcmdContext, Failure, dcmd
from pmdb.debuginfo.ctypes import NBBY, ArrayType, BadTypeError, CType, resolve
from pmdb.errors import FaultError, UsageError
from pmdb.mdb.text import numtostr, symbolic

WORD = 8


@dcmd("list", usage="?type member [variable]")
def list_(ctx: DcmdContext) -> None:
    """walk list using member as link pointer"""
    args = list(ctx.args)
    if not ctx.has_addr or not args:
        raise UsageError("")
    ctype: str | None = None
    if isinstance(args[0], int):
        offset = args.pop(0)
        if offset % WORD:
            raise Failure("offset must fall on a word boundary")
    else:
        name, args = type_name_args(args)
        t = lookup_type(ctx, name)
        if not args or not isinstance(args[0], str):
            raise UsageError("")
        member = str(args.pop(0))
        m = member_of(ctx, t, member, name)
        if m.offset_bits % (WORD * NBBY):
            raise Failure(f"{member} is not a word-aligned member")
        offset, ctype = m.offset_bits // NBBY, name
    _variable(ctx, args)
    seen: set[int] = set()
    node = ctx.addr
    while True:
        ctx.emit(node, numtostr(node, ctx.session.radix), ctype)
        seen.add(node)
        try:
            node = int.from_bytes(ctx.program.read(node + offset, WORD), "little")
        except FaultError as e:
            raise Failure(f"failed to read next pointer from object {node:x}: {e}") from None
        if node == 0 or node in seen:
            return


@dcmd("array", usage=":[type count] [variable]")
def array(ctx: DcmdContext) -> None:
    """print each array element's address"""
    args = list(ctx.args)
    if not ctx.has_addr:
        raise UsageError("")
    ctype: str | None = None
    if len(args) >= 2:
        name, args = type_name_args(args)
        if len(args) == 0:  # an unquoted `struct x` with no count
            raise UsageError("")
        t = lookup_type(ctx, name, "look up")
        count_arg = args.pop(0)
        count = count_arg if isinstance(count_arg, int) else strtoull(ctx, count_arg)
        size, ctype = sized(ctx, t), name
    else:
        element, count, room = _symbol_array(ctx)
        size = sized(ctx, element)
        if size and room:
            count = min(count, room // size)  # debug information that claims more than the symbol holds
    _variable(ctx, args)
    addr = ctx.addr
    for _ in range(count):
        ctx.emit(addr, numtostr(addr, ctx.session.radix), ctype)
        addr += size


def _symbol_array(ctx: DcmdContext) -> tuple[CType, int, int]:
    """The element type and count of the array the symbol at the address is, and the symbol's size."""
    program = ctx.program
    sym = program.symbol_at(ctx.addr)
    t = None
    if sym is not None and sym.address == ctx.addr:
        try:
            t = program.symbol_type(sym)
            t = resolve(t, program.types) if t is not None else None
        except BadTypeError:
            t = None
    if sym is None or not isinstance(t, ArrayType) or t.count == 0:
        raise Failure(f"no symbol information for {symbolic(program, ctx.addr)}")
    return t.element, t.count, sym.size


def _variable(ctx: DcmdContext, rest: list[str | int]) -> None:
    """The optional variable that takes each value in later pipeline stages."""
    if len(rest) > 1 or (rest and not isinstance(rest[0], str)):
        raise UsageError("")
    if rest:
        _walk_variable(ctx, str(rest[0]))
