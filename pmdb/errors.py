"""The one exception hierarchy of pmdb: every failure a user can see is a PmdbError."""

from __future__ import annotations

import enum


class PmdbError(Exception):
    """Base of every error pmdb reports to the user as a one-line message."""


class FaultReason(enum.Enum):
    """Why an address could not be read; each has mdb's wording."""

    UNMAPPED = "no mapping for address"
    NOT_IN_DUMP = "address is mapped but its contents are not in the dump"
    FILTERED = "page filtered out of dump"
    FILE_MISSING = "address is mapped from a file that was not found"


class FaultError(PmdbError):
    """A read of target memory failed at `address` for `reason`."""

    def __init__(self, address: int, reason: FaultReason, detail: str = "") -> None:
        self.address = address
        self.reason = reason
        self.detail = detail
        # an unmapped address is worded as mdb words it; `detail` (e.g. which page-table level
        # was empty) stays available to callers that want to say more
        shown = detail if detail and reason is not FaultReason.UNMAPPED else ""
        super().__init__(reason.value + (f": {shown}" if shown else ""))


class BadDumpError(PmdbError):
    """The dump (or a file it names) is malformed, truncated or not what it claims."""


class MissingDebugInfoError(PmdbError):
    """Debug information needed for an answer is absent."""


class SymbolNotFound(PmdbError):
    """A symbol name or address does not resolve."""


class TypeNotFound(PmdbError):
    """A type name does not resolve."""


class ParseError(PmdbError):
    """An error of the mdb language found while reading a statement.

    `near` is the text of the token it was found at (None when mdb names no token: bad
    numbers, bad casts); `line` is the input line, for mdb's `on line N of NAME`.
    """

    def __init__(self, message: str, near: str | None = None, line: int = 1) -> None:
        self.near = near
        self.line = line
        super().__init__(message)


class CommandError(PmdbError):
    """A dcmd failed; the message is printed after the dcmd's name."""


class UsageError(PmdbError):
    """A dcmd was called with arguments it does not accept."""
