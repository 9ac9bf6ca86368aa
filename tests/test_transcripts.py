"""Transcript tests: mdb statements in, exact stdout, stderr and exit status out.

Each file in tests/transcripts/ holds cases in this form (one file per area):

    === expr.add                      the case's name (unique across all files)
    target: seed                      optional: run against a fixture core (default: no target)
    1+2=D                             the input, one or more lines, as given to `pmdb -e`
    --- out                           expected stdout, each line ending in `$` so that
                    3               $ trailing blanks are visible and cannot be lost
    --- err                           expected stderr, same convention (omit when empty)
    --- status 0                      expected exit status (0 ran, 1 a statement failed)

Lines starting with `# ` (hash and blank) before a case's input are comments, so an input
line may start with `#` (mdb's logical not) as long as no blank follows it. Expected outputs are worked
out by hand from mdb's documentation and source semantics, never copied from pmdb's output.
Cases run in-process through the same batch runner as `pmdb -e`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import load_fixture

import pmdb
from pmdb.cli.main import run_batch
from pmdb.commands.registry import default_registry
from pmdb.mdb.session import Session

TRANSCRIPTS = Path(__file__).resolve().parent / "transcripts"


@dataclass(frozen=True)
class Case:
    """One transcript case."""

    name: str
    source: str
    target: str | None
    input: str
    out: str
    err: str
    status: int


def _lines(block: list[str], where: str) -> str:
    out = []
    for line in block:
        if not line.endswith("$"):
            raise ValueError(f"{where}: expected-output line without its closing '$': {line!r}")
        out.append(line[:-1] + "\n")
    return "".join(out)


def parse_transcript(path: Path) -> list[Case]:
    """The cases of one transcript file."""
    cases: list[Case] = []
    name = target = None
    sections: dict[str, list[str]] = {}
    current: list[str] = []
    status = 0

    def flush() -> None:
        if name is None:
            return
        where = f"{path.name}:{name}"
        cases.append(Case(name, path.name, target, "\n".join(sections.get("in", [])),
                          _lines(sections.get("out", []), where), _lines(sections.get("err", []), where), status))

    for raw in path.read_text().split("\n"):
        if raw.startswith("=== "):
            flush()
            name, target, status = raw[4:].strip(), None, 0
            sections = {"in": []}
            current = sections["in"]
        elif name is None or (raw.startswith("# ") and current is sections.get("in") and not current):
            continue
        elif raw.startswith("target: ") and current is sections["in"] and not current:
            target = raw[8:].strip()
        elif raw.startswith("--- status "):
            status = int(raw[11:])
        elif raw in ("--- out", "--- err"):
            current = sections.setdefault(raw[4:], [])
        elif raw == "" and current is not sections["in"]:
            continue
        else:
            current.append(raw)
    flush()
    return cases


def all_cases() -> list[Case]:
    """Every case of every transcript file, checked for unique names."""
    cases = [c for path in sorted(TRANSCRIPTS.glob("*.txt")) for c in parse_transcript(path)]
    names = [c.name for c in cases]
    dupes = {n for n in names if names.count(n) > 1}
    assert not dupes, f"duplicate transcript case names: {sorted(dupes)}"
    return cases


def run_case(case: Case) -> tuple[str, str, int]:
    """Run a case's input the way `pmdb [CORE] -e INPUT` would."""
    program = pmdb.open(load_fixture(case.target).core) if case.target else None
    session = Session(default_registry(), program)
    out, err = io.StringIO(), io.StringIO()
    status = run_batch(session, case.input, out, err)
    return out.getvalue(), err.getvalue(), status


@pytest.mark.parametrize("case", all_cases(), ids=lambda c: c.name)
def test_transcript(case: Case) -> None:
    assert run_case(case) == (case.out, case.err, case.status)
