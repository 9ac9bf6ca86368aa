"""The interactive prompt: `> ` with history and dcmd-name completion (prompt_toolkit).

An empty line repeats the last statement, as in mdb; `$q`, `::quit` or end of input leaves.
"""

from __future__ import annotations

import os
import sys

from pmdb.commands.registry import Quit
from pmdb.mdb.evaluator import Evaluator
from pmdb.mdb.session import Session

HISTORY_FILE = os.path.expanduser("~/.pmdb_history")


def interactive(session: Session) -> int:
    """Read statements at a prompt until the user quits; always returns 0."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import WordCompleter
    from prompt_toolkit.history import FileHistory

    words = ["::" + n for n in session.registry.dcmds if not n.startswith(("$", ":"))]
    prompt = PromptSession(history=FileHistory(HISTORY_FILE), completer=WordCompleter(words, sentence=True))
    def say(line: str) -> None:
        sys.stdout.flush()
        sys.stderr.write(line + "\n")

    ev = Evaluator(session, sys.stdout.write, say, say)
    while True:
        try:
            line = prompt.prompt("> ")
        except KeyboardInterrupt:
            continue
        except EOFError:
            return 0
        if not line.strip():
            line = session.last_statement
            if not line:
                continue
        else:
            session.last_statement = line
        try:
            ev.run(line)
        except Quit:
            return 0
        sys.stdout.flush()
