"""Finding the files a core names: sysroot, search path, build-id checks, separate debug files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from conftest import Fixture, load_fixture, run_pmdb


def _objcopy(*args: str) -> None:
    subprocess.run(["objcopy", *args], check=True, timeout=60)


def test_missing_mapped_files_are_warned_about_once(seed: Fixture, tmp_path: Path) -> None:
    r = run_pmdb(seed.core, "--sysroot", str(tmp_path), "-e", "<rip/X")
    warnings = [ln for ln in r.err.splitlines() if "warning" in ln]
    assert f"pmdb: warning: mapped file {seed.prog} not found: its pages are not readable" in warnings
    assert len(warnings) == len(set(warnings))
    assert r.err.splitlines()[-1] == (
        f"pmdb: failed to read data from target: address is mapped from a file that was not found: {seed.prog}")
    assert r.status == 1


def test_sysroot_finds_the_files_of_another_machine(seed: Fixture, tmp_path: Path) -> None:
    for mapped in {m["objfile"] for m in seed.truth["mappings"] if m["objfile"].startswith("/")}:
        dest = tmp_path / mapped.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(mapped, dest)
    r = run_pmdb(seed.core, "--sysroot", str(tmp_path), "-e", "$c; <rip/i")
    assert r.status == 0, r.err
    assert "warning" not in r.err
    assert r.out.startswith("ipnet_nicevent_task+")


def test_search_path_finds_files_by_base_name(seed: Fixture, tmp_path: Path) -> None:
    shutil.copyfile(seed.prog, tmp_path / "prog")
    r = run_pmdb(seed.core, "--sysroot", "/nonexistent", "--search-path", str(tmp_path), "-e", "<rip/i")
    assert r.out.split(":")[1].strip().startswith("movq   0x8(%")
    assert "mapped file " + seed.prog not in r.err


def test_a_different_file_at_the_mapped_path_is_reported(seed: Fixture, tmp_path: Path) -> None:
    other = load_fixture("divzero")
    dest = tmp_path / seed.prog.lstrip("/")
    dest.parent.mkdir(parents=True)
    shutil.copyfile(other.prog, dest)
    r = run_pmdb(seed.core, "--sysroot", str(tmp_path), "-e", "::status")
    ours = next(o["build_id"] for o in seed.truth["objfiles"] if o["filename"] == seed.prog)
    theirs = next(o["build_id"] for o in other.truth["objfiles"] if o["filename"] == other.prog)
    assert (f"pmdb: warning: mapped file {dest} does not match the core: build-id {theirs} "
            f"is not the core's {ours}") in r.err.splitlines()


def test_debug_file_found_by_build_id_under_debug_dir(tmp_path: Path) -> None:
    fx = load_fixture("seed_stripped")
    build_id = next(o["build_id"] for o in fx.truth["objfiles"] if o["filename"] == fx.prog)
    dest = tmp_path / ".build-id" / build_id[:2] / f"{build_id[2:]}.debug"
    dest.parent.mkdir(parents=True)
    _objcopy("--only-keep-debug", str(fx.dir / "prog.unstripped"), str(dest))
    without = run_pmdb(fx.core, "-e", "$c")
    assert without.out.startswith("0x")
    r = run_pmdb(fx.core, "--debug-dir", str(tmp_path), "-e", "$c")
    assert r.status == 0, r.err
    assert [ln.split("+")[0] for ln in r.out.splitlines()[:2]] == ["ipnet_nicevent_task", "taskq_thread"]


def test_debug_file_found_by_debuglink(tmp_path: Path) -> None:
    fx = load_fixture("seed_stripped")
    debug = tmp_path / "prog.debug"
    _objcopy("--only-keep-debug", str(fx.dir / "prog.unstripped"), str(debug))
    linked = tmp_path / "prog"
    _objcopy(f"--add-gnu-debuglink={debug}", fx.prog, str(linked))
    r = run_pmdb(fx.core, str(linked), "-e", "$c")
    assert r.status == 0, r.err
    assert r.out.splitlines()[0].startswith("ipnet_nicevent_task+")
