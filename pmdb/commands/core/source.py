"""`$<file` and `$<<file`: run the mdb statements of a file (mdb's macro files)."""

from __future__ import annotations

from pmdb.commands.registry import DcmdContext, dcmd
from pmdb.errors import CommandError, UsageError


def _run_file(ctx: DcmdContext) -> None:
    _opts, rest = ctx.options("")
    if len(rest) != 1:
        raise UsageError("one file name is required")
    path = str(rest[0])
    try:
        with open(path, errors="replace") as f:
            text = f.read()
    except OSError as e:
        raise CommandError(f"failed to open {path}: {e.strerror}") from None
    if ctx.session.run_text is None:
        raise CommandError("no interpreter to run the file")
    ctx.session.run_text(text, path)


@dcmd("$<", usage="file", needs_target=False)
def source(ctx: DcmdContext) -> None:
    """Run the statements in `file`, as if typed at this point."""
    _run_file(ctx)


@dcmd("$<<", usage="file", needs_target=False)
def source_nested(ctx: DcmdContext) -> None:
    """Run the statements in `file`, then go on with the current input."""
    _run_file(ctx)
