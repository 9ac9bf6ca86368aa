"""Types from DWARF against gdb on the `types` cores (DWARF 5 and DWARF 4): ::sizeof, ::offsetof,
::print of every global, ::list, ::array, and the typed-value API.

gdb's truth (truth.json: `types`, `globals`, `lists`) says what each type's layout and each
global's value is; pmdb's output is parsed back into values and compared, so the checks are
of meaning (the exact text mdb prints is pinned by tests/transcripts/types.txt).
"""

from __future__ import annotations

import io
import math
import re

import pytest
from conftest import Fixture, load_fixture

import pmdb
from pmdb.cli.main import run_batch
from pmdb.commands.registry import default_registry
from pmdb.mdb.session import Session
from pmdb.program import Program

CASES = ("types", "types_dwarf4")
_SCALAR_INT = re.compile(r"(-?)(0x[0-9a-f]+|0t[0-9]+|[0-9])$")


@pytest.fixture(params=CASES, scope="module")
def case(request: pytest.FixtureRequest) -> Fixture:
    return load_fixture(request.param)


@pytest.fixture(scope="module")
def prog(case: Fixture) -> Program:
    return pmdb.open(case.core)


def run(prog: Program, text: str) -> tuple[str, str, int]:
    """Statements through the batch runner, as `pmdb CORE -e TEXT` runs them."""
    out, err = io.StringIO(), io.StringIO()
    status = run_batch(Session(default_registry(), prog), text, out, err)
    return out.getvalue(), err.getvalue(), status


# ::sizeof and ::offsetof --------------------------------------------------------------------


def test_sizeof_every_type(prog: Program, case: Fixture) -> None:
    types = case.truth["types"]
    out, err, status = run(prog, "\n".join(f"::sizeof {name}" for name in types))
    assert (err, status) == ("", 0)
    got = {}
    for line in out.splitlines():
        m = re.fullmatch(r"sizeof \((.+)\) = (\S+)", line)
        assert m, line
        got[m.group(1)] = _number(m.group(2))
    assert got == {name: t["sizeof"] for name, t in types.items()}


def test_offsetof_every_member(prog: Program, case: Fixture) -> None:
    """Every member path gdb sees (anonymous members walked through): byte offset, `.bit` for a
    bit-field off a byte boundary, and the size mdb reports (a bit-field's integer's)."""
    checked = 0
    for name, t in case.truth["types"].items():
        for path, m in t["members"].items():
            if "." in path:
                continue  # ::offsetof takes one member name
            out, err, status = run(prog, f"::offsetof {name} {path}")
            assert (err, status) == ("", 0), (name, path)
            line = re.fullmatch(r"offsetof \((.+), (\w+)\) = (\S+?)(?:\.(\w+))?(?:, sizeof \(\.\.\.->\w+\) = (\S+))?\n",
                                out)
            assert line, out
            byte, bit = _number(line.group(3)), int(line.group(4) or "0", 16)
            assert byte * 8 + bit == m["bitpos"], (name, path)
            size = _number(line.group(5)) if line.group(5) else 0
            if m["bitsize"]:
                assert size == _ctf_int_size(m["bitsize"]), (name, path)
            else:
                assert size == m["size"], (name, path)
            checked += 1
    assert checked > 60


def _ctf_int_size(bits: int) -> int:
    size = 1
    while size * 8 < bits:
        size *= 2
    return size


def test_offsetof_through_pipe_and_errors(prog: Program) -> None:
    assert run(prog, "::offsetof struct anon count | ::eval .=D") == ("                16              \n", "", 0)
    assert run(prog, "::offsetof struct bits neg | ::eval .=E") == (
        "", "pmdb: member neg of type struct bits is not byte-aligned\n", 1)
    assert run(prog, "::offsetof struct bits nosuch")[1] == (
        "pmdb: failed to find member nosuch of type struct bits: no such member of structure or union\n")
    assert run(prog, "::sizeof struct nosuch")[1] == (
        "pmdb: failed to look up type struct nosuch: No type information available for that name\n")


# ::print against gdb's values ---------------------------------------------------------------


def test_print_every_global(prog: Program, case: Fixture) -> None:
    for name, g in case.truth["globals"].items():
        if g["value"]["kind"] == "function":
            continue
        out, err, status = run(prog, f"{name}::print")
        assert (err, status) == ("", 0), name
        value, rest = _parse_value(out.splitlines(), 0, out.splitlines()[0])
        assert rest == len(out.splitlines()), (name, out)
        _compare(prog, case, value, g["value"], name)


