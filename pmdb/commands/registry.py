"""The one command API: dcmds and walkers are decorated functions; a Registry collects them.

A dcmd receives a DcmdContext (address, count, arguments, program, session, output) and
writes its output through it; a walker is a generator of addresses. Help text is the
function's docstring: its first line is the summary (`::dcmds`, `::help`'s NAME), the rest
`::help`'s DESCRIPTION (lines in capitals start sections, as mdb's OPTIONS or EXAMPLES).
The usage line is given to the decorator in mdb's form: a leading `?` means "takes an
optional address", `:` "requires an address" (mdb_dcmd_usage, `::help`'s SYNOPSIS).

A dcmd fails by raising: UsageError (mdb's DCMD_USAGE: an optional message, then the usage
lines of `usage_lines`), CommandError (one `pmdb: message` line), or Failure (several lines,
or none when the dcmd has already said why on its output).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

from pmdb.commands.core.mprintf import PrintfContext, mdb_format
from pmdb.errors import CommandError, UsageError
from pmdb.mdb.text import numtostr

if TYPE_CHECKING:
    from pmdb.mdb.session import Session
    from pmdb.program import Program

_MARK = "__pmdb_command__"


PROGRAM_NAME = "pmdb"


class Quit(Exception):
    """Raised by $q: stop running statements and leave."""


class Failure(CommandError):
    """A dcmd failed (mdb's DCMD_ERR or DCMD_ABORT) with these stderr lines, each to be shown
    as `pmdb: line`; no lines when the dcmd already explained itself on stdout (::typedef).

    str() joins the lines so that printing `pmdb: {error}` shows every one of them.
    """

    def __init__(self, *messages: str) -> None:
        self.messages = messages
        super().__init__(f"\n{PROGRAM_NAME}: ".join(messages))


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

    @property
    def description(self) -> list[str]:
        """The help text after the summary line and the blank line that follows it."""
        lines = self.help.splitlines()[1:]
        while lines and not lines[0].strip():
            lines.pop(0)
        return lines


def usage_lines(spec: DcmdSpec) -> list[str]:
    """mdb_dcmd_usage: `Usage: [address]::name args`, then a pointer to ::help when there is one.

    `?` in front of the usage text becomes `[address]`, `:` becomes `address`; `::` joins it
    to a name that is not a `$x` or `:x` command (which take no `::`).
    """
    usage, prefix = spec.usage, ""
    plain = spec.name.startswith(("$", ":"))
    if usage[:1] == ":":
        prefix, usage = ("address" if plain else "address::"), usage[1:]
    elif usage[:1] == "?":
        prefix, usage = ("[address]" if plain else "[address]::"), usage[1:]
    lines = [f"Usage: {prefix}{spec.name} {usage}"]
    if spec.description:
        lines.append(f"{PROGRAM_NAME}: try '::help {spec.name}' for more information")
    return lines


@dataclass(frozen=True)
class WalkerSpec:
    """A registered walker: a generator of addresses, optionally starting at an address.

    `ctype` names the type of what the addresses point at (`kthread_t`), which travels with
    them down a pipeline so that `::walk thread | ::print` needs no type argument.
    """

    name: str
    func: Callable[[DcmdContext], Iterable[int]]
    needs_target: bool = True
    ctype: str | None = None

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


def walker(name: str, needs_target: bool = True, ctype: str | None = None) -> Callable:
    """Mark a generator function as the walker `name` (of objects of type `ctype`, if known)."""

    def mark(func: Callable) -> Callable:
        setattr(func, _MARK, WalkerSpec(name, func, needs_target, ctype))
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
    bound_variable: str | None = None
    column: int = 0
    input_type: str | None = None  # the type of the piped-in address, when the stage before knew it
    emitted_types: list[str | None] = field(default_factory=list)

    @property
    def line_open(self) -> bool:
        """Whether the output so far ends inside a line (mdb ends it after the dcmd: nl-flush)."""
        return self.column > 0

    @property
    def program(self) -> Program:
        """The target; dcmds that need one are only run when there is one."""
        prog = self.session.program
        if prog is None:
            raise CommandError("no target")
        return prog

    def write(self, text: str) -> None:
        """Write text to the dcmd's output."""
        if text:
            self.out.write(text)
            tail = text.rsplit("\n", 1)
            self.column = len(tail[-1]) if len(tail) > 1 else self.column + len(text)

    def printf(self, fmt: str, *args: int | str) -> None:
        """Write with mdb's printf dialect (`%r` in the session's radix, `%a` symbolic, ...)."""
        self.write(mdb_format(fmt, args, self.printf_context(), self.column))

    def printf_context(self) -> PrintfContext:
        """What mdb's printf needs from this session: radix, symbols, variables."""
        session = self.session

        def symbolize(addr: int) -> str | None:
            prog = session.program
            if prog is None:
                return None
            sym = prog.symbolize(addr)
            return str(sym) if sym.symbol is not None else None

        def variable(name: str) -> int | None:
            return session.variables[name] if name in session.variables else None

        return PrintfContext(session.radix, symbolize, variable)

    def warn(self, message: str) -> None:
        """A one-line warning (e.g. what is missing from a partial answer); the dcmd goes on."""
        self.out.warn(message)

    def emit(self, value: int, text: str | None = None, ctype: str | None = None) -> None:
        """Pass a value down the pipeline (with the type it points at, when known), or print it:
        `text`, else mdb's `%#lr` and a newline."""
        if self.piped_out:
            self.emitted.append(value)
            self.emitted_types.append(ctype)
        else:
            self.write((numtostr(value, self.session.radix, showbase=True) if text is None else text) + "\n")

    def bind(self, name: str) -> None:
        """Make `name` take, in each later pipeline stage, the value this dcmd emitted (`::walk w v`)."""
        self.bound_variable = name

    def evaluate(self, text: str) -> None:
        """Run mdb statements as mdb_eval does (::eval, ::map, ::grep): same session and output;
        the first error stops the rest of the text and fails this dcmd with the same message.
        """
        from pmdb.mdb.evaluator import Evaluator

        def stop(line: str) -> None:
            raise _NestedError(line)

        try:
            Evaluator(self.session, self.write, stop, self._relay_warning).run(text)
        except _NestedError as e:
            raise Failure(_unprefixed(str(e))) from None

    def _relay_warning(self, line: str) -> None:
        self.warn(line.removeprefix(f"{PROGRAM_NAME}: ").removeprefix("warning: "))

    def options(self, spec: str) -> tuple[dict[str, Any], list[str | int]]:
        """getopt-style parsing of `args`: `spec` like "vn:" (`n:` takes a value); rest returned."""
        return parse_options(self.args, spec)


class _NestedError(BaseException):
    """The first error of an evaluate() run, carried past the nested evaluator's own handlers."""


def _unprefixed(line: str) -> str:
    return line.removeprefix(f"{PROGRAM_NAME}: ")


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
    """Every dcmd and walker, by name; the only place that knows all of them.

    A command module is registered by name (`add_lazy`) and imported when one of its commands
    is first asked for; `dcmds` and `walkers` import every module (listings, completion).
    """

    def __init__(self) -> None:
        self._dcmds: dict[str, DcmdSpec] = {}
        self._walkers: dict[str, WalkerSpec] = {}
        self._lazy: dict[str, str] = {}  # dcmd or "walker:<name>" -> the module that defines it
        self._owners: dict[str, str] = {}  # the same, kept: a name two modules define is the first's

    def add_module(self, module: ModuleType) -> None:
        """Register every marked function of `module`."""
        me = getattr(module, "__name__", "")
        for obj in vars(module).values():
            spec = getattr(obj, _MARK, None)
            if isinstance(spec, DcmdSpec):
                for name in (spec.name, *spec.aliases):
                    if self._owners.get(name, me) == me:
                        self._dcmds[name] = spec
            elif isinstance(spec, WalkerSpec) and self._owners.get(f"walker:{spec.name}", me) == me:
                self._walkers[spec.name] = spec

    def add_lazy(self, module: str, dcmds: Iterable[str], walkers: Iterable[str] = ()) -> None:
        """Register `module`'s commands by name; the module is imported on first use."""
        for key in (*dcmds, *(f"walker:{name}" for name in walkers)):
            self._lazy.setdefault(key, module)
            self._owners.setdefault(key, module)

    def _load(self, key: str) -> None:
        module = self._lazy.get(key)
        if module is not None:
            for k in [k for k, m in self._lazy.items() if m == module]:
                del self._lazy[k]
            self.add_module(importlib.import_module(module))

    def _load_all(self) -> None:
        for module in dict.fromkeys(self._lazy.values()):
            self._load(next(k for k, m in self._lazy.items() if m == module))

    @property
    def dcmds(self) -> dict[str, DcmdSpec]:
        """Every dcmd by name and alias (imports every command module)."""
        self._load_all()
        return self._dcmds

    @property
    def walkers(self) -> dict[str, WalkerSpec]:
        """Every walker by name (imports every command module)."""
        self._load_all()
        return self._walkers

    def has_dcmd(self, name: str) -> bool:
        """Whether a dcmd is called `name`, without importing its module."""
        return name in self._dcmds or name in self._lazy

    def dcmd(self, name: str) -> DcmdSpec:
        """The dcmd called `name`, or CommandError in mdb's words."""
        if name not in self._dcmds:
            self._load(name)
        spec = self._dcmds.get(name)
        if spec is None:
            shown = name if name.startswith(("$", ":")) else "::" + name
            raise CommandError(f"invalid command '{shown}': unknown dcmd name")
        return spec

    def walker(self, name: str) -> WalkerSpec:
        """The walker called `name`, or CommandError in mdb's words (::walk's)."""
        if name not in self._walkers:
            self._load(f"walker:{name}")
        spec = self._walkers.get(name)
        if spec is None:
            raise CommandError("failed to perform walk: unknown walk name")
        return spec


def usage_message(spec: DcmdSpec, problem: str) -> str:
    """mdb's whole usage report, exactly as it goes to stderr, one line each: `pmdb: problem`
    (when the dcmd said what was wrong: `illegal option -- z`), then `usage_lines`.
    """
    return "\n".join(([f"{PROGRAM_NAME}: {problem}"] if problem else []) + usage_lines(spec))


def default_registry() -> Registry:
    """A registry of every command module pmdb ships (imported as their commands are used)."""
    from pmdb.commands.manifest import COMMAND_MODULES

    reg = Registry()
    for module, dcmds, walkers in COMMAND_MODULES:
        reg.add_lazy(module, dcmds, walkers)
    return reg
