"""The built-in dcmds' side of the evaluator contract, called directly: usage errors and the
usage report's wording, ::typedef's stdout-then-silent failures, the open-line flag for
mdb's nl-flush, walk variables bound for a pipeline; and the printf engine and variable
table they are built on. Expected values are mdb's, worked out from its sources.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pmdb.commands.core.mprintf import PrintfContext, human_size, mdb_format
from pmdb.commands.registry import DcmdContext, Failure, Output, WalkerSpec, default_registry, usage_message
from pmdb.errors import CommandError, UsageError
from pmdb.mdb.session import Session
from pmdb.mdb.text import numtostr
from pmdb.mdb.variables import VariableTable, pjw_hash


@pytest.fixture
def session() -> Session:
    return Session(default_registry())


def call(session: Session, name: str, *args: str | int, addr: int | None = None,
         piped: bool = False) -> tuple[str, DcmdContext]:
    """Run dcmd `name` once as the evaluator would; return its output and context."""
    out: list[str] = []
    ctx = DcmdContext(session, session.dot if addr is None else addr, addr is not None, 1, args,
                      Output(out.append, out.append), piped_out=piped)
    session.registry.dcmd(name).func(ctx)
    return "".join(out), ctx


def typedef_fails(session: Session, *args: str) -> str:
    """Run ::typedef expecting mdb's DCMD_ERR after a message on stdout; return that output."""
    out: list[str] = []
    ctx = DcmdContext(session, 0, False, 1, args, Output(out.append, out.append))
    with pytest.raises(Failure) as info:
        session.registry.dcmd("typedef").func(ctx)
    assert info.value.messages == ()
    return "".join(out)


# Usage reports (mdb_dcmd_usage) -----------------------------------------------------------

@pytest.mark.parametrize(("name", "problem", "expected"), [
    ("walk", "", "Usage: [address]::walk name [variable]"),
    ("eval", "", "Usage: eval command"),
    ("vars", "illegal option -- z", "pmdb: illegal option -- z\nUsage: vars [-npt]"),
    ("$v", "", "Usage: $v "),
    ("formats", "", "Usage: formats "),
    ("printf", "expected a format string",
     "pmdb: expected a format string\nUsage: [address]::printf format type member ...\n"
     "pmdb: try '::help printf' for more information"),
    ("typedef", "", "Usage: typedef [-c model | -d | -l | -r file ] [type] [name]\n"
     "pmdb: try '::help typedef' for more information"),
])
def test_usage_message(session: Session, name: str, problem: str, expected: str) -> None:
    assert usage_message(session.registry.dcmd(name), problem) == expected


@pytest.mark.parametrize(("name", "args", "addr", "problem"), [
    ("walk", (), None, ""),
    ("walk", ("a", "b", "c"), None, ""),
    ("eval", (), None, ""),
    ("map", ("a", "b"), None, ""),
    ("echo", ("x",), 8, ""),
    ("vars", ("-z",), None, "illegal option -- z"),
    ("vars", ("x",), None, ""),
    ("$v", ("x",), None, ""),
    ("formats", ("x",), None, ""),
    ("help", ("a", "b"), None, ""),
    ("radix", ("x",), None, ""),
    ("sizeof", ("int",), 8, ""),
    ("sizeof", ("unsigned", "int"), None, ""),
    ("offsetof", ("t",), None, ""),
    ("printf", ("%d", "int", "."), None, ""),
    ("printf", (), 8, "expected a format string"),
    ("typedef", ("x",), None, ""),
    ("typedef", ("-c",), None, "option requires an argument -- c"),
    ("typedef", ("-l", "x"), None, ""),
    ("typedef", ("-l", "-d"), None, ""),
])
def test_usage_errors(session: Session, name: str, args: tuple[str, ...], addr: int | None, problem: str) -> None:
    with pytest.raises(UsageError) as info:
        call(session, name, *args, addr=addr)
    assert str(info.value) == problem


def test_printf_needs_members(session: Session) -> None:
    call(session, "typedef", "-c", "LP64")
    with pytest.raises(UsageError, match=r"^at least one member must be specified$"):
        call(session, "printf", "%d", "int", addr=8)


# ::typedef's failures: the message on stdout, then DCMD_ERR (or USAGE) with nothing more ----

