"""`::nm`: symbol tables in mdb's columns (Value|Size|Type|Bind|Other|Shndx|Name)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pmdb.commands.registry import DcmdContext, dcmd
from pmdb.errors import CommandError
from pmdb.mdb.text import num

if TYPE_CHECKING:
    from pmdb.formats.elf import RawSymbol

_TYPES = {0: "NOTY", 1: "OBJT", 2: "FUNC", 3: "SECT", 4: "FILE", 5: "COMM", 6: "TLS", 10: "FUNC"}
_BINDS = {0: "LOCL", 1: "GLOB", 2: "WEAK"}
_SHNDX = {0: "UNDEF", 0xFFF1: "ABS", 0xFFF2: "COMMON"}
HEADER = "Value              Size               Type  Bind  Other Shndx    Name\n"


def nm_row(sym: RawSymbol) -> str:
    """One ::nm row."""
    kind = _TYPES.get(sym.type, f"{sym.type}")
    bind = _BINDS.get(sym.bind, f"{sym.bind}")
    shndx = _SHNDX.get(sym.shndx, str(sym.shndx))
    return (f"0x{sym.value:016x}|0x{sym.size:016x}|{kind:<5}|{bind:<5}|0x{sym.other:<3x}|{shndx:<8}|"
            f"{sym.name}\n")


@dcmd("nm", usage="[-ghnv] [object]")
def nm(ctx: DcmdContext) -> None:
    """Print symbol tables: every loaded object's, one object's, or the symbol at an address.

    -g shows only global symbols, -n sorts by name, -v by value, -h omits the header.
    `addr::nm` shows the symbol covering addr.
    """
    opts, rest = ctx.options("ghnv")
    prog = ctx.program
    modules = prog.process.symbols.search_order
    if rest:
        name = str(rest[0])
        modules = [m for m in modules if m.symbols.module == name]
        if not modules:
            raise CommandError(f"object '{name}' is not loaded")
    if ctx.has_addr:
        sym = prog.symbol_at(ctx.addr)
        if sym is None:
            raise CommandError(f"{num(ctx.addr)}: no symbol corresponds to address")
        mod = prog.process.symbols.module_at(ctx.addr)
        rows = [r for r in mod.symbols.table() if r.name == sym.name and r.value == sym.address][:1]
    else:
        rows = [r for m in modules for r in m.symbols.table()]
    if opts.get("g"):
        rows = [r for r in rows if r.bind != 0]
    if opts.get("n"):
        rows.sort(key=lambda r: r.name)
    elif opts.get("v"):
        rows.sort(key=lambda r: r.value)
    if not opts.get("h"):
        ctx.write(HEADER)
    for r in rows:
        ctx.write(nm_row(r))
