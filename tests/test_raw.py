"""`pmdb -f FILE`: any file as a target whose address N is its byte N (mdb's raw file mode)."""

from __future__ import annotations

from pathlib import Path

from conftest import run_pmdb


def _file(tmp_path: Path) -> str:
    path = tmp_path / "blob"
    path.write_bytes(bytes(range(0x20)) + b"hello\0")
    return str(path)


def test_status_names_the_file(tmp_path: Path) -> None:
    path = _file(tmp_path)
    r = run_pmdb("-f", path, "-e", "::status")
    assert (r.out, r.status) == (f"debugging file '{path}' (object file)\n", 0)


def test_memory_is_the_file(tmp_path: Path) -> None:
    r = run_pmdb("-f", _file(tmp_path), "-e", "4/X; 0x20/s")
    # bytes 4..7 are 04 05 06 07: little-endian 0x07060504
    assert r.out == f"{'4:':<16}{'7060504':<16}\n" + f"{'0x20:':<16}hello\n"


def test_reading_past_the_end_fails(tmp_path: Path) -> None:
    r = run_pmdb("-f", _file(tmp_path), "-e", "0x100/X")
    assert r.err == "pmdb: failed to read data from target: no mapping for address\n"
    assert r.status == 1


def test_no_target_status() -> None:
    assert run_pmdb("-e", "::status").out == "debugging empty target\n"


def test_dump_and_raw_file_together_is_a_usage_error(tmp_path: Path) -> None:
    path = _file(tmp_path)
    r = run_pmdb(path, "-f", path, "-e", "::status")
    assert (r.err, r.status) == ("pmdb: -f takes the file to debug; give no dump as well\n", 2)
