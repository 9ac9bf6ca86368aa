"""::typedef: synthetic types, as mdb's mdb_typedef.c makes them.

`-c MODEL` creates a data model's base types and <stdint.h>-style typedefs, `-l` lists the
types made so far, `-d` deletes them all, `TYPE NAME` names an existing type, and a quoted
`struct [tag] { member; ... }` or `union {...}` definition makes a new one. Like mdb, the
command explains a bad definition on standard output and fails without a second message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pmdb.commands.core.typeinfo import session_types
from pmdb.commands.registry import DcmdContext, Failure, dcmd
from pmdb.debuginfo.ctypes import (
    DATA_MODELS,
    ArrayType,
    CType,
    StructRef,
    StructType,
    Typedef,
    TypeTable,
    layout,
    type_name,
)
from pmdb.debuginfo.typesystem import TypeSystem
from pmdb.errors import UsageError

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_BASES = {"0x": 16, "0X": 16, "0t": 10, "0T": 10, "0o": 8, "0O": 8, "0i": 2, "0I": 2}


class BadDefinition(Exception):
    """A definition ::typedef refuses; the message is what mdb prints on standard output."""


@dataclass(frozen=True)
class _MemberDecl:
    """One parsed member: `type **name[count]` (count None when it is not an array)."""

    type: str
    name: str
    pointers: int
    count: int | None


@dcmd("typedef", usage="[-c model | -d | -l | -r file ] [type] [name]", needs_target=False)
def typedef(ctx: DcmdContext) -> None:
    """create synthetic types

    Like C's typedef: give an existing type a new name, or define a struct or
    union and name it. The definition must be quoted, because `;` ends an mdb
    command. Members may be pointers (any number of `*`) and arrays; a last
    member of zero elements is a flexible array member. Members are laid out
    at their natural alignment. Types made here serve ::sizeof, ::offsetof and
    ::printf on any target.

    OPTIONS
      -c model   create the base types of a data model: LP64, or LP32 (ILP32),
                 and the <stdint.h> names (int8_t ... uintptr_t)
      -d         delete every type made with ::typedef
      -l         list the types made with ::typedef
      -r file    read type definitions from a file (not supported)

    EXAMPLES
      ::typedef -c LP64
      ::typedef unsigned long size_t
      ::typedef "struct list { struct list *next; void *data; }" list_t
      ::typedef "union { int i; char c[4]; }" word_t
    """
    if ctx.has_addr:
        raise UsageError("")
    opts, rest = ctx.options("dlc:r:")
    if len(opts) > 1 or (opts and rest):
        raise UsageError("")
    table = ctx.session.types
    if "d" in opts:
        table.clear()
    elif "c" in opts:
        _create_model(ctx, str(opts["c"]))
    elif "l" in opts:
        for t in table.types:
            name = type_name(t)
            if name not in ("struct ", "union "):
                ctx.write(name + "\n")
    elif "r" in opts:
        raise Failure("failed to create synthetics from file")
    else:
        _define(ctx, [str(a) for a in rest])


def _create_model(ctx: DcmdContext, model: str) -> None:
    canonical = DATA_MODELS.get(model.upper())
    if canonical is None:
        ctx.write(f"invalid data model: {model}\n")
        raise UsageError("")
    if not ctx.session.types.create_model(canonical):
        ctx.write("failed to create intrinsic types, maybe they already exist\n")
        raise Failure()


def _define(ctx: DcmdContext, args: list[str]) -> None:
    """`::typedef TYPE... NAME` or `::typedef "struct {...}" NAME`."""
    if len(args) < 2:
        raise UsageError("")
    table = ctx.session.types
    types = session_types(ctx)
    try:
        if len(args) == 2 and "{" in args[0]:
            _define_struct(ctx, table, types, args[0], args[1])
        else:
            _define_alias(table, types, args)
    except BadDefinition as e:
        ctx.write(f"{e}\n")
        raise Failure() from None


def _define_alias(table: TypeTable, types: TypeSystem, args: list[str]) -> None:
    """`::typedef TYPE NAME`: the type may be any the session knows, the target's included."""
    # several words are joined with a blank after each, as mdb joins them (hence `long  does not exist`)
    source = args[0] if len(args) == 2 else "".join(a + " " for a in args[:-1])
    name = args[-1]
    if types.lookup(name) is not None:
        raise BadDefinition(f"{name} already exists")
    target = types.lookup(source)
    if target is None:
        raise BadDefinition(f"{source} does not exist")
    table.add(Typedef(name, target))


def _define_struct(ctx: DcmdContext, table: TypeTable, types: TypeSystem, text: str, name: str) -> None:
    keyword, tag, decls = parse_definition(text, types)
    _validate(keyword, decls, name, types)
    placeholder: CType = StructRef(keyword, tag) if tag else StructType(keyword, None, (), 0)
    table.add(placeholder)
    fields: list[tuple[str, CType]] = []
    for decl in decls:
        ftype = _member_type(ctx, table, types, decl)
        if ftype is None:  # mdb deletes the struct and, oddly, reports success
            table.remove(placeholder)
            return
        fields.append((decl.name, ftype))
    real = layout(keyword, tag, fields, types)
    table.replace(placeholder, real)
    table.add(Typedef(name, real))


