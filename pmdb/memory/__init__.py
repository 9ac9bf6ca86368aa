"""Address spaces: the one interface through which all target memory is read."""
