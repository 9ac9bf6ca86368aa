"""Running mdb text: statements read one at a time and executed with mdb's control rules.

The rules are mdb's grammar's: `addr,count` loops with dot advancing by the increment, `|`
feeds each address a stage emits to the next stage, `!` pipes output through the shell, a
naked expression sets dot (or, at the prompt, repeats the last command there), an empty
line at the prompt repeats the last command at the next address. An error in reading or
evaluating an expression discards the rest of the input, as mdb does for a string, a pipe
or a terminal; a failing dcmd only fails its statement.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from pmdb.commands.registry import DcmdContext, Failure, Output, Quit, usage_message
from pmdb.errors import CommandError, FaultError, ParseError, PmdbError, SymbolNotFound, UsageError
from pmdb.mdb import formats
from pmdb.mdb.ast import (
    Arg,
    Assign,
    Binary,
    Command,
    Dcmd,
    Deref,
    Dot,
    DotStep,
    Expr,
    ExprArg,
    Format,
    LastAddress,
    Number,
    Quoted,
    Statement,
    Symbol,
    Unary,
    Variable,
    Word,
)
from pmdb.mdb.lexer import number
from pmdb.mdb.parser import Parser
from pmdb.mdb.session import Session

MASK = (1 << 64) - 1
Write = Callable[[str], object]


class ExpressionError(ParseError):
    """An expression could not be evaluated: like a syntax error, it ends the input."""


class _Reported(PmdbError):
    """A command failed and these are the stderr lines that say so (none: it said so itself)."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


@dataclass(frozen=True)
class _Piped:
    """A value going down a pipeline, with the walk variables bound to the values it came from
    and the type it points at, when the stage that emitted it knew."""

    value: int
    bindings: dict[str, int]
    ctype: str | None = None


