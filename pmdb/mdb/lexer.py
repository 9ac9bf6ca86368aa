"""mdb's lexer: tokens by longest match, in the states mdb's lexer has.

mdb lexes differently at the start of a command (expressions, verbs, dcmd names), inside a
format list (single characters and decimal counts), inside a dcmd's argument list (words
with quoted parts), inside `$[ ]` (expressions only) and after `!` (the rest of the line).
The state changes as the tokens themselves dictate, as in mdb; the parser only reads them.
"""

from __future__ import annotations

import enum
import re
import struct
from dataclasses import dataclass

from pmdb.errors import ParseError


class State(enum.Enum):
    """The lexer states."""

    INITIAL = "initial"
    EXPR = "expr"
    FMTLIST = "fmtlist"
    ARGLIST = "arglist"
    SHELLCMD = "shellcmd"


class Kind(enum.Enum):
    """Token kinds."""

    NUMBER = "number"  # value: int
    SYMBOL = "symbol"  # value: the name
    WORD = "word"  # a hex-looking word: a symbol if one has the name, else a number in the radix
    VARIABLE = "variable"  # value: the variable name
    DCMD = "dcmd"  # value: the dcmd name (`::` dropped); `$c`, `:x`, `$<` keep their prefix
    STRING = "string"  # value: the text, quotes and escapes resolved
    CHAR = "char"  # one format character
    VERB = "verb"  # `/`, `?`, `\`, `@`, `=`
    WRITE_VERB = "write verb"  # value: (verb, write/search character)
    ASSIGN = "assign"  # `>` or `>/c/`; value: the cast character or None
    DEREF = "deref"  # `*/c/` (target) or `%/c/` (object file); value: (kind, size)
    LEXPR = "$["
    REXPR = "]"
    OP = "operator"  # value: the operator or punctuation text
    TERM = "terminator"  # `;` or newline
    SHELL = "!"
    EOF = "end of input"


@dataclass(frozen=True)
class Token:
    """A token, with its text as typed (for `near "..."` in errors) and its line number."""

    kind: Kind
    text: str
    value: object
    line: int


_SYMBOL = r"[a-zA-Z_.][0-9a-zA-Z_.`]*"
_CMD_CHAR = r"[?%@A-Z\^_`a-z]"
_SIMPLE = r"[^ \t\n;!|\"'$]"
_CHR_SEQ = r"(?:[^'\n]|\\[^'\n]|\\')*"
_STR_SEQ = r'(?:[^"\\\n]|\\[^"\n]|\\")*'
_CASTS = {"c": 1, "1": 1, "s": 2, "2": 2, "i": 4, "4": 4, "l": 8, "8": 8}

# (pattern, action, states) in mdb's rule order; the longest match wins, ties go to the first rule.
_EXPR_STATES = (State.INITIAL, State.EXPR)
_CMD_STATES = (State.INITIAL, State.FMTLIST, State.ARGLIST)
_RULES: list[tuple[re.Pattern[str], str, tuple[State, ...]]] = [
    (re.compile(r"//[^\n]*\n"), "comment", _CMD_STATES),
    (re.compile(r"=="), "op", _EXPR_STATES),
    (re.compile(r"!="), "op", _EXPR_STATES),
    (re.compile(r"%%"), "op", _EXPR_STATES),
    (re.compile(r"!<"), "shell_input", _CMD_STATES),
    (re.compile(r"!"), "shell", _CMD_STATES),
    (re.compile(r"\|"), "pipe", (State.FMTLIST, State.ARGLIST)),
    (re.compile(r"::" + _SYMBOL), "dcmd", (State.INITIAL,)),
    (re.compile(r"\$<<|\$<|\$>|[$:]" + _CMD_CHAR), "dcmd", (State.INITIAL,)),
    (re.compile(r">/[a-zA-Z0-9]/"), "assign_cast", (State.INITIAL,)),
    (re.compile(r">"), "assign", (State.INITIAL,)),
    (re.compile(r"[/\\?][ \t]*[vwzWZlLM]"), "write_verb", (State.INITIAL,)),
    (re.compile(r"[/\\@?=]"), "verb", (State.INITIAL,)),
    (re.compile(r"'" + _CHR_SEQ + r"$", re.M), "char_unmatched", _EXPR_STATES),
    (re.compile(r"'" + _CHR_SEQ + r"'"), "char_constant", _EXPR_STATES),
    (re.compile(r'"' + _STR_SEQ + r"$", re.M), "string_unmatched", tuple(State)),
    (re.compile(r'"' + _STR_SEQ + r'"'), "string", tuple(State)),
    (re.compile(r"\$\["), "lexpr", (State.ARGLIST, State.FMTLIST)),
    (re.compile(_SIMPLE + r"*(?:'" + _CHR_SEQ + r"'|\"" + _STR_SEQ + r"\"|" + _SIMPLE + r"+)*"), "word_arg",
     (State.ARGLIST,)),
    (re.compile(r"[0-9]+"), "fmt_count", (State.FMTLIST,)),
    (re.compile(_SIMPLE), "fmt_char", (State.FMTLIST,)),
    (re.compile(r"[;!\n]"), "expr_unmatched", (State.EXPR,)),
    (re.compile(r"\]"), "rexpr", (State.EXPR,)),
    (re.compile(r"<(?:" + _SYMBOL + r"|[0-9])"), "variable", _EXPR_STATES),
    (re.compile(r"<<|>>"), "op", _EXPR_STATES),
    (re.compile(r"\*/[a-zA-Z0-9]/"), "deref_target", _EXPR_STATES),
    (re.compile(r"%/[a-zA-Z0-9]/"), "deref_object", _EXPR_STATES),
    (re.compile(r"0[iI][0-1][0-1_]*"), "binary", _EXPR_STATES),
    (re.compile(r"0[oO][0-7][0-7_]*"), "octal", _EXPR_STATES),
    (re.compile(r"0[tT][0-9][0-9_]*\.[0-9][0-9_]*"), "float", _EXPR_STATES),
    (re.compile(r"0[tT][0-9][0-9_]*"), "decimal", _EXPR_STATES),
    (re.compile(r"0[xX][0-9a-fA-F][0-9a-fA-F_]*"), "hex", _EXPR_STATES),
    (re.compile(r"[0-9a-fA-F][0-9a-fA-F_]*"), "radix_word", _EXPR_STATES),
    (re.compile(_SYMBOL), "symbol", _EXPR_STATES),
    (re.compile(r"[;\n]"), "term", tuple(State)),
    (re.compile(r"[ \t]+"), "blank", tuple(State)),
]
_SHELL_QUOTED = re.compile(r"[ \t]*(?:'(" + _CHR_SEQ + r")'|\"(" + _STR_SEQ + r")\")")
_SHELL_PLAIN = re.compile(r"[ \t]*([^;\n \t'\"][^;\n]*)")
_SHELL_UNMATCHED = re.compile(r"[ \t]*['\"]")


