"""The story of DEVELOPERS.md on a real core: build the seed crash, then investigate it as an
mdb user would, printing each command and what pmdb answers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))

from make_cores import ensure  # noqa: E402 - the fixture builder lives with the tests


def main() -> int:
    """Build the seed core (cached) and run the investigation; returns pmdb's worst status."""
    case = ensure("seed")
    core = case / "core"
    truth = json.loads((case / "truth.json").read_text())
    pc = truth["threads"][0]["frames"][0]["pc"]
    fault = f"ipnet_nicevent_task+{pc - truth['symbols']['ipnet_nicevent_task']['addr']:#x}"
    reg = truth["bad_reg"]  # which register the faulting load used, as objdump shows it
    steps = ["::status", "$c", "<rip/p", f"{fault}::dis", f"<{reg}=K", f"<{reg}/p"]
    print(f"$ pmdb {core}")
    worst = 0
    for step in steps:
        print(f"> {step}", flush=True)
        done = subprocess.run([sys.executable, "-m", "pmdb", "-q", str(core), "-e", step], check=False)
        worst = max(worst, done.returncode)
    return 0 if worst <= 1 else worst


if __name__ == "__main__":
    sys.exit(main())
