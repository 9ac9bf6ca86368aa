"""Source lines, inline chains and frame variables for run-time addresses, across a target's
loaded objects.

For a pc this finds the object mapped there, the file holding its DWARF (the separate
debug file, else the object itself), the load bias, the unit and the function, and goes on
from there; every object's DWARF is opened the first time one of its addresses is asked
about. Entry values (DW_OP_entry_value) are resolved as gdb resolves them: through the
call site in the caller whose return address the frame returns to, when that call site is
known to call this frame's function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from pmdb.debuginfo.dies import (
    MAX_DEPTH,
    AT_abstract_origin,
    AT_call_origin,
    AT_call_return_pc,
    AT_call_tail_call,
    AT_call_target,
    AT_call_value,
    AT_GNU_call_site_target,
    AT_GNU_call_site_value,
    AT_GNU_tail_call,
    AT_location,
    AT_low_pc,
    Die,
    DieError,
    TAG_call_site,
    TAG_call_site_parameter,
    TAG_formal_parameter,
    TAG_GNU_call_site,
    TAG_GNU_call_site_parameter,
    TAG_inlined_subroutine,
    TAG_lexical_block,
    Unit,
)
from pmdb.debuginfo.dwarf_expr import (
    EntryValueTooDeep,
    ExprContext,
    LocationError,
    Memory,
    Register,
    Value,
    locate,
    sleb128,
    uleb128,
)
from pmdb.debuginfo.dwarf_units import ERRORS, DwarfError, Function, ObjectDwarf, guard, linkage_name
from pmdb.debuginfo.lines import LineTable, SourceLine, line_table
from pmdb.debuginfo.scopes import InlineLevel, inline_chain, scope_chain
from pmdb.debuginfo.source_files import SourceFiles
from pmdb.debuginfo.variables import (
    FrameState,
    ScopeVariables,
    Variable,
    expression_context,
    scope_variables,
    variable,
    variable_dies,
)
from pmdb.errors import PmdbError
from pmdb.formats.dwarf import has_dwarf

if TYPE_CHECKING:
    from pmdb.arch import Arch
    from pmdb.debuginfo.symbols import Symbol
    from pmdb.formats.elf import ElfFile

MAX_ENTRY_DEPTH = 8  # callers followed for an entry value that is itself an entry value
_CALL_SITES = frozenset((TAG_call_site, TAG_GNU_call_site))
_CALL_PARAMS = frozenset((TAG_call_site_parameter, TAG_GNU_call_site_parameter))
_NESTING = frozenset((TAG_lexical_block, TAG_inlined_subroutine))
DW_OP_reg0, DW_OP_reg31, DW_OP_regx = 0x50, 0x6F, 0x90
DW_OP_breg0, DW_OP_breg31, DW_OP_bregx = 0x70, 0x8F, 0x92


class LoadedObjectLike(Protocol):
    """What SourceInfo needs of a loaded object (pmdb.os.userspace.LoadedObject)."""

    path: str
    bias: int


class ObjectMap(Protocol):
    """Where SourceInfo finds objects and their files (pmdb.os.userspace.UserProcess)."""

    def object_at(self, addr: int) -> LoadedObjectLike | None: ...
    def elf_of(self, obj: LoadedObjectLike) -> ElfFile | None: ...
    def debug_elf_of(self, obj: LoadedObjectLike) -> ElfFile | None: ...


class FrameLike(Protocol):
    """What SourceInfo needs of a frame (pmdb.unwind.frames.Frame)."""

    pc: int
    registers: dict[str, int]
    cfa: int | None
    exact_pc: bool
    signal_frame: bool

    @property
    def lookup_pc(self) -> int: ...


@dataclass(frozen=True)
class Module:
    """An object with DWARF: its load bias and its DWARF."""

    bias: int
    dwarf: ObjectDwarf


@dataclass(frozen=True)
class Place:
    """A run-time pc's function, with the link-time pc inside it."""

    module: Module
    function: Function
    pc: int


@dataclass(frozen=True)
class FrameInfo:
    """A frame's functions (innermost first; the last is the frame's own) with their variables,
    and what could not be read on the way (a bad line table, ...)."""

    scopes: tuple[ScopeVariables, ...]
    errors: tuple[str, ...]


class _StackMemo:
    """What was found for one stack: each frame's arguments (or the DwarfError reading them)
    and entry values by (frame index, register); it holds the frames so their id stays theirs."""

    def __init__(self, frames: Sequence[FrameLike]) -> None:
        self.frames = frames
        self.arguments: dict[int, tuple[Variable, ...] | DwarfError | None] = {}
        self.entries: dict[tuple[int, int], int | None] = {}


