"""The Linux kernel personality: what a kernel crash dump means.

Symbols from kallsyms (or a System.map), types from the kernel's BTF (or DWARF), tasks, CPUs,
modules, the printk ring buffer and the panic, all read out of dump memory with struct
offsets from BTF or VMCOREINFO, never hard-coded. `LinuxKernel` in kernel.py ties them up.
"""
