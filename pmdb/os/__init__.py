"""OS personalities: what a dump means for the system it came from (processes today)."""