class SourceInfo:
    """Lines, inline chains and variables of a target's objects, opened lazily and cached."""

    def __init__(self, objects: ObjectMap, read: Callable[[int, int], bytes], arch: Arch,
                 lookup_symbol: Callable[[str], Symbol | None], source_path: Sequence[str] = ()) -> None:
        self.objects = objects
        self.read = read
        self.arch = arch
        self.lookup_symbol = lookup_symbol
        self.files = SourceFiles(source_path)
        self._modules: dict[str, Module | None] = {}
        self._tables: dict[tuple[int, int], LineTable | DwarfError] = {}
        self._call_sites: dict[tuple[int, int], dict[int, Die]] = {}
        self._call_values: dict[tuple[int, int, int], bytes | None] = {}
        self._params: dict[tuple[int, int], list[Die]] = {}
        self._memos: dict[int, _StackMemo] = {}

    # Objects and functions ----------------------------------------------------------

    def module_at(self, pc: int) -> Module | None:
        """The object mapped at `pc`, when one of its files has DWARF."""
        obj = self.objects.object_at(pc)
        if obj is None:
            return None
        if obj.path not in self._modules:
            elf = next((e for e in (self.objects.debug_elf_of(obj), self.objects.elf_of(obj))
                        if e is not None and has_dwarf(e)), None)
            self._modules[obj.path] = Module(obj.bias, ObjectDwarf(elf, elf.path)) if elf is not None else None
        return self._modules[obj.path]

    def place(self, pc: int) -> Place | None:
        """The DWARF function covering run-time `pc` (None: no DWARF there). DwarfError when the
        DWARF that should say is malformed."""
        module = self.module_at(pc)
        if module is None:
            return None
        fn = module.dwarf.function_at(pc - module.bias)
        return Place(module, fn, pc - module.bias) if fn is not None else None

    def line_table(self, dwarf: ObjectDwarf, unit: Unit) -> LineTable:
        """The unit's line table (decoded once; a DwarfError once is a DwarfError every time)."""
        key = (id(dwarf), unit.offset)
        table = self._tables.get(key)
        if table is None:
            try:
                table = self._tables[key] = line_table(dwarf, unit)
            except DwarfError as e:
                self._tables[key] = e
                raise
        if isinstance(table, DwarfError):
            raise table
        return table

    # Lines ----------------------------------------------------------------------------

    def line_at(self, pc: int) -> SourceLine | None:
        """The source line of the instruction at run-time `pc` (None: no line information)."""
        module = self.module_at(pc)
        if module is None:
            return None
        unit = module.dwarf.unit_at(pc - module.bias)
        return self.line_table(module.dwarf, unit).at(pc - module.bias) if unit is not None else None

    def inline_chain(self, pc: int) -> list[InlineLevel]:
        """The functions executing at run-time `pc`, innermost first (empty: no DWARF function)."""
        place = self.place(pc)
        if place is None:
            return []
        return inline_chain(place.function, place.pc, self.line_table(place.module.dwarf, place.function.unit))

    def source_text(self, line: SourceLine) -> str | None:
        """The text of a source line, when its file is found."""
        return self.files.text(line)

    # Frames -----------------------------------------------------------------------------

    def arguments(self, frames: Sequence[FrameLike], index: int) -> tuple[Variable, ...] | None:
        """The parameters of frame `index`'s own function and their values (None: no DWARF
        function there). DwarfError when the function's DWARF is malformed.

        The first call for a stack evaluates every frame's parameters, outermost first, so
        that an entry value (found through the caller's call site, which may itself pass an
        entry value) is looked up once per frame, not once per frame below it.
        """
        memo = self._memo(frames)
        if not memo.arguments:
            for i in reversed(range(len(frames))):
                try:
                    memo.arguments[i] = self._arguments(frames, i)
                except DwarfError as e:
                    memo.arguments[i] = e
        found = memo.arguments[index]
        if isinstance(found, DwarfError):
            raise found
        return found

    def _arguments(self, frames: Sequence[FrameLike], index: int) -> tuple[Variable, ...] | None:
        found = self._frame_state(frames, index, 0)
        if found is None:
            return None
        place, state = found
        fn = place.function
        key = (id(place.module.dwarf), fn.die.offset)
        params = self._params.get(key)
        if params is None:
            params = self._params[key] = [d for d in variable_dies(fn, fn.die) if d.tag == TAG_formal_parameter]
        ctx = expression_context(fn, state)
        return tuple(variable(fn, d, state, ctx) for d in params)

    def frame_info(self, frames: Sequence[FrameLike], index: int) -> FrameInfo | None:
        """Frame `index`'s functions (with inlined ones) and their variables (None: no DWARF
        function there). DwarfError when the function's DWARF is malformed."""
        self.arguments(frames, index)  # the stack's entry values, outermost first
        found = self._frame_state(frames, index, 0)
        if found is None:
            return None
        place, state = found
        fn = place.function
        errors: list[str] = []
        chain = scope_chain(fn, place.pc)
        try:
            levels = inline_chain(fn, place.pc, self.line_table(place.module.dwarf, fn.unit))
        except DwarfError as e:
            errors.append(str(e))
            levels = []
        groups: list[tuple[Die, list[Die]]] = []
        for die in chain:
            if die is fn.die or die.tag == TAG_inlined_subroutine:
                groups.append((die, [die]))
            else:
                groups[-1][1].append(die)
        lines = [lv.line for lv in levels] if len(levels) == len(groups) else [None] * len(groups)
        scopes = [(func, blocks[::-1], line) for (func, blocks), line in zip(groups[::-1], lines, strict=True)]
        return FrameInfo(tuple(scope_variables(fn, scopes, state)), tuple(errors))

    def _memo(self, frames: Sequence[FrameLike]) -> _StackMemo:
        memo = self._memos.get(id(frames))
        if memo is None or memo.frames is not frames:
            memo = self._memos[id(frames)] = _StackMemo(frames)
        return memo

    def _frame_state(self, frames: Sequence[FrameLike], index: int, depth: int) -> tuple[Place, FrameState] | None:
        frame = frames[index]
        place = self.place(frame.lookup_pc)
        if place is None:
            return None
        arch = self.arch

        def reg(n: int) -> int | None:
            name = arch.dwarf_name(n)
            return frame.registers.get(name) if name else None

        def entry_value(expr: bytes) -> int | None:
            return self._entry_value(frames, index, place, expr, depth)

        return place, FrameState(place.pc, place.module.bias, reg, self.read, frame.cfa, entry_value)

    # Entry values ---------------------------------------------------------------------

    def _entry_value(self, frames: Sequence[FrameLike], index: int, callee: Place, expr: bytes,
                     depth: int) -> int | None:
        """The value of `expr` (a register) on entry to frame `index`'s function, from the call
        site in its caller (or, when the caller called a function that tail-called this one,
        from that function's only tail call to it); None when that cannot be known for sure."""
        regno = _entry_register(expr)
        if regno is None or index + 1 >= len(frames):
            return None
        entries = self._memo(frames).entries
        if (index, regno) in entries:
            return entries[(index, regno)]
        if depth >= MAX_ENTRY_DEPTH:
            raise EntryValueTooDeep(f"entry values pass through more than {MAX_ENTRY_DEPTH} callers")
        value = self._caller_value(frames, index, callee, regno, depth)
        entries[(index, regno)] = value
        return value

    def _caller_value(self, frames: Sequence[FrameLike], index: int, callee: Place, regno: int,
                      depth: int) -> int | None:
        frame, caller = frames[index], frames[index + 1]
        if caller.exact_pc or frame.signal_frame:
            return None  # not a return into a call: a signal interrupted the caller
        try:
            found = self._frame_state(frames, index + 1, depth + 1)
            if found is None:
                return None
            cplace, cstate = found
            site = self._call_site(cplace, caller.pc - cplace.module.bias)
            if site is None:
                return None
            ctx = expression_context(cplace.function, cstate)
            target = self._call_target(cplace, site, ctx)
            entry = callee.module.bias + callee.function.entry
            if target == entry:
                return self._site_value(cplace, site, regno, ctx)
            return self._through_tail_call(target, entry, regno, cplace, site, ctx, caller)
        except EntryValueTooDeep:
            raise
        except (LocationError, PmdbError, *ERRORS):
            return None  # the caller's DWARF cannot say: the value is not known

    def _through_tail_call(self, target: int | None, entry: int, regno: int, cplace: Place, site: Die,
                           ctx: ExprContext, caller: FrameLike) -> int | None:
        """The caller called `target`, which tail-called the function at `entry`: the value
        passed in `regno` by target's one tail call to it. In the tail-calling function the
        callee-saved registers are the caller's (restored before the jump) and its own entry
        values come from the caller's call site."""
        tplace = self.place(target) if target is not None else None
        if tplace is None:
            return None
        saved = {n: caller.registers[n] for n in self.arch.callee_saved if n in caller.registers}
        arch = self.arch

        def reg(n: int) -> int | None:
            name = arch.dwarf_name(n)
            return saved.get(name) if name else None

        def entry_value(expr: bytes) -> int | None:
            r = _entry_register(expr)
            return self._site_value(cplace, site, r, ctx) if r is not None else None

        tstate = FrameState(tplace.pc, tplace.module.bias, reg, self.read, None, entry_value)
        tctx = expression_context(tplace.function, tstate)
        tails = [t for t in self._call_sites_of(tplace).values() if _is_tail_call(t)
                 and self._call_target(tplace, t, tctx) == entry]
        if len(tails) != 1:
            return None  # none, or several that may pass different values
        return self._site_value(tplace, tails[0], regno, tctx)

    def _site_value(self, place: Place, site: Die, regno: int, ctx: ExprContext) -> int | None:
        """The value the call site passes in register `regno` (DW_AT_call_value), evaluated in
        the calling frame."""
        key = (id(site.unit), site.offset, regno)
        if key not in self._call_values:
            with guard(place.function.unit.where):
                self._call_values[key] = _call_value(site, regno)
        value = self._call_values[key]
        if value is None:
            return None
        loc = locate(value, ctx)
        if isinstance(loc, Memory):
            return loc.address
        if isinstance(loc, Value):
            return loc.value
        if isinstance(loc, Register):
            return ctx.reg(loc.regno)
        return None

    def _call_site(self, place: Place, return_pc: int) -> Die | None:
        """The call site in `place`'s function whose return address is link-time `return_pc`."""
        return self._call_sites_of(place).get(return_pc)

    def _call_sites_of(self, place: Place) -> dict[int, Die]:
        """Every call site of `place`'s function by link-time return address (found once)."""
        fn = place.function
        key = (id(place.module.dwarf), fn.die.offset)
        sites = self._call_sites.get(key)
        if sites is None:
            sites = {}
            with guard(fn.unit.where):
                _collect_call_sites(fn.die, sites, 0)
            self._call_sites[key] = sites
        return sites

    def _call_target(self, place: Place, site: Die, ctx: ExprContext) -> int | None:
        """The run-time address the call site calls, when DWARF says: its callee's entry (by
        the callee's symbol when DWARF only declares it), or its target expression."""
        with guard(place.function.unit.where):
            callee = site.ref(AT_call_origin) or site.ref(AT_abstract_origin)
            if callee is not None:
                low = callee.address(AT_low_pc)
                if low is not None:
                    return place.module.bias + low
                name = linkage_name(callee)
                sym = self.lookup_symbol(name) if name else None
                return sym.address if sym is not None else None
            target = site.block(AT_call_target) or site.block(AT_GNU_call_site_target)
        if target is None:
            return None
        loc = locate(target, ctx)
        if isinstance(loc, Memory):
            return loc.address
        if isinstance(loc, Register):
            return ctx.reg(loc.regno)
        return None


