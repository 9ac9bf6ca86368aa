"""Session state of one mdb conversation: dot, radix, variables, current thread, last command."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pmdb.errors import CommandError
from pmdb.mdb import builtin_vars
from pmdb.mdb.variables import MAX_NAME, VariableTable, bad_identifier_char

if TYPE_CHECKING:
    from pmdb.commands.registry import Registry
    from pmdb.debuginfo.ctypes import TypeTable
    from pmdb.dumps import ThreadState
    from pmdb.program import Program


@dataclass
class Session:
    """Mutable state the language carries between statements (owned by the CLI or API caller).

    `variables` is mdb's variable table: built-ins (`.`, `0`, `thread`, ...), the target's
    exported values and registers, and the user's `>name` assignments. `types` holds the
    types defined with `::typedef`. `symdist` is `$s`'s symbol matching distance (0: smart)
    and `page_width` `$w`'s output width.
    """

    registry: Registry
    program: Program | None = None
    dot: int = 0
    radix: int = 16
    variables: VariableTable = field(init=False)
    thread: ThreadState | None = None
    last_format: dict[str, str] = field(default_factory=dict)
    increment: int = 0
    raddr: int = 0
    last_pipeline: tuple = ()
    _types: TypeTable | None = field(default=None, repr=False)
    symdist: int = 0
    page_width: int = 80
    autowrap: bool = False  # `::set -o autowrap`; the format engine forces it on per character
    run_text: Callable[[str, str], object] | None = None  # set by the evaluator: `$<` runs a file with it

    def __post_init__(self) -> None:
        if self.thread is None and self.program is not None:
            self.thread = self.program.crashed_thread
        self.variables = builtin_vars.install(self)

    @property
    def types(self) -> TypeTable:
        """The types defined with `::typedef` (made on first use: most sessions define none)."""
        if self._types is None:
            from pmdb.debuginfo.ctypes import TypeTable

            self._types = TypeTable()
        return self._types

    def variable(self, name: str) -> int | None:
        """The value of variable `name` (None when undefined): a built-in (`.` is dot, `thread`
        the current thread's id), a register of the current thread, or a `>name` assignment.
        """
        return self.variables[name] if name in self.variables else None

    def set_variable(self, name: str, value: int) -> None:
        """Assign a variable (`>name`), creating it; CommandError in mdb's words for a name mdb
        refuses or a read-only variable (`thread`).
        """
        if len(name) > MAX_NAME:
            raise CommandError(f"variable names may not exceed {MAX_NAME} characters")
        bad = bad_identifier_char(name)
        if bad is not None:
            raise CommandError(f"'{bad}' may not be used in a variable name")
        self.variables[name] = value
