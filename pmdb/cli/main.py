"""The `pmdb` command: `pmdb [options] [DUMP [EXECUTABLE]]`, batch (-e, stdin) or interactive.

Exit status follows mdb's -e: 0 when every statement ran, 1 when one failed, 2 for bad usage
or an unreadable dump.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from pmdb.errors import PmdbError

if TYPE_CHECKING:
    from pmdb.mdb.session import Session

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _ArgParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"pmdb: {message}\n{self.format_usage()}")
        sys.exit(EXIT_USAGE)


def _arg_parser() -> argparse.ArgumentParser:
    ap = _ArgParser(prog="pmdb", description="Post-mortem debugger for crash dumps, speaking mdb's language.")
    ap.add_argument("dump", nargs="?", help="core file or crash dump")
    ap.add_argument("executable", nargs="?", help="the program file (default: the one the core names); "
                    "for a kernel crash dump, its vmlinux with DWARF (optional)")
    ap.add_argument("modules", nargs="*", metavar="KO", help="kernel module files with DWARF (kernel dumps)")
    ap.add_argument("--system-map", metavar="FILE", help="take the kernel's symbols from this System.map "
                    "(kernel dumps; checked against the dump)")
    ap.add_argument("-e", "--eval", dest="commands", action="append", metavar="CMDS",
                    help="run these mdb statements and exit (may be repeated)")
    ap.add_argument("-f", dest="raw_file", metavar="FILE", help="debug a raw file (no dump format)")
    ap.add_argument("--sysroot", help="prefix for the paths of files the dump names")
    ap.add_argument("--search-path", action="append", default=[], metavar="DIR",
                    help="directory to look in for mapped files by base name (repeatable)")
    ap.add_argument("--debug-dir", action="append", default=[], metavar="DIR",
                    help="directory of separate debug files, searched before /usr/lib/debug (repeatable)")
    ap.add_argument("--source-path", action="append", default=[], metavar="DIR",
                    help="directory to look in for source files, before where they were compiled (repeatable)")
    ap.add_argument("-q", "--quiet", action="store_true", help="do not print warnings about the dump")
    return ap


def _glue_commands(argv: list[str]) -> list[str]:
    """`-e CMDS` takes the next word whatever it starts with (`-e '-1=e'` is a statement)."""
    out: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg == "-e":
            out.append("--eval=" + next(it, ""))
        else:
            out.append(arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args = _arg_parser().parse_args(_glue_commands(sys.argv[1:] if argv is None else list(argv)))
    from pmdb.commands.registry import default_registry
    from pmdb.mdb.session import Session

    program = None
    if args.raw_file and args.dump:
        sys.stderr.write("pmdb: -f takes the file to debug; give no dump as well\n")
        return EXIT_USAGE
    target = args.raw_file or args.dump
    if target:
        import pmdb

        try:
            program = pmdb.open(target, args.executable, sysroot=args.sysroot, search_path=args.search_path,
                                debug_dirs=args.debug_dir, raw=bool(args.raw_file),
                                source_path=args.source_path, modules=args.modules, system_map=args.system_map)
        except PmdbError as e:
            sys.stderr.write(f"pmdb: {e}\n")
            return EXIT_USAGE
        except Exception as e:  # a bug in pmdb: one line for the user, the traceback under PMDB_DEBUG
            if os.environ.get("PMDB_DEBUG"):
                raise
            sys.stderr.write(f"pmdb: internal error opening {target}: {type(e).__name__}: {e}\n")
            return EXIT_USAGE
        if not args.quiet:
            for w in program.dump.warnings:
                sys.stderr.write(f"pmdb: warning: {w}\n")
    session = Session(default_registry(), program)
    if args.commands:
        return run_batch(session, "\n".join(args.commands), sys.stdout, sys.stderr)
    if sys.stdin.isatty():
        from pmdb.cli.repl import interactive

        return interactive(session)
    return run_batch(session, sys.stdin.read(), sys.stdout, sys.stderr, "(stdin)")


def run_batch(session: Session, text: str, out: TextIO, err: TextIO, input_name: str = "(string)") -> int:
    """Run `text` as mdb's -e does: 0 when every statement ran, 1 when any failed.

    Errors and warnings go to `err` one line each, after flushing `out` so they interleave in
    the order a terminal would show them.
    """
    from pmdb.commands.registry import Quit
    from pmdb.mdb.evaluator import Evaluator

    def say(line: str) -> None:
        out.flush()
        err.write(line + "\n")

    ev = Evaluator(session, out.write, say, say, input_name)
    try:
        ev.run(text)
    except Quit:
        pass
    finally:
        out.flush()
    return EXIT_FAILED if ev.failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
