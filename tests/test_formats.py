"""The format engine and expressions against values worked out by hand from mdb's rules
(docs/mdb-output-shapes.md): field widths, the 16-column margin, 80-column wrapping.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from conftest import Fixture, run_pmdb

import pmdb
from pmdb.commands.registry import default_registry
from pmdb.errors import CommandError
from pmdb.mdb import formats
from pmdb.mdb.output import LineWriter
from pmdb.mdb.session import Session
from pmdb.mdb.text import numtostr

M = " " * 16  # the indent of every `=` line and of continuation lines


@pytest.mark.parametrize(
    ("stmt", "out"),
    [
        ("0=K", M + "0" + " " * 15 + "\n"),
        ("0=X", M + "0" + " " * 15 + "\n"),
        ("0=J", M + "0" + " " * 15 + "\n"),
        ("0=p", M + "0" + " " * 18 + "\n"),
        ("1<<0t63=K", M + "8000000000000000 \n"),  # 16 digits fill the field: it grows to 17
        ("0t10=D", M + "10" + " " * 14 + "\n"),
        ("-1=e", M + "-1" + " " * 19 + "\n"),
        ("-1=E", M + "18446744073709551615 \n"),
        ("-1=X", M + "ffffffff        \n"),
        ("-1=x", M + "ffff    \n"),
        ("-1=d", M + "-1      \n"),
        ("-1=u", M + "65535   \n"),
        ("0t8=o", M + "010     \n"),
        ("5=R", M + "101\n"),  # the 61-blank pad would reach column 80: a newline instead
        ("1+2*3=D", M + "7" + " " * 15 + "\n"),
        ("(1+2)*3=D", M + "9" + " " * 15 + "\n"),
        ("0t10%3=D", M + "3" + " " * 15 + "\n"),  # % divides
        ("0t10%%3=D", M + "1" + " " * 15 + "\n"),  # %% is the remainder
        ("0t10#3=D", M + "12" + " " * 14 + "\n"),  # # rounds up to a multiple
        ("#0=D", M + "1" + " " * 15 + "\n"),
        ("~0=J", M + "ffffffffffffffff \n"),
        ("0x10|1=X", M + "11" + " " * 14 + "\n"),
        ("'A'=X", M + "41" + " " * 14 + "\n"),
        ("0i101=D", M + "5" + " " * 15 + "\n"),
        ("0o17=D", M + "15" + " " * 14 + "\n"),
        ("10=D", M + "16" + " " * 14 + "\n"),  # the default radix is 16
        ("0,3=X", M + "0" + " " * 15 + "0" + " " * 15 + "0" + " " * 15 + "\n"),
        ("0=3X", M + "0" + " " * 15 + "0" + " " * 15 + "0" + " " * 15 + "\n"),
        # four 15-digit fields reach column 79: the pad that would reach column 80 becomes the newline
        ("800000000000000,4=J", M + "800000000000000 " * 3 + "800000000000000\n"),
        # three 18-character p fields end at column 73; the fourth wraps to a new indented line
        ("1<<0t63,4=p", M + "0x8000000000000000 " * 3 + "\n" + M + "0x8000000000000000 \n"),
    ],
)
def test_values_without_a_target(stmt: str, out: str) -> None:
    r = run_pmdb("-e", stmt)
    assert (r.out, r.err, r.status) == (out, "", 0)


@pytest.mark.parametrize(
    ("stmt", "err"),
    [
        ("nosuch=K", "pmdb: failed to dereference symbol: unknown symbol name\n"),
        # lexer errors name the input (-e is "(string)") and the token, as mdb's yyerror does
        ("<nosuch=K", "pmdb: variable 'nosuch' is not defined on line 1 of (string) near \"<nosuch\"\n"),
        ("::nosuch", "pmdb: invalid command '::nosuch': unknown dcmd name\n"),
        ("0=", "pmdb: expected one or more format characters following '='\n"),
        ("0=A", "pmdb: invalid format character -- 'A'\n"),
        # the division is reduced when the parser sees the next token, "="
        ("1%0=D", 'pmdb: attempted to divide by zero on line 1 of (string) near "="\n'),
        # "0x1" is a number and "g" a symbol: an expression cannot follow an expression
        ("0x1g=D", 'pmdb: syntax error on line 1 of (string) near "g"\n'),
        ("(1=D", 'pmdb: syntax error on line 1 of (string) near "="\n'),
    ],
)
def test_errors_fail_with_mdb_words(stmt: str, err: str) -> None:
    r = run_pmdb("-e", stmt)
    assert (r.out, r.err, r.status) == ("", err, 1)


def test_an_expression_error_discards_the_rest_of_the_input() -> None:
    r = run_pmdb("-e", "nosuch=K; 0t5=D")  # mdb discards a string input after a parse-time error
    assert (r.out, r.status) == ("", 1)


def test_a_failing_dcmd_does_not_stop_the_next_statement() -> None:
    r = run_pmdb("-e", "::walk nosuch; 0t5=D")  # the dcmd fails when it runs, not while it is read
    assert r.out == M + "5" + " " * 15 + "\n"
    assert r.err == "pmdb: failed to perform walk: unknown walk name\n"  # mdb's cmd_walk wording
    assert r.status == 1


def test_statements_from_stdin() -> None:
    r = run_pmdb(stdin="0t1=D\n0t2=D\n")
    assert (r.out, r.status) == (M + "1" + " " * 15 + "\n" + M + "2" + " " * 15 + "\n", 0)


def _code(fx: Fixture, addr: int, n: int) -> bytes:
    insns = fx.truth["disassembly"]["insns"]
    return b"".join(bytes.fromhex(i["bytes"]) for i in insns if i["addr"] >= addr)[:n]


def test_memory_prefix_margin_and_wrap(seed: Fixture) -> None:
    start = seed.truth["symbols"]["ipnet_nicevent_task"]["addr"]
    words = [f"{int.from_bytes(_code(seed, start, 16)[i:i + 4], 'little'):x}" for i in range(0, 16, 4)]
    r = run_pmdb(seed.core, "-e", "ipnet_nicevent_task/4X")
    label = "ipnet_nicevent_task:"
    # an exact symbol gets its own line; a 20-column label tabs the values to column 32; the
    # third value ends at column 72 and its pad would reach 80, so the fourth starts a new line
    expected = (f"{label}\n{label:<32}{words[0]:<16}{words[1]:<16}{words[2]}\n"
                f"{M}{words[3]:<16}\n")
    assert (r.out, r.err, r.status) == (expected, "", 0)


def test_small_formats_read_their_size(seed: Fixture) -> None:
    pc = seed.truth["threads"][0]["frames"][0]["pc"]
    code = _code(seed, pc, 8)
    label = f"ipnet_nicevent_task+{pc - seed.truth['symbols']['ipnet_nicevent_task']['addr']:#x}:"
    u16 = [int.from_bytes(code[i:i + 2], "little") for i in (1, 3, 5)]
    s16 = u16[1] - 0x10000 if u16[1] & 0x8000 else u16[1]
    r = run_pmdb(seed.core, "-e", "<rip/Bxdu")  # 1, 2, 2 and 2 bytes, each in an 8-wide field
    assert r.out == f"{label:<32}{code[0]:<8x}{u16[0]:<8x}{s16:<8}{u16[2]:<8}\n"


def test_instruction_format(seed: Fixture) -> None:
    bad = seed.truth["bad_reg"]
    r = run_pmdb(seed.core, "-e", "<rip/i")
    assert r.out.startswith("ipnet_nicevent_task+")
    assert r.out.split(":", 1)[1].strip().startswith(f"movq   0x8(%{bad}),")
    assert r.out.endswith("\n") and r.out.count("\n") == 1


def test_string_format_reads_to_the_nul(seed: Fixture) -> None:
    addr = seed.truth["auxv"]["AT_EXECFN"]
    r = run_pmdb(seed.core, "-e", f"{addr:#x}/s")
    label = f"{addr:#x}:"
    assert r.out == f"{label:<16}{seed.truth['auxv_strings']['AT_EXECFN']}\n"


def test_symbol_value_as_pointer(seed: Fixture) -> None:
    r = run_pmdb(seed.core, "-e", "ipnet_nicevent_task=p")
    assert r.out == M + f"{'ipnet_nicevent_task':<19}\n"
    r = run_pmdb(seed.core, "-e", "ipnet_nicevent_task+0x10=p")
    assert r.out == M + f"{'ipnet_nicevent_task+0x10':<19}\n"


# The format engine called directly: what the transcripts cannot reach (quoted text in a
# format list, piped-in addresses, the time formats under a chosen time zone) and the output
# buffer's rules one at a time. Expected values are worked out from mdb_fmt.c and mdb_io.c.


def _session(program: object = None) -> Session:
    return Session(default_registry(), program)  # type: ignore[arg-type]


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time is UTC while the test runs (mdb's Y and y print ctime's local time)."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize(
    ("value", "spec", "out"),
    [
        (0, "Y", M + "1970 Jan  1 00:00:00    \n"),  # ctime's day is blank-padded; 20 characters in 24
        (0x7FFFFFFF, "Y", M + "2038 Jan 19 03:14:07    \n"),
        (2**64 - 1, "Y", M + "1969 Dec 31 23:59:59    \n"),  # the low 32 bits, signed
        (0x100000000, "Y", M + "1970 Jan  1 00:00:00    \n"),  # Y reads only the low 4 bytes
        (0x100000000, "y", M + "2106 Feb  7 06:28:16    \n"),  # y reads all 8
        (2**63, "y", M + "-8000000000000000       \n"),  # beyond ctime: a signed number in the radix
    ],
)
def test_time_formats_in_utc(utc: None, value: int, spec: str, out: str) -> None:
    run = formats.run_format(_session(), "=", spec, value)
    assert (run.text, run.errors) == (out, ())


def test_time_is_local_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "EST5")
    time.tzset()
    try:
        assert formats.time_text(0) == "1969 Dec 31 19:00:00"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_quoted_text_in_a_format_list() -> None:
    # mdb prints a string of the list as it is, between the fields; `"\t"` reaches the next tab stop
    run = formats.run_format(_session(), "=", 'D"<-\\there"X', 5)
    assert run.text == M + "5" + " " * 15 + "<-" + " " * 6 + "here" + "5" + " " * 15 + "\n"


def test_format_items_as_values() -> None:
    items = (2, "X", formats.Text("|"), "B")
    assert formats.run_format(_session(), "=", items, 1).text == M + ("1" + " " * 15) * 2 + "|1" + " " * 7 + "\n"


def test_parse_format() -> None:
    assert formats.parse_format(' 4X 2d"a b\\n"c') == (4, "X", 2, "d", formats.Text("a b\n"), "c")
    with pytest.raises(CommandError, match="unmatched"):
        formats.parse_format('X"open')


@pytest.mark.parametrize(("ch", "what"), [("w", "writes to"), ("W", "writes to"), ("v", "writes to"),
                                          ("Z", "writes to"), ("z", "writes to"), ("l", "searches"),
                                          ("L", "searches"), ("M", "searches")])
def test_writes_and_searches_are_refused(seed: Fixture, ch: str, what: str) -> None:
    session = _session(pmdb.open(seed.core))
    with pytest.raises(CommandError, match=f"'{ch}' {what} the target: pmdb"):
        formats.run_format(session, "/", ch + " 1", 0)


def test_count_zero_runs_nothing() -> None:
    session = _session()
    session.increment = 8
    run = formats.run_format(session, "=", "X", 5, count=0)
    assert (run.text, run.dot, run.increment) == ("", 5, 8)


def test_piped_addresses_print_one_prefix(seed: Fixture) -> None:
    # mdb clears LOOPFIRST after the first piped address: one `main:` prefix, one line
    program = pmdb.open(seed.core)
    main = program.lookup("main").address
    run = formats.run_format(_session(program), "/", "B", main, inputs=[main, main + 1, main + 2])
    assert run.text == "main:\nmain:" + " " * 11 + "55      48      8d      \n"
    assert (run.dot, run.increment) == (main + 2, 1)


def test_dot_and_increment_are_stored(seed: Fixture) -> None:
    program = pmdb.open(seed.core)
    main = program.lookup("main").address
    session = _session(program)
    run = formats.run_format(session, "/", "X", main, count=3)
    assert (session.dot, session.increment) == (main + 8, 4) == (run.dot, run.increment)
    assert run.next_addr == main + 4  # the first address plus the increment


@pytest.mark.parametrize(
    ("value", "rows"),
    [
        (0, []),
        (1, [("", None, 0), ("+--", 0, 0)]),
        (0b101, [("| ", None, 2), ("| +--", 0, 2), ("+----", 2, 2)]),
    ],
)
def test_bit_diagram(value: int, rows: list[tuple[str, int | None, int]]) -> None:
    assert list(formats.bit_diagram(value)) == rows


@pytest.mark.parametrize(
    ("x", "digits", "text"),
    [
        (1.0, 7, "+1.0000000e+00"),
        (-0.0, 7, "-0.0000000e+00"),
        (float("inf"), 7, "+Infinity"),  # econvert spells it out from 8 digits on
        (float("-inf"), 16, "-Infinity"),
        (float("nan"), 7, "+NaN"),
        (1e100, 16, "+1.0000000000000000e+100"),
    ],
)
def test_float_text(x: float, digits: int, text: str) -> None:
    assert formats.float_text(x, digits) == text


@pytest.mark.parametrize(
    ("args", "text"),
    [
        ((0, 16), "0"),
        ((255, 16), "ff"),
        ((255, 16, False, True), "0xff"),
        ((9, 16, False, True), "9"),  # no prefix up to the largest lone digit
        ((2**64 - 1, 10, True), "-1"),
        ((2**64 - 5, 16, True, True), "-0x5"),  # showbase looks at the unsigned value
        ((8, 8, False, True), "0o10"),
        ((5, 2), "101"),
        ((3, 10, True, False, True), "+3"),
    ],
)
def test_numtostr(args: tuple, text: str) -> None:
    assert numtostr(*args) == text


def test_line_writer_field_wraps_and_padding_becomes_newline() -> None:
    out = LineWriter(autowrap=True)
    out.set_indent(True)
    for _ in range(5):
        out.field("x" * 10, 16)
    out.set_indent(False)
    # fields at 16, 32, 48, 64: the fourth's 6 blanks would reach 80; the fifth starts a new line
    assert out.finish() == M + ("x" * 10 + " " * 6) * 3 + "x" * 10 + "\n" + M + "x" * 10 + " " * 6 + "\n"


def test_line_writer_without_autowrap_never_wraps() -> None:
    out = LineWriter()
    out.field("y" * 70, 72)
    out.field("z", 16)
    assert out.finish() == "y" * 70 + "  " + "z" + " " * 15 + "\n"


def test_line_writer_text_breaks_at_the_page_width() -> None:
    out = LineWriter(columns=10, autowrap=True)
    out.text("abcdefghijklmno")
    assert out.finish() == "abcdefghij\nklmno\n"


def test_line_writer_tabs() -> None:
    out = LineWriter()
    out.text("ab\tc")  # a TAB in text: the next multiple of 8
    out.tab_to(16)  # %16T pads to 16
    out.tab_to(16)  # already there: nothing
    out.tab(4)  # a tab always moves: 16 -> 20
    out.text("|")
    assert out.finish() == "ab      c" + " " * 7 + " " * 4 + "|\n"


def test_line_writer_ends_a_bare_indent_line_but_drops_the_last() -> None:
    out = LineWriter()
    out.set_indent(True)
    out.newline()  # a newline ends the line even when it holds only the indent
    out.set_indent(False)
    assert out.finish() == M + "\n"
