"""x86-64: register names as mdb spells them, the Linux gregset order, DWARF numbering."""

from __future__ import annotations

from pmdb.arch import Arch

# The registers mdb's amd64 process target names as variables (pt_regdesc), in its table's order:
# (variable, register, shift, bits); narrower views read part of a 64-bit register.
REGISTER_VIEWS: tuple[tuple[str, str, int, int], ...] = tuple(
    entry
    for n in range(15, 7, -1)
    for entry in ((f"r{n}", f"r{n}", 0, 64), (f"r{n}d", f"r{n}", 0, 32), (f"r{n}w", f"r{n}", 0, 16),
                  (f"r{n}l", f"r{n}", 0, 8))
) + tuple(
    entry
    for r in ("di", "si", "bp")
    for entry in ((f"r{r}", f"r{r}", 0, 64), (f"e{r}", f"r{r}", 0, 32), (r, f"r{r}", 0, 16),
                  (f"{r}l", f"r{r}", 0, 8))
) + tuple(
    entry
    for r in ("b", "d", "c", "a")
    for entry in ((f"r{r}x", f"r{r}x", 0, 64), (f"e{r}x", f"r{r}x", 0, 32), (f"{r}x", f"r{r}x", 0, 16),
                  (f"{r}h", f"r{r}x", 8, 8), (f"{r}l", f"r{r}x", 0, 8))
) + (
    ("trapno", "trapno", 0, 64), ("err", "err", 0, 64), ("rip", "rip", 0, 64), ("cs", "cs", 0, 64),
    ("rflags", "rflags", 0, 64), ("eflags", "rflags", 0, 32), ("rsp", "rsp", 0, 64), ("esp", "rsp", 0, 32),
    ("sp", "rsp", 0, 16), ("spl", "rsp", 0, 8), ("ss", "ss", 0, 64), ("fs", "fs", 0, 64), ("gs", "gs", 0, 64),
    ("es", "es", 0, 64), ("ds", "ds", 0, 64), ("fsbase", "fsbase", 0, 64), ("gsbase", "gsbase", 0, 64),
)


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
    register_views=REGISTER_VIEWS,
)
