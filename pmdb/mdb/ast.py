"""The mdb language's syntax tree: expressions, command stages, statements (frozen dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Number:
    """An integer literal, already converted from its radix."""

    value: int


@dataclass(frozen=True)
class Word:
    """A name: a symbol, or (when no symbol has the name and it is all hex digits) a number."""

    text: str


@dataclass(frozen=True)
class Dot:
    """`.`: the current address."""


@dataclass(frozen=True)
class Variable:
    """`<name`: a variable or a register of the current thread."""

    name: str


@dataclass(frozen=True)
class Unary:
    """`-x`, `~x`, `#x` (logical not), `*x` (pointer at x), `%x` (pointer at x, object file)."""

    op: str
    operand: Expr


@dataclass(frozen=True)
class Binary:
    """`a op b` with mdb's operators (`%` divides, `%%` is modulus, `#` rounds up)."""

    op: str
    left: Expr
    right: Expr


Expr = Number | Word | Dot | Variable | Unary | Binary


@dataclass(frozen=True)
class ExprArg:
    """A dcmd argument written `$[expr]`: passed as an integer."""

    expr: Expr


Arg = str | ExprArg


@dataclass(frozen=True)
class Format:
    """`/fmt` (read memory), `?fmt` (read the object file), `=fmt` (format the value itself).

    `args` are the values after a write or search format (`/w 0`), which pmdb refuses or
    ignores but must parse.
    """

    verb: str
    spec: str
    args: tuple[Arg, ...] = ()


@dataclass(frozen=True)
class Dcmd:
    """`::name args` or `$x args`: a call of a registered dcmd."""

    name: str
    args: tuple[Arg, ...]


@dataclass(frozen=True)
class Assign:
    """`>name`: assign the address to a variable."""

    name: str


Command = Format | Dcmd | Assign


@dataclass(frozen=True)
class Statement:
    """`[addr][,count] command [| dcmd]... [! shell]`; `command` None sets dot only."""

    addr: Expr | None
    count: Expr | None
    command: Command | None
    pipeline: tuple[Dcmd, ...] = ()
    shell: str | None = None
    text: str = ""
