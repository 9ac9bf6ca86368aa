"""The story of DEVELOPERS.md on a real core: build the seed crash, then investigate it as an
mdb user would, printing each command and what pmdb answers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))

from make_cores import ensure  # noqa: E402 - the fixture builder lives with the tests


def investigate(dump: Path, steps: list[str]) -> int:
    """Run each step on `dump` as its own pmdb command, printed as typed; the worst status."""
    print(f"$ pmdb {dump}")
    worst = 0
    for step in steps:
        print(f"> {step}", flush=True)
        done = subprocess.run([sys.executable, "-m", "pmdb", "-q", str(dump), "-e", step], check=False)
        worst = max(worst, done.returncode)
    return worst


def kernel_fixture() -> Path | None:
    """The newest complete kernel panic fixture in the cache (tests/fixtures/kernel builds it:
    the demo only uses one that is there)."""
    root = Path(os.environ.get("PMDB_FIXTURE_CACHE") or Path.home() / ".cache" / "pmdb" / "fixtures").expanduser()
    built = sorted(root.glob("kernel-*/.complete"), key=lambda p: p.stat().st_mtime)
    return built[-1].parent if built else None


def main() -> int:
    """Build the seed core (cached) and run the investigation, then the same on the kernel
    panic's dump when its fixture has been built; returns pmdb's worst status."""
    case = ensure("seed")
    core = case / "core"
    truth = json.loads((case / "truth.json").read_text())
    pc = truth["threads"][0]["frames"][0]["pc"]
    fault = f"ipnet_nicevent_task+{pc - truth['symbols']['ipnet_nicevent_task']['addr']:#x}"
    reg = truth["bad_reg"]  # which register the faulting load used, as objdump shows it
    worst = investigate(core, ["::status", "$c", "<rip/p", f"{fault}::dis", f"<{reg}=K", f"<{reg}/p"])
    kernel = kernel_fixture()
    if kernel is not None:
        ktruth = json.loads((kernel / "truth.json").read_text())
        reg = ktruth["story"]["bad_reg"]
        print("\nThe same story in the kernel: a panic, read with no debuginfo package.\n")
        worst = max(worst, investigate(kernel / "vmcore.kdump-lzo-d31",
                                       ["::status", "$c", "<rip/p", "<rip::dis", f"<{reg}=K", f"<{reg}/p"]))
    return 0 if worst <= 1 else worst


if __name__ == "__main__":
    sys.exit(main())
