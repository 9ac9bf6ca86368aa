"""The kernel log: the lockless printk ring buffer (5.10 and later) or the older `log_buf`.

The lockless buffer (`prb`) is a ring of descriptors, each with a state and id in its
`state_var` (the top two bits are the state: 1 committed, 2 finalized), a `printk_info`
(sequence number, timestamp, text length, caller) and the position of its text in the data
ring: a block that starts with the descriptor's id, then the text; a block that would wrap
starts again at the beginning of the ring. Positions with the low bit set carry no data.

The older buffer (`log_buf`, to 5.9) is a byte array of `struct printk_log` records from
`log_first_idx` to `log_next_idx`; a record of length 0 sends the reader back to index 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from pmdb.errors import BadDumpError
from pmdb.os.linux.layout import Layout
from pmdb.os.linux.reader import KernelReader

_STATE_SHIFT = 62
_ID_MASK = (1 << _STATE_SHIFT) - 1
_COMMITTED, _FINALIZED = 1, 2
_CALLER_CPU = 0x80000000
MAX_RECORDS = 1 << 20
MAX_TEXT = 1 << 16


@dataclass(frozen=True)
class LogRecord:
    """One printk record: sequence number, timestamp (ns since boot), text and who logged it."""

    seq: int
    ts_nsec: int
    text: str
    caller_pid: int | None = None
    caller_cpu: int | None = None

    @property
    def lines(self) -> list[str]:
        """The record as dmesg prints it: `[    1.652540] text`, a line per line of text."""
        secs, nsec = divmod(self.ts_nsec, 1_000_000_000)
        stamp = f"[{secs:5d}.{nsec // 1000:06d}] "
        return [stamp + line for line in self.text.split("\n")]


def _caller(caller_id: int) -> tuple[int | None, int | None]:
    if caller_id & _CALLER_CPU:
        return None, caller_id & ~_CALLER_CPU
    return caller_id, None


class LockLessLog:
    """Reads the records of a `struct printk_ringbuffer`."""

    def __init__(self, reader: KernelReader, layout: Layout, rb: int) -> None:
        self.rd = reader
        self.lay = layout
        self.rb = rb

    def _at(self, struct: str, path: str, base: int, size: int = 8) -> int:
        return self.rd.uint(base + self.lay.offset(struct, path), size)

    def records(self) -> list[LogRecord]:
        """Every readable record, oldest first."""
        lay = self.lay
        desc_ring = self.rb + lay.offset("printk_ringbuffer", "desc_ring")
        text_ring = self.rb + lay.offset("printk_ringbuffer", "text_data_ring")
        count = 1 << self._at("prb_desc_ring", "count_bits", desc_ring, 4)
        descs = self._at("prb_desc_ring", "descs", desc_ring)
        infos = self._at("prb_desc_ring", "infos", desc_ring)
        head = self._at("prb_desc_ring", "head_id", desc_ring) & _ID_MASK
        tail = self._at("prb_desc_ring", "tail_id", desc_ring) & _ID_MASK
        data_size = 1 << self._at("prb_data_ring", "size_bits", text_ring, 4)
        data = self._at("prb_data_ring", "data", text_ring)
        desc_size, info_size = lay.size("prb_desc"), lay.size("printk_info")
        if (head - tail) & _ID_MASK > min(count, MAX_RECORDS):
            raise BadDumpError(f"printk ring buffer: head id {head} and tail id {tail} are {count}+ apart")
        out = []
        ident = tail
        while True:
            index = ident % count
            desc = descs + index * desc_size
            state_var = self._at("prb_desc", "state_var", desc)
            if state_var & _ID_MASK == ident and state_var >> _STATE_SHIFT in (_COMMITTED, _FINALIZED):
                record = self._record(desc, infos + index * info_size, data, data_size)
                if record is not None:
                    out.append(record)
            if ident == head:
                break
            ident = (ident + 1) & _ID_MASK
        return out

    def _record(self, desc: int, info: int, data: int, data_size: int) -> LogRecord | None:
        lay = self.lay
        lpos = desc + lay.offset("prb_desc", "text_blk_lpos")
        begin = self._at("prb_data_blk_lpos", "begin", lpos)
        nxt = self._at("prb_data_blk_lpos", "next", lpos)
        text_len = self._at("printk_info", "text_len", info, 2)
        if begin & 1 or nxt & 1:  # a record without data (a failed or empty line)
            text = b""
        else:
            start = begin % data_size
            if begin // data_size != nxt // data_size and start:  # wrapped: the block restarts at 0
                start = 0
            text = self.rd.read(data + start + 8, min(text_len, MAX_TEXT, data_size - start - 8))
        caller_id = self._at("printk_info", "caller_id", info, 4) if lay.has("printk_info", "caller_id") else None
        pid, cpu = _caller(caller_id) if caller_id is not None else (None, None)
        return LogRecord(self._at("printk_info", "seq", info), self._at("printk_info", "ts_nsec", info),
                         text.decode("utf-8", "replace"), pid, cpu)


class LegacyLog:
    """Reads the records of the pre-5.10 `log_buf`."""

    def __init__(self, reader: KernelReader, layout: Layout, buf: int, size: int, first: int, nxt: int,
                 first_seq: int = 0) -> None:
        self.rd = reader
        self.lay = layout
        self.buf, self.size, self.first, self.next, self.first_seq = buf, size, first, nxt, first_seq

    def records(self) -> list[LogRecord]:
        """Every record from log_first_idx to log_next_idx, oldest first."""
        lay = self.lay
        header = lay.size("printk_log")
        out = []
        idx, seq = self.first, self.first_seq
        for _ in range(MAX_RECORDS):
            if idx == self.next:
                return out
            if not 0 <= idx <= self.size - header:
                raise BadDumpError(f"log_buf: record index {idx:#x} is outside the {self.size:#x}-byte buffer")
            rec = self.buf + idx
            length = self.rd.u16(rec + lay.offset("printk_log", "len"))
            if length == 0:  # the buffer wrapped here
                idx = 0
                continue
            text_len = self.rd.u16(rec + lay.offset("printk_log", "text_len"))
            text = self.rd.read(rec + header, min(text_len, MAX_TEXT))
            caller = self.rd.u32(rec + lay.offset("printk_log", "caller_id")) if lay.has("printk_log", "caller_id") \
                else None
            pid, cpu = _caller(caller) if caller is not None else (None, None)
            ts = self.rd.u64(rec + lay.offset("printk_log", "ts_nsec"))
            out.append(LogRecord(seq, ts, text.decode("utf-8", "replace"), pid, cpu))
            idx += length
            seq += 1
        raise BadDumpError(f"log_buf: more than {MAX_RECORDS} records")

