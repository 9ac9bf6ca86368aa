"""The command line: argument handling, batch mode and the interactive prompt."""
