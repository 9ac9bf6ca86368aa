"""Linux signal numbers with the names and descriptions mdb prints (illumos wording)."""

from __future__ import annotations

SIGNALS: dict[int, tuple[str, str]] = {
    1: ("SIGHUP", "Hangup"), 2: ("SIGINT", "Interrupt"), 3: ("SIGQUIT", "Quit"),
    4: ("SIGILL", "Illegal Instruction"), 5: ("SIGTRAP", "Trace/Breakpoint Trap"), 6: ("SIGABRT", "Abort"),
    7: ("SIGBUS", "Bus Error"), 8: ("SIGFPE", "Arithmetic Exception"), 9: ("SIGKILL", "Killed"),
    10: ("SIGUSR1", "User Signal 1"), 11: ("SIGSEGV", "Segmentation Fault"), 12: ("SIGUSR2", "User Signal 2"),
    13: ("SIGPIPE", "Broken Pipe"), 14: ("SIGALRM", "Alarm Clock"), 15: ("SIGTERM", "Terminated"),
    16: ("SIGSTKFLT", "Stack Fault"), 17: ("SIGCHLD", "Child Status Changed"), 18: ("SIGCONT", "Continued"),
    19: ("SIGSTOP", "Stopped (signal)"), 20: ("SIGTSTP", "Stopped (user)"),
    21: ("SIGTTIN", "Stopped (tty input)"), 22: ("SIGTTOU", "Stopped (tty output)"),
    23: ("SIGURG", "Urgent Socket Condition"), 24: ("SIGXCPU", "Cpu Limit Exceeded"),
    25: ("SIGXFSZ", "File Size Limit Exceeded"), 26: ("SIGVTALRM", "Virtual Timer Expired"),
    27: ("SIGPROF", "Profiling Timer Expired"), 28: ("SIGWINCH", "Window Size Change"),
    29: ("SIGIO", "Pollable Event"), 30: ("SIGPWR", "Power-Fail/Restart"), 31: ("SIGSYS", "Bad System Call"),
}


def signal_name(signo: int) -> str:
    """`SIGSEGV`, or `SIG#N` for a number Linux does not name."""
    return SIGNALS.get(signo, (f"SIG#{signo}", ""))[0]


def signal_text(signo: int) -> str:
    """`SIGSEGV (Segmentation Fault)`, as mdb's ::status says it."""
    name, desc = SIGNALS.get(signo, (f"SIG#{signo}", f"Signal {signo}"))
    if 34 <= signo <= 64:
        name, desc = f"SIGRTMIN+{signo - 34}", "Real-Time Signal"
    return f"{name} ({desc})"
