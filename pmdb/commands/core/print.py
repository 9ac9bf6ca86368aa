"""::print (mdb_print.c's cmd_print): a typed object in memory, whole or member by member.

`addr::print [-aCdhinLpTtx] [-c lim] [-l lim] [-s depth] [type] [member ...]`. The type may
be left out when the address is a symbol with a type (`foo::print`) or when the value came
down a pipe that knew its type (`::walk thread | ::print`); an argument that is not a type is
then the first member. Members are C paths (`a.b`, `p->q`, `arr[3]`, a leading `->` or `.`
guessed from the type) or byte offsets given as `$[0x88]`. Piped onward, ::print passes
values instead of text: a pointer member's value, an integer's, or the address of anything
else (with `-a`, always the address).

Not done: `-h` (holes) and `-p` (physical addresses) are refused; a process has no
physical address space.
"""

from __future__ import annotations

from collections.abc import Callable

from pmdb.commands.core.typeinfo import (
    find_type,
    no_type_reason,
    session_types,
    strtoull,
    type_name_args,
    type_problems,
)
from pmdb.commands.core.typeprint import ANON, NO_LIMIT, Flags, PrintArgs, PrintFailed, TypePrinter, encoding
from pmdb.commands.registry import DcmdContext, Failure, dcmd
from pmdb.debuginfo.ctypes import (
    NBBY,
    ArrayType,
    BadTypeError,
    CType,
    EnumType,
    FloatType,
    IntType,
    PointerType,
    StructType,
    find_member,
    resolve,
    size_of,
    type_name,
)
from pmdb.debuginfo.typesystem import TypeSystem
from pmdb.errors import FaultError, FaultReason, UsageError
from pmdb.mdb.text import symbolic


@dcmd("print", usage="?[-aCdhiLptx] [-c lim] [-l lim] [type] [member|offset ...]")
def print_(ctx: DcmdContext) -> None:
    """print the contents of a data structure

    Print the object at the address as its C type: members one a line
    (`name = value`), nested structs in braces indented four blanks a
    level, integers in hex, pointers as symbols, char arrays as strings,
    enums by name. Without an address, print the type's layout.

    OPTIONS
      -a         show address of object
      -C         unlimit the length of character arrays
      -c limit   limit the length of character arrays
      -d         output values in decimal
      -i         interpret address as data of the given type
      -L         unlimit the length of standard arrays
      -l limit   limit the length of standard arrays
      -n         don't print pointers as symbol offsets
      -s depth   limit the recursion depth
      -T         show type and <<base type>> of object
      -t         show type of object
      -x         output values in hexadecimal

    type may be omitted if the C type of addr can be inferred.

    Members may be specified with standard C syntax using the
    array indexing operator "[index]", structure member
    operator ".", or structure pointer operator "->".

    Offsets must use the $[ expression ] syntax
    """
    opts, rest = ctx.options("aCc:dhiLl:nps:Ttx")
    if "h" in opts:
        raise Failure("::print -h (holes) is not supported")
    if "p" in opts and "i" in opts:
        raise Failure("-p and -i options are incompatible")
    if "p" in opts:
        raise Failure("-p: this target has no physical address space")
    immediate = "i" in opts
    types = session_types(ctx)
    t, members = _target_type(ctx, rest, immediate)
    flags = Flags(show_type="t" in opts or "T" in opts, show_base_type="T" in opts, show_addr="a" in opts,
                  show_val=ctx.has_addr, int_hex="x" in opts, int_dec="d" in opts and "x" not in opts,
                  no_symbolic="n" in opts)
    base = PrintArgs(0 if immediate or not ctx.has_addr else ctx.addr, flags,
                     maxdepth=_limit(ctx, opts.get("s"), NO_LIMIT),
                     armemlim=NO_LIMIT if "L" in opts else _limit(ctx, opts.get("l"), 32),
                     arstrlim=NO_LIMIT if "C" in opts else _limit(ctx, opts.get("c"), 1024))
    size = _size(t, types)
    read = _immediate_reader(ctx, size) if immediate else _reader(ctx)
    printer = TypePrinter(types, read, ctx.printf_context(), _string_reader(ctx, read))
    try:
        if members:
            for member in members:
                a = PrintArgs(base.addr, flags, maxdepth=base.maxdepth, armemlim=base.armemlim,
                              arstrlim=base.arstrlim)
                mtype, off, bits = _select(ctx, printer, a, t, member)
                _print_one(ctx, printer, a, mtype, off % NBBY, bits)
        else:
            _print_one(ctx, printer, base, t, 0, None)
    except PrintFailed as e:
        ctx.write(printer.text)
        raise Failure(str(e)) from None
    except Failure:
        ctx.write(printer.text)  # what the members before the bad one printed
        raise
    ctx.write(printer.text)
    ctx.session.dot = ctx.addr + size
    ctx.session.increment = 0


