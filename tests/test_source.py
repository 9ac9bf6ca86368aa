"""Source lines, inline chains and interleaved disassembly against gdb, objdump and readelf;
arguments and locals against gdb's view of the same frames (tests/gdb_frames.py).
"""

from __future__ import annotations

import bisect
import math
import os
import re

import pytest
from conftest import Fixture, load_fixture, run_pmdb
from source_truth import gdb, gdb_frames, gdb_lines, objdump_lines, rows_per_address

import pmdb

LINE_CASES = ["seed", "seed_O0", "assert", "threads8", "cxx_throw", "sighandler", "types_dwarf4"]
VARIABLE_CASES = [*LINE_CASES, "divzero", "libc_strlen", "nullfn", "types"]
DIS_CASES = ["seed", "seed_O0", "assert", "threads8", "divzero", "sighandler"]
_WHERE = re.compile(r"^(?P<file>\S+?):(?P<line>\d+)(?::(?P<col>\d+))?(?: in (?P<func>.+))?$")
_HEADER = re.compile(r"^(\S+):(\d+)$")
# DWARF numbers of the registers a call does not preserve (rax rdx rcx rsi rdi r8-r11): gdb
# takes them as unchanged in callers, where pmdb says it cannot know.
_CALLER_SAVED = re.compile(r"^register (0|1|2|4|5|8|9|10|11) is not known in this frame$")


def _groups(frames: list[dict]) -> list[list[dict]]:
    """gdb's frames per physical frame: inline frames with the frame they are inlined in
    (innermost first); gdb's invented tail-call frames dropped."""
    out, current = [], []
    for f in frames:
        if f["type"] == "TAILCALL":
            continue
        current.append(f)
        if f["type"] != "INLINE":
            out.append(current)
            current = []
    return out


def _parse_whereis(out: str) -> list[list[tuple[str, int, str | None]]]:
    """Each ::whereis answer as [(file, line, function)] innermost first ([] for none)."""
    answers: list[list[tuple[str, int, str | None]]] = []
    for ln in out.splitlines():
        if ln.startswith("    inlined at "):
            m = _WHERE.match(ln.removeprefix("    inlined at "))
            assert m, ln
            answers[-1].append((m["file"], int(m["line"]), m["func"]))
            continue
        _label, _, rest = ln.partition(": ")
        if rest == "no line information":
            answers.append([])
            continue
        m = _WHERE.match(rest)
        assert m, ln
        answers.append([(m["file"], int(m["line"]), m["func"])])
    return answers


@pytest.mark.parametrize("case", LINE_CASES)
def test_whereis_names_gdbs_file_line_and_inline_chain(case: str) -> None:
    fx = load_fixture(case)
    prog = pmdb.open(fx.core)
    symbols = {t["lwp"]: _groups(t["frames"]) for t in gdb_frames(fx)}  # gdb's function symbols
    queries = []
    for thread in fx.truth["threads"]:
        frames = prog.stack(prog.thread(thread["lwp"])).frames
        groups = _groups(thread["frames"])
        for frame, group, named in zip(frames, groups, symbols[thread["lwp"]], strict=False):
            if group[-1]["type"] == "SIGTRAMP":
                continue
            queries.append((frame.lookup_pc, [dict(g, function=n["function"]) for g, n in zip(group, named,
                                                                                             strict=True)]))
    r = run_pmdb(fx.core, "-e", "; ".join(f"{addr:#x}::whereis" for addr, _ in queries))
    assert r.status == 0, r.err
    answers = _parse_whereis(r.out)
    assert len(answers) == len(queries)
    for (addr, group), ours in zip(queries, answers, strict=True):
        theirs = [(g["file"], g["line"]) for g in group]
        if all(f is None for f, _ in theirs):
            assert ours == [] or len(ours) == 1, f"{addr:#x}: {ours}"
            continue
        assert [(f, line) for f, line, _ in ours] == theirs, f"{addr:#x}"
        for (_f, _line, func), g in zip(ours, group, strict=True):
            if g["type"] == "INLINE":
                assert func == g["function"], f"{addr:#x}"


def test_whereis_shape(seed: Fixture) -> None:
    frame = seed.truth["threads"][0]["frames"][0]
    r = run_pmdb(seed.core, "-e", f"{frame['pc']:#x}::whereis; 8::whereis")
    assert r.status == 0, r.err
    first, second = r.out.splitlines()
    assert re.fullmatch(rf"ipnet_nicevent_task\+0x27: seed\.c:{frame['line']}:\d+ in ipnet_nicevent_task", first)
    assert second == "8: no line information"


def _source_lines(fx: Fixture) -> list[str]:
    path = fx.dir / next(p for p in os.listdir(fx.dir) if p.endswith((".c", ".cc")))
    return path.read_text().split("\n")