@pytest.mark.parametrize(("definition", "message"), [
    ("struct { uintptr_t stone[7]; void **stone; }", "duplicate name detected: stone"),
    ("struct { int a }", "Cannot find semi-colon to delineate the end of a member."),
    ("struct { int; }", "Missing both a name and a type declaration for a member. Instead, found 'int'"),
    ("struct { int 9a; }", "The name 9a is not a valid C identifier."),
    ("struct { int a[4; }", "Found the beginning of an array size but no closing ']' in [4"),
    ("struct { int a[-1]; }", "Array lengths cannot be negative"),
    ("struct { char d[0]; int n; }", "Flexible array entries are only allowed to be the last entry in a struct"),
    ("struct { char d[0]; }", "Structs must have members aside from a flexible member"),
    ("union { int n; char d[0]; }", "Flexible array members are only valid in structs."),
    ("foo { int a; }", "Invalid start of definition. Expected 'struct' or 'union'. Found: 'foo'"),
    ("struct{}", "Invalid structure definition. Structure must start with either 'struct {' or 'union {'"),
    ("struct 0bad { int a; }", "The name 0bad is not a valid C identifier."),
    ("struct { int a; } extra", "Missing closing brace for struct declaration. Expected '}'."),
])
def test_typedef_bad_definitions(session: Session, definition: str, message: str) -> None:
    call(session, "typedef", "-c", "LP64")
    assert typedef_fails(session, definition, "bad_t") == message + "\n"


def test_typedef_names_taken(session: Session) -> None:
    call(session, "typedef", "-c", "LP64")
    call(session, "typedef", "struct s { int a; }", "s_t")
    assert typedef_fails(session, "struct s { int b; }", "t_t") == "type name struct s already in use\n"
    assert typedef_fails(session, "struct { int b; }", "s_t") == "typedef name s_t already exists\n"
    assert typedef_fails(session, "int", "s_t") == "s_t already exists\n"
    assert typedef_fails(session, "nosuch", "n_t") == "nosuch does not exist\n"
    # several words are joined with a blank after each one, as mdb joins them
    assert typedef_fails(session, "unsigned", "nosuch", "n_t") == "unsigned nosuch  does not exist\n"


def test_typedef_models(session: Session) -> None:
    out: list[str] = []
    ctx = DcmdContext(session, 0, False, 1, ("-c", "LP128"), Output(out.append, out.append))
    with pytest.raises(UsageError):
        session.registry.dcmd("typedef").func(ctx)
    assert out == ["invalid data model: LP128\n"]
    call(session, "typedef", "-c", "lp64")
    assert typedef_fails(session, "-c", "LP64") == "failed to create intrinsic types, maybe they already exist\n"


def test_typedef_member_of_unknown_type_succeeds(session: Session) -> None:
    # mdb prints why, deletes the struct, and (returning mdb_ctf_type_delete's 0) succeeds
    call(session, "typedef", "-c", "LP64")
    out, _ = call(session, "typedef", "struct { nosuch_t a; }", "x_t")
    assert out == "failed to add member a: type nosuch_t does not exist\n"
    assert session.types.lookup("x_t") is None


def test_typedef_read_file_is_refused(session: Session) -> None:
    with pytest.raises(Failure, match=r"^failed to create synthetics from file$"):
        call(session, "typedef", "-r", "/nonexistent")


# What the evaluator must act on ----------------------------------------------------------

def test_printf_leaves_the_line_open(session: Session) -> None:
    # mdb ends it after the dcmd (mdb_iob_nlflush): the evaluator must, when line_open
    call(session, "typedef", "-c", "LP64")
    out, ctx = call(session, "printf", "%d", "int", ".", addr=42)
    assert out == "42"
    assert ctx.line_open


def test_printf_tabs_count_from_the_line_start(session: Session) -> None:
    call(session, "typedef", "-c", "LP64")
    out, ctx = call(session, "printf", "ab%d\t%d|\n", "int", ".", ".", addr=7)
    assert out == "ab7     7|\n"
    assert not ctx.line_open


def _three(ctx: DcmdContext) -> Iterator[int]:
    yield from (1, 2, 3)


def test_walk_binds_its_variable_only_in_a_pipeline(session: Session) -> None:
    # the evaluator must give `v` each emitted value while it runs the later stages (mdb's vcbs)
    session.registry.walkers["three"] = WalkerSpec("three", _three, needs_target=False)
    _, ctx = call(session, "walk", "three", "v", piped=True)
    assert ctx.emitted == [1, 2, 3]
    assert ctx.bound_variable == "v"
    assert session.variable("v") == 0
    out, ctx = call(session, "walk", "three", "w")
    assert ctx.bound_variable is None
    assert out == "1\n2\n3\n"


def test_failure_renders_every_line() -> None:
    e = Failure("expected integer type", "failed to print member 'x'")
    assert f"pmdb: {e}" == "pmdb: expected integer type\npmdb: failed to print member 'x'"
    assert isinstance(e, CommandError)