def _target_type(ctx: DcmdContext, args: list[str | int], immediate: bool) -> tuple[CType, list[str | int]]:
    """The type to print and the member arguments after it: a type named in the arguments, else
    the piped value's type, else the type of the symbol at the address."""
    if args and isinstance(args[0], str):
        if args[0][:1] in ("+", "-"):
            raise UsageError("")
        name, after = type_name_args(args)
        t = _type_if_named(ctx, name)
        if t is not None:
            return t, after
        inferred = None if immediate or not ctx.has_addr else _inferred_type(ctx)
        if inferred is None:
            raise Failure(f"failed to look up type {name}: {no_type_reason(ctx)}", *type_problems(ctx))
        return inferred, args
    if not ctx.has_addr or immediate:
        raise UsageError("")
    inferred = _inferred_type(ctx, report=True)
    assert inferred is not None
    return inferred, args


def _type_if_named(ctx: DcmdContext, name: str) -> CType | None:
    """The type `name` names, or None when it names none (or is no C: then it is a member path)."""
    try:
        return session_types(ctx).lookup(name)
    except BadTypeError as e:
        raise Failure(f"failed to look up type {name}: {e}") from None


def _inferred_type(ctx: DcmdContext, report: bool = False) -> CType | None:
    """The type of what is at the address: the piped value's type, or the type of the symbol that
    starts exactly there; with `report`, mdb's complaint instead of None."""
    if ctx.input_type is not None:
        found = find_type(ctx, ctx.input_type)
        if found is not None:
            return found
    program = ctx.program
    sym = program.symbol_at(ctx.addr)
    if sym is None or sym.address != ctx.addr:
        if report:
            raise Failure(f"no symbol information for {symbolic(program, ctx.addr)}")
        return None
    try:
        t = program.symbol_type(sym)
    except BadTypeError as e:
        raise Failure(f"no type data available for {symbolic(program, ctx.addr)}: {e}") from None
    if t is None and report:
        raise Failure(f"no type data available for {symbolic(program, ctx.addr)}", *type_problems(ctx))
    return t


def _print_one(ctx: DcmdContext, printer: TypePrinter, a: PrintArgs, t: CType, off: int, bits: int | None) -> None:
    """One object (or member): passed down the pipe, or printed."""
    if ctx.piped_out:
        _pipe(ctx, printer, a, t, off, bits)
    elif off:
        printer.print_element(a, t, off, bits)
    else:
        printer.print_object(a, t, 0, bits)


def _pipe(ctx: DcmdContext, printer: TypePrinter, a: PrintArgs, t: CType, off: int, bits: int | None) -> None:
    """pipe_print: a pointer's value, an integer's or enum's value, else the object's address."""
    addr = a.addr + off // NBBY
    base = printer.resolved(t)
    if a.flags.show_addr:
        ctx.emit(addr)
    elif isinstance(base, PointerType):
        value = int.from_bytes(printer.load(addr, 8, "pointer"), "little")
        ctx.emit(value, ctype=_nameable(base.target, printer.types))
    elif isinstance(base, IntType | EnumType):
        enc = encoding(base, bits)
        width = enc.bits if enc is not None else base.size * NBBY
        ctx.emit(printer.load_bits(a.addr, off, width))
    else:
        ctx.emit(addr, ctype=_nameable(t, printer.types))


