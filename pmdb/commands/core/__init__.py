"""dcmds and walkers every target has."""
