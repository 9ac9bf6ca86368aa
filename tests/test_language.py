"""The language's control rules with test-only commands: counts, pipes, repeats and prompts.

A walker emitting 1, 2, 3 and a dcmd recording each call make mdb's rules observable:
`addr,count::dcmd` calls (dot advancing by the increment), `walk | dcmd` once per address,
naked expressions and empty lines at the prompt repeating the last command.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from pmdb.commands import registry as reg
from pmdb.commands.registry import DcmdContext, Registry, dcmd, default_registry, walker
from pmdb.mdb.evaluator import Evaluator
from pmdb.mdb.session import Session


@walker("three", needs_target=False, ctype="struct three")
def three(ctx: DcmdContext) -> Iterator[int]:
    """1, 2, 3."""
    yield from (1, 2, 3)


@dcmd("rec", usage="[args]", needs_target=False)
def rec(ctx: DcmdContext) -> None:
    """Record the call: address, whether one was given, count, args; emit addr+0x10."""
    ctx.session.calls.append((ctx.addr, ctx.has_addr, ctx.count, ctx.args))
    ctx.session.types_seen.append(ctx.input_type)
    ctx.emit(ctx.addr + 0x10)


@dcmd("step", needs_target=False)
def step(ctx: DcmdContext) -> None:
    """Record the call and set the increment to 4, as a format reading 4 bytes would."""
    ctx.session.calls.append(ctx.addr)
    ctx.session.increment = 4


@pytest.fixture
def session() -> Session:
    registry: Registry = default_registry()
    registry.add_module(SimpleNamespace(three=three, rec=rec, step=step))  # type: ignore[arg-type]
    s = Session(registry)
    s.calls = []  # type: ignore[attr-defined]
    s.types_seen = []  # type: ignore[attr-defined]
    return s


def _run(session: Session, text: str, interactive: bool = False) -> tuple[str, list[str]]:
    out: list[str] = []
    errors: list[str] = []
    ev = Evaluator(session, out.append, errors.append, input_name=None if interactive else "(string)")
    ev.run(text)
    return "".join(out), errors


def test_dcmd_without_address_gets_dot(session: Session) -> None:
    session.dot = 0x40
    _run(session, "::rec a b")
    assert session.calls == [(0x40, False, 1, ("a", "b"))]


def test_address_and_count_loop_with_the_increment(session: Session) -> None:
    _run(session, "0x100,3::step")
    assert session.calls == [0x100, 0x104, 0x108]


def test_expression_arguments(session: Session) -> None:
    _run(session, "::rec $[1+2] x$[4]")  # a word ends at `$`: `x$[4]` is "x" then 4
    assert session.calls[0][3] == (3, "x", 4)


def test_pipe_calls_the_next_stage_once_per_address(session: Session) -> None:
    _run(session, "::walk three | ::rec")
    assert session.calls == [(1, True, 1, ()), (2, True, 1, ()), (3, True, 1, ())]


def test_three_stage_pipe(session: Session) -> None:
    _run(session, "::walk three | ::rec | ::rec")
    assert [c[0] for c in session.calls] == [1, 2, 3, 0x11, 0x12, 0x13]


def test_unpiped_walk_prints_addresses_as_mdb_does(session: Session) -> None:
    out, _ = _run(session, "::walk three")
    assert out == "1\n2\n3\n"


def test_walk_to_a_variable(session: Session) -> None:
    _run(session, "::walk three v")
    assert session.variable("v") == 0  # mdb defines it; only a pipeline's later stages see the values


def test_empty_line_at_the_prompt_repeats_at_the_next_address(session: Session) -> None:
    _run(session, "0x100::step\n", interactive=True)
    _run(session, "\n", interactive=True)
    _run(session, "\n", interactive=True)
    assert session.calls == [0x100, 0x104, 0x108]


def test_empty_line_in_a_string_does_nothing(session: Session) -> None:
    _run(session, "0x100::step\n\n\n")
    assert session.calls == [0x100]


def test_naked_expression_at_the_prompt_repeats_the_last_command_there(session: Session) -> None:
    _run(session, "0x100::step\n", interactive=True)
    _run(session, "0x200\n", interactive=True)
    assert session.calls == [0x100, 0x200]


def test_naked_expression_in_a_string_only_sets_dot(session: Session) -> None:
    _run(session, "0x100::step\n0x200\n")
    assert session.calls == [0x100]
    assert session.dot == 0x200


def test_prompt_errors_name_no_line(session: Session) -> None:
    _, errors = _run(session, "1 2=D\n", interactive=True)
    assert errors == ['pmdb: syntax error near "2"']


def test_registry_knows_dcmds_by_every_alias() -> None:
    registry = default_registry()
    assert registry.dcmd("$c") is registry.dcmd("stack")
    assert reg.usage_message(registry.dcmd("dis"), "").startswith("Usage: dis ")  # mdb_dcmd_usage: no `?`, no `::`


def test_source_a_file_of_statements(session: Session, tmp_path) -> None:
    script = tmp_path / "macro"
    script.write_text("0t5>five\n1 2=D\n")
    out, errors = _run(session, f"$<{script}\n<five=D")
    assert session.variable("five") == 5
    assert errors == [f'pmdb: syntax error on line 2 of {script} near "2"']
    assert out == " " * 16 + "5" + " " * 15 + "\n"  # the error ends the file, not the outer input


def test_source_a_missing_file(session: Session, tmp_path) -> None:
    _, errors = _run(session, f"$<{tmp_path}/nothing")
    assert errors == [f"pmdb: failed to open {tmp_path}/nothing: No such file or directory"]


def test_walk_variable_is_bound_in_later_stages(session: Session) -> None:
    out, errors = _run(session, "::walk three v | ::rec | ::eval '<v=D'")
    assert errors == []
    assert out == "".join(" " * 16 + f"{n:<16}\n" for n in (1, 2, 3))



def test_walked_values_carry_their_type_down_the_pipe(session: Session) -> None:
    _run(session, "::walk three | ::rec | ::rec")
    assert session.types_seen == ["struct three"] * 3 + [None] * 3  # ::rec emits untyped values