def _collect_call_sites(die: Die, out: dict[int, Die], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise DieError(f"DIEs nested more than {MAX_DEPTH} deep")
    for child in die.unit.children(die):
        if child.tag in _CALL_SITES:
            ret = child.address(AT_call_return_pc)
            ret = child.address(AT_low_pc) if ret is None else ret
            if ret is not None:
                out[ret] = child
        elif child.tag in _NESTING:
            _collect_call_sites(child, out, depth + 1)


def _is_tail_call(site: Die) -> bool:
    return AT_call_tail_call in site or AT_GNU_tail_call in site


def _call_value(site: Die, regno: int) -> bytes | None:
    """The DW_AT_call_value of the site's parameter passed in register `regno`."""
    for param in site.unit.children(site):
        if param.tag not in _CALL_PARAMS:
            continue
        loc = param.block(AT_location)
        if loc is None or _entry_register(loc) != regno:
            continue
        return param.block(AT_call_value) or param.block(AT_GNU_call_site_value)
    return None


def _entry_register(expr: bytes) -> int | None:
    """The register an entry-value expression names: DW_OP_regN, DW_OP_regx N, or DW_OP_bregN 0."""
    try:
        op = expr[0]
        if DW_OP_reg0 <= op <= DW_OP_reg31 and len(expr) == 1:
            return op - DW_OP_reg0
        if op == DW_OP_regx:
            regno, end = uleb128(expr, 1)
            return regno if end == len(expr) else None
        if DW_OP_breg0 <= op <= DW_OP_breg31:
            off, end = sleb128(expr, 1)
            return op - DW_OP_breg0 if off == 0 and end == len(expr) else None
        if op == DW_OP_bregx:
            regno, pos = uleb128(expr, 1)
            off, end = sleb128(expr, pos)
            return regno if off == 0 and end == len(expr) else None
    except IndexError:
        return None
    return None
