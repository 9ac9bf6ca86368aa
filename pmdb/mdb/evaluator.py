"""Evaluating mdb statements: expressions to integers, then formats, dcmds, pipelines and shells.

The evaluator owns mdb's control rules (dot, counts, pipes, `!`); what each format character
and dcmd prints lives in pmdb.mdb.formats and pmdb.commands.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable

from pmdb.commands.registry import DcmdContext, Output, Quit
from pmdb.errors import CommandError, FaultError, ParseError, PmdbError, SymbolNotFound, UsageError
from pmdb.mdb import formats
from pmdb.mdb.ast import (
    Assign,
    Binary,
    Command,
    Dcmd,
    Dot,
    Expr,
    ExprArg,
    Format,
    Number,
    Statement,
    Unary,
    Variable,
    Word,
)
from pmdb.mdb.parser import parse
from pmdb.mdb.session import Session

MASK = (1 << 64) - 1
_HEX = set("0123456789abcdefABCDEF")


class Evaluator:
    """Runs mdb text against a session, writing output and one-line errors."""

    def __init__(
        self,
        session: Session,
        write: Callable[[str], object],
        error: Callable[[str], object],
        warn: Callable[[str], object] | None = None,
    ) -> None:
        """`error` takes a failed statement's line; `warn` a note that does not fail it."""
        self.session = session
        self.write = write
        self.error = error
        self.warn = warn or error

    def run(self, text: str) -> bool:
        """Run every statement of `text`; False when any failed (each failure prints one line).

        `$q` raises Quit, which the caller (CLI or REPL) takes as the end of the session.
        """
        try:
            statements = parse(text, self.session.radix)
        except ParseError as e:
            self.error(f"pmdb: {e}")
            return False
        ok = True
        for st in statements:
            ok = self.run_statement(st) and ok
        return ok

    def run_statement(self, st: Statement) -> bool:
        """Run one statement; errors are reported in mdb's words and make it return False."""
        try:
            self._execute(st)
            return True
        except FaultError as e:
            self.error(f"pmdb: failed to read data from target: {e}")
        except PmdbError as e:
            self.error(f"pmdb: {e}")
        except Quit:
            raise
        except Exception as e:  # a bug in pmdb: one line for the user, the traceback under PMDB_DEBUG
            if os.environ.get("PMDB_DEBUG"):
                raise
            self.error(f"pmdb: internal error in '{st.text}': {type(e).__name__}: {e}")
        return False

    # Statements ------------------------------------------------------------------

    def _execute(self, st: Statement) -> None:
        s = self.session
        has_addr = st.addr is not None
        if has_addr:
            s.dot = self.value(st.addr)
        count = self.value(st.count) if st.count is not None else 1
        cmd = st.command
        if st.shell is not None:
            chunks: list[str] = []
            self._dispatch(cmd, st.pipeline, has_addr, count, chunks.append)
            self._shell(st.shell, "".join(chunks))
        else:
            self._dispatch(cmd, st.pipeline, has_addr, count, self.write)

    def _dispatch(self, cmd: Command | None, pipeline: tuple[Dcmd, ...], has_addr: bool, count: int,
                  write: Callable[[str], object]) -> None:
        s = self.session
        if cmd is None:
            return
        if isinstance(cmd, Assign):
            s.variables[cmd.name] = s.dot
            return
        if isinstance(cmd, Format):
            if pipeline:
                raise CommandError("a format cannot be piped to a dcmd")
            run = formats.run_format(s, cmd.verb, cmd.spec, s.dot, count)
            write(run.text)
            s.increment = run.next_addr - s.dot
            if run.errors:
                for message in run.errors[:-1]:
                    self.error(f"pmdb: {message}")
                raise CommandError(run.errors[-1])
            return
        values = self._call(cmd, s.dot, has_addr, count, write, piped=bool(pipeline))
        for i, stage in enumerate(pipeline):
            last = i == len(pipeline) - 1
            nxt: list[int] = []
            for v in values:
                s.dot = v
                nxt += self._call(stage, v, True, 1, write, piped=not last)
            values = nxt

    def _call(self, cmd: Dcmd, addr: int, has_addr: bool, count: int, write: Callable[[str], object],
              piped: bool) -> list[int]:
        """Call one dcmd; return what it emitted when its output is piped."""
        s = self.session
        spec = s.registry.dcmd(cmd.name)
        if spec.needs_target and s.program is None:
            raise CommandError(f"{_shown(cmd.name)}: no target")
        args = tuple(self.value(a.expr) if isinstance(a, ExprArg) else a for a in cmd.args)
        ctx = DcmdContext(s, addr, has_addr, count, args,
                          Output(write, lambda m: self.warn(f"pmdb: warning: {m}")), piped_out=piped)
        try:
            spec.func(ctx)
        except UsageError as e:
            raise UsageError(f"{_shown(cmd.name)}: {e}\nUsage: {_shown(cmd.name)} {spec.usage}".rstrip()) from None
        return ctx.emitted

    def _shell(self, command: str, text: str) -> None:
        """Pipe `text` through `sh -c command`, as mdb's `!` does."""
        try:
            done = subprocess.run(["/bin/sh", "-c", command], input=text, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise CommandError(f"shell command failed: {e}") from None
        self.write(done.stdout)
        if done.stderr:
            self.error(done.stderr.rstrip("\n"))

    # Expressions -----------------------------------------------------------------

    def value(self, expr: Expr) -> int:
        """The 64-bit value of an expression."""
        return self._eval(expr) & MASK

    def _eval(self, e: Expr) -> int:
        if isinstance(e, Number):
            return e.value
        if isinstance(e, Dot):
            return self.session.dot
        if isinstance(e, Word):
            return self._word(e.text)
        if isinstance(e, Variable):
            return self._variable(e.name)
        if isinstance(e, Unary):
            return self._unary(e.op, self._eval(e.operand))
        if isinstance(e, Binary):
            return _binary(e.op, self._eval(e.left) & MASK, self._eval(e.right) & MASK)
        raise PmdbError(f"cannot evaluate {e!r}")

    def _word(self, text: str) -> int:
        prog = self.session.program
        if prog is not None:
            sym = prog.try_lookup(text)
            if sym is not None:
                return sym.address
        if set(text) <= _HEX and self.session.radix == 16:
            return int(text, 16)
        raise SymbolNotFound("failed to dereference symbol: unknown symbol name")

    def _variable(self, name: str) -> int:
        s = self.session
        if name in s.variables:
            return s.variables[name]
        if name == "thread" and s.thread is not None:
            return s.thread.tid
        reg = s.register(name)
        if reg is not None:
            return reg
        raise CommandError(f"variable '{name}' is not defined")

    def _unary(self, op: str, v: int) -> int:
        if op == "-":
            return -v
        if op == "~":
            return ~v
        if op == "#":
            return int(v & MASK == 0)
        prog = self.session.program
        if prog is None:
            raise CommandError("no target")
        try:
            return prog.read_u64(v & MASK)
        except FaultError as e:
            raise CommandError(f"failed to read from address {v & MASK:x}: {e}") from None


def _binary(op: str, a: int, b: int) -> int:
    """mdb's binary operators on unsigned 64-bit values."""
    if op in ("%", "%%", "#") and b == 0:
        raise CommandError("attempted to divide by zero")
    match op:
        case "+":
            return a + b
        case "-":
            return a - b
        case "*":
            return a * b
        case "%":
            return a // b
        case "%%":
            return a % b
        case "#":
            return -(-a // b) * b
        case "<<":
            return a << (b & 63)
        case ">>":
            return a >> (b & 63)
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
    raise CommandError(f"unknown operator {op}")


def _shown(name: str) -> str:
    return name if name.startswith(("$", ":")) else "::" + name
