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
    last_statement: str = ""
    increment: int = 0

    def __post_init__(self) -> None:
        if self.thread is None and self.program is not None:
            self.thread = self.program.crashed_thread

    def register(self, name: str) -> int | None:
        """The current thread's register `name` (frame 0), or None when there is none."""
        if self.thread is None or self.program is None:
            return None
        return self.program.arch.register_value(self.thread.registers, name)