# mdb's printf engine ----------------------------------------------------------------------

@pytest.mark.parametrize(("value", "base", "kw", "expected"), [
    (9, 16, {"showbase": True}, "9"),
    (10, 16, {"showbase": True}, "0xa"),
    (10, 10, {"showbase": True}, "0t10"),
    (8, 8, {"showbase": True}, "0o10"),
    (7, 8, {"showbase": True}, "7"),
    (2, 2, {"showbase": True}, "0i10"),
    (-5 & (2**64 - 1), 10, {"signed": True}, "-5"),
    (-5 & (2**64 - 1), 10, {"signed": True, "showbase": True}, "-0t5"),  # mdb tests the unsigned value
    (5, 10, {"signed": True, "signpos": True}, "+5"),
    (255, 16, {"upcase": True}, "FF"),
])
def test_numtostr(value: int, base: int, kw: dict, expected: str) -> None:
    assert numtostr(value, base, **kw) == expected


@pytest.mark.parametrize(("fmt", "args", "expected"), [
    ("%x", [0x1_0000_0001], "1"),  # a plain %x takes an int: 32 bits
    ("%lx", [0x1_0000_0001], "100000001"),
    ("%hd", [0xFFFF], "-1"),
    ("%#x", [0], "0"),
    ("%#010x", [0x1234], "00000x1234"),  # zero fill goes before the 0x
    ("%#o", [8], "010"),
    ("%-#16a|", [0x10], "0x10:           |"),
    ("%A|", [0x10], "|"),
    ("%#A", [0x10], "?"),
    ("%+d %+u %+x", [5, 5, 5], "+5 +5 5"),
    ("%5s|%-5s|", ["ab", "cd"], "   ab|cd   |"),
    ("%c%c", [ord("o"), ord("k")], "ok"),
    ("%I", [0x0100007F], "127.0.0.1"),
    ("%%", [], "%"),
    ("%?p|", [0x2A], "              2a|"),
    ("%016llx", [0x2A], "000000000000002a"),
    ("%*d|", [4, 7], "   7|"),
    ("%k", [], "k"),
    ("a\tb", [], "a       b"),
    ("ab%8T|%4T|", [], "ab      |   |"),
    ("%16T|", [], "|"),
    ("%<b>bold%</b>", [], "bold"),
])
def test_mdb_format(fmt: str, args: list, expected: str) -> None:
    assert mdb_format(fmt, args) == expected


def test_mdb_format_radix_and_variables() -> None:
    ctx = PrintfContext(radix=10, symbolize=lambda a: "main+0x10" if a == 0x401010 else None,
                        variable=lambda name: 0x20 if name == "x" else None)
    assert mdb_format("%r %#r %R %a %<_x>", [0x20, 0x20, -3 & (2**64 - 1), 0x401010], ctx) == "32 0t32 -3 main+0x10 32"


@pytest.mark.parametrize(("n", "expected"), [
    (0, "0"), (1023, "1023"), (1024, "1K"), (1536, "1.50K"), (10241, "10.0K"), (1043968, "1020K"),
    (10239, "10.0K"), (1 << 20, "1M"),
])
def test_human_size(n: int, expected: str) -> None:
    assert human_size(n) == expected


# The variable table --------------------------------------------------------------------

def test_pjw_hash() -> None:
    assert pjw_hash("hits") == 454835
    assert pjw_hash("thread") == 128945012
    assert pjw_hash("a" * 12) < 1 << 32  # the top nibble is folded back in


def test_table_grows_past_its_buckets() -> None:
    table = VariableTable()
    names = [f"v{i}" for i in range(300)]
    for i, name in enumerate(names):
        table.insert(name, i)
    assert sorted(v.name for v in table) == sorted(names)
    assert all(table[name] == i for i, name in enumerate(names))
    # after growing to 421 buckets the order is bucket order of the new size
    buckets = [pjw_hash(v.name) % 421 for v in table]
    assert buckets == sorted(buckets)


def test_persistent_variables_stay(session: Session) -> None:
    with pytest.raises(CommandError, match=r"^cannot remove persistent variable 'b'$"):
        session.variables.remove("b")
    session.variables["x"] = 1
    session.variables.remove("x")
    assert "x" not in session.variables


def test_thread_is_read_only(session: Session) -> None:
    with pytest.raises(CommandError, match=r"^cannot modify read-only variable 'thread'$"):
        session.set_variable("thread", 5)


def test_dot_is_a_variable(session: Session) -> None:
    session.set_variable(".", 0x40)
    assert session.dot == 0x40
    assert session.variable(".") == 0x40
