"""The engine behind ::print: a typed object in memory, laid out as mdb's mdb_print.c lays it
out (elt_print and the print_* functions it calls for each kind of type).

A print is a walk over the type (libctf's ctf_type_visit: the type, then each struct or union
member one level deeper; anonymous members are called `<anon>`). Each element is printed on
its own line: indented four blanks per level, then (by flag) its address, type and name, then
` = ` and its value, then a delimiter; a struct's `{` is closed by `}` when the walk comes back
up past it. Arrays print their elements in a nested walk: `[ 0x1, 0x2 ]` for scalars, one
element a line between `[` and `]` for structs and arrays; char arrays that hold printable
text as `[ "text" ]`. Integers print in hex (`-d`: decimal with mdb's 0t), chars as `'c'`,
pointers symbolically (and a char pointer's string after it), enums as `value (NAME)`,
bit-fields read bit by bit, floats as `+1.5000000e+00`.

Where mdb's own reading is wrong this engine is not: a bit-field that straddles bytes, or a
byte-wide one not on a byte boundary, is read whole (mdb reads only the bytes its width
covers from the field's first byte). A read that fails ends the print where it failed: the
unfinished line is dropped, open braces are closed, and the failure is raised.
"""

from __future__ import annotations

import decimal
import struct
from collections.abc import Callable
from dataclasses import dataclass, replace

from pmdb.commands.core.mprintf import PrintfContext, mdb_format
from pmdb.commands.core.typeinfo import bitfield_size
from pmdb.debuginfo.ctypes import (
    NBBY,
    ArrayType,
    BadTypeError,
    CType,
    EnumType,
    FloatType,
    FunctionType,
    IntType,
    PointerType,
    Resolver,
    StructRef,
    StructType,
    is_char,
    resolve,
    size_of,
    type_name,
)
from pmdb.errors import FaultError
from pmdb.mdb.formats import float_text
from pmdb.mdb.text import c_escapes

TAB = 4
NO_LIMIT = 1 << 62
MAX_NESTING = 64  # struct levels walked before the type is judged cyclic
STRING_BUF = 256  # print_ptr's buffer for a char pointer's string
ANON = "<anon>"
_COMPOSITES = (StructType, ArrayType)
_FP_FORMATS = {("", 4): 1, ("", 8): 2, ("", 16): 6, ("", 12): 6, ("complex", 8): 3, ("complex", 16): 4,
               ("complex", 32): 5, ("imaginary", 4): 10, ("imaginary", 8): 11, ("imaginary", 16): 12}


class PrintFailed(Exception):
    """A read (or a type) failed while printing; the message is mdb's warning for it."""


@dataclass(frozen=True)
class Flags:
    """What each element shows (mdb's PA_* flags)."""

    show_type: bool = False
    show_base_type: bool = False
    show_name: bool = True
    show_addr: bool = False
    show_val: bool = True
    int_hex: bool = False
    int_dec: bool = False
    no_symbolic: bool = False


@dataclass
class PrintArgs:
    """mdb's printarg: where the object is, how deep the walk is, and how to delimit."""

    addr: int
    flags: Flags
    depth: int = 0
    nest: int = 0
    delim: str = "\n"
    prefix: str | None = None
    suffix: str = ""
    maxdepth: int = NO_LIMIT
    armemlim: int = 32
    arstrlim: int = 1024


@dataclass(frozen=True)
class Encoding:
    """An integer as libctf encodes it: its width in bits, its sign, and whether it is a char."""

    bits: int
    signed: bool
    char: bool


def encoding(base: CType, bits: int | None) -> Encoding | None:
    """The encoding of integer (or bit-field) `base`; a bit-field of an enum is an unsigned integer,
    as ctfconvert makes it. None for types that are not integers."""
    if bits is not None:
        if isinstance(base, IntType):
            return Encoding(bits, base.signed, is_char(base) and bits == NBBY)
        return Encoding(bits, False, False)
    if isinstance(base, IntType):
        return Encoding(base.size * NBBY, base.signed, is_char(base))
    return None


