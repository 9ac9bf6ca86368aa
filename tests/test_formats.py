"""The format engine and expressions against values worked out by hand from mdb's rules
(docs/mdb-output-shapes.md): field widths, the 16-column margin, 80-column wrapping.
"""

from __future__ import annotations

import pytest
from conftest import Fixture, run_pmdb

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
    assert r.err == "pmdb: failed to initialize walk: no walker named 'nosuch'\n"
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