def _nameable(t: CType, types: TypeSystem) -> str | None:
    """The type's name when a later pipeline stage can look it up again (not an anonymous one)."""
    try:
        name = type_name(t, types)
    except BadTypeError:
        return None
    return None if name.endswith(" ") or "(" in name else name


def _select(ctx: DcmdContext, printer: TypePrinter, a: PrintArgs, t: CType,
            member: str | int) -> tuple[CType, int, int | None]:
    """Move `a` to a member (a C path, or a byte offset) and return its type, its bit offset and its
    bit-field width; `a.prefix`/`a.suffix` name it as mdb names it in the output."""
    types = printer.types
    if isinstance(member, int):
        name, mtype, off, bits = _offset_to_name(t, member * NBBY, types)
        a.prefix = name
        a.addr += member - off // NBBY
        a.suffix = "" if not name else "."
        return mtype, off, bits
    mtype, off, bits, last_deref = _parse_member(ctx, printer, a, member, t)
    kind = _resolved(mtype, types)
    sou = isinstance(kind, StructType)
    if last_deref and sou:
        a.prefix, a.suffix = member[: member.rindex("[")], "->"
    else:
        a.prefix, a.suffix = member, "." if sou else ""
    return mtype, off, bits


def _parse_member(ctx: DcmdContext, printer: TypePrinter, a: PrintArgs, text: str,
                  t: CType) -> tuple[CType, int, int | None, bool]:
    """mdb's parse_member: follow `a.b`, `p->q` and `x[i]` from `t`, moving `a.addr` (reading
    pointers on the way); returns (member type, its bit offset, bit-field width, ends in [0] of
    a pointer)."""
    types = printer.types
    rid = _resolved(t, types)
    pos, off, bits = 0, 0, None
    last_deref = non_array = False
    delim, pos = _delimiter(text, pos)
    if delim == "?":
        delim = "->" if isinstance(rid, PointerType) else "."
    while delim:
        if delim == "->":
            if not isinstance(rid, PointerType):
                raise Failure(f"{_name(t, types, bits)} is not a pointer type")
            a.addr = _deref(printer, a.addr)
            t = rid.target
            rid, off, bits = _resolved(t, types), 0, None
        elif delim == ".":
            if not isinstance(rid, StructType):
                raise Failure(f"{_name(t, types, bits)} is not a struct or union type")
        elif delim == "[":
            end = text.find("]", pos)
            if end < 0:
                raise Failure("no trailing ']'")
            index = strtoull(ctx, text[pos:end])
            if isinstance(rid, PointerType):
                a.addr = _deref(printer, a.addr)
                t = rid.target
                last_deref = index == 0 and non_array
            elif isinstance(rid, ArrayType):
                if index >= rid.count:
                    ctx.warn(f"index {index:x} is outside of array bounds [0 .. {max(rid.count - 1, 0):x}]")
                t = rid.element
            else:
                raise Failure("cannot index into non-array, non-pointer type")
            rid = _resolved(t, types)
            size = _size(t, types)
            if size <= 0:
                raise Failure("cannot dereference void type")
            a.addr += index * size
            off, bits = 0, None
            delim, pos = _delimiter(text, end + 1)
            continue
        else:
            raise Failure(f"'{text[pos]}' is not a valid delimiter")
        last_deref, non_array = False, True
        end = pos + 1
        while end < len(text) and (text[end].isalnum() or text[end] == "_"):
            end += 1
        name = text[pos:end]
        try:
            m = find_member(rid, name, types)
        except BadTypeError as e:
            raise Failure(str(e)) from None
        if m is None:
            raise Failure(f"failed to find member {name} of {_name(t, types)}: no such member of structure or union")
        t, off, bits = m.type, m.offset_bits, m.bit_size
        rid = _resolved(t, types)
        a.addr += off // NBBY
        delim, pos = _delimiter(text, end)
    return t, off, bits, last_deref


def _delimiter(text: str, pos: int) -> tuple[str, int]:
    """parse_delimiter: ("" at the end, ".", "[", "->", or "?" for none), and where the rest starts."""
    if pos >= len(text):
        return "", pos
    if text[pos] in ".[":
        return text[pos], pos + 1
    if text.startswith("->", pos):
        return "->", pos + 2
    return "?" if pos == 0 else "!", pos