class TypePrinter:
    """Prints typed objects into a text buffer, reading memory through `read`."""

    def __init__(self, types: Resolver, read: Callable[[int, int], bytes], printf: PrintfContext,
                 read_string: Callable[[int, int], bytes]) -> None:
        """`read(addr, n)` returns n bytes or raises FaultError; `read_string(addr, n)` returns as
        many of n bytes as are readable (FaultError when none are)."""
        self.types = types
        self.read = read
        self.read_string = read_string
        self.printf = printf
        self.parts: list[str] = []

    @property
    def text(self) -> str:
        """Everything printed so far."""
        return "".join(self.parts)

    def put(self, text: str) -> None:
        """Append text to the output."""
        self.parts.append(text)

    def discard_line(self) -> None:
        """Drop the unfinished last line (mdb_iob_discard)."""
        text = self.text
        self.parts = [text[: text.rfind("\n") + 1]]

    def fmt(self, spec: str, value: int) -> str:
        """One value through mdb's printf."""
        return mdb_format(spec, [value], self.printf)

    # The walk ---------------------------------------------------------------------------

    def print_object(self, a: PrintArgs, t: CType, off: int = 0, bits: int | None = None) -> None:
        """Walk `t` at `a.addr` (plus `off` bits) and close every brace left open."""
        try:
            self.visit(a, t, "", off, 0, bits)
        finally:
            for d in range(a.depth - 1, -1, -1):
                self.close_sou(a, d)

    def print_element(self, a: PrintArgs, t: CType, off: int, bits: int | None) -> None:
        """Print only `t` itself at bit offset `off` (mdb's direct elt_print of a bit-field)."""
        self.element(a, "", t, self.resolved(t), off, 0, bits)

    def visit(self, a: PrintArgs, t: CType, name: str, off: int, depth: int, bits: int | None) -> None:
        """ctf_type_visit: the element, then each member of a struct or union one level down."""
        if depth > MAX_NESTING:
            raise PrintFailed("types nest too deeply (a type that contains itself?)")
        base = self.resolved(t)
        self.element(a, name, t, base, off, depth, bits)
        if isinstance(base, StructType) and bits is None:
            for m in base.members:
                self.visit(a, m.type, m.name or ANON, off + m.offset_bits, depth + 1, m.bit_size)

    def element(self, a: PrintArgs, name: str, t: CType, base: CType, off: int, depth: int,
                bits: int | None) -> None:
        """elt_print: close finished structs, then indent, address, type, name, ` = `, value."""
        for d in range(a.depth - 1, depth - 1, -1):
            self.close_sou(a, d)
        if depth > a.maxdepth:
            return
        f = a.flags
        tname = self.element_type_name(t, base, bits)
        enc = encoding(base, bits)
        if f.show_base_type:
            tname = self._with_base_type(tname, base, bits)
        if f.show_type or f.show_name or f.show_addr:
            self.put(" " * ((depth + a.nest) * TAB))
        if f.show_addr:
            addr = a.addr + off // NBBY
            self.put(f"{addr:x} " if off % NBBY == 0 else f"{addr:x}.{off % NBBY:x} ")
        if f.show_type:
            self.put(tname)
            if not tname.endswith("*") or (depth == 0 and (not f.show_name or a.prefix is None)):
                self.put(" ")
        if f.show_name:
            if a.prefix is not None and depth <= 1:
                self.put(a.prefix + ("" if depth == 0 else a.suffix))
            self.put(name)
        if f.show_type and enc is not None:
            size = enc.bits // NBBY
            if enc.bits % NBBY or off % NBBY or size > 8 or size != self._ctf_size(base, bits):
                self.put(f" :{enc.bits}")
        if depth != 0 or (f.show_name and a.prefix is not None):
            self.put((" =" if f.show_val else "") + " ")
        if depth == 0 and a.prefix is not None:
            name = a.prefix
        a.depth = depth
        try:
            self.value(a, tname, name, base, off, enc)
        except PrintFailed:
            self.discard_line()
            raise
        self.put(a.delim)

    def close_sou(self, a: PrintArgs, newdepth: int) -> None:
        """print_close_sou: the `}` of a struct opened at `newdepth` (`},` inside an array)."""
        d = newdepth + a.nest
        self.put(" " * (d * TAB) + "}" + ("," if newdepth == 0 and a.nest > 0 else "") + "\n")

    def element_type_name(self, t: CType, base: CType, bits: int | None) -> str:
        """The element's type as mdb names it (a bit-field's as ctfconvert names its integer)."""
        try:
            if bits is None:
                return type_name(t, self.types)
            if isinstance(base, EnumType):
                return f"{base.tag or ''}:{bits}"
            return f"{type_name(base, self.types)}:{bits}"
        except BadTypeError:
            return "(?)"

    def _with_base_type(self, tname: str, base: CType, bits: int | None) -> str:
        """-T: ` <<base type>>` after the type when the base's name says more."""
        basename = self.element_type_name(base, base, bits)
        if basename != tname and basename not in ("struct ", "enum ", "union "):
            return f"{tname} <<{basename}>>"
        return tname

    # Values -----------------------------------------------------------------------------

    def value(self, a: PrintArgs, tname: str, name: str, base: CType, off: int, enc: Encoding | None) -> None:
        """The value part of an element, by kind (mdb's printfuncs table)."""
        if enc is not None:
            self.print_int(a, tname, enc, off)
        elif isinstance(base, FloatType):
            self.print_float(a, base, off)
        elif isinstance(base, PointerType | FunctionType):
            self.print_ptr(a, tname, name, base, off)
        elif isinstance(base, ArrayType):
            self.print_array(a, base, off)
        elif isinstance(base, StructType):
            self.put("{ ... }" if a.depth == a.maxdepth else "{")
            a.delim = "\n"
        elif isinstance(base, EnumType):
            self.print_enum(a, name, base, off)
        elif isinstance(base, StructRef):
            if a.flags.show_val:
                self.put("; ")
            self.put(f"<forward declaration of {base.keyword} {base.tag}>")

    def print_int(self, a: PrintArgs, tname: str, enc: Encoding, off: int) -> None:
        """print_int_val: a char as `'c'`, else hex (or -d decimal); odd widths as bit-fields."""
        if not a.flags.show_val:
            return
        size = enc.bits // NBBY
        if size > 8 or enc.bits % NBBY or size & (size - 1):
            self.print_bitfield(a, enc, off)
            return
        value = self.load_bits(a.addr, off, enc.bits)
        if enc.char:
            self.put("'" + c_escapes(bytes([value])) + "'")
            return
        f = a.flags
        if not (f.int_hex or f.int_dec) and value:
            if tname == "time_t":
                self.put(self.fmt("%Y", value))
                return
            if tname in ("ipaddr_t", "in_addr_t"):
                self.put(self.fmt("%I", value))
                return
        wide = "ll" if size == 8 else ""
        conv = "x" if not f.int_dec else "d" if enc.signed else "u"
        self.put(self.fmt(f"%#{wide}{conv}", value))

    def print_bitfield(self, a: PrintArgs, enc: Encoding, off: int) -> None:
        """print_bitfield: signed fields in decimal, unsigned (or with -x) in hex."""
        if not a.flags.show_val:
            return
        if enc.bits > 63:
            self.put(f"??? (invalid bitfield size {enc.bits})")
            return
        value = self.load_bits(a.addr, off, enc.bits)
        f = a.flags
        if f.int_hex or not enc.signed:
            self.put(self.fmt("%#llu" if f.int_dec else "%#llx", value))
        else:
            if value >> (enc.bits - 1):
                value -= 1 << enc.bits
            self.put(self.fmt("%#lld", value))

    def load_bits(self, addr: int, off: int, bits: int) -> int:
        """`bits` bits at bit offset `off` from `addr`, little-endian, as an unsigned number."""
        start = addr + off // NBBY
        shift = off % NBBY
        nbytes = (shift + bits + NBBY - 1) // NBBY
        raw = int.from_bytes(self.load(start, nbytes), "little")
        return (raw >> shift) & ((1 << bits) - 1)

    def load(self, addr: int, size: int, what: str = "") -> bytes:
        """`size` bytes at `addr`, or PrintFailed worded as mdb's read warnings."""
        try:
            return self.read(addr, size)
        except FaultError as e:
            raise PrintFailed(f"failed to read {what or f'{size} bytes'} at {addr:x}: {e}") from None

    def print_float(self, a: PrintArgs, base: FloatType, off: int) -> None:
        """print_float: float and double as `%+.7e`, long double with 16 digits."""
        if not a.flags.show_val:
            return
        addr = a.addr + off // NBBY
        kind = "complex" if "complex" in base.name else "imaginary" if "imaginary" in base.name else ""
        code = _FP_FORMATS.get((kind, base.size), 0)
        if code in (1, 2):
            raw = self.load(addr, base.size, "float")
            self.put(float_text(struct.unpack("<f" if code == 1 else "<d", raw)[0], 7))
        elif code == 6:
            self.put(long_double_text(self.load(addr, 10, "float"), 16))
        else:
            self.put(f"??? (unsupported FP format {code} / {base.size * NBBY} bits\n")

    def print_ptr(self, a: PrintArgs, tname: str, name: str, base: CType, off: int) -> None:
        """print_ptr: the pointer symbolically (`-n`: in hex); a printable string after a char *."""
        if not a.flags.show_val:
            return
        addr = a.addr + off // NBBY
        value = int.from_bytes(self.load(addr, 8, f"{name} pointer"), "little")
        if a.flags.no_symbolic:
            self.put(self.fmt("%#lx", value))
            return
        self.put(self.fmt("%a", value))
        if value == 0 or tname == "caddr_t" or not isinstance(base, PointerType):
            return
        if is_char(self.resolved(base.target)):
            text = self._string(value)
            if text is not None:
                self.put(f' "{text}"')

    def _string(self, addr: int) -> str | None:
        """mdb_tgt_readstr into a 256-byte buffer, kept when printable (abbreviated with ` ...`
        when it fills the buffer); None when unreadable or not printable."""
        try:
            data = self.read_string(addr, STRING_BUF)
        except FaultError:
            return None
        nul = data.find(b"\0")
        if nul < 0:
            if len(data) < STRING_BUF:
                return None  # the string runs into memory that cannot be read
            data = data[: STRING_BUF - 1]
        else:
            data = data[:nul]
        if not _printable(data):
            return None
        text = data.decode("latin-1")
        return text[: STRING_BUF - 5] + " ..." if len(text) >= STRING_BUF - 1 else text

    def print_array(self, a: PrintArgs, base: ArrayType, off: int) -> None:
        """print_array: char arrays as strings when printable, else up to `armemlim` elements."""
        if not a.flags.show_val:
            return
        if a.depth == a.maxdepth:
            self.put("[ ... ]")
            return
        addr = a.addr + off // NBBY
        element = base.element
        ebase = self.resolved(element)
        eltsize = self._size(ebase)
        n = base.count
        if n <= a.arstrlim and is_char(ebase) and n >= 2:
            text = self._char_array(addr, n)
            if text is not None:
                self.put(f'[ "{text}" ]')
                return
        limit = min(n, a.armemlim)
        if limit == 0:
            self.put("[ ... ]")
            return
        sou = isinstance(ebase, _COMPOSITES)
        pa = replace(a, addr=addr, maxdepth=a.maxdepth - a.depth - 1, nest=a.nest + a.depth + 1, depth=0,
                     prefix=None)
        if sou:
            pa.delim = "\n"
            self.put("[\n")
        else:
            pa.flags = replace(a.flags, show_type=False, show_name=False, show_addr=False)
            pa.delim = ", "
            self.put("[ ")
        try:
            for i in range(limit):
                if i == limit - 1 and not sou:
                    pa.delim = ", ... ]" if limit < n else " ]"
                self.visit(pa, element, "", 0, 0, None)
                pa.addr += eltsize
        finally:
            if sou:
                for d in range(pa.depth - 1, -1, -1):
                    self.close_sou(pa, d)
        if sou:
            self.put(" " * ((a.depth + a.nest) * TAB) + ("... ]" if limit < n else "]"))

    def _char_array(self, addr: int, n: int) -> str | None:
        """The text of a char array whose first bytes are printable, up to its first NUL; None
        when it is empty or not all printable (mdb then prints it element by element)."""
        try:
            head = self.read_string(addr, min(8, n))
        except FaultError:
            return None
        if not head or head[0] == 0 or not _printable(head.split(b"\0", 1)[0]):
            return None
        data = self.load(addr, n, "char array").split(b"\0", 1)[0]
        return data.decode("latin-1") if _printable(data) else None

    def print_enum(self, a: PrintArgs, name: str, base: EnumType, off: int) -> None:
        """print_enum: `value (NAME)`; flag enums (every value 0 or a power of two) in hex with
        the flags set, as `PREFIX_{A|B}`."""
        if not a.flags.show_val:
            return
        size = base.size if base.size in (1, 2, 4, 8) else 4
        addr = a.addr + off // NBBY
        raw = int.from_bytes(self.load(addr, size, f"{name} integer"), "little")
        value = raw - (1 << (size * NBBY)) if raw >> (size * NBBY - 1) else raw  # mdb reads an int
        flags = enum_flag_bits(base)
        wide = "ll" if size == 8 else ""
        self.put(self.fmt(f"%#{wide}x" if a.flags.int_hex or flags else f"%#{wide}d", value))
        self.put(" (")
        text = enum_flags_text(base, value) if flags else None
        if text is None:
            text = next((n for n, v in base.enumerators if v == value), "???")
        self.put(text + ")")

    # Helpers ----------------------------------------------------------------------------

    def resolved(self, t: CType) -> CType:
        """`t` resolved (typedefs, qualifiers and Refs followed); a broken type ends the print."""
        try:
            return resolve(t, self.types)
        except BadTypeError as e:
            raise PrintFailed(str(e)) from None

    def _size(self, t: CType) -> int:
        try:
            return size_of(t, self.types)
        except BadTypeError as e:
            raise PrintFailed(str(e)) from None

    def _ctf_size(self, base: CType, bits: int | None) -> int:
        """libctf's size of an integer type (a bit-field's integer: its width, rounded up)."""
        return bitfield_size(bits) if bits is not None else self._size(base)


