"""What the debugger knows about itself: ::help, ::dcmds, ::walkers, ::formats (mdb_help.c).

A dcmd's help is its docstring: the first line is the summary, the rest the DESCRIPTION,
indented by two as mdb indents a help function's output; a line in capitals (OPTIONS,
EXAMPLES) starts a section at the margin, as mdb's help functions do.
"""

from __future__ import annotations

import re

from pmdb.commands.registry import PROGRAM_NAME, DcmdContext, DcmdSpec, Failure, dcmd
from pmdb.errors import UsageError

_OVERVIEW = """
Each debugger command in {prog} is structured as follows:

      [ address [, count]] verb [ arguments ... ]
             ^       ^      ^      ^
 the start --+       |      |      +-- arguments are strings which can be
 address can be an   |      |          quoted using "" or '' or
 expression          |      |          expressions enclosed in $[ ]
                     |      |
 the repeat count  --+      +--------- the verb is a name which begins
 is also an expression                 with either $, :, or ::.  it can also
                                       be a format specifier (/ \\ ? or =)

For information on debugger commands (dcmds) and walkers, type:

      ::help cmdname ... for more detailed information on a command
      ::dcmds        ... for a list of dcmds and their descriptions
      ::walkers      ... for a list of walkers and their descriptions
      ::formats      ... for a list of format characters for / \\ ? and =

For information on command-line options, type:

      $ {prog} -h      ... in your shell for a complete list of options

"""

# ::formats, as mdb's format table lists itself: character, description, size in bytes
# (0: variable, None: the character does not move dot).
FORMATS: tuple[tuple[str, str, int | None], ...] = (
    ("+", "increment dot by the count", 0), ("-", "decrement dot by the count", 0),
    ("B", "hexadecimal int", 1), ("C", "character using C character notation", 1),
    ("D", "decimal signed int", 4), ("E", "decimal unsigned long long", 8), ("F", "double", 8),
    ("G", "octal unsigned long long", 8), ("H", "swap bytes and shorts", 4),
    ("I", "address and disassembled instruction", 0), ("J", "hexadecimal long long", 8),
    ("K", "hexadecimal uintptr_t", 8), ("L", "match int", 4), ("M", "match long long", 8),
    ("N", "newline", None), ("O", "octal unsigned int", 4), ("P", "symbol", 8), ("Q", "octal signed int", 4),
    ("R", "binary unsigned long long", 8), ("S", "string using C string notation", 0),
    ("T", "horizontal tab", None), ("U", "decimal unsigned int", 4), ("V", "decimal unsigned int", 1),
    ("W", "write default radix unsigned int", 4), ("X", "hexadecimal int", 4), ("Y", "decoded time32_t", 4),
    ("Z", "write hexadecimal long long", 8), ("^", "decrement dot by increment * count", 0),
    ("a", "dot as symbol+offset", None), ("b", "octal unsigned int", 1), ("c", "character", 1),
    ("d", "decimal signed short", 2), ("e", "decimal signed long long", 8), ("f", "float", 4),
    ("g", "octal signed long long", 8), ("h", "swap bytes", 2), ("i", "disassembled instruction", 0),
    ("j", "jazzed-up binary unsigned long long", 8), ("l", "match short", 2), ("n", "newline", None),
    ("o", "octal unsigned short", 2), ("p", "symbol", 8), ("q", "octal signed short", 2), ("r", "whitespace", None),
    ("s", "raw string", 0), ("t", "horizontal tab", None), ("u", "decimal unsigned short", 2),
    ("v", "write decimal signed int", 1), ("w", "write default radix unsigned short", 2),
    ("x", "hexadecimal short", 2), ("y", "decoded time64_t", 8), ("z", "write whose size is inferred by CTF info", 0),
)
_HEADING = re.compile(r"^[A-Z][A-Z ]*$")


