"""The interactive prompt, driven through a pseudo-terminal as a user would type at it."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time

from conftest import ROOT, Fixture


def _read_until(fd: int, needle: bytes, timeout: float = 30.0) -> bytes:
    buf = b""
    end = time.monotonic() + timeout
    while needle not in buf and time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
    return buf


def test_prompt_runs_statements_repeats_and_quits(seed: Fixture, tmp_path) -> None:
    leader, follower = pty.openpty()
    env = dict(os.environ, HOME=str(tmp_path), TERM="xterm", PMDB_DEBUG="1", PROMPT_TOOLKIT_NO_CPR="1")
    proc = subprocess.Popen([sys.executable, "-m", "pmdb", seed.core], stdin=follower, stdout=follower,
                            stderr=follower, cwd=ROOT, env=env, close_fds=True)
    os.close(follower)
    try:
        assert b">" in _read_until(leader, b">")
        os.write(leader, b"$c\r")
        first = _read_until(leader, b"clone3")
        assert b"ipnet_nicevent_task+" in first and b"taskq_thread+" in first
        os.write(leader, b"\r")  # an empty line repeats the last statement
        again = _read_until(leader, b"clone3")
        assert b"ipnet_nicevent_task+" in again
        os.write(leader, b"$q\r")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    assert (tmp_path / ".pmdb_history").read_text().count("$c") >= 1