def _member_type(ctx: DcmdContext, table: TypeTable, types: TypeSystem, decl: _MemberDecl) -> CType | None:
    """The member's type, any the session knows (pointer and array types are added to the
    table as mdb adds them)."""
    t = types.lookup(decl.type)
    if t is None:
        ctx.write(f"failed to add member {decl.name}: type {decl.type} does not exist\n")
        return None
    for _ in range(decl.pointers):
        t = table.pointer_to(t)
    if decl.count is not None:
        if types.lookup("long") is None:
            ctx.write("failed to lookup the type 'long' for array indexes, are you running mdb without "
                      "a target or using ::typedef -c?")
            return None
        t = table.add(ArrayType(t, decl.count))
    return t


def parse_definition(text: str, types: TypeSystem) -> tuple[str, str | None, list[_MemberDecl]]:
    """`struct [tag] { type name; ... }` -> (keyword, tag, members); BadDefinition in mdb's words."""
    space = text.find(" ")
    if space < 0:
        raise BadDefinition("Invalid structure definition. Structure must start with either 'struct {' or 'union {'")
    keyword = text[:space]
    if keyword not in ("struct", "union"):
        raise BadDefinition(f"Invalid start of definition. Expected 'struct' or 'union'. Found: '{keyword}'")
    rest = text[space + 1 :].lstrip(" ")
    tag = None
    if not rest.startswith("{"):
        brace = rest.find("{")
        if brace < 0:
            raise BadDefinition(f"Missing opening brace for {text} definition. Expected '{{'. Found: '{rest[:1]}'")
        tag = rest[:brace].rstrip(" ")
        if not _IDENTIFIER.match(tag):
            raise BadDefinition(f"The name {tag} is not a valid C identifier.")
        if types.lookup(f"{keyword} {tag}") is not None:
            raise BadDefinition(f"type name {text[: text.index('{')].rstrip(' ')} already in use")
        rest = rest[brace:]
    body = rest[1:].lstrip(" ")
    if not body.endswith("}"):
        raise BadDefinition(f"Missing closing brace for {keyword} declaration. Expected '}}'.")
    return keyword, tag, _members(body[:-1])


def _members(body: str) -> list[_MemberDecl]:
    decls = []
    while True:
        semi = body.find(";")
        if semi < 0:
            raise BadDefinition("Cannot find semi-colon to delineate the end of a member.")
        decls.append(_member(body[:semi]))
        body = body[semi + 1 :].lstrip(" ")
        if not body:
            return decls


def _member(text: str) -> _MemberDecl:
    """`type **name[n]` (mdb splits at the last blank: the type before, the name after)."""
    space = text.rfind(" ")
    if space < 0:
        raise BadDefinition(f"Missing both a name and a type declaration for a member. Instead, found '{text}'")
    type_text, name = text[:space], text[space + 1 :]
    stripped = type_text.rstrip("* ")
    pointers = type_text[len(stripped):].count("*") + len(name) - len(name.lstrip("*"))
    name = name.lstrip("*")
    count = None
    if "[" in name:
        name, _, size = name.partition("[")
        if "]" not in size:
            raise BadDefinition(f"Found the beginning of an array size but no closing ']' in [{size}")
        count = _array_size(size.partition("]")[0])
    if not _IDENTIFIER.match(name):
        raise BadDefinition(f"The name {name} is not a valid C identifier.")
    return _MemberDecl(stripped, name, pointers, count)


def _array_size(text: str) -> int:
    """An array size: decimal, or with mdb's 0x/0t/0o/0i prefixes."""
    if text.startswith("-"):
        raise BadDefinition("Array lengths cannot be negative")
    base = _BASES.get(text[:2], 10)
    digits = text[2:] if text[:2] in _BASES else text
    if not digits:
        return 0
    try:
        return int(digits.replace("_", ""), base)
    except ValueError:
        raise BadDefinition(f"The array size {text} is not a number.") from None


def _validate(keyword: str, decls: list[_MemberDecl], name: str, types: TypeSystem) -> None:
    """mdb's typedef_validate: unique member names, flexible arrays last, a free typedef name."""
    seen: set[str] = set()
    for i, decl in enumerate(decls):
        if decl.name in seen:
            raise BadDefinition(f"duplicate name detected: {decl.name}")
        seen.add(decl.name)
        if decl.count == 0:
            if keyword != "struct":
                raise BadDefinition("Flexible array members are only valid in structs.")
            if i != len(decls) - 1:
                raise BadDefinition("Flexible array entries are only allowed to be the last entry in a struct")
            if i == 0:
                raise BadDefinition("Structs must have members aside from a flexible member")
    if types.lookup(name) is not None:
        raise BadDefinition(f"typedef name {name} already exists")