@dcmd("help", usage="[cmd]", needs_target=False)
def help_(ctx: DcmdContext) -> None:
    """list commands/command help"""
    if ctx.has_addr or len(ctx.args) > 1:
        raise UsageError("")
    if not ctx.args:
        ctx.write(_OVERVIEW.format(prog=PROGRAM_NAME))
        return
    name = ctx.args[0]
    if not isinstance(name, str):
        raise UsageError("expected string argument")
    asked = name.removeprefix("::")
    spec = ctx.session.registry.dcmds.get(asked)
    if spec is None:
        raise Failure(f"unknown command: {name}")
    ctx.write(_page(spec, asked, "proc" if ctx.session.program is not None else "raw"))


def _page(spec: DcmdSpec, name: str, target: str) -> str:
    """mdb's help page for `name` (the dcmd or one of its aliases): NAME, SYNOPSIS, DESCRIPTION
    (when the docstring has more than its summary), ATTRIBUTES."""
    usage, addr = spec.usage, ""
    if usage[:1] == "?":
        usage, addr = usage[1:], "[ addr ] "
    elif usage[:1] == ":":
        usage, addr = usage[1:], "addr "
    shown = name if name.startswith(("$", ":")) else "::" + name
    text = f"\nNAME\n  {name} - {spec.summary}\n\nSYNOPSIS\n  {addr}{shown} {usage}\n\n"
    if spec.description:
        body = "".join(line + "\n" if _HEADING.match(line) else f"  {line}\n" for line in spec.description)
        text += f"DESCRIPTION\n{body}\n"
    return text + (f"ATTRIBUTES\n\n  Target: {target}\n  Module: {PROGRAM_NAME}\n"
                   "  Interface Stability: Evolving\n\n")


def _listing(ctx: DcmdContext, entries: dict[str, str]) -> None:
    """::dcmds and ::walkers: `name - summary` sorted by name, filtered by an extended regex."""
    if ctx.has_addr:
        raise UsageError("")
    opts, rest = ctx.options("n")
    if len(rest) > 1 or (rest and not isinstance(rest[0], str)):
        raise UsageError("")
    pattern = None
    if rest:
        try:
            pattern = re.compile(str(rest[0]))
        except re.error as e:
            raise Failure(str(e)) from None
    for name in sorted(entries):
        summary = entries[name]
        if not summary:
            continue
        if pattern is None or pattern.search(name) or (not opts.get("n") and pattern.search(summary)):
            ctx.write(f"{name:<24} - {summary}\n")


@dcmd("dcmds", usage="[[-n] pattern]", needs_target=False)
def dcmds(ctx: DcmdContext) -> None:
    """list available debugger commands

    List all of the dcmds that are currently available. If a pattern
    is provided then list only the commands that
    match the provided regular expression.
    Options:
        -n       Match only the name, not the description.
        pattern  RE to match against name/description.
    """
    _listing(ctx, {name: spec.summary for name, spec in ctx.session.registry.dcmds.items()})


@dcmd("walkers", usage="[[-n] pattern]", needs_target=False)
def walkers(ctx: DcmdContext) -> None:
    """list available walkers

    List all of the walkers that are currently available. If a
    pattern is provided then list only the walkers that
    match the provided regular expression.
    Options:
        -n       Match only the name, not the description.
        pattern  RE to match against name/description.
    """
    have_target = ctx.session.program is not None
    _listing(ctx, {name: spec.summary for name, spec in ctx.session.registry.walkers.items()
                   if have_target or not spec.needs_target})


@dcmd("formats", needs_target=False)
def formats(ctx: DcmdContext) -> None:
    """list format specifiers"""
    if ctx.has_addr or ctx.args:
        raise UsageError("")
    for ch, text, size in FORMATS:
        suffix = "" if size is None else " (variable size)" if size == 0 else " (1 byte)" if size == 1 \
            else f" ({size} bytes)"
        ctx.write(f"{ch} - {text}{suffix}\n")
