"""The one command API: dcmds and walkers are decorated functions; a Registry collects them.

A dcmd receives a DcmdContext (address, count, arguments, program, session, output) and
writes its output through it; a walker is a generator of addresses. Help text is the
function's docstring; the usage line is given to the decorator.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

from pmdb.errors import CommandError, UsageError

if TYPE_CHECKING:
    from pmdb.mdb.session import Session
    from pmdb.program import Program

_MARK = "__pmdb_command__"


class Quit(Exception):
    """Raised by $q: stop running statements and leave."""


@dataclass(frozen=True)
class DcmdSpec:
    """A registered dcmd: its name(s), usage line, one-line summary, and function."""

    name: str
    func: Callable[[DcmdContext], None]
    usage: str = ""
    aliases: tuple[str, ...] = ()
    needs_target: bool = True

    @property
    def help(self) -> str:
        """The dcmd's description: its docstring."""
        return inspect.cleandoc(self.func.__doc__ or "")

    @property
    def summary(self) -> str:
        """First line of the help text."""
        return self.help.split("\n", 1)[0]


@dataclass(frozen=True)
class WalkerSpec:
    """A registered walker: a generator of addresses, optionally starting at an address."""

    name: str
    func: Callable[[DcmdContext], Iterable[int]]
    needs_target: bool = True

    @property
    def summary(self) -> str:
        """First line of the walker's docstring."""
        return inspect.cleandoc(self.func.__doc__ or "").split("\n", 1)[0]


def dcmd(name: str, usage: str = "", aliases: tuple[str, ...] = (), needs_target: bool = True) -> Callable:
    """Mark a function as the dcmd `name` (with `$x` style aliases)."""

    def mark(func: Callable) -> Callable:
        setattr(func, _MARK, DcmdSpec(name, func, usage, aliases, needs_target))
        return func

    return mark


def walker(name: str, needs_target: bool = True) -> Callable:
    """Mark a generator function as the walker `name`."""

    def mark(func: Callable) -> Callable:
        setattr(func, _MARK, WalkerSpec(name, func, needs_target))
        return func

    return mark


@dataclass
class Output:
    """Where a dcmd's text goes: `write` for its output, `warn` for one-line notes to stderr."""

    write: Callable[[str], Any]
    warn: Callable[[str], Any]


@dataclass
class DcmdContext:
    """Everything a dcmd call sees: mdb's addr/flags/argc/argv, plus the target and the session."""

    session: Session
    addr: int
    has_addr: bool
    count: int
    args: tuple[str | int, ...]
    out: Output
    piped_out: bool = False
    emitted: list[int] = field(default_factory=list)

    @property
    def program(self) -> Program:
        """The target; dcmds that need one are only run when there is one."""
        prog = self.session.program
        if prog is None:
            raise CommandError("no target")
        return prog

    def write(self, text: str) -> None:
        """Write text to the dcmd's output."""
        self.out.write(text)

    def warn(self, message: str) -> None:
        """A one-line warning (e.g. what is missing from a partial answer); the dcmd goes on."""
        self.out.warn(message)

    def emit(self, value: int) -> None:
        """Pass a value down the pipeline, or print it as an address when not piped."""
        if self.piped_out:
            self.emitted.append(value)
        else:
            self.out.write((f"{value:#x}" if value > 9 else str(value)) + "\n")

    def options(self, spec: str) -> tuple[dict[str, Any], list[str | int]]:
        """getopt-style parsing of `args`: `spec` like "vn:" (`n:` takes a value); rest returned."""
        return parse_options(self.args, spec)


def parse_options(args: Iterable[str | int], spec: str) -> tuple[dict[str, Any], list[str | int]]:
    """mdb's getopt: flags `-a`, grouped `-av`, values `-n 5` or `-n5`; stops at `--` or a non-option."""
    takes = {spec[i]: i + 1 < len(spec) and spec[i + 1] == ":" for i in range(len(spec)) if spec[i] != ":"}
    opts: dict[str, Any] = {}
    rest: list[str | int] = []
    it: Iterator[str | int] = iter(args)
    for arg in it:
        if not isinstance(arg, str) or not arg.startswith("-") or arg == "-":
            rest.append(arg)
            continue
        if arg == "--":
            rest.extend(it)
            break
        i = 1
        while i < len(arg):
            flag = arg[i]
            if flag not in takes:
                raise UsageError(f"illegal option -- {flag}")
            if takes[flag]:
                value = arg[i + 1 :] or next(it, None)
                if value is None:
                    raise UsageError(f"option requires an argument -- {flag}")
                opts[flag] = value
                break
            opts[flag] = True
            i += 1
    return opts, rest


class Registry:
    """Every dcmd and walker, by name; the only place that knows all of them."""

    def __init__(self) -> None:
        self.dcmds: dict[str, DcmdSpec] = {}
        self.walkers: dict[str, WalkerSpec] = {}

    def add_module(self, module: ModuleType) -> None:
        """Register every marked function of `module`."""
        for obj in vars(module).values():
            spec = getattr(obj, _MARK, None)
            if isinstance(spec, DcmdSpec):
                for name in (spec.name, *spec.aliases):
                    self.dcmds[name] = spec
            elif isinstance(spec, WalkerSpec):
                self.walkers[spec.name] = spec

    def dcmd(self, name: str) -> DcmdSpec:
        """The dcmd called `name`, or CommandError in mdb's words."""
        spec = self.dcmds.get(name)
        if spec is None:
            shown = name if name.startswith(("$", ":")) else "::" + name
            raise CommandError(f"invalid command '{shown}': unknown dcmd name")
        return spec

    def walker(self, name: str) -> WalkerSpec:
        """The walker called `name`, or CommandError."""
        spec = self.walkers.get(name)
        if spec is None:
            raise CommandError(f"failed to initialize walk: no walker named '{name}'")
        return spec


def usage_message(spec: DcmdSpec, problem: str) -> str:
    """mdb's usage report: the problem, `Usage: name usage`, and where to read more."""
    shown = spec.name if spec.name.startswith(("$", ":")) else "::" + spec.name
    lines = [f"{shown}: {problem}"] if problem else []
    lines.append(f"Usage: {shown} {spec.usage}".rstrip())
    lines.append(f"pmdb: try '::help {spec.name}' for more information")
    return "\n".join(lines)


def default_registry() -> Registry:
    """A registry holding every command module pmdb ships."""
    from pmdb.commands.core import builtins, dis, fpregs, nm, regs, stack, threads
    from pmdb.commands.userspace import mappings, status

    reg = Registry()
    for module in (builtins, dis, fpregs, nm, regs, stack, threads, mappings, status):
        reg.add_module(module)
    return reg