@pytest.mark.parametrize("case", DIS_CASES)
def test_dis_source_lines_match_gdb_and_objdump(case: str) -> None:
    fx = load_fixture(case)
    d = fx.truth["disassembly"]
    r = run_pmdb(fx.core, "-e", f"{d['start']:#x}::dis -s -a")
    assert r.status == 0, r.err
    addrs = [i["addr"] for i in d["insns"]]
    ours: dict[int, tuple[str, int]] = {}
    texts: dict[tuple[str, int], str] = {}
    header: tuple[str, int] | None = None
    pending, last = list(addrs), "insn"
    for ln in r.out.splitlines():  # (header, text?) before a line's first instruction
        if pending and ln.startswith(f"{pending[0]:x} "):
            assert header is not None, ln
            ours[pending.pop(0)], last = header, "insn"
        elif last == "insn":
            m = _HEADER.match(ln)
            assert m, ln
            header, last = (m.group(1), int(m.group(2))), "header"
        else:
            assert last == "header", ln
            texts[header], last = ln, "text"
    assert not pending
    theirs = gdb_lines(fx, addrs)
    base = os.path.basename
    for a in addrs:
        assert theirs[a] is not None
        assert (base(ours[a][0]), ours[a][1]) == (base(theirs[a][0]), theirs[a][1]), f"{a:#x}"
    # objdump keeps the last of several rows at one address, gdb (and pmdb) the statement
    # among them: compare with objdump where the line table has one line at the address.
    dump = objdump_lines(d["objfile"], d["elf_start"], d["elf_start"] + d["size"])  # lines via its debug link
    rows = rows_per_address(d["symbol_file"])
    starts = sorted(rows)
    checked = 0
    for i in d["insns"]:
        governing = starts[bisect.bisect_right(starts, i["elf_addr"]) - 1]  # the row the instruction is under
        if len(rows[governing]) == 1:
            f, line = dump[i["elf_addr"]]
            assert (base(ours[i["addr"]][0]), ours[i["addr"]][1]) == (base(f), line), f"{i['addr']:#x}"
            checked += 1
    assert checked >= len(addrs) // 2
    if d["objfile"] == fx.prog:
        source = _source_lines(fx)
        assert texts, r.out
        for (_f, line), text in texts.items():
            assert text == source[line - 1]


def test_dis_source_path_is_searched_first(seed: Fixture, tmp_path: os.PathLike) -> None:
    lines = _source_lines(seed)
    line = seed.truth["threads"][0]["frames"][0]["line"]
    lines[line - 1] = "/* the copy under --source-path */"
    (tmp_path / "seed.c").write_text("\n".join(lines))
    r = run_pmdb("--source-path", str(tmp_path), seed.core, "-e", "ipnet_nicevent_task::dis -s")
    assert r.status == 0, r.err
    assert f"seed.c:{line}\n/* the copy under --source-path */\n" in r.out


def test_dis_source_without_the_file_says_so_once(any_case: Fixture) -> None:
    fx = any_case
    d = fx.truth["disassembly"]
    if d is None or d["objfile"] == fx.prog:
        pytest.skip("frame 0 is in the program, whose source is at hand")
    r = run_pmdb(fx.core, "-e", f"{d['start']:#x}::dis -s")
    assert r.status == 0, r.err
    warnings = [ln for ln in r.err.splitlines() if "not found" in ln]
    assert warnings and len(warnings) == len(set(warnings)), r.err
    assert all(ln.startswith("pmdb: warning: source file ") and "--source-path" in ln for ln in warnings)


def _matches(ours: pmdb.debuginfo.variables.Variable, theirs: dict, frame_level: int) -> bool:
    """Does pmdb's value say what gdb's says? gdb's errors (a loop of entry values it gives
    up on) match anything; pmdb's "not known" for a register a call does not preserve
    matches any value in a caller frame (gdb assumes the register unchanged)."""
    if "err" in theirs:
        return True
    if "opt" in theirs:
        return ours.problem == "optimized out"
    if ours.problem == "optimized out" and frame_level > 0 and _CALLER_SAVED.match(ours.detail):
        return True
    if "int" in theirs:
        return ours.value == theirs["int"]
    if "float" in theirs:
        return isinstance(ours.value, float) and math.isclose(ours.value, theirs["float"], rel_tol=1e-6)
    if "addr" in theirs:
        return ours.address == theirs["addr"]
    return ours.problem == "not in memory"