class Evaluator:
    """Runs mdb text against a session, writing output and one-line errors.

    `input_name` is how mdb names the input in errors (`(string)` for -e, `(stdin)`), None
    at an interactive prompt, where errors carry no line number and an empty line or a
    naked address repeats the last command.
    """

    def __init__(
        self,
        session: Session,
        write: Write,
        error: Write,
        warn: Write | None = None,
        input_name: str | None = "(string)",
    ) -> None:
        self.session = session
        self.write = write
        self.error = error
        self.warn = warn or error
        self.input_name = input_name
        self.interactive = input_name is None
        self.failed = False  # whether any statement has failed (mdb -e's exit status)
        session.run_text = self._run_source

    def run(self, text: str) -> bool:
        """Run every statement of `text`; False when any failed (each failure prints one line).

        `$q` raises Quit, which the caller (CLI or REPL) takes as the end of the session.
        """
        s = self.session
        parser = Parser(text, s.radix, s.registry.has_dcmd, self._is_variable)
        ok = True
        while True:
            parser.lexer.radix = s.radix
            try:
                st = parser.next_statement()
                if st is None:
                    return ok
                ok = self.run_statement(st) and ok
            except ParseError as e:
                self.failed = True
                self.error(self._parse_message(e))
                parser.skip_statement()
                return False

    def _run_source(self, text: str, name: str) -> None:
        """Run a file's statements (`$<file`): its errors name the file and its lines."""
        saved, self.input_name, self.interactive = self.input_name, name, False
        try:
            self.run(text)
        finally:
            self.input_name = saved
            self.interactive = saved is None

    def _parse_message(self, e: ParseError) -> str:
        """mdb's wording: the message, `on line N of NAME` for non-interactive input, `near "tok"`."""
        text = f"pmdb: {e}"
        if e.near is not None:
            if self.input_name is not None:
                text += f" on line {e.line} of {self.input_name}"
            text += f' near "{_escape(e.near)}"'
        return text

    def _is_variable(self, name: str) -> bool:
        return self.session.variable(name) is not None

    # Statements ------------------------------------------------------------------

    def run_statement(self, st: Statement) -> bool:
        """Run one statement; errors are reported in mdb's words and make it return False.

        An expression that cannot be evaluated raises ExpressionError for run() to report.
        """
        s = self.session
        addr = self._value(st.addr) if st.addr is not None else None
        count = self._value(st.count) if st.count is not None else None
        try:
            if st.pipeline:
                self._statement(st.pipeline, st.shell, addr, count)
            elif st.shell is not None and addr is None and count is None:
                self._shell(st.shell, None)
            elif count is not None:  # `[addr],count`: the last command again, count times
                start = addr if addr is not None else s.dot + s.increment
                self._statement(s.last_pipeline, st.shell, start, count, repeat=True)
            elif addr is not None and not self.interactive:  # a naked expression sets dot
                s.dot, s.increment = addr, 0
            elif addr is not None:  # at the prompt it also repeats the last command there
                self._statement(s.last_pipeline, None, addr, None, repeat=True)
            elif self.interactive and s.last_pipeline:  # an empty line: the next address
                self._statement(s.last_pipeline, None, None, None, repeat=True, start=s.dot + s.increment)
            return True
        except (Quit, ExpressionError):
            raise
        except _Reported as e:
            for line in e.lines:  # none: the command explained itself on stdout (::typedef)
                self.error(line)
        except FaultError as e:
            self.error(f"pmdb: failed to read data from target: {e}")
        except PmdbError as e:
            self.error(f"pmdb: {e}")
        except Exception as e:  # a bug in pmdb: one line for the user, the traceback under PMDB_DEBUG
            if os.environ.get("PMDB_DEBUG"):
                raise
            self.error(f"pmdb: internal error in '{st.text}': {type(e).__name__}: {e}")
        self.failed = True
        return False

    def _statement(self, pipeline: tuple[Command, ...], shell: str | None, addr: int | None, count: int | None,
                   repeat: bool = False, start: int | None = None) -> None:
        s = self.session
        if not pipeline:
            return
        if not repeat:
            s.last_pipeline = pipeline
        has_addr = addr is not None
        dot = addr if addr is not None else (start if start is not None else s.dot)
        if shell is None:
            self._pipeline(pipeline, dot, has_addr, count, self.write)
            return
        chunks: list[str] = []
        try:
            self._pipeline(pipeline, dot, has_addr, count, chunks.append)
        finally:
            self._shell(shell, "".join(chunks))

    def _pipeline(self, stages: tuple[Command, ...], dot: int, has_addr: bool, count: int | None,
                  write: Write) -> None:
        """Run the stages; each value a stage emits carries the walk variables bound so far
        (`::walk w v | ...` sets v to the walked value before each later call)."""
        values = self._invoke(stages[0], dot, has_addr, count, write, piped_out=len(stages) > 1)
        for i, stage in enumerate(stages[1:], start=1):
            if not values:
                return
            values = self._invoke(stage, dot, True, None, write, piped_out=i < len(stages) - 1, inputs=values)

    def _invoke(self, cmd: Command, addr: int, has_addr: bool, count: int | None, write: Write,
                piped_out: bool, inputs: list[_Piped] | None = None) -> list[_Piped]:
        """Call one command: once per piped input, else at addr and count-1 more times, each at
        dot plus the increment. Returns what it emitted when its output is piped."""
        s = self.session
        s.raddr = addr
        if count == 0 and not inputs:  # mdb sets dot and the last address, then does nothing
            s.dot = addr
            return []
        if isinstance(cmd, Format):
            self._format(cmd, addr, count or 1, write, [p.value for p in inputs or ()])
            return []
        if isinstance(cmd, Assign):
            for p in inputs or [_Piped(addr, {})]:
                s.dot = p.value
                self._bind(p)
                self._assign(cmd, p.value)
            return []
        emitted: list[_Piped] = []
        column = 0
        calls = inputs or [_Piped(addr, {})]
        for p in calls:
            self._bind(p)
            ctx = self._call(cmd, p.value, has_addr or bool(inputs), count or 1, write, piped_out, column, p.ctype)
            emitted += self._outputs(ctx, p)
            column = ctx.column
        if not inputs:
            for _ in range(1, count or 1):
                s.dot = (s.dot + s.increment) & MASK
                ctx = self._call(cmd, s.dot, True, count or 1, write, piped_out, column)
                emitted += self._outputs(ctx, calls[0])
                column = ctx.column
        if column:  # mdb ends an unfinished line when the dcmd is done (nl-flush)
            write("\n")
        return emitted

    def _bind(self, p: _Piped) -> None:
        for name, value in p.bindings.items():
            self.session.set_variable(name, value)

    @staticmethod
    def _outputs(ctx: DcmdContext, source: _Piped) -> list[_Piped]:
        types = ctx.emitted_types + [None] * (len(ctx.emitted) - len(ctx.emitted_types))
        if ctx.bound_variable is None:
            return [_Piped(v, source.bindings, t) for v, t in zip(ctx.emitted, types, strict=True)]
        return [_Piped(v, {**source.bindings, ctx.bound_variable: v}, t)
                for v, t in zip(ctx.emitted, types, strict=True)]

    def _call(self, cmd: Dcmd, addr: int, has_addr: bool, count: int, write: Write, piped_out: bool,
              column: int, input_type: str | None = None) -> DcmdContext:
        """Call one dcmd once, at `addr` (which becomes dot); usage errors print mdb's usage lines."""
        s = self.session
        s.dot = addr
        spec = s.registry.dcmd(cmd.name)
        if spec.needs_target and s.program is None:
            raise CommandError(f"{_shown(cmd.name)}: no target")
        ctx = DcmdContext(s, addr, has_addr, count, self._args(cmd.args),
                          Output(write, lambda m: self.warn(f"pmdb: warning: {m}")), piped_out=piped_out,
                          column=column, input_type=input_type)
        try:
            spec.func(ctx)
        except UsageError as e:
            raise _Reported(usage_message(spec, str(e)).split("\n")) from None
        except Failure as e:
            raise _Reported([f"pmdb: {m}" for m in e.messages]) from None
        return ctx

    def _args(self, args: tuple[Arg, ...]) -> tuple[str | int, ...]:
        return tuple(self._value(a.expr) if isinstance(a, ExprArg) else a for a in args)

    def _format(self, cmd: Format, addr: int, count: int, write: Write, inputs: list[int]) -> None:
        """Run a format command (formats.run_format keeps dot and the increment as mdb does)."""
        if cmd.write is not None:
            raise CommandError(formats.refusal(cmd.write))
        items: list[formats.Item] = []
        for item in cmd.items:
            if isinstance(item, ExprArg):
                items.append(self._value(item.expr))
            elif isinstance(item, Quoted):
                items.append(formats.Text(item.text))
            else:
                items.append(item)
        run = formats.run_format(self.session, cmd.verb, items, addr, count, inputs)
        write(run.text)
        if run.errors:
            raise _Reported([f"pmdb: {m}" for m in run.errors])

    def _assign(self, cmd: Assign, value: int) -> None:
        """`>name`: dot into a variable; `>/c/name` keeps only the cast's low bytes."""
        args = self._args(cmd.args)
        if len(args) != 1 or not isinstance(args[0], str):
            raise CommandError("variable name expected after '>'")
        if cmd.cast is not None:
            size = {"c": 1, "1": 1, "s": 2, "2": 2, "i": 4, "4": 4, "l": 8, "8": 8}.get(cmd.cast)
            if size is None:
                raise CommandError(f"invalid cast -- >/{cmd.cast}/")
            value &= (1 << (8 * size)) - 1
        try:
            self.session.set_variable(args[0], value)
        except CommandError as e:
            if args[0] != "thread":
                raise
            self.warn(f"pmdb: {e}")  # mdb only warns about the read-only `thread`

    def _shell(self, command: str, text: str | None) -> None:
        """Run `sh -c command`, feeding it `text` (a statement's output) when piped."""
        try:
            done = subprocess.run(["/bin/sh", "-c", command], input=text or "", capture_output=True, text=True,
                                  timeout=300)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise CommandError(f"shell command failed: {e}") from None
        self.write(done.stdout)
        if done.stderr:
            self.warn(done.stderr.rstrip("\n"))

    # Expressions -----------------------------------------------------------------

    def value(self, expr: Expr) -> int:
        """The 64-bit value of an expression (ExpressionError when it has none)."""
        return self._value(expr)

    def _value(self, expr: Expr) -> int:
        try:
            return self._eval(expr) & MASK
        except ExpressionError:
            raise
        except (FaultError, SymbolNotFound, CommandError) as e:
            raise ExpressionError(str(e)) from None

    def _eval(self, e: Expr) -> int:
        s = self.session
        match e:
            case Number(value):
                return value
            case Dot():
                return s.dot
            case DotStep(op):
                return s.dot + s.increment if op == "+" else s.dot - s.increment
            case LastAddress():
                return s.raddr
            case Word(text):
                return self._word(text)
            case Symbol(name):
                return self._symbol(name)
            case Variable(name):
                value = s.variable(name)
                if value is None:
                    raise ExpressionError(f"variable '{name}' is not defined", near="<" + name)
                return value
            case Unary(op, operand):
                v = self._eval(operand) & MASK
                return -v if op == "-" else ~v if op == "~" else int(v == 0)
            case Deref(_space, size, operand):  # `%` (object file) reads the same image as `*` here
                return self._deref(self._eval(operand) & MASK, size)
            case Binary(op, left, right, near):
                return _binary(op, self._eval(left) & MASK, self._eval(right) & MASK, near)
        raise PmdbError(f"cannot evaluate {e!r}")

    def _word(self, text: str) -> int:
        """A hex-looking word is a symbol if the target has one of that name, else a number."""
        prog = self.session.program
        sym = prog.try_lookup(text) if prog is not None else None
        if sym is not None:
            return sym.address
        return number(text, self.session.radix)

    def _symbol(self, name: str) -> int:
        prog = self.session.program
        sym = prog.try_lookup(name) if prog is not None else None
        if sym is None:
            raise SymbolNotFound("failed to dereference symbol: unknown symbol name")
        return sym.address

    def _deref(self, addr: int, size: int) -> int:
        prog = self.session.program
        if prog is None:
            raise CommandError(f"failed to read from address {addr:x}: no target")
        try:
            return int.from_bytes(prog.read(addr, size), "little")
        except FaultError as e:
            raise CommandError(f"failed to read from address {addr:x}: {e}") from None


