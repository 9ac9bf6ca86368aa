"""Session state of one mdb conversation: dot, radix, variables, current thread, last command."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pmdb.commands.registry import Registry
    from pmdb.dumps import ThreadState
    from pmdb.program import Program


@dataclass
class Session:
    """Mutable state the language carries between statements (owned by the CLI or API caller)."""

    registry: Registry
    program: Program | None = None
    dot: int = 0
    radix: int = 16
    variables: dict[str, int] = field(default_factory=dict)
    thread: ThreadState | None = None
    last_format: dict[str, str] = field(default_factory=dict)
    increment: int = 0
    raddr: int = 0
    last_pipeline: tuple = ()

    def __post_init__(self) -> None:
        if self.thread is None and self.program is not None:
            self.thread = self.program.crashed_thread

    def variable(self, name: str) -> int | None:
        """The value of variable `name` (None when undefined): dot (`.`), the current thread's id
        (`thread`), variables assigned with `>`, then the current thread's registers.
        """
        if name == ".":
            return self.dot
        if name in self.variables:
            return self.variables[name]
        if name == "thread" and self.thread is not None:
            return self.thread.tid
        return self.register(name)

    def set_variable(self, name: str, value: int) -> None:
        """Assign a variable (`>name`); dot and `thread` cannot be assigned."""
        from pmdb.errors import CommandError

        if name in (".", "thread") or not name or not (name[0].isalpha() or name[0] == "_"):
            raise CommandError(f"'{name}' is not a valid variable name" if name not in (".", "thread")
                               else f"variable {name} is read-only")
        self.variables[name] = value

    def register(self, name: str) -> int | None:
        """The current thread's register `name` (frame 0), or None when there is none."""
        if self.thread is None or self.program is None:
            return None
        return self.program.arch.register_value(self.thread.registers, name)
