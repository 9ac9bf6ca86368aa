"""The name index of a file's DWARF, built in a process of its own: the command that found its
type without the index (dwarf_lookup) answers at once, and the next session finds the index
cached.

`start` runs `python -m pmdb.debuginfo.index_builder FILE BUILD-ID` detached (a session of
its own, no terminal, a lower priority), as git runs `gc --auto`, unless a builder is already
at work on that build-id: a lock file beside the index names its pid. The builder writes the
index as dwarf_index.load_or_build does (atomically, with the DWARF's fingerprint), so a
reader sees the whole index or none. PMDB_BACKGROUND_INDEX=0 in the environment turns this
off: lookups then go on finding names one by one, and build the index when that gets costly.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

from pmdb.debuginfo.dwarf_index import cache_dir, load_or_build

LOCK_SUFFIX = ".building"
STALE_AFTER = 60.0  # seconds after which a lock without a live pid is another run's leftover
NICENESS = 10
_started: list[subprocess.Popen] = []  # builders this process started (kept: they outlive it)


def lock_path(key: str) -> Path:
    """The lock a builder of build-id `key`'s index holds while it works."""
    return cache_dir() / f"{key}{LOCK_SUFFIX}"


def enabled() -> bool:
    """Whether indexes may be built in the background (PMDB_BACKGROUND_INDEX is not 0)."""
    return os.environ.get("PMDB_BACKGROUND_INDEX", "1") != "0"


def start(path: str, key: str) -> bool:
    """Start a builder of `path`'s index (cached under build-id `key`) unless one already works
    on it or background builds are off; whether one started. (A builder that finds the index
    cached, and valid, has nothing to do.)"""
    if not enabled() or not os.path.isfile(path):
        return False
    fd = _lock(key)
    if fd is None:
        return False
    root = str(Path(__file__).resolve().parents[2])  # where this pmdb is imported from
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH")))))
    try:
        child = subprocess.Popen([sys.executable, "-m", __name__, path, key], env=env, start_new_session=True,
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        os.close(fd)
        _unlock(key)
        return False
    _started.append(child)
    with os.fdopen(fd, "w") as lock:  # the lock names its builder (a builder done already unlinked it)
        lock.write(str(child.pid))
    return True


def wait(key: str) -> None:
    """Wait while a builder works on `key`'s index (whose result is then cached): a process that
    needs the whole index waits for the build under way rather than doing it again."""
    lock = lock_path(key)
    while lock.exists() and not _stale(lock):
        time.sleep(0.02)


def _lock(key: str) -> int | None:
    """Take the build lock of `key` (clearing a stale one): its open file, or None when another
    process holds it (or it cannot be made)."""
    lock = lock_path(key)
    for _ in range(2):
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
            return os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            if not _stale(lock):
                return None
            _unlock(key)
        except OSError:
            return None
    return None


def _stale(lock: Path) -> bool:
    """Whether a lock file is left over: its builder has exited (this process's builders are
    asked, as one killed would linger as a zombie), or it never named one and is old."""
    try:
        text = lock.read_text().strip()
        age = time.time() - lock.stat().st_mtime
    except OSError:
        return False
    if not text.isdigit():
        return age > STALE_AFTER
    pid = int(text)
    ours = next((child for child in _started if child.pid == pid), None)
    if ours is not None:
        return ours.poll() is not None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, though not ours to signal
        return False
    return False


def _unlock(key: str) -> None:
    try:
        lock_path(key).unlink()
    except OSError:
        pass


def main(argv: list[str]) -> int:
    """The builder: index FILE's DWARF into the cache under BUILD-ID, then drop the lock that
    `start` took for it."""
    from pmdb.formats.dwarf import open_dwarf
    from pmdb.formats.elf import ElfFile

    path, key = argv
    try:
        dwarf = open_dwarf(ElfFile(path))
        if dwarf is not None:
            load_or_build(dwarf, key)
    except Exception:  # a cache that is not made is no error: the lookups go on without it
        return 1
    finally:
        _unlock(key)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(OSError):  # a builder at the caller's priority is still a builder
        os.nice(NICENESS)
    sys.exit(main(sys.argv[1:]))
