"""C type names, parsed: `struct netstack *`, `netstack_t`, `uint64_t[4]`, `int (*)(void *)`,
`const char *`, `unsigned long`.

A type name is a base (a typedef name, `struct tag`, or base-type words such as `unsigned
long`), the qualifiers written with it, and the derivations C's declarator syntax applies to
it, innermost first: `int *[3]` is an array of 3 pointers to int, `int (*)[3]` a pointer to an
array of 3 ints. The parse knows nothing of which names exist; a TypeSystem looks the base up
and builds the derived types.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pmdb.errors import PmdbError

QUALIFIERS = frozenset({"const", "volatile", "restrict"})
_TAGS = frozenset({"struct", "union", "enum"})
# Words that together make one base type (`unsigned long int`, `long double`, `float complex`).
BASE_WORDS = frozenset({"signed", "unsigned", "short", "long", "int", "char", "float", "double", "_Bool",
                        "void", "complex", "imaginary", "_Complex", "_Imaginary", "__int128"})
_TOKEN = re.compile(r"\s*(?:([A-Za-z_][A-Za-z0-9_]*)|(0[xX][0-9a-fA-F]+|\d+)|(\.\.\.|[*()\[\],]))")
MAX_NESTING = 32


class CDeclError(PmdbError):
    """A type name that is not C (mdb's "Syntax error in type name")."""


@dataclass(frozen=True)
class Pointer:
    """A pointer to what is inside, itself qualified by `qualifiers` (`* const`)."""

    qualifiers: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Array:
    """`count` elements of what is inside (0: `[]`)."""

    count: int


@dataclass(frozen=True)
class Function:
    """A function returning what is inside, taking `params` (and `...` when variadic)."""

    params: tuple[TypeName, ...]
    variadic: bool = False


Derivation = Pointer | Array | Function


@dataclass(frozen=True)
class TypeName:
    """A parsed type name: the base's name, its qualifiers, and the derivations applied to it
    innermost first."""

    base: str
    qualifiers: frozenset[str] = frozenset()
    derivations: tuple[Derivation, ...] = ()


def parse_type_name(text: str) -> TypeName:
    """Parse a C type name; CDeclError when it is not one."""
    parser = _Parser(_tokens(text))
    result = parser.type_name(0)
    if parser.peek() is not None:
        raise CDeclError(f"unexpected '{parser.peek()}' in type name {text!r}")
    return result


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise CDeclError(f"unexpected character {text[pos:].lstrip()[:1]!r} in type name")
        out.append(m.group(m.lastindex or 0))
        pos = m.end()
    return out


class _Parser:
    """Recursive descent over a C type name's tokens."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self, ahead: int = 0) -> str | None:
        """The token `ahead` tokens on, or None past the end."""
        i = self.pos + ahead
        return self.tokens[i] if i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        """Consume the next token (which must be `expected`, when given)."""
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise CDeclError(f"expected {expected or 'more'} in type name, found {token or 'the end'}")
        self.pos += 1
        return token

    def type_name(self, depth: int) -> TypeName:
        """specifiers abstract-declarator."""
        if depth > MAX_NESTING:
            raise CDeclError("type name nests too deeply")
        base, quals = self.specifiers()
        return TypeName(base, quals, tuple(self.abstract(depth)))

    def specifiers(self) -> tuple[str, frozenset[str]]:
        """The base type's name (`struct tag`, base-type words, or one typedef name) and the
        qualifiers written around it."""
        quals: set[str] = set()
        words: list[str] = []
        while (token := self.peek()) is not None and _is_word(token):
            if token in QUALIFIERS:
                quals.add(self.take())
            elif token in _TAGS:
                if words:
                    break
                self.take()
                tag = self.take()
                if not _is_word(tag):
                    raise CDeclError(f"expected a tag after {token}")
                words = [token, tag]
            elif words and (words[0] in _TAGS or words[-1] not in BASE_WORDS or token not in BASE_WORDS):
                break
            else:
                words.append(self.take())
        if not words:
            raise CDeclError("a type name needs a type")
        return " ".join(words), frozenset(quals)

    def abstract(self, depth: int) -> list[Derivation]:
        """An abstract declarator's derivations, innermost first."""
        pointers: list[Derivation] = []
        while self.peek() == "*":
            self.take()
            quals = set()
            while self.peek() in QUALIFIERS:
                quals.add(self.take())
            pointers.append(Pointer(frozenset(quals)))
        inner: list[Derivation] = []
        if self.peek() == "(" and self.peek(1) in ("*", "(", "["):
            self.take("(")
            inner = self.abstract(depth + 1)
            self.take(")")
        suffixes: list[Derivation] = []
        while self.peek() in ("[", "("):
            suffixes.append(self.array() if self.peek() == "[" else self.function(depth))
        return pointers + suffixes[::-1] + inner

    def array(self) -> Array:
        """`[n]` or `[]`."""
        self.take("[")
        count = 0
        if self.peek() != "]":
            token = self.take()
            if not token[:1].isdigit():
                raise CDeclError(f"an array size must be a number, not {token}")
            count = int(token, 0)
        self.take("]")
        return Array(count)

    def function(self, depth: int) -> Function:
        """`(params)`: type names, maybe `...`; `(void)` is no parameters."""
        self.take("(")
        params: list[TypeName] = []
        variadic = False
        while self.peek() != ")":
            if self.peek() == "...":
                self.take()
                variadic = True
                break
            params.append(self.type_name(depth + 1))
            if self.peek() != ",":
                break
            self.take(",")
        self.take(")")
        if len(params) == 1 and params[0] == TypeName("void"):
            params = []
        return Function(tuple(params), variadic)


def _is_word(token: str) -> bool:
    return token[:1].isalpha() or token[:1] == "_"
