"""Lexing and parsing mdb statements into the syntax tree of pmdb.mdb.ast.

mdb's lexer is context-sensitive (a format or a dcmd's arguments are lexed differently from
an expression), so scanning and parsing share one cursor over the text.
"""

from __future__ import annotations

from pmdb.errors import ParseError
from pmdb.mdb.ast import (
    Arg,
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

# Binary operators from lowest to highest precedence, as mdb's grammar orders them.
_LEVELS: tuple[tuple[str, ...], ...] = (
    ("|",), ("^",), ("&",), ("==", "!="), ("<<", ">>"), ("+", "-"), ("*", "%%", "%", "#"),
)
_NAME_START = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_.")
_NAME_CHARS = _NAME_START | set("0123456789`")
_RADIX_PREFIX = {"x": 16, "t": 10, "o": 8, "i": 2}
_END_OF_ARGS = ";|!\n"


def parse(text: str, radix: int = 16) -> list[Statement]:
    """Every statement of `text` (separated by `;` or newlines); empty ones are dropped."""
    return _Parser(text, radix).statements()


class _Parser:
    def __init__(self, text: str, radix: int) -> None:
        self.text = text
        self.pos = 0
        self.radix = radix

    # Cursor helpers --------------------------------------------------------------

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def skip_blanks(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1

    def error(self, message: str) -> ParseError:
        return ParseError(message, (self.pos, self.pos + 1))

    def at_end_of_statement(self) -> bool:
        self.skip_blanks()
        return self.pos >= len(self.text) or self.text[self.pos] in ";\n"

    # Statements ------------------------------------------------------------------

    def statements(self) -> list[Statement]:
        out = []
        while True:
            self.skip_blanks()
            if self.pos >= len(self.text):
                return out
            if self.text[self.pos] in ";\n":
                self.pos += 1
                continue
            out.append(self.statement())

    def statement(self) -> Statement:
        start = self.pos
        addr = count = None
        if self._starts_expression():
            addr = self.expression()
        self.skip_blanks()
        if self.peek() == ",":
            self.pos += 1
            count = self.expression()
        command = self.command()
        pipeline: list[Dcmd] = []
        shell = None
        while True:
            self.skip_blanks()
            ch = self.peek()
            if ch == "|":
                self.pos += 1
                self.skip_blanks()
                stage = self.command()
                if not isinstance(stage, Dcmd):
                    raise self.error("syntax error near \"|\": a pipeline stage must be a dcmd")
                pipeline.append(stage)
            elif ch == "!":
                end = self.text.find("\n", self.pos)
                end = len(self.text) if end < 0 else end
                shell = self.text[self.pos + 1 : end].strip()
                self.pos = end
            else:
                break
        if not self.at_end_of_statement():
            raise self.error(f'syntax error near "{self.peek()}"')
        return Statement(addr, count, command, tuple(pipeline), shell, self.text[start : self.pos].strip())

    def _starts_expression(self) -> bool:
        self.skip_blanks()
        ch = self.peek()
        if not ch:
            return False
        if ch == "$":
            return self.peek(2) == "$["
        if ch == ":":
            return False
        return ch in _NAME_CHARS or ch in "(-~#*%<'"

    def command(self) -> Command | None:
        self.skip_blanks()
        two = self.peek(2)
        ch = self.peek()
        if two == "::":
            self.pos += 2
            name = self._name()
            if not name:
                raise self.error("syntax error near \"::\": missing dcmd name")
            return Dcmd(name, self._args())
        if ch == "$" and two != "$[":
            self.pos += 1
            if self.peek(2) == "<<":
                name = "$<<"
                self.pos += 2
            else:
                name = "$" + self.peek()
                self.pos += 1
            return Dcmd(name, self._args())
        if ch == ":" and two != "::":
            self.pos += 2
            return Dcmd(":" + two[1:], self._args())
        if ch in "/?=":
            self.pos += 1
            start = self.pos
            while self.pos < len(self.text) and self.text[self.pos] not in " \t;|!\n":
                self.pos += 1
            spec = self.text[start : self.pos]
            return Format(ch, spec, self._args() if ch != "=" else ())
        if ch == ">":
            self.pos += 1
            self.skip_blanks()
            name = self._name()
            if not name:
                raise self.error('syntax error near ">": missing variable name')
            return Assign(name)
        return None

    def _name(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in _NAME_CHARS:
            self.pos += 1
        return self.text[start : self.pos]

    def _args(self) -> tuple[Arg, ...]:
        args: list[Arg] = []
        while True:
            self.skip_blanks()
            ch = self.peek()
            if not ch or ch in _END_OF_ARGS:
                return tuple(args)
            if self.peek(2) == "$[":
                self.pos += 2
                expr = self.expression()
                self.skip_blanks()
                if self.peek() != "]":
                    raise self.error('syntax error: missing "]"')
                self.pos += 1
                args.append(ExprArg(expr))
            elif ch in "\"'":
                end = self.text.find(ch, self.pos + 1)
                if end < 0:
                    raise self.error("syntax error: unterminated string")
                args.append(self.text[self.pos + 1 : end])
                self.pos = end + 1
            else:
                start = self.pos
                while self.pos < len(self.text) and self.text[self.pos] not in " \t" + _END_OF_ARGS:
                    self.pos += 1
                args.append(self.text[start : self.pos])

    # Expressions -----------------------------------------------------------------

    def expression(self, level: int = 0) -> Expr:
        if level == len(_LEVELS):
            return self.unary()
        left = self.expression(level + 1)
        while True:
            self.skip_blanks()
            op = next((o for o in sorted(_LEVELS[level], key=len, reverse=True) if self.peek(len(o)) == o), None)
            if op is None or (op == "|" and self._starts_pipeline_stage()):
                return left
            self.pos += len(op)
            left = Binary(op, left, self.expression(level + 1))

    def _starts_pipeline_stage(self) -> bool:
        """`|` followed by `::` or `$x` starts a pipeline stage, not a bitwise or."""
        rest = self.text[self.pos + 1 :].lstrip(" \t")
        return rest.startswith("::") or (rest.startswith("$") and not rest.startswith("$["))

    def unary(self) -> Expr:
        self.skip_blanks()
        ch = self.peek()
        if ch in ("-", "~", "#", "*", "%"):
            self.pos += 1
            return Unary(ch, self.unary())
        return self.primary()

    def primary(self) -> Expr:
        self.skip_blanks()
        ch = self.peek()
        if ch == "(":
            self.pos += 1
            inner = self.expression()
            self.skip_blanks()
            if self.peek() != ")":
                raise self.error('syntax error: missing ")"')
            self.pos += 1
            return inner
        if ch == "<":
            self.pos += 1
            name = self._name()
            if not name:
                raise self.error('syntax error near "<"')
            return Variable(name)
        if ch == "'":
            end = self.text.find("'", self.pos + 1)
            if end < 0:
                raise self.error("syntax error: unterminated character constant")
            raw = self.text[self.pos + 1 : end].encode("latin-1", "replace")
            self.pos = end + 1
            return Number(int.from_bytes(raw[:8], "little"))
        if ch == "." and (self.pos + 1 >= len(self.text) or self.text[self.pos + 1] not in _NAME_CHARS):
            self.pos += 1
            return Dot()
        if ch and ch in _NAME_CHARS:
            return self._number_or_word()
        raise self.error(f'syntax error near "{ch}"' if ch else "syntax error: unexpected end of input")

    def _number_or_word(self) -> Expr:
        start = self.pos
        text = self._name()
        if not text[0].isdigit():
            return Word(text)
        radix, digits = self.radix, text
        if len(text) > 1 and text[0] == "0" and text[1].lower() in _RADIX_PREFIX:
            radix, digits = _RADIX_PREFIX[text[1].lower()], text[2:]
        try:
            if not digits or digits.startswith("_"):
                raise ValueError
            value = int(digits, radix)
        except ValueError:
            self.pos = start
            raise self.error(f'syntax error near "{text}": invalid number') from None
        if value >= 1 << 64:
            raise ParseError(f"integer overflow: {text}", (start, self.pos))
        return Number(value)


def parse_expression(text: str, radix: int = 16) -> Expr:
    """One expression (as a dcmd argument or an API caller gives it)."""
    p = _Parser(text, radix)
    expr = p.expression()
    if not p.at_end_of_statement():
        raise p.error(f'syntax error near "{p.peek()}"')
    return expr

