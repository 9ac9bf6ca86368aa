"""The mdb language's syntax tree: expressions, commands, statements (frozen dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Number:
    """An integer literal (or a float literal's IEEE bits, or a character constant)."""

    value: int


@dataclass(frozen=True)
class Word:
    """A hex-looking name (`face`): the symbol of that name if there is one, else a number."""

    text: str


@dataclass(frozen=True)
class Symbol:
    """A symbol name, possibly scoped to an object (`libc.so.6`strlen`)."""

    name: str


@dataclass(frozen=True)
class Dot:
    """`.`: the current address."""


@dataclass(frozen=True)
class DotStep:
    """`+` (dot plus the increment) or `^` (dot minus the increment) used as a value."""

    op: str


@dataclass(frozen=True)
class LastAddress:
    """`&`: the most recent address a dcmd was called with."""


@dataclass(frozen=True)
class Variable:
    """`<name`: a variable (registers are variables too)."""

    name: str


@dataclass(frozen=True)
class Unary:
    """`-x`, `~x`, `#x` (logical not)."""

    op: str
    operand: Expr


@dataclass(frozen=True)
class Deref:
    """`*x` / `*/c/x` (target memory) or `%x` / `%/c/x` (object file): `size` bytes at x."""

    space: str
    size: int
    operand: Expr


@dataclass(frozen=True)
class Binary:
    """`a op b`; `near` is the token after b, which mdb names when the operation fails."""

    op: str
    left: Expr
    right: Expr
    near: str = ""


Expr = Number | Word | Symbol | Dot | DotStep | LastAddress | Variable | Unary | Deref | Binary


@dataclass(frozen=True)
class Quoted:
    """A `"..."` string in a format list: literal text printed between format characters."""

    text: str


@dataclass(frozen=True)
class ExprArg:
    """An argument written `$[expr]`: passed as an integer."""

    expr: Expr


Arg = str | int | ExprArg


@dataclass(frozen=True)
class Format:
    """`/fmt` (memory), `?fmt` (object file), `=fmt` (the value), `\\fmt`, `@fmt` (physical).

    `items` are the format list's tokens: counts (int or `$[expr]`), characters, strings.
    `write` is the write or search character of `/w`, `/v`, `/l`... (refused: pmdb never
    writes), with its values in `args`.
    """

    verb: str
    items: tuple[Arg | Quoted, ...] = ()
    write: str | None = None
    args: tuple[Arg, ...] = ()


@dataclass(frozen=True)
class Dcmd:
    """`::name args`, `$x args` or `:x args`: a call of a registered dcmd."""

    name: str
    args: tuple[Arg, ...] = ()


@dataclass(frozen=True)
class Assign:
    """`>name` (or `>/c/name`, keeping only c's size): assign dot to a variable."""

    args: tuple[Arg, ...]
    cast: str | None = None


Command = Format | Dcmd | Assign


@dataclass(frozen=True)
class Statement:
    """`[addr][,count] [command [| command]...] [! shell]`, in the forms mdb's grammar has.

    With no command: `addr` alone sets dot (a naked expression), `[addr],count` repeats the
    last command, `! cmd` alone runs a shell command, and nothing at all repeats the last
    command at the next address (interactively).
    """

    addr: Expr | None
    count: Expr | None
    pipeline: tuple[Command, ...]
    shell: str | None = None
    text: str = ""
    line: int = 1