def number(digits: str, base: int) -> int:
    """mdb's strtonum: digits in `base`, `_` separators skipped after the first digit."""
    value = 0
    for i, ch in enumerate(digits):
        if ch == "_" and i:
            continue
        d = int(ch, 36) if ch.isalnum() else 99
        if d >= base:
            raise ParseError(f"digit '{ch}' is invalid in current base")
        value = value * base + d
        if value >= 1 << 64:
            raise ParseError("specified value exceeds maximum immediate value")
    return value


_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", '"': '"', "\\": "\\"}


def unescape(text: str) -> str:
    """C escape sequences (`\\n`, `\\t`, `\\033`...) to characters, as mdb's stresc2chr does."""
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch != "\\" or i + 1 == len(text):
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt in "01234567":
            m = re.match(r"[0-7]{1,3}", text[i + 1 :])
            assert m is not None
            out.append(chr(int(m.group(), 8) & 0xFF))
            i += 1 + len(m.group())
        else:
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
    return "".join(out)


def unquote(word: str) -> str:
    """Remove the quotes of quoted parts of an argument word (`a'b c'd` -> `ab cd`)."""
    out, quote = [], None
    for ch in word:
        if quote:
            if ch == quote:
                quote = None
            else:
                out.append(ch)
        elif ch in "'\"":
            quote = ch
        else:
            out.append(ch)
    return "".join(out)


