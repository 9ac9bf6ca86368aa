"""The panic as the kernel told it: its messages, found in the kernel log.

`panic()` prints `Kernel panic - not syncing: <reason>`. When the reason is an oops
(`Fatal exception`, from `oops_end()` with panic_on_oops), the message worth showing is
the first line of the oops report: the `BUG: ...` or `kernel BUG at ...` line just before
the die header (`Oops: 0000 [#1] ...`), or the header itself when it says it all
(`general protection fault, ...: 0000 [#1] ...`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pmdb.os.linux.printk import LogRecord

PANIC_PREFIX = "Kernel panic - not syncing: "
_DIE_HEADER = re.compile(r": [0-9a-f]{4} \[#\d+\]")
_REPORT_START = ("BUG: ", "kernel BUG at ", "Unable to handle ", "WARNING: ", "BUG ")
_REPORT_REACH = 12  # records before the die header that may start its report


@dataclass(frozen=True)
class PanicReport:
    """The panic's own line and the line that says what went wrong (the same for a plain panic)."""

    panic: str | None
    cause: str | None


def panic_report(records: Sequence[LogRecord]) -> PanicReport:
    """What the log says of the last panic (both None when it has no panic line)."""
    at = next((i for i in range(len(records) - 1, -1, -1) if records[i].text.startswith(PANIC_PREFIX)), None)
    if at is None:
        header = _last_die_header(records, len(records))
        return PanicReport(None, _cause(records, header) if header is not None else None)
    panic = records[at].text
    if not panic[len(PANIC_PREFIX):].startswith("Fatal exception"):
        return PanicReport(panic, panic)
    header = _last_die_header(records, at)
    return PanicReport(panic, _cause(records, header) if header is not None else panic)


def _last_die_header(records: Sequence[LogRecord], before: int) -> int | None:
    return next((i for i in range(before - 1, -1, -1) if _DIE_HEADER.search(records[i].text)), None)


def _cause(records: Sequence[LogRecord], header: int) -> str:
    """The report's first line: a BUG-style line shortly before the die header, else the header."""
    caller = records[header].caller_pid
    for i in range(header - 1, max(header - _REPORT_REACH, 0) - 1, -1):
        rec = records[i]
        if rec.caller_pid != caller:
            break
        if rec.text.startswith(_REPORT_START):
            return rec.text
    return records[header].text