@pytest.mark.parametrize("case", VARIABLE_CASES)
def test_arguments_and_locals_match_gdb(case: str) -> None:
    fx = load_fixture(case)
    prog = pmdb.open(fx.core)
    compared = exempt = 0
    for thread in gdb_frames(fx):
        frames = prog.stack(prog.thread(thread["lwp"])).frames
        for index, group in enumerate(_groups(thread["frames"])[: len(frames)]):
            info = prog.source.frame_info(frames, index)
            if info is None:
                assert all(not g["args"] and not g["locals"] for g in group), f"{thread['lwp']} #{index}"
                continue
            assert len(info.scopes) == len(group), f"{thread['lwp']} #{index}"
            for scope, g in zip(info.scopes, group, strict=True):
                if g["args"] is None:
                    continue
                where = f"thread {thread['lwp']} frame {index} {g['function']}"
                params = [v for v in scope.params if v.name]
                assert [v.name for v in params] == [n for n, _ in g["args"]], where
                ours = sorted((v.name, i) for i, v in enumerate(scope.locals) if v.name)
                theirs = sorted((n, i) for i, (n, _) in enumerate(g["locals"]))
                assert [n for n, _ in ours] == [n for n, _ in theirs], where
                pairs = [(v, val) for v, (_n, val) in zip(params, g["args"], strict=True)]
                pairs += [(scope.locals[i], g["locals"][j][1]) for (_, i), (_, j) in zip(ours, theirs, strict=True)]
                for v, val in pairs:
                    assert _matches(v, val, index), f"{where}: {v.name}: pmdb {v} gdb {val}"
                    compared += 1
                    exempt += bool(v.problem and "opt" not in val and "err" not in val)
    assert compared > 0
    assert exempt <= max(2, compared // 20)


@pytest.mark.parametrize("case", ["seed", "seed_O0", "threads8", "assert"])
def test_dollar_c_shows_gdbs_argument_values(case: str) -> None:
    """$c's arguments are gdb's values as mdb's %lr, `<optimized out>` where gdb says so."""
    fx = load_fixture(case)
    r = run_pmdb(fx.core, "-e", "$c")
    assert r.status == 0, r.err
    crashed = next(t for t in gdb_frames(fx) if t["lwp"] == fx.truth["crashed_lwp"])
    prog = pmdb.open(fx.core)
    frames = prog.stack(prog.crashed_thread).frames
    for index, (line, group) in enumerate(zip(r.out.splitlines(), _groups(crashed["frames"]), strict=False)):
        args = group[-1]["args"] or []
        ours = prog.source.arguments(frames, index) or ()
        expected = []
        for v, (_name, val) in zip(ours, args, strict=True):
            if "opt" in val or (index and _CALLER_SAVED.match(v.detail) and "err" not in val):
                expected.append("<optimized out>")
            elif "err" in val:
                expected.append(line[line.index("(") + 1 : -1].split(", ")[len(expected)])
            else:
                expected.append(f"{val.get('int', val.get('addr')):x}")
        assert line[line.index("(") :] == f"({', '.join(expected)})", line


def test_stack_locals_listing_is_gdbs_values_in_mdbs_spelling(seed: Fixture) -> None:
    r = run_pmdb(seed.core, "-e", "::stack -l")
    assert r.status == 0, r.err
    crashed = next(t for t in gdb_frames(seed) if t["lwp"] == seed.truth["crashed_lwp"])
    truth = seed.truth["threads"][0]["frames"]

    def spell(val: dict) -> str:
        if "opt" in val:
            return "<optimized out>"
        if "addr" in val:
            return f"<{val['type']} at {val['addr']:#x}>"
        return f"{val['int']:#x}" if val["int"] > 9 else str(val["int"])

    expected = []
    ours = r.out.splitlines()
    frame_lines = [ln for ln in ours if not ln.startswith(" ")]
    for line, f, t in zip(frame_lines, crashed["frames"], truth, strict=True):
        expected.append(line)
        args = ", ".join(f"{n}={spell(v)}" for n, v in f["args"])
        expected.append(f"    {f['function']}({args}) at {t['file']}:{t['line']}")
        expected += [f"        {n} = {spell(v)}" for n, v in f["locals"]]
    assert sorted(ours) == sorted(expected)
    assert [ln for ln in ours if not ln.startswith("        ")] == [ln for ln in expected
                                                                      if not ln.startswith("        ")]


def test_gdb_sees_the_same_threads(seed: Fixture) -> None:
    """The ground truth script covers every thread of the core."""
    assert sorted(t["lwp"] for t in gdb_frames(seed)) == sorted(t["lwp"] for t in seed.truth["threads"])
    assert "ipnet_nicevent_task" in gdb(seed, "bt 1")


def test_argument_count_limits_what_dollar_c_shows(seed: Fixture) -> None:
    full = run_pmdb(seed.core, "-e", "$c").out.splitlines()
    none = run_pmdb(seed.core, "-e", "$c 0").out.splitlines()
    assert [ln[: ln.index("(")] + "()" for ln in full] == none
    with_fp = run_pmdb(seed.core, "-e", "$C 1").out.splitlines()
    assert [ln.split(" ", 1)[1] for ln in with_fp] == full  # one argument is all the seed's frames have