def _printable(data: bytes) -> bool:
    """strisprint: every byte from blank to tilde."""
    return all(0x20 <= b <= 0x7E for b in data)


def enum_flag_bits(t: EnumType) -> int:
    """The bits of a flag enum (mdb's enum_is_p2: every value 0 or a power of two, one at
    least nonzero); 0 for an enum that is not one."""
    bits = 0
    for _, v in t.enumerators:
        if v < 0 or (v & (v - 1)):
            return 0
        bits |= v
    return bits


def enum_flags_text(t: EnumType, value: int) -> str | None:
    """mdb's enum_value_print_p2: the names of the set flags joined by `|`, the names' common
    prefix said once (`FL_{READ|EXEC}`), and any bits no name covers in hex after a `|`."""
    names = [n for n, _ in t.enumerators]
    prefix = _common_prefix(names)
    seen_bits = 0
    seen_zero = False
    parts: list[str] = []
    for n, v in t.enumerators:
        if (v == 0 and seen_zero) or (v and seen_bits & v):
            continue
        seen_zero = seen_zero or v == 0
        seen_bits |= v
        if value & v:
            parts.append(n)
    missed = value & ~seen_bits
    if not seen_bits:
        return None
    text = ""
    if parts:
        text = parts[0]
        if len(parts) > 1:  # mdb closes the brace even when there was no prefix to open it
            rest = [p[len(prefix):] if len(p) > len(prefix) else p for p in parts[1:]]
            head = text[:len(prefix)] + "{" + text[len(prefix):] if prefix else text
            text = head + "|" + "|".join(rest) + "}"
        if missed:
            text += "|"
    if not parts or missed:
        text += mdb_format("%#llx", [missed & ((1 << 64) - 1)])
    return text


