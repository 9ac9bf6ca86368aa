"""dcmds for process targets (core files of user programs)."""