def test_print_members_and_offsets(prog: Program, case: Fixture) -> None:
    g = case.truth["globals"]
    out, _, status = run(prog, "g_shapes::print corners[1].y grid[1][2] origin->y cursor->x")
    assert status == 0
    assert out == "corners[1].y = 0x4\ngrid[1][2] = 0x6\norigin->y = 0xffffffec\ncursor->x = 0x3\n"
    count = [f for f in g["g_anon"]["value"]["fields"] if f[0] is None][1][1]["fields"][1][1]["value"]
    out, _, _ = run(prog, "g_anon::print $[0x10]")
    assert out == f"<anon>.count = {count & (2**64 - 1):#x}\n"


def test_print_pipes_values_on(prog: Program, case: Fixture) -> None:
    lists = case.truth["lists"]
    out, _, status = run(prog, "g_ring::print struct node next | ::print struct node value")
    assert (out, status) == ("value = 0x1\n", 0)
    out, _, _ = run(prog, "g_ring::print -a struct node next | ::eval .=J")
    assert int(out, 16) == lists["g_ring:next"][0] + 8


def test_list_and_array(prog: Program, case: Fixture) -> None:
    lists = case.truth["lists"]
    out, err, status = run(prog, "*g_list::list node_t next")
    assert (err, status) == ("", 0)
    assert [int(x, 16) for x in out.split()] == lists["g_list:next"]
    out, _, _ = run(prog, "g_ring::list struct node next")
    assert [int(x, 16) for x in out.split()] == lists["g_ring:next"]
    out, _, _ = run(prog, "*g_list::list node_t next | ::print node_t value")
    assert [int(line.split("= ")[1], 16) for line in out.splitlines()] == [100, 101, 102, 103]
    shapes = case.truth["globals"]["g_shapes"]["address"]
    out, _, _ = run(prog, "g_shapes::array point_t 3")
    assert [int(x, 16) for x in out.split()] == [shapes, shapes + 8, shapes + 16]
    out, _, _ = run(prog, "g_ring::array")
    assert [int(x, 16) for x in out.split()] == lists["g_ring:next"]


def test_whatis(prog: Program, case: Fixture) -> None:
    g = case.truth["globals"]
    out, _, status = run(prog, f"{g['g_anon']['address'] + 4:#x}::whatis")
    assert status == 0
    assert re.fullmatch(rf"{g['g_anon']['address'] + 4:x} is g_anon\+4, in \S+/prog \[[0-9a-f]+,[0-9a-f]+\)\n", out)
    out, _, _ = run(prog, "<rsp::whatis")
    assert re.fullmatch(rf"[0-9a-f]+ is in thread {case.truth['crashed_lwp']}'s stack\n", out)
    assert run(prog, "0::whatis") == ("0 is unknown\n", "", 0)


# The typed-value API ------------------------------------------------------------------------


def test_values_api(prog: Program, case: Fixture) -> None:
    g = case.truth["globals"]
    for name, info in g.items():
        v = prog[name]
        assert v.address_ == info["address"]
        if info["value"]["kind"] != "function":
            _compare_python(v.value_(), info["value"], name)
    head = prog["g_list"]
    assert head.deref_().address_ == case.truth["lists"]["g_list:next"][0]
    assert int(head.deref_().member_("next").deref_().member_("value")) == 101
    assert head.next.next.value.value_() == 102
    assert prog["g_shapes"].corners[2].y.value_() == 6
    assert int(prog["g_list"].cast_("unsigned long")) == case.truth["lists"]["g_list:next"][0]
    assert prog["g_ring"].cast_("struct node").value.value_() == 0
    with pytest.raises(KeyError):
        prog["no_such_global"]


# Helpers: mdb's ::print output parsed back into values ------------------------------------


def _number(text: str) -> int:
    m = _SCALAR_INT.match(text)
    assert m, text
    digits = m.group(2)
    value = int(digits[2:], 16) if digits.startswith("0x") else int(digits[2:] if digits.startswith("0t") else digits)
    return -value if m.group(1) else value


