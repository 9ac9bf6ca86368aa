"""The interactive prompt: `> ` with history and dcmd-name completion (prompt_toolkit).

An empty line repeats the last command at the next address, as in mdb (the evaluator knows
it is interactive); `$q`, `::quit` or end of input leaves.
"""

from __future__ import annotations

import os
import shutil
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

    session.page_width = shutil.get_terminal_size().columns  # mdb wraps at the terminal's width
    ev = Evaluator(session, sys.stdout.write, say, say, input_name=None)
    while True:
        try:
            line = prompt.prompt("> ")
        except KeyboardInterrupt:
            continue
        except EOFError:
            return 0
        try:
            ev.run(line + "\n")  # the newline is a statement of its own when the line is empty
        except Quit:
            return 0
        sys.stdout.flush()
