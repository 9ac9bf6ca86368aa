"""Shared test set-up: real fixture cores and kernel dumps (built on demand), their ground
truth, and pmdb runs.

Under CI (CI=true) a fixture that cannot be built fails the test; elsewhere it skips it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))

import make_cores  # noqa: E402 - lives beside the fixtures it builds

CASES = make_cores.CASES
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class Fixture:
    """One built case: its directory, core, binary and gdb/readelf/objdump ground truth."""

    name: str
    dir: Path
    truth: dict

    @property
    def core(self) -> str:
        return str(self.dir / "core")

    @property
    def prog(self) -> str:
        return str(self.dir / "prog")


@cache
def load_fixture(name: str) -> Fixture:
    """Build (or find in the cache) one fixture case."""
    try:
        d = make_cores.ensure(name)
    except Exception as e:  # any build failure: fatal in CI, a skip on a developer machine
        if IN_CI:
            pytest.fail(f"fixture {name} cannot be built: {e}")
        pytest.skip(f"fixture {name} cannot be built: {e}")
    return Fixture(name, d, json.loads((d / "truth.json").read_text()))


@pytest.fixture(params=CASES)
def any_case(request: pytest.FixtureRequest) -> Fixture:
    """Every fixture case in turn."""
    return load_fixture(request.param)


@pytest.fixture
def seed() -> Fixture:
    """The story's core: the -O2 seed program."""
    return load_fixture("seed")


@dataclass(frozen=True)
class KernelFixture:
    """The kernel panic fixture (tests/fixtures/kernel): its directory and truth.json.

    Its dumps are named as in truth.json: elf, kdump-zlib-flat, kdump-zlib, kdump-lzo-d31.
    """

    dir: Path
    truth: dict

    @property
    def dump_names(self) -> list[str]:
        """Every dump's name, in truth.json's order."""
        return [d["name"] for d in self.truth["dumps"]]

    def dump(self, name: str) -> str:
        """The path of the dump called `name`."""
        for d in self.truth["dumps"]:
            if d["name"] == name:
                return str(self.dir / d["file"])
        raise KeyError(name)


@cache
def load_kernel_fixture() -> KernelFixture:
    """Build (or find in the cache) the kernel dumps; tests/fixtures/kernel/make_vmcores.py."""
    try:
        sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "kernel"))
        import make_vmcores

        d = make_vmcores.ensure()
    except Exception as e:  # as load_fixture: fatal in CI, a skip on a machine that cannot build it
        if IN_CI:
            pytest.fail(f"kernel fixture cannot be built: {e}")
        pytest.skip(f"kernel fixture cannot be built: {e}")
    return KernelFixture(d, json.loads((d / "truth.json").read_text()))


@pytest.fixture
def kernel() -> KernelFixture:
    """The kernel panic's dumps and their ground truth."""
    return load_kernel_fixture()


@dataclass(frozen=True)
class Run:
    """What the pmdb command printed and returned."""

    out: str
    err: str
    status: int


def run_pmdb(*args: str, stdin: str | None = None) -> Run:
    """Run the pmdb command line in a subprocess, as a user would."""
    env = dict(os.environ, PMDB_DEBUG="1")  # a bug shows its traceback (and fails the test)
    done = subprocess.run(
        [sys.executable, "-m", "pmdb.cli.main", *args],
        input=stdin, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env,
    )
    return Run(done.stdout, done.stderr, done.returncode)


_PEAK_RSS_WRAPPER = (
    "import re, sys\n"
    "from pmdb.cli.main import main\n"
    "try:\n"
    "    status = main(sys.argv[1:])\n"
    "finally:\n"
    "    hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)\n"
    "    sys.stderr.write(f'peak-rss-kib {hwm}\\n')\n"
    "sys.exit(status)\n"
)


def run_pmdb_peak_rss(*args: str) -> tuple[Run, int]:
    """Run the pmdb command line and return its peak RSS in KiB, read from its own VmHWM (a
    child's ru_maxrss would count the pages it shared with this process before exec)."""
    env = dict(os.environ, PMDB_DEBUG="1")
    done = subprocess.run([sys.executable, "-c", _PEAK_RSS_WRAPPER, *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env=env)
    err, _, last = done.stderr.rstrip("\n").rpartition("\n")
    peak = int(last.split()[1]) if last.startswith("peak-rss-kib ") else -1
    return Run(done.stdout, err + "\n" if err else "", done.returncode), peak