def _parse_value(lines: list[str], i: int, text: str) -> tuple[object, int]:
    """The value starting with `text` (the rest of line i, whose indentation ends a block
    opened on it): returns (value, index of the line after it)."""
    indent = len(lines[i]) - len(lines[i].lstrip())
    if text in ("{", "["):
        items: list = []
        i += 1
        while len(lines[i]) - len(lines[i].lstrip()) > indent:
            line = lines[i].strip()
            name, eq, rest = line.partition(" = ")
            value, i = _parse_value(lines, i, rest if text == "{" and eq else line.rstrip(","))
            items.append((name, value) if text == "{" else value)
        return ("struct" if text == "{" else "array", items), i + 1
    return ("scalar", text), i + 1


def _compare(prog: Program, case: Fixture, got: object, want: dict, where: str) -> None:
    kind, payload = got  # type: ignore[misc]
    if want["kind"] == "struct":
        assert kind == "struct", where
        assert [n for n, _ in payload] == [n or "<anon>" for n, _ in want["fields"]], where
        for (name, value), (_, wanted) in zip(payload, want["fields"], strict=True):
            _compare(prog, case, value, wanted, f"{where}.{name}")
        return
    if want["kind"] == "array":
        _compare_array(prog, case, got, want, where)
        return
    assert kind == "scalar", where
    text = payload
    if want["kind"] == "int":
        size = want["size"]
        if text.startswith("'"):
            assert _unescape(text[1:-1]) == want["value"] & 0xFF, where
        else:
            assert _number(text) & ((1 << (8 * size)) - 1) == want["value"] & ((1 << (8 * size)) - 1), where
    elif want["kind"] == "enum":  # a bit-field of an enum is an integer to mdb: no name
        number, _, name = text.partition(" (")
        assert _number(number) & 0xFFFFFFFF == want["value"] & 0xFFFFFFFF, where
        if want["text"].isidentifier() and name:
            assert name == want["text"] + ")", where
    elif want["kind"] == "float":
        assert math.isclose(float(text), want["value"], rel_tol=1e-7), where
    elif want["kind"] == "pointer":
        _compare_pointer(prog, text, want["value"], where)


def _compare_array(prog: Program, case: Fixture, got: object, want: dict, where: str) -> None:
    kind, payload = got  # type: ignore[misc]
    elements = want["elements"]
    if kind == "array":  # one element a line
        assert len(payload) == min(len(elements), 32), where
        for i, value in enumerate(payload):
            _compare(prog, case, value, elements[i], f"{where}[{i}]")
        return
    text = payload
    if text == "[ ... ]":
        return  # a flexible array member: mdb prints no elements
    if text.startswith('[ "'):
        chars = bytes(e["value"] & 0xFF for e in elements).split(b"\0", 1)[0]
        assert text == f'[ "{chars.decode()}" ]', where
        return
    assert text.startswith("[ ") and text.endswith(" ]"), where
    items = text[2:-2].split(", ")
    truncated = items[-1] == "..."
    items = items[:-1] if truncated else items
    assert truncated == (len(elements) > 32), where
    for i, item in enumerate(items):
        _compare(prog, case, ("scalar", item), elements[i], f"{where}[{i}]")


def _compare_pointer(prog: Program, text: str, want: int, where: str) -> None:
    head = text.split(" ", 1)[0]
    if head[:1].isdigit():
        assert _number(head) == want, where
        return
    name, _, off = head.partition("+")
    assert prog.lookup(name).address + (_number(off) if off else 0) == want, where


def _unescape(text: str) -> int:
    if not text.startswith("\\"):
        return ord(text)
    named = {"0": 0, "n": 10, "t": 9, "r": 13, "a": 7, "b": 8, "f": 12, "v": 11, "\\": 92, '"': 34}
    return named[text[1]] if len(text) == 2 else int(text[1:], 8)


def _compare_python(got: object, want: dict, where: str) -> None:
    kind = want["kind"]
    if kind == "struct":
        assert isinstance(got, dict), where
        for name, wanted in want["fields"]:
            if name is None:
                for inner, w in wanted["fields"]:
                    if inner is not None:
                        _compare_python(got[inner], w, f"{where}.{inner}")
            else:
                _compare_python(got[name], wanted, f"{where}.{name}")
    elif kind == "array":
        assert isinstance(got, list), where
        for i, (g, w) in enumerate(zip(got, want["elements"], strict=False)):
            _compare_python(g, w, f"{where}[{i}]")
    elif kind == "float":
        assert math.isclose(got, want["value"], rel_tol=1e-12), where  # type: ignore[arg-type]
    else:
        assert got == want["value"], where
