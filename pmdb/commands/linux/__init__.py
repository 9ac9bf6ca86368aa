"""Commands of a Linux kernel crash dump: mdb's kernel dcmds (::status, ::msgbuf, ::ps,
::stacks, ::findstack, ::cpuinfo, ::modinfo) and walkers (task, thread, module), in mdb's
shapes with Linux content. Where a name is also a process-core command, the dcmd here
serves kernel dumps and hands process cores to the other one.
"""
