"""Parsing mdb statements, one at a time, into the syntax tree of pmdb.mdb.ast.

mdb reads and runs one statement before it reads the next (an assignment in one statement
is visible to the next), so the parser is a cursor: `next_statement()` until None. The
operators and their precedence are mdb's grammar's; names of dcmds and variables are
checked as they are read, as mdb's lexer does, through the `known` callbacks.
"""

from __future__ import annotations

from collections.abc import Callable

from pmdb.errors import ParseError
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
from pmdb.mdb.lexer import Kind, Lexer, Token

# Binary operators from lowest to highest precedence, as mdb's grammar declares them.
_LEVELS: tuple[tuple[str, ...], ...] = (
    ("|",), ("^",), ("&",), ("==", "!="), ("<<", ">>"), ("+", "-"), ("*", "%", "#"), ("%%",),
)
_UNARY = ("-", "~", "#")


class Parser:
    """Reads statements from mdb text.

    `is_dcmd(name)` and `is_variable(name)` say whether a dcmd or variable exists, so that an
    unknown one is an error of the statement that names it, as in mdb.
    """

    def __init__(
        self,
        text: str,
        radix: int = 16,
        is_dcmd: Callable[[str], bool] = lambda name: True,
        is_variable: Callable[[str], bool] = lambda name: True,
    ) -> None:
        self.lexer = Lexer(text, radix)
        self.is_dcmd = is_dcmd
        self.is_variable = is_variable
        self._ahead: Token | None = None
        self._start = 0

    # Tokens ------------------------------------------------------------------------

    def peek(self) -> Token:
        if self._ahead is None:
            self._ahead = self.lexer.next()
            self._check(self._ahead)
        return self._ahead

    def take(self) -> Token:
        tok = self.peek()
        self._ahead = None
        return tok

    def _check(self, tok: Token) -> None:
        if tok.kind is Kind.DCMD and not self.is_dcmd(tok.value):
            raise ParseError(f"invalid command '{tok.text}': unknown dcmd name", line=tok.line)
        if tok.kind is Kind.VARIABLE and not self.is_variable(tok.value):
            raise self.lexer.error(f"variable '{tok.value}' is not defined")

    def at_op(self, *ops: str) -> bool:
        tok = self.peek()
        return tok.kind is Kind.OP and tok.value in ops

    def syntax_error(self) -> ParseError:
        self.peek()
        return self.lexer.error("syntax error")

    def skip_statement(self) -> None:
        """After an error: drop the rest of the input, as mdb does for a string or pipe."""
        self.lexer.pos = len(self.lexer.text)
        self._ahead = None

    # Statements --------------------------------------------------------------------

    def next_statement(self) -> Statement | None:
        """The next statement, or None at the end of the input."""
        start = self.lexer.pos if self._ahead is None else self.lexer.pos - len(self._ahead.text)
        tok = self.peek()
        if tok.kind is Kind.EOF:
            return None
        line = tok.line
        addr = count = None
        if tok.kind is Kind.SHELL:
            self.take()
            shell = self.take().value
            self._end_statement()
            return Statement(None, None, (), str(shell), self._text(start), line)
        if self._starts_expression(tok):
            addr = self.expression()
        if self.at_op(","):
            self.take()
            count = self.expression()
        pipeline = self._pipeline()
        shell = None
        if self.peek().kind is Kind.SHELL:
            self.take()
            shell = str(self.take().value)
        if addr is not None and count is None and not pipeline and shell is not None:
            raise self.syntax_error()
        self._end_statement()
        return Statement(addr, count, tuple(pipeline), shell, self._text(start), line)

    def _text(self, start: int) -> str:
        end = self.lexer.pos if self._ahead is None else self.lexer.pos - len(self._ahead.text)
        return self.lexer.text[start:end].strip(" \t;\n")

    def _end_statement(self) -> None:
        tok = self.peek()
        if tok.kind is Kind.TERM:
            self.take()
        elif tok.kind is not Kind.EOF:
            raise self.syntax_error()

    def _starts_expression(self, tok: Token) -> bool:
        if tok.kind in (Kind.NUMBER, Kind.WORD, Kind.SYMBOL, Kind.VARIABLE, Kind.DEREF):
            return True
        return tok.kind is Kind.OP and tok.value in ("(", "-", "~", "#", "*", "%", "+", "^", "&")

    def _pipeline(self) -> list[Command]:
        stages: list[Command] = []
        while True:
            cmd = self._command()
            if cmd is None:
                if stages:
                    raise self.syntax_error()
                return stages
            stages.append(cmd)
            if not self.at_op("|"):
                return stages
            self.take()

    def _command(self) -> Command | None:
        tok = self.peek()
        if tok.kind is Kind.VERB:
            self.take()
            return Format(str(tok.value), self._arguments(formats=True))
        if tok.kind is Kind.WRITE_VERB:
            self.take()
            verb, char = tok.value
            return Format(verb, (), char, self._arguments())
        if tok.kind is Kind.DCMD:
            self.take()
            return Dcmd(str(tok.value), self._arguments())
        if tok.kind is Kind.ASSIGN:
            self.take()
            return Assign(self._arguments(), tok.value)
        if tok.kind is Kind.OP and tok.value == "$":
            self.take()
            if not self.is_dcmd("$?"):
                raise ParseError("invalid command '$?': unknown dcmd name", line=tok.line)
            return Dcmd("$?")
        return None

    def _arguments(self, formats: bool = False) -> tuple[Arg, ...]:
        """A dcmd's arguments (strings and `$[expr]`) or a format list (also counts, characters)."""
        args: list[Arg] = []
        while True:
            tok = self.peek()
            if tok.kind is Kind.LEXPR:
                self.take()
                expr = self.expression()
                if self.peek().kind is not Kind.REXPR:
                    raise self.syntax_error()
                self.take()
                args.append(ExprArg(expr))
            elif formats and tok.kind is Kind.STRING:
                self.take()
                args.append(Quoted(str(tok.value)))  # type: ignore[arg-type]
            elif tok.kind is Kind.STRING or (formats and tok.kind in (Kind.CHAR, Kind.NUMBER)):
                self.take()
                args.append(tok.value)  # type: ignore[arg-type]
            else:
                return tuple(args)

    # Expressions -------------------------------------------------------------------

    def expression(self, level: int = 0) -> Expr:
        """An expression at precedence `level` or tighter (left-associative binaries)."""
        if level == len(_LEVELS):
            return self.unary()
        left = self.expression(level + 1)
        while self.at_op(*_LEVELS[level]):
            op = self.take().value
            right = self.expression(level + 1)
            left = Binary(str(op), left, right, self.peek().text)
        return left

    def unary(self) -> Expr:
        tok = self.peek()
        if tok.kind is Kind.DEREF:
            self.take()
            space, size = tok.value
            return Deref(space, size, self.unary())
        if tok.kind is Kind.OP and tok.value in ("*", "%"):
            self.take()
            return Deref(str(tok.value), 8, self.unary())
        if tok.kind is Kind.OP and tok.value in _UNARY:
            self.take()
            return Unary(str(tok.value), self.unary())
        return self.primary()

    def primary(self) -> Expr:
        tok = self.take()
        if tok.kind is Kind.NUMBER:
            return Number(int(tok.value))  # type: ignore[arg-type]
        if tok.kind is Kind.WORD:
            return Word(str(tok.value))
        if tok.kind is Kind.SYMBOL:
            return Dot() if tok.value == "." else Symbol(str(tok.value))
        if tok.kind is Kind.VARIABLE:
            return Variable(str(tok.value))
        if tok.kind is Kind.OP:
            if tok.value == "(":
                inner = self.expression()
                if not self.at_op(")"):
                    raise self.syntax_error()
                self.take()
                return inner
            if tok.value in ("+", "^"):
                return DotStep(str(tok.value))
            if tok.value == "&":
                return LastAddress()
        self._ahead = tok  # let the error name the token that could not start an expression
        raise self.lexer.error("syntax error") if tok.kind is not Kind.EOF else ParseError(
            "syntax error", near="", line=tok.line)


def parse(text: str, radix: int = 16) -> list[Statement]:
    """Every statement of `text` (no checking of dcmd or variable names)."""
    p = Parser(text, radix)
    out = []
    while (st := p.next_statement()) is not None:
        out.append(st)
    return out


def parse_expression(text: str, radix: int = 16) -> Expr:
    """One expression (as an API caller gives it)."""
    p = Parser(text, radix)
    expr = p.expression()
    if p.peek().kind not in (Kind.EOF, Kind.TERM):
        raise p.syntax_error()
    return expr