class Lexer:
    """Produces tokens from mdb text; the state follows mdb's lexer."""

    def __init__(self, text: str, radix: int = 16) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.radix = radix
        self.state = State.INITIAL
        self._saved = State.INITIAL
        self.last = ""  # the text of the last token: what mdb's errors say they were "near"

    def error(self, message: str, near: bool = True) -> ParseError:
        """A lexing or parsing error at the current token (`near` it, as mdb's yyerror says)."""
        return ParseError(message, near=self.last if near else None, line=self.line)

    def next(self) -> Token:
        """The next token (EOF at the end), changing state as mdb's rules do."""
        while True:
            if self.pos >= len(self.text):
                self.last = ""
                return Token(Kind.EOF, "", None, self.line)
            if self.state is State.SHELLCMD:
                return self._shell_command()
            best, action = None, ""
            for pattern, act, states in _RULES:
                if self.state not in states:
                    continue
                m = pattern.match(self.text, self.pos)
                if m and m.end() > self.pos and (best is None or m.end() > best.end()):
                    best, action = m, act
            if best is None:
                best, action = re.compile(r".", re.S).match(self.text, self.pos), "char"
            assert best is not None
            self.pos = best.end()
            text = best.group()
            self.last = text
            tok = self._token(action, text)
            self.line += text.count("\n")
            if tok is not None:
                return tok

    def _token(self, action: str, text: str) -> Token | None:
        """Build the token for a matched rule (None for blanks), with its state change."""
        line = self.line
        if action == "blank":
            return None
        if action in ("comment", "term"):
            self.state = State.INITIAL
            return Token(Kind.TERM, text, "\n" if action == "comment" else text, line)
        if action == "op":
            return Token(Kind.OP, text, text, line)
        if action == "shell":
            self.state = State.SHELLCMD
            return Token(Kind.SHELL, text, text, line)
        if action == "shell_input":
            raise self.error("shell input escapes (!<) are not supported", near=False)
        if action == "pipe":
            self.state = State.INITIAL
            return Token(Kind.OP, text, text, line)
        if action == "dcmd":
            self.state = State.ARGLIST
            return Token(Kind.DCMD, text, text[2:] if text.startswith("::") else text, line)
        if action in ("assign", "assign_cast"):
            self.state = State.ARGLIST
            return Token(Kind.ASSIGN, text, text[2] if action == "assign_cast" else None, line)
        if action == "write_verb":
            self.state = State.ARGLIST
            return Token(Kind.WRITE_VERB, text, (text[0], text[-1]), line)
        if action == "verb":
            self.state = State.FMTLIST
            return Token(Kind.VERB, text, text, line)
        if action in ("char_unmatched", "string_unmatched", "expr_unmatched"):
            what = {"char_unmatched": "'", "string_unmatched": '"', "expr_unmatched": "$["}[action]
            raise self.error(f"syntax error: {what} unmatched")
        if action == "char_constant":
            return Token(Kind.NUMBER, text, self._char_constant(text[1:-1]), line)
        if action == "string":
            return Token(Kind.STRING, text, unescape(text[1:-1]), line)
        if action == "lexpr":
            self._saved, self.state = self.state, State.EXPR
            return Token(Kind.LEXPR, text, text, line)
        if action == "rexpr":
            self.state = self._saved
            return Token(Kind.REXPR, text, text, line)
        if action == "word_arg":
            return Token(Kind.STRING, text, unquote(text), line)
        if action == "fmt_count":
            return Token(Kind.NUMBER, text, number(text, 10), line)
        if action == "fmt_char":
            return Token(Kind.CHAR, text, text, line)
        if action == "variable":
            return Token(Kind.VARIABLE, text, text[1:], line)
        if action in ("deref_target", "deref_object"):
            if text[2] not in _CASTS:
                raise self.error(f"invalid cast -- {text}", near=False)
            return Token(Kind.DEREF, text, ("*" if action == "deref_target" else "%", _CASTS[text[2]]), line)
        if action in ("binary", "octal", "decimal", "hex"):
            base = {"binary": 2, "octal": 8, "decimal": 10, "hex": 16}[action]
            return Token(Kind.NUMBER, text, number(text[2:], base), line)
        if action == "float":
            return Token(Kind.NUMBER, text, _float_bits(text[2:]), line)
        if action == "radix_word":
            if text[0].isdigit():
                return Token(Kind.NUMBER, text, number(text, self.radix), line)
            return Token(Kind.WORD, text, text, line)
        if action == "symbol":
            return Token(Kind.SYMBOL, text, text, line)
        return Token(Kind.OP, text, text, line)

    def _char_constant(self, body: str) -> int:
        raw = unescape(body).encode("latin-1", "replace")
        if len(raw) > 8:
            raise self.error("character constant may not exceed 8 bytes", near=False)
        return int.from_bytes(raw, "big")  # the first character is the most significant byte

    def _shell_command(self) -> Token:
        """After `!`: a quoted command, or everything up to `;` or the end of the line."""
        line = self.line
        m = _SHELL_QUOTED.match(self.text, self.pos)
        if m:
            self.pos, self.state = m.end(), State.INITIAL
            command = m.group(1) if m.group(1) is not None else unescape(m.group(2))
            return Token(Kind.STRING, m.group(), command.replace("\\'", "'"), line)
        if _SHELL_UNMATCHED.match(self.text, self.pos):
            raise self.error("syntax error: quote unmatched")
        m = _SHELL_PLAIN.match(self.text, self.pos)
        self.state = State.INITIAL
        if not m:
            return Token(Kind.STRING, "", "", line)
        self.pos = m.end()
        self.last = m.group()
        return Token(Kind.STRING, m.group(), m.group(1), line)


def _float_bits(text: str) -> int:
    """`0t1.5`: the IEEE double's bits, computed digit by digit as mdb does."""
    whole, _, frac = text.partition(".")
    value = float(number(whole, 10))
    digits = [c for c in frac if c != "_"]
    for c in digits:
        value = value * 10 + int(c)
    for _ in digits:
        value /= 10
    return struct.unpack("<Q", struct.pack("<d", value))[0]
