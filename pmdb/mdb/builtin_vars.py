"""The variables mdb defines itself (mdb_create) and those a process target exports.

Built-ins, in mdb's creation order: `.` (dot), `0` (last value printed by a format), `1`
and `2` (most recent and previous offsets), `9` (last `$<` count), `b` `d` `e` `m` `t` (the
executable's data base and size, entry point, ELF magic, text size), `_`, `hits` (event
matches: none post-mortem) and the read-only `thread` (the representative thread's id).
A process target then exports its registers as variables, in the order of its register
table's own hash iteration (pt_activate), with the narrower views mdb names (`eax`, `r8d`,
`ah`, `r15l`, from the arch's register views): read from the current thread at each use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pmdb.errors import CommandError
from pmdb.mdb.variables import Getter, Setter, VariableTable

if TYPE_CHECKING:
    from pmdb.formats.elf import ElfFile
    from pmdb.mdb.session import Session

PT_LOAD, PF_X, PF_W = 1, 1, 2

def install(session: Session) -> VariableTable:
    """A new table holding mdb's built-ins and, with a target, its exported values and registers."""
    table = VariableTable()
    _builtins(table, session)
    if session.program is not None:
        _export_elf(table, session)
        _export_registers(table, session)
    return table


def _builtins(table: VariableTable, session: Session) -> None:
    def set_dot(value: int) -> None:
        session.dot = value

    def set_offset(value: int) -> None:  # `1` keeps the previous offset in `2` (roff_disc)
        table.insert("2", table["1"])
        one.stored = value

    table.insert(".", persistent=True, getter=lambda: session.dot, setter=set_dot)
    table.insert("0", persistent=True)
    one = table.insert("1", persistent=True, setter=set_offset)
    for name in ("2", "9", "b", "d", "e", "m", "t", "_", "hits"):
        table.insert(name, persistent=True)
    table.insert("thread", persistent=True, readonly=True,
                 getter=lambda: session.thread.tid if session.thread is not None else 0)


def _export_elf(table: VariableTable, session: Session) -> None:
    """mdb_tgt_elf_export: b, d, e, m, t from the executable's ELF header and PT_LOAD headers."""
    elf = _executable_elf(session)
    if elf is None:
        return
    loads = [ph for ph in elf.program_headers() if ph.type == PT_LOAD]
    text = next((ph for ph in loads if ph.flags & PF_X), None)
    data = next((ph for ph in loads if ph.flags & PF_W), None)
    table["e"] = int.from_bytes(elf.bytes_at(24, 8), "little")
    table["m"] = int.from_bytes(elf.bytes_at(0, 4), "little")
    table["t"] = text.memsz if text else 0
    table["b"] = data.vaddr if data else 0
    table["d"] = data.memsz if data else 0


def _executable_elf(session: Session) -> ElfFile | None:
    program = session.program
    if program is None:
        return None
    main = program.process.main
    return program.process.elf_of(main) if main is not None else None


def _export_registers(table: VariableTable, session: Session) -> None:
    """One variable per register view, inserted in the order mdb's own register hash yields them."""
    assert session.program is not None
    register_views = session.program.arch.register_views
    order = VariableTable()
    for name, *_ in register_views:
        order.insert(name)
    views = {name: (reg, shift, bits) for name, reg, shift, bits in register_views}
    for var in order:
        reg, shift, bits = views[var.name]
        table.insert(var.name, persistent=True, getter=_register_getter(session, reg, shift, bits),
                     setter=_register_setter(var.name))


def _register_getter(session: Session, reg: str, shift: int, bits: int) -> Getter:
    def get() -> int:
        thread = session.thread
        value = thread.registers.get(reg, 0) if thread is not None else 0
        return (value >> shift) & ((1 << bits) - 1)
    return get


def _register_setter(name: str) -> Setter:
    def refuse(value: int) -> None:
        raise CommandError(f"failed to modify %{name} register: target is a core file")
    return refuse
