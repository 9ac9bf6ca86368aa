"""Linux ELF process core files (ET_CORE): memory from PT_LOADs and mapped files, threads from notes.

Pages the kernel left out of the core (read-only text of mapped files) are read from the
files NT_FILE names, found through a FileLocator; a missing or different file is a warning.
"""

from __future__ import annotations

from pmdb.arch import arch_for_elf_machine
from pmdb.dumps import Dump, DumpKind, Mapping, ThreadState
from pmdb.dumps.locate import FileLocator
from pmdb.errors import BadDumpError, FaultReason, PmdbError
from pmdb.formats import elfnotes as nt
from pmdb.formats.elf import ET_CORE, PT_LOAD, PT_NOTE, ElfFile, ProgramHeader
from pmdb.memory.space import BufferSource, Region, SegmentMap

_LEFT_OUT = "not in core"
_ELF_TYPES = {0: "ET_NONE", 1: "ET_REL: an object file", 2: "ET_EXEC: an executable",
              3: "ET_DYN: a shared object or PIE executable"}


def open_core(path: str, locator: FileLocator) -> Dump:
    """Open an ELF core file read-only and describe it as a Dump."""
    elf = ElfFile(path)
    if elf.type != ET_CORE:
        raise BadDumpError(f"{path}: not a core file (ELF type {_ELF_TYPES.get(elf.type, elf.type)})")
    arch = arch_for_elf_machine(elf.machine)
    phdrs = elf.program_headers()
    warnings: list[str] = []
    notes = _read_notes(elf, [p for p in phdrs if p.type == PT_NOTE], warnings)
    threads = [
        ThreadState(st.pid, arch.decode_gregset(st.gregs), st.cursig, fp)
        for st, fp in zip(notes.pop("prstatus"), notes.pop("fpregs"), strict=True)
    ]
    if not threads:
        warnings.append("core has no NT_PRSTATUS notes: no thread registers")
    files: list[nt.FileMapping] = notes.get("files", [])
    regions = _core_regions(elf, [p for p in phdrs if p.type == PT_LOAD], warnings)
    memory = SegmentMap(_fill_from_files(regions, files, locator, warnings))
    mappings = _mappings([p for p in phdrs if p.type == PT_LOAD], files)
    dump = Dump(path, DumpKind.PROCESS_CORE, arch, memory, threads, mappings, notes, warnings)
    _check_build_ids(dump, files, locator)
    return dump


def _mappings(loads: list[ProgramHeader], files: list[nt.FileMapping]) -> list[Mapping]:
    """The process's mappings: one per PT_LOAD, named by the NT_FILE entry that starts there."""
    named = {f.start: f for f in files}
    out = []
    for p in loads:
        perms = ("r" if p.flags & 4 else "-") + ("w" if p.flags & 2 else "-") + ("x" if p.flags & 1 else "-")
        fm = named.get(p.vaddr)
        out.append(Mapping(p.vaddr, p.vaddr + p.memsz, perms, fm.path if fm else "", fm.offset if fm else 0))
    return out


def _read_notes(elf: ElfFile, segs: list[ProgramHeader], warnings: list[str]) -> dict:
    """Decode the notes a debugger needs. A note that does not decode is skipped with a warning;
    a note header that runs past its segment ends parsing of that segment with a warning.
    Each thread's NT_FPREGSET and NT_X86_XSTATE follow its NT_PRSTATUS and are paired with it.
    """
    out: dict = {"prstatus": [], "fpregs": []}
    decoders = {
        nt.NT_FPREGSET: ("fpregs", nt.parse_fpregset),
        nt.NT_X86_XSTATE: ("fpregs", nt.parse_xstate),
        nt.NT_PRSTATUS: ("prstatus", nt.parse_prstatus),
        nt.NT_PRPSINFO: ("psinfo", nt.parse_prpsinfo),
        nt.NT_SIGINFO: ("siginfo", nt.parse_siginfo),
        nt.NT_AUXV: ("auxv", nt.parse_auxv),
        nt.NT_FILE: ("files", nt.parse_nt_file),
    }
    for seg in segs:
        buf = elf.bytes_at(seg.offset, seg.filesz)
        if len(buf) < seg.filesz:
            warnings.append(f"core is truncated: notes have {len(buf):#x} of {seg.filesz:#x} bytes")
        for owner, ntype, desc in nt.notes_or_warn(buf, warnings):
            if owner not in ("CORE", "LINUX") or ntype not in decoders:
                continue
            key, decode = decoders[ntype]
            try:
                value = decode(desc)
            except BadDumpError as e:
                warnings.append(f"bad {nt.NOTE_NAMES[ntype]} note skipped: {e}")
                continue
            if key == "prstatus":
                out[key].append(value)
                out["fpregs"].append(None)
            elif key == "fpregs":  # a thread's notes follow its NT_PRSTATUS; XSTATE supersedes FPREGSET
                if out["fpregs"]:
                    out["fpregs"][-1] = value
            else:
                out.setdefault(key, value)
    return out


