"""`::set`: mdb's debugger options; pmdb has one, `autowrap` (`-o` turns it on, `+o` off).

Format characters always wrap at the page width (`$w`). With autowrap on, so do the parts of
a format command mdb leaves to the option: the `addr:` prefix, quoted text and `j`'s diagram.
Off is the default, as in current illumos.
"""

from __future__ import annotations

from pmdb.commands.registry import DcmdContext, dcmd
from pmdb.errors import CommandError, UsageError

# mdb's other `-o` options: accepted by mdb, meaningless for a post-mortem pmdb.
_UNSUPPORTED = frozenset({
    "adb", "array_mem_limit", "array_str_limit", "follow_exec_mode", "follow_fork_mode", "pager", "term",
    "ignoreeof", "repeatlast", "latest", "noctf", "nomods", "showlmid", "lmraw", "stop_on_bpt_nosym",
    "write_readback", "allow_io_access", "nostop",
})
_LABEL_WIDTH = 26  # mdb right-justifies ::set's labels to this width


@dcmd("set", usage="[+/-o opt]", needs_target=False)
def set_options(ctx: DcmdContext) -> None:
    """get/set debugger properties

    `-o autowrap` also wraps a format command's prefix, quoted text and bit diagrams at the
    page width, `+o autowrap` stops that (format characters wrap regardless). Options are a
    comma-separated list. With no arguments, shows which options are on.
    """
    if ctx.has_addr:
        raise UsageError("")
    opts, rest = ctx.options("o:")
    if not opts and not rest:
        shown = "autowrap" if ctx.session.autowrap else ""
        ctx.write(f"{'debugger options:':>{_LABEL_WIDTH}} {shown}\n")
        return
    disable = _plus_o(rest)
    if "o" in opts:
        _apply(ctx, str(opts["o"]), True)
    if disable is not None:
        _apply(ctx, disable, False)


def _plus_o(rest: list[str | int]) -> str | None:
    """The value of the last `+o NAME` pair (mdb's only non-dash option); anything else is a
    usage error."""
    value = None
    for i in range(0, len(rest), 2):
        if rest[i] != "+o" or i + 1 >= len(rest) or not isinstance(rest[i + 1], str):
            raise UsageError("")
        value = str(rest[i + 1])
    return value


def _apply(ctx: DcmdContext, options: str, enable: bool) -> None:
    """mdb_set_options: each `name[=value]` of a comma-separated list in turn."""
    for option in filter(None, options.split(",")):
        name, has_value, _value = option.partition("=")
        if name == "autowrap":
            if has_value:
                raise CommandError(f"option does not accept an argument -- {name}")
            ctx.session.autowrap = enable
        elif name in _UNSUPPORTED:
            raise CommandError(f"debugger option not supported by pmdb -- {name}")
        else:
            raise CommandError(f"invalid debugger option -- {name}")
