"""gdb's view of every frame's arguments and locals, as JSON: run inside gdb, not by pytest.

    gdb -batch -nx -iex 'set debuginfod enabled off' -x tests/gdb_frames.py PROG CORE

prints one line `PMDB-FRAMES <json>`: for each thread (gdb order) its frames, innermost
first, inline frames included: {level, pc, type, function, args, locals}, where args and
locals are lists of [name, value] (null when gdb has no block for the frame) and a value
is {"int": n} (unsigned, of the type's size), {"float": x}, {"addr": a, "type": t} (an
aggregate: its address and its type as gdb writes it),
{"noaddr": true} (an aggregate not in memory), {"opt": true} (optimized out) or
{"err": message}. Locals are those of each block from the innermost up to the function's,
as `info locals` lists them (without labels and enumerators); args those of `info args`.
"""

import json

import gdb  # type: ignore[import-not-found]

_SCALARS = {
    gdb.TYPE_CODE_PTR, gdb.TYPE_CODE_INT, gdb.TYPE_CODE_ENUM, gdb.TYPE_CODE_BOOL, gdb.TYPE_CODE_CHAR,
    gdb.TYPE_CODE_REF, gdb.TYPE_CODE_RVALUE_REF,
}
_AGGREGATES = {gdb.TYPE_CODE_STRUCT, gdb.TYPE_CODE_UNION, gdb.TYPE_CODE_ARRAY}


def _value(sym, frame):
    try:
        v = sym.value(frame)
        if v.is_optimized_out:
            return {"opt": True}
        t = v.type.strip_typedefs()
        if t.code in _AGGREGATES:
            return {"addr": int(v.address), "type": str(v.type)} if v.address is not None else {"noaddr": True}
        if t.code in (gdb.TYPE_CODE_REF, gdb.TYPE_CODE_RVALUE_REF):
            return {"int": int(v.address) if v.address is not None else 0}
        if t.code in _SCALARS:
            return {"int": int(v) & ((1 << (8 * t.sizeof)) - 1)}
        if t.code == gdb.TYPE_CODE_FLT:
            return {"float": float(v)}
        return {"err": f"type code {t.code}"}
    except gdb.error as e:
        if "optimized out" in str(e):
            return {"opt": True}
        return {"err": str(e)}


def _variables(frame):
    try:
        block = frame.block()
    except RuntimeError:
        return None, None
    args, local_vars = [], []
    while block is not None:
        for sym in block:
            if sym.is_argument:
                if block.function is not None:
                    args.append([sym.name, _value(sym, frame)])
            elif sym.type is not None and sym.type.name == "__CORE_ADDR":
                continue  # a label (gdb lists an optimized-out one among the locals)
            elif sym.addr_class == gdb.SYMBOL_LOC_CONST and sym.type.strip_typedefs().code == gdb.TYPE_CODE_ENUM:
                continue  # an enumerator of an enum declared in the function (gdb lists it too)
            elif sym.is_variable or sym.addr_class == gdb.SYMBOL_LOC_CONST:
                local_vars.append([sym.name, _value(sym, frame)])
        if block.function is not None:
            break
        block = block.superblock
    return args, local_vars


_TYPES = {gdb.NORMAL_FRAME: "NORMAL", gdb.INLINE_FRAME: "INLINE", gdb.TAILCALL_FRAME: "TAILCALL",
          gdb.SIGTRAMP_FRAME: "SIGTRAMP"}


def main():
    out = []
    for thread in sorted(gdb.selected_inferior().threads(), key=lambda t: t.num):
        thread.switch()
        frames = []
        frame = gdb.newest_frame()
        while frame is not None and len(frames) < 200:
            args, local_vars = _variables(frame)
            fn = frame.function()
            frames.append({
                "level": frame.level(), "pc": frame.pc(), "type": _TYPES.get(frame.type(), str(frame.type())),
                "function": fn.name if fn is not None else frame.name(), "args": args, "locals": local_vars,
            })
            try:
                frame = frame.older()
            except gdb.error:
                break
        out.append({"lwp": thread.ptid[1], "frames": frames})
    print("PMDB-FRAMES " + json.dumps(out))


main()
