"""x86-64: register names as mdb spells them, the Linux gregset order, DWARF numbering."""

from __future__ import annotations

from pmdb.arch import Arch

# Narrower views of the general registers, as mdb offers them as variables: name -> (reg, shift, bits).
SUBREGISTERS: dict[str, tuple[str, int, int]] = {}
for _r in ("ax", "bx", "cx", "dx"):
    SUBREGISTERS.update({f"e{_r}": (f"r{_r}", 0, 32), _r: (f"r{_r}", 0, 16),
                         f"{_r[0]}l": (f"r{_r}", 0, 8), f"{_r[0]}h": (f"r{_r}", 8, 8)})
for _r in ("si", "di", "bp", "sp"):
    SUBREGISTERS.update({f"e{_r}": (f"r{_r}", 0, 32), _r: (f"r{_r}", 0, 16), f"{_r}l": (f"r{_r}", 0, 8)})
for _n in range(8, 16):
    SUBREGISTERS.update({f"r{_n}d": (f"r{_n}", 0, 32), f"r{_n}w": (f"r{_n}", 0, 16), f"r{_n}b": (f"r{_n}", 0, 8)})
SUBREGISTERS["eflags"] = ("rflags", 0, 32)
SUBREGISTERS["eip"] = ("rip", 0, 32)

X86_64 = Arch(
    name="x86_64",
    elf_machine=62,
    pointer_size=8,
    pc="rip",
    sp="rsp",
    fp="rbp",
    # struct user_regs_struct, as the kernel writes it into NT_PRSTATUS
    gregset=(
        "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8",
        "rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "rflags",
        "rsp", "ss", "fsbase", "gsbase", "ds", "es", "fs", "gs",
    ),
    # System V AMD64 psABI DWARF register numbers 0-16 (16 is the return address column)
    dwarf=(
        "rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip",
    ),
    return_address_column=16,
    callee_saved=("rbx", "rbp", "r12", "r13", "r14", "r15"),
    subregisters=SUBREGISTERS,
)
