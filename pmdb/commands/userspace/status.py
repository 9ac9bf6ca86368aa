"""`::status` for a process core: what is debugged, the process, and the signal that ended it."""

from __future__ import annotations

from pmdb.commands.registry import DcmdContext, dcmd
from pmdb.dumps import DumpKind
from pmdb.formats.elfnotes import PrPsInfo, SigInfo
from pmdb.os.signals import signal_text


def status_reason(sig: SigInfo | None, cursig: int) -> str:
    """The `status:` line's text: the signal, who sent it or the fault address."""
    signo = sig.signo if sig else cursig
    if not signo:
        return "process terminated with exit status 0"
    text = f"process terminated by {signal_text(signo)}"
    if sig is None:
        return text
    if sig.code <= 0 and sig.sender_pid is not None:
        text += f", pid={sig.sender_pid} uid={sig.sender_uid}"
    elif sig.addr is not None:
        text += f", addr={sig.addr:x}"
    return text + (f" code={sig.code}" if sig.code else "")


@dcmd("status", needs_target=False)
def status(ctx: DcmdContext) -> None:
    """Print a summary of the dump: what it is, the process, and why it died.

    For a core file: the command name, the executable, the process id, the initial argv,
    and the terminating signal with the fault address (or the sender) and the signal code.
    """
    if ctx.session.program is None:
        ctx.write("debugging empty target\n")
        return
    prog = ctx.program
    if prog.dump.kind is DumpKind.RAW_FILE:
        ctx.write(f"debugging file '{prog.dump.path}' (object file)\n")
        return
    ps: PrPsInfo | None = prog.dump.notes.get("psinfo")
    sig: SigInfo | None = prog.dump.notes.get("siginfo")
    main = prog.process.main
    fname = ps.fname if ps else (main.name if main else "")
    ctx.write(f"debugging core file of {fname} (64-bit) from unknown machine\n" if fname else
              "debugging core file\n")
    if main is not None:
        ctx.write(f"file: {main.path}\n")
    ctx.write(f"process id: {prog.pid}\n")
    if ps is not None:
        ctx.write(f"initial argv: {ps.psargs.rstrip()}\n")
    ctx.write("threading model: native threads\n")
    cursig = prog.crashed_thread.signal if prog.crashed_thread else 0
    ctx.write(f"status: {status_reason(sig, cursig)}\n")