def _offset_to_name(t: CType, off: int, types: TypeSystem) -> tuple[str, CType, int, int | None]:
    """mdb_ctf_offset_to_name: the member path holding bit offset `off` of `t` (`<anon>.b`,
    `x[2]`), stopping at a union or a scalar; with the member's type, the offset left over in
    it, and its bit-field width."""
    if _size(t, types) * NBBY <= off:
        raise Failure(f"invalid offset {off // NBBY:x}")
    name, bits, dot = "", None, False
    while off:
        rid = _resolved(t, types)
        if isinstance(rid, ArrayType):
            esize = _size(rid.element, types) * NBBY
            if esize <= 0:
                raise Failure(f"invalid offset {off // NBBY:x}")
            name += f"[{off // esize}]"
            t, off = rid.element, off % esize
        elif isinstance(rid, StructType) and rid.keyword == "struct":
            if dot:
                name += "."
            for m in rid.members:
                width = m.bit_size if m.bit_size is not None else _size(m.type, types) * NBBY
                if m.offset_bits <= off < m.offset_bits + width:
                    name += m.name or ANON
                    t, off, bits = m.type, off - m.offset_bits, m.bit_size
                    break
            else:
                raise Failure(f"invalid offset {off // NBBY:x}")
        elif isinstance(rid, StructType | IntType | FloatType | PointerType | EnumType):
            break
        else:
            raise Failure(f"invalid offset {off // NBBY:x}")
        dot = True
    return name, t, off, bits


def _deref(printer: TypePrinter, addr: int) -> int:
    try:
        return int.from_bytes(printer.read(addr, 8), "little")
    except FaultError:
        raise Failure(f"could not dereference pointer {addr:x}") from None


def _resolved(t: CType, types: TypeSystem) -> CType:
    try:
        return resolve(t, types)
    except BadTypeError as e:
        raise Failure(str(e)) from None


def _size(t: CType, types: TypeSystem) -> int:
    try:
        return size_of(t, types)
    except BadTypeError as e:
        raise Failure(str(e)) from None


def _name(t: CType, types: TypeSystem, bits: int | None = None) -> str:
    """A type's name in an error; a bit-field's as ctfconvert names its integer (`unsigned int:3`)."""
    try:
        if bits is None:
            return type_name(t, types)
        base = resolve(t, types)
        return f"{base.tag or ''}:{bits}" if isinstance(base, EnumType) else f"{type_name(base, types)}:{bits}"
    except BadTypeError:
        return "(?)"


def _limit(ctx: DcmdContext, value: str | int | None, default: int) -> int:
    if value is None:
        return default
    return value if isinstance(value, int) else strtoull(ctx, value)


def _reader(ctx: DcmdContext) -> Callable[[int, int], bytes]:
    """Reads of the target's memory."""
    program = ctx.session.program

    def read(addr: int, size: int) -> bytes:
        """`size` bytes of the target at `addr` (FaultError without one)."""
        if program is None:
            raise FaultError(addr, FaultReason.UNMAPPED)
        return program.read(addr, size)

    return read


def _string_reader(ctx: DcmdContext, read: Callable[[int, int], bytes]) -> Callable[[int, int], bytes]:
    """Reads of up to n bytes (strings): as many as are readable."""
    program = ctx.session.program

    def read_string(addr: int, size: int) -> bytes:
        """As many of `size` bytes at `addr` as can be read."""
        if program is None:
            return read(addr, size)
        return program.read_available(addr, size)

    return read_string


def _immediate_reader(ctx: DcmdContext, size: int) -> Callable[[int, int], bytes]:
    """-i: the address itself is the object's bytes (the value target); reads beyond it go to
    the target, as after a dereference."""
    data = (ctx.addr & ((1 << 64) - 1)).to_bytes(8, "little")[:max(size, 0)] if size <= 8 else None
    target = _reader(ctx)

    def read(addr: int, n: int) -> bytes:
        """The immediate value's bytes, or the target's beyond them."""
        if data is not None and 0 <= addr and addr + n <= len(data):
            return data[addr:addr + n]
        return target(addr, n)

    return read