def _common_prefix(names: list[str]) -> str:
    """enum_prefix_scan_cb: the names' common prefix, never a whole name (one character is left)."""
    if not names:
        return ""
    prefix = names[0]
    for name in names[1:]:
        i = 0
        while i < len(prefix) and i < len(name) and prefix[i] == name[i]:
            i += 1
        if i == len(prefix) == len(name) and i > 0:
            i -= 1  # the prefix is a whole name: leave it its last character
        prefix = prefix[:i]
        if not prefix:
            return ""
    return prefix


def long_double_text(raw: bytes, digits: int) -> str:
    """An x87 80-bit extended value as mdb's longdoubletos: `%+.<digits>e`, two-digit exponent
    at least, computed exactly."""
    mantissa = int.from_bytes(raw[:8], "little")
    top = int.from_bytes(raw[8:10], "little")
    sign = "-" if top >> 15 else "+"
    exponent = top & 0x7FFF
    if exponent == 0x7FFF:
        return sign + ("NaN" if mantissa << 1 & ((1 << 64) - 1) else "Infinity")
    if mantissa == 0:
        return f"{sign}{0:.{digits}e}"
    power = (exponent or 1) - 16383 - 63
    with decimal.localcontext() as wide:
        wide.prec = 80  # enough that the rounding below is the only one
        exact = decimal.Decimal(mantissa) * decimal.Decimal(2) ** power
    value = decimal.Context(prec=digits + 1, rounding=decimal.ROUND_HALF_EVEN).plus(exact)
    text = f"{value:.{digits}e}"
    mant, _, exp = text.partition("e")
    exp_value = int(exp)
    return f"{sign}{mant}e{'-' if exp_value < 0 else '+'}{abs(exp_value):02d}"
