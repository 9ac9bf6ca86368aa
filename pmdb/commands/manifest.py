"""Which module defines which dcmds and walkers, so the registry imports a command module only
when one of its commands is used (importing all of them costs more than a `$c`).

tests/test_registry_manifest.py checks this table against what the modules register.
"""

from __future__ import annotations

# (module, dcmd names with their aliases, walker names)
# A name two modules define belongs to the first listed: the Linux modules come first, as their
# ::status, ::findstack and thread walker serve kernel dumps and hand process cores on.
COMMAND_MODULES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("pmdb.commands.linux.status", ("status",), ()),
    ("pmdb.commands.linux.tasks", ("ps", "findstack"), ("task", "thread")),
    ("pmdb.commands.linux.stacks", ("stacks",), ()),
    ("pmdb.commands.linux.msgbuf", ("msgbuf",), ()),
    ("pmdb.commands.linux.cpus", ("cpuinfo",), ()),
    ("pmdb.commands.linux.modules", ("modinfo",), ("module",)),
    (
        "pmdb.commands.core.builtins",
        ("walk", "eval", "map", "grep", "echo", "radix", "$d", "$s", "$w", "quit", "$q", "$Q"),
        (),
    ),
    ("pmdb.commands.core.help", ("help", "dcmds", "walkers", "formats"), ()),
    ("pmdb.commands.core.vars", ("$v", "vars"), ()),
    ("pmdb.commands.core.printf", ("printf",), ()),
    ("pmdb.commands.core.print", ("print",), ()),
    ("pmdb.commands.core.lists", ("list", "array"), ()),
    ("pmdb.commands.core.typedefs", ("typedef",), ()),
    ("pmdb.commands.core.typeinfo", ("sizeof", "offsetof"), ()),
    ("pmdb.commands.core.options", ("set",), ()),
    ("pmdb.commands.core.source", ("$<", "$<<"), ()),
    ("pmdb.commands.core.dis", ("dis",), ()),
    ("pmdb.commands.core.fpregs", ("fpregs",), ()),
    ("pmdb.commands.core.nm", ("nm",), ()),
    ("pmdb.commands.core.regs", ("regs", "$r"), ()),
    ("pmdb.commands.core.stack", ("stack", "$c", "stackregs", "$C", "findstack"), ()),
    ("pmdb.commands.core.threads", ("lwpid", "$l", "lwpids", "$L"), ("thread",)),
    ("pmdb.commands.core.whereis", ("whereis",), ()),
    ("pmdb.commands.userspace.mappings", ("mappings", "$m"), ()),
    ("pmdb.commands.userspace.status", ("status",), ()),
    ("pmdb.commands.userspace.whatis", ("whatis",), ()),
)
