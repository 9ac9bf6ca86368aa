"""The registry's manifest (which module defines which commands) matches the modules themselves."""

from __future__ import annotations

import importlib

from pmdb.commands.manifest import COMMAND_MODULES
from pmdb.commands.registry import Registry, default_registry


def test_manifest_lists_exactly_what_each_module_registers() -> None:
    for module, dcmds, walkers in COMMAND_MODULES:
        reg = Registry()
        reg.add_module(importlib.import_module(module))
        assert sorted(reg.dcmds) == sorted(dcmds), module
        assert sorted(reg.walkers) == sorted(walkers), module


def test_a_command_is_imported_only_when_used() -> None:
    reg = default_registry()
    assert reg.has_dcmd("print") and not reg._dcmds  # nothing imported yet
    assert reg.dcmd("stack") is reg.dcmd("$c")
    assert "print" not in reg._dcmds  # ::print's module was not needed
    assert len(reg.dcmds) > 40  # a listing imports them all
