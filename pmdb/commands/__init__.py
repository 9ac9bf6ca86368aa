"""dcmds and walkers, grouped by the targets they serve (core/ for every target)."""
