"""Arguments and local variables of one frame: where DWARF says each one is at the frame's pc
(a location expression, or the entry of a location list that covers the pc), and its value.

Values are kept plain: integers, enums, pointers and characters as the unsigned number of
their size, floats as floats, aggregates by address. Why a variable has no value is said in
`problem` ("optimized out", "unreadable", ...), so one bad variable never hides the others.
As gdb does, the parameters and variables of an inlined function or an out-of-line copy
that the concrete DIEs leave out are listed from the abstract origin as optimized out.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pmdb.debuginfo.dies import (
    BLOCK_FORMS,
    CONSTANT_FORMS,
    MAX_DEPTH,
    AT_abstract_origin,
    AT_byte_size,
    AT_const_value,
    AT_count,
    AT_declaration,
    AT_encoding,
    AT_frame_base,
    AT_location,
    AT_specification,
    AT_type,
    AT_upper_bound,
    Die,
    DieError,
    FORM_data4,
    FORM_data8,
    FORM_loclistx,
    FORM_sec_offset,
    TAG_array,
    TAG_atomic,
    TAG_base_type,
    TAG_call_site,
    TAG_class,
    TAG_const,
    TAG_enumeration,
    TAG_formal_parameter,
    TAG_GNU_call_site,
    TAG_immutable,
    TAG_inlined_subroutine,
    TAG_lexical_block,
    TAG_pointer,
    TAG_ptr_to_member,
    TAG_reference,
    TAG_restrict,
    TAG_rvalue_reference,
    TAG_structure,
    TAG_subrange,
    TAG_subroutine_type,
    TAG_typedef,
    TAG_union,
    TAG_variable,
    TAG_volatile,
    location_list,
)
from pmdb.debuginfo.dwarf_expr import (
    ExprContext,
    Implicit,
    ImplicitPointer,
    Location,
    LocationError,
    Memory,
    Pieces,
    Register,
    Value,
    locate,
)
from pmdb.debuginfo.dwarf_units import ERRORS, DwarfError, Function, die_name, function_name, guard, origin
from pmdb.debuginfo.scopes import members
from pmdb.errors import FaultError

if TYPE_CHECKING:
    from pmdb.debuginfo.lines import SourceLine

_CALL_SITES = frozenset((TAG_call_site, TAG_GNU_call_site))
_QUALIFIERS = frozenset((TAG_const, TAG_volatile, TAG_restrict, TAG_atomic, TAG_typedef, TAG_immutable))
_POINTERS = frozenset((TAG_pointer, TAG_reference, TAG_rvalue_reference, TAG_ptr_to_member))
_AGGREGATES = {TAG_structure: "struct", TAG_union: "union", TAG_class: "class", TAG_array: ""}
DW_ATE_complex_float, DW_ATE_float = 0x3, 0x4
_MASK = (1 << 64) - 1


@dataclass(frozen=True)
class TypeInfo:
    """What pmdb needs of a variable's type to show its value: its kind, size and name.

    `kind` is "integer" (also enums, bool, char), "pointer", "float", "aggregate" (struct,
    union, class, array) or "other"; `label` is how the type is written (`struct netstack`,
    `pthread_mutex_t`, `char [32]`).
    """

    kind: str
    size: int | None
    label: str


@dataclass(frozen=True)
class Variable:
    """One argument or local and its value at the frame's pc.

    `name` is "" for an unnamed parameter. Exactly one of `value` (integer: unsigned, of the
    type's size; or a float), `address` (an aggregate in memory) and `problem` is set.
    `problem` is "optimized out", "unreadable", "not in memory", "synthetic pointer",
    "unsupported" or "bad DWARF", with `detail`.
    """

    name: str
    is_param: bool
    type: TypeInfo
    value: int | float | None = None
    address: int | None = None
    problem: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class ScopeVariables:
    """A function executing in a frame (the frame's own function, or one inlined into it):
    its name, the line it is at, and its parameters and locals (innermost block first)."""

    function: str
    line: SourceLine | None
    inlined: bool
    params: tuple[Variable, ...]
    locals: tuple[Variable, ...]


@dataclass(frozen=True)
class FrameState:
    """A frame as location expressions see it: link-time pc, registers, CFA, memory, entry values."""

    pc: int
    bias: int
    reg: Callable[[int], int | None]
    read: Callable[[int, int], bytes]
    cfa: int | None
    entry_value: Callable[[bytes], int | None] | None = None


def expression_context(fn: Function, frame: FrameState) -> ExprContext:
    """The ExprContext of `frame` inside `fn`: DW_OP_fbreg through the function's frame base."""
    offset_size = fn.unit.offset_size
    base_ctx = ExprContext(frame.reg, frame.read, None, frame.cfa, frame.entry_value, offset_size, frame.bias)

    def frame_base() -> int | None:
        expr = location_expression(fn.die, AT_frame_base, frame.pc)
        loc = locate(expr, base_ctx) if expr is not None else None
        if isinstance(loc, Memory):
            return loc.address
        if isinstance(loc, Register):
            return frame.reg(loc.regno)
        return None

    return ExprContext(frame.reg, frame.read, frame_base, frame.cfa, frame.entry_value, offset_size, frame.bias)


def scope_variables(fn: Function, scopes: list[tuple[Die, list[Die], SourceLine | None]],
                    frame: FrameState) -> list[ScopeVariables]:
    """Each function in the frame, innermost first. `scopes` pairs each function DIE (the
    concrete subprogram or an inlined call) with its blocks that hold the pc, innermost first,
    and the line it is at."""
    ctx = expression_context(fn, frame)
    out = []
    for func_die, blocks, line in scopes:
        params: list[Variable] = []
        local_vars: list[Variable] = []
        for scope in blocks:
            for die in variable_dies(fn, scope):
                var = variable(fn, die, frame, ctx)
                (params if var.is_param and scope is func_die else local_vars).append(var)
        with guard(fn.unit.where):
            name = function_name(func_die)
        out.append(ScopeVariables(name or "??", line, func_die.tag == TAG_inlined_subroutine,
                                  tuple(params), tuple(local_vars)))
    return out


def variable_dies(fn: Function, scope: Die) -> list[Die]:
    """The parameter and variable DIEs of one scope, as gdb gathers them: its children (with
    range-less blocks opened in place), then the children of its abstract origin that no
    child of the scope refers to (their blocks opened in place: they have no code)."""
    with guard(fn.unit.where):
        own = [d for d in members(scope) if d.tag in (TAG_formal_parameter, TAG_variable) and _defines(d)]
        abstract = scope.ref(AT_abstract_origin)
        if abstract is None:
            return own
        covered = {origin(d).offset for d in scope.unit.children(scope) if d.tag not in _CALL_SITES}
        return own + [d for d in _abstract_members(abstract, covered, 0) if _defines(d)]


def _abstract_members(die: Die, covered: set[int], depth: int) -> Iterator[Die]:
    if depth > MAX_DEPTH:
        raise DieError(f"lexical blocks nested more than {MAX_DEPTH} deep")
    for d in die.unit.children(die):
        if d.offset in covered:
            continue
        if d.tag in (TAG_formal_parameter, TAG_variable):
            yield d
        elif d.tag == TAG_lexical_block:
            yield from _abstract_members(d, set(), depth + 1)


def _defines(die: Die) -> bool:
    """False for a declaration (`extern int x;` inside a function): it has no storage here."""
    return AT_declaration not in die


def variable(fn: Function, die: Die, frame: FrameState, ctx: ExprContext) -> Variable:
    """The variable `die` and its value in `frame` (problems said in the result, not raised)."""
    name = "?"
    ty = TypeInfo("other", None, "?")
    is_param = die.tag == TAG_formal_parameter
    try:
        with guard(fn.unit.where):
            name = die_name(die) or ""
            ty = type_info(_type_die(die))
            if AT_location not in die and AT_const_value in die:
                return _constant(name, is_param, ty, die)
            expr = location_expression(die, AT_location, frame.pc)
        if expr is None:
            return Variable(name, is_param, ty, problem="optimized out")
        return _value(name, is_param, ty, locate(expr, ctx), ctx)
    except LocationError as e:
        return Variable(name, is_param, ty, problem="optimized out" if e.optimized_out else "unsupported",
                        detail=str(e))
    except FaultError as e:
        return Variable(name, is_param, ty, problem="unreadable", detail=f"{e.address:#x}: {e}")
    except DwarfError as e:
        return Variable(name, is_param, ty, problem="bad DWARF", detail=str(e))
    except ERRORS as e:  # a frame base or entry value read through DWARF outside `guard`
        detail = f"bad DWARF in {fn.unit.where}: {e or type(e).__name__}"
        return Variable(name, is_param, ty, problem="bad DWARF", detail=detail)


def location_expression(die: Die, attr: int, pc: int) -> bytes | None:
    """The location expression of `attr` that applies at link-time `pc`: the block itself, or
    the entry of its location list covering pc (else the list's default); None: no location."""
    v = die.attrs.get(attr)
    if v is None:
        return None
    form, value = v
    if form in BLOCK_FORMS:
        return value  # type: ignore[return-value]
    lists = (FORM_sec_offset, FORM_loclistx) if die.unit.version >= 4 else (FORM_data4, FORM_data8)
    if form not in lists or not isinstance(value, int):
        raise DieError(f"location of form {form:#x} at DIE {die.offset:#x}")
    default = None
    for entry in location_list(die.unit, form, value):
        if entry.low is None:
            default = entry.expr
        elif entry.low <= pc < entry.high:  # type: ignore[operator]
            return entry.expr
    return default


def _constant(name: str, is_param: bool, ty: TypeInfo, die: Die) -> Variable:
    form, value = die.attrs[AT_const_value]
    if form in BLOCK_FORMS or isinstance(value, bytes):
        return _scalar(name, is_param, ty, bytes(value))  # type: ignore[arg-type]
    if isinstance(value, int):
        return _scalar(name, is_param, ty, (value & _MASK).to_bytes(8, "little"))
    return Variable(name, is_param, ty, problem="unsupported", detail="a constant pmdb cannot show")


def _value(name: str, is_param: bool, ty: TypeInfo, loc: Location | None, ctx: ExprContext) -> Variable:
    """Read the variable's value from its location."""
    if loc is None:
        return Variable(name, is_param, ty, problem="optimized out")
    if ty.kind == "aggregate":
        if isinstance(loc, Memory):
            return Variable(name, is_param, ty, address=loc.address)
        return Variable(name, is_param, ty, problem="not in memory")
    if isinstance(loc, ImplicitPointer):
        return Variable(name, is_param, ty, problem="synthetic pointer")
    size = ty.size if ty.size is not None else 8
    if size > 8:
        return Variable(name, is_param, ty, problem="unsupported", detail=f"{size}-byte {ty.label}")
    data = _bytes(loc, size, ctx)
    if data is None:
        return Variable(name, is_param, ty, problem="optimized out")
    return _scalar(name, is_param, ty, data)


def _bytes(loc: Location, size: int, ctx: ExprContext) -> bytes | None:
    """`size` bytes of the object at `loc` (None when a register or piece is not known)."""
    if isinstance(loc, Memory):
        return ctx.read(loc.address, size)
    if isinstance(loc, Register):
        value = ctx.reg(loc.regno)
        return None if value is None else (value & _MASK).to_bytes(8, "little")[:size]
    if isinstance(loc, Value):
        return (loc.value & _MASK).to_bytes(8, "little")[:size]
    if isinstance(loc, Implicit):
        return loc.data[:size].ljust(size, b"\0")
    if isinstance(loc, Pieces):
        out = b""
        for part, part_size in loc.parts:
            data = _bytes(part, part_size, ctx) if part is not None and part_size <= 8 else None
            if data is None:
                return None
            out += data
        return out[:size].ljust(size, b"\0")
    raise LocationError("a synthetic pointer")


def _scalar(name: str, is_param: bool, ty: TypeInfo, data: bytes) -> Variable:
    size = ty.size if ty.size is not None else len(data)
    data = data[:size].ljust(size, b"\0")
    if ty.kind == "float" and size in (4, 8):
        return Variable(name, is_param, ty, value=struct.unpack("<f" if size == 4 else "<d", data)[0])
    if ty.kind == "float":
        return Variable(name, is_param, ty, problem="unsupported", detail=f"{size}-byte floating point")
    return Variable(name, is_param, ty, value=int.from_bytes(data, "little"))


def _type_die(die: Die) -> Die | None:
    """The DIE of the variable's type (through its abstract origin)."""
    for _ in range(MAX_DEPTH):
        t = die.ref(AT_type)
        if t is not None:
            return t
        nxt = die.ref(AT_abstract_origin) or die.ref(AT_specification)
        if nxt is None:
            return None
        die = nxt
    raise DieError("abstract origins loop")


@functools.lru_cache(maxsize=4096)
def type_info(die: Die | None) -> TypeInfo:
    """Kind, size and written name of a type DIE (None: void); remembered per DIE."""
    if die is None:
        return TypeInfo("other", 0, "void")
    label = type_label(die)
    for _ in range(MAX_DEPTH):
        if die.tag not in _QUALIFIERS:
            break
        nxt = die.ref(AT_type)
        if nxt is None:
            return TypeInfo("other", 0, label)
        die = nxt
    size = die.int(AT_byte_size)
    if die.tag in _POINTERS:
        return TypeInfo("pointer", size or 8, label)
    if die.tag == TAG_enumeration:
        return TypeInfo("integer", size, label)
    if die.tag in _AGGREGATES:
        return TypeInfo("aggregate", size, label)
    if die.tag == TAG_base_type:
        enc = die.int(AT_encoding)
        if enc == DW_ATE_float:
            return TypeInfo("float", size, label)
        if enc == DW_ATE_complex_float:
            return TypeInfo("aggregate", size, label)
        return TypeInfo("integer", size, label)
    return TypeInfo("other", size, label)


def type_label(die: Die | None, depth: int = 0) -> str:
    """How a type is written in C, simply: `struct netstack`, `pthread_mutex_t`, `char *`,
    `int [4]`, `int (*)()`."""
    if die is None:
        return "void"
    if depth > MAX_DEPTH:
        raise DieError("type references loop")
    name = die_name(die)
    tag = die.tag
    if (tag in _AGGREGATES and tag != TAG_array) or tag == TAG_enumeration:
        word = "enum" if tag == TAG_enumeration else _AGGREGATES[tag]
        return f"{word} {name}" if name else word
    if name and tag in (TAG_typedef, TAG_base_type):
        return name
    target = die.ref(AT_type)
    if tag in _POINTERS and target is not None and target.tag == TAG_subroutine_type:
        return f"{type_label(target.ref(AT_type), depth + 1)} (*)()"
    inner = type_label(target, depth + 1)
    if tag in _POINTERS:
        return inner + (" *" if not inner.endswith("*") else "*")
    if tag in (TAG_const, TAG_volatile):
        word = "const" if tag == TAG_const else "volatile"
        return inner if inner.startswith(word + " ") else f"{word} {inner}"
    if tag == TAG_array:
        return f"{inner} [{_array_count(die)}]"
    if tag == TAG_subroutine_type:
        return f"{inner} ()"
    return name or inner


def _array_count(die: Die) -> str:
    """The element count of an array's first dimension ("" when unknown: a flexible array)."""
    for sub in die.unit.children(die):
        if sub.tag != TAG_subrange:
            continue
        count, upper = sub.int(AT_count), sub.int(AT_upper_bound)
        if count is not None and sub.form(AT_count) in CONSTANT_FORMS:
            return str(count)
        if upper is not None and sub.form(AT_upper_bound) in CONSTANT_FORMS:
            return str(upper + 1)
        break
    return ""