def _binary(op: str, a: int, b: int, near: str) -> int:
    """mdb's binary operators on 64-bit values: `%` and `#` divide signed, `%%` unsigned."""
    if op in ("%", "%%", "#") and b == 0:
        raise ExpressionError("attempted to divide by zero", near=near)
    sa, sb = _signed(a), _signed(b)
    match op:
        case "+":
            return a + b
        case "-":
            return a - b
        case "*":
            return a * b
        case "%":
            if sa == -(1 << 63) and sb == -1:
                raise ExpressionError("divide overflow", near=near)
            return _trunc_div(sa, sb)
        case "%%":
            return a % b
        case "#":
            return _trunc_div(_signed((a + b - 1) & MASK), sb) * b
        case "<<":
            return a << b if b < 64 else 0
        case ">>":
            return a >> b if b < 64 else 0
        case "==":
            return int(a == b)
        case "!=":
            return int(a != b)
        case "&":
            return a & b
        case "^":
            return a ^ b
        case "|":
            return a | b
    raise ExpressionError(f"unknown operator {op}")


def _signed(v: int) -> int:
    return v - (1 << 64) if v >> 63 else v


def _trunc_div(a: int, b: int) -> int:
    """C's division: the quotient truncated toward zero."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def _escape(text: str) -> str:
    """A token as mdb quotes it in errors: C escapes for unprintable characters."""
    specials = {"\0": "\\0", "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                "\v": "\\v", '"': '\\"', "\\": "\\\\"}
    return "".join(specials.get(c, c if " " <= c <= "~" else f"\\{ord(c) & 0xFF:03o}") for c in text)


def _shown(name: str) -> str:
    return name if name.startswith(("$", ":", ">")) else "::" + name