def _core_regions(elf: ElfFile, loads: list[ProgramHeader], warnings: list[str]) -> list[Region]:
    """Regions for the bytes the core holds; a segment cut short by truncation is partly absent."""
    regions = []
    short = 0
    for p in loads:
        have = max(0, min(p.filesz, elf.size - p.offset))
        if have:
            src = BufferSource(memoryview(elf.data)[p.offset : p.offset + have])
            regions.append(Region(p.vaddr, p.vaddr + have, src, 0, "core"))
        if have < p.filesz:
            short += 1
            regions.append(Region(p.vaddr + have, p.vaddr + p.filesz, None, 0, "the core file is truncated"))
        if p.memsz > p.filesz:
            regions.append(Region(p.vaddr + p.filesz, p.vaddr + p.memsz, None, 0, _LEFT_OUT))
    if short:
        warnings.append(f"core is truncated: {short} of {len(loads)} memory segments are incomplete")
    return regions


def _fill_from_files(
    core: list[Region], files: list[nt.FileMapping], locator: FileLocator, warnings: list[str]
) -> list[Region]:
    """All regions, with the parts of file mappings that the core left out read from the files."""
    out = [r for r in core if not _left_out(r)]
    missing: list[str] = []
    for gap in filter(_left_out, core):
        cur = gap.start
        for fm in sorted(files, key=lambda f: f.start):
            lo, hi = max(cur, fm.start), min(gap.end, fm.end)
            if lo >= hi:
                continue
            if lo > cur:
                out.append(Region(cur, lo, None, 0, gap.name))
            host = locator.find(fm.path)
            data = locator.mapping(host) if host else None
            if data is None:
                out.append(Region(lo, hi, None, 0, fm.path, FaultReason.FILE_MISSING))
                if fm.path not in missing:
                    missing.append(fm.path)
            else:
                out.append(Region(lo, hi, BufferSource(data), fm.offset + lo - fm.start, fm.path))
            cur = hi
        if cur < gap.end:
            out.append(Region(cur, gap.end, None, 0, gap.name))
    warnings.extend(f"mapped file {path} not found: its pages are not readable" for path in missing)
    return out


def _left_out(r: Region) -> bool:
    """A region the core describes but whose pages it did not write."""
    return r.source is None and r.name == _LEFT_OUT


def _check_build_ids(dump: Dump, files: list[nt.FileMapping], locator: FileLocator) -> None:
    """Warn when a mapped ELF file on this machine is not the one the process had mapped."""
    seen: set[str] = set()
    for fm in files:
        if fm.offset != 0 or fm.path in seen:
            continue
        seen.add(fm.path)
        host = locator.find(fm.path)
        elf = locator.elf(host) if host else None
        if elf is None:
            continue
        recorded = image_build_id(dump, fm.start)
        actual = elf.build_id()
        if recorded and actual and recorded != actual:
            dump.warnings.append(
                f"mapped file {host} does not match the core: build-id {actual.hex()} "
                f"is not the core's {recorded.hex()}"
            )


def image_build_id(dump: Dump, base: int) -> bytes | None:
    """The build-id of the ELF image whose first page the core holds at `base`, if readable."""
    try:
        page = dump.memory.read(base, 4096)
        return ElfFile(f"image at {base:#x}", page).build_id()
    except PmdbError:  # an unreadable or odd image just has no recorded build-id
        return None
