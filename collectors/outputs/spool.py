"""On-disk spool of line-protocol batches the TSDB did not take, replayed oldest first.

Why a spool: the NOC must be able to look back at what happened *during* a TSDB outage (an outage
of the metrics store often coincides with the incident being investigated), so a failed batch is
kept on local disk instead of in memory, survives a restart of the process, and is back-filled
in the order it was produced.

Layout: one batch per segment file ``<seq:016d>.lp`` in ``spool_dir``. A segment is written to
``<seq>.tmp``, fsynced, renamed and the directory fsynced, so after a crash a segment is either
complete or absent; leftover ``.tmp`` files (a batch that was being spooled when the process
died) are removed at open. Segments are never modified: they are created, read, then unlinked
after the server acknowledged them. Total size is bounded (``max_bytes``); a full spool refuses
new segments (the caller counts and logs the refusal).

An exclusive ``flock`` on ``spool_dir/.lock`` keeps two writers from replaying the same spool
(a killed process releases it with its file descriptors). All methods do blocking file I/O:
call them from a worker thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import fcntl
import os
import threading
from dataclasses import dataclass
from pathlib import Path

SUFFIX = ".lp"


class SpoolLocked(RuntimeError):
    """Another live process holds this spool directory."""


@dataclass(frozen=True, slots=True)
class Segment:
    seq: int
    path: Path
    size: int


class Spool:
    """FIFO of line-protocol batches on disk (thread-safe; one process per directory)."""

    def __init__(self, directory: Path, max_bytes: int = 1 << 30) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._segments: list[Segment] = []  # oldest first
        self._bytes = 0
        self._next_seq = 1
        self._lock_fd: int | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def open(self) -> None:
        """Lock the directory and index the segments a previous process left (resume)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SpoolLocked(f"spool {self.directory} is in use by another writer") from None
        self._lock_fd = fd
        segments = []
        for entry in self.directory.iterdir():
            if entry.suffix == ".tmp":
                entry.unlink(missing_ok=True)
            elif entry.suffix == SUFFIX and entry.stem.isdigit():
                size = entry.stat().st_size
                if size == 0:
                    entry.unlink(missing_ok=True)
                    continue
                segments.append(Segment(int(entry.stem), entry, size))
        segments.sort(key=lambda s: s.seq)
        with self._lock:
            self._segments = segments
            self._bytes = sum(s.size for s in segments)
            self._next_seq = (segments[-1].seq + 1) if segments else 1

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    # -- queue operations ----------------------------------------------------------------------

    def append(self, batch: bytes) -> Segment | None:
        """Persist one batch as the newest segment; None (nothing written) if the spool is full."""
        if not batch:
            raise ValueError("empty batch")
        with self._lock:
            if self._bytes + len(batch) > self.max_bytes:
                return None
            seq = self._next_seq
            self._next_seq += 1
        final = self.directory / f"{seq:016d}{SUFFIX}"
        tmp = final.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(batch)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, final)
        self._fsync_dir()
        segment = Segment(seq, final, len(batch))
        with self._lock:
            self._segments.append(segment)
            self._segments.sort(key=lambda s: s.seq)  # appends from one thread at a time: already sorted
            self._bytes += len(batch)
        return segment

    def oldest(self) -> tuple[Segment, bytes] | None:
        """The oldest segment and its content, or None when the spool is empty."""
        with self._lock:
            if not self._segments:
                return None
            segment = self._segments[0]
        return segment, segment.path.read_bytes()

    def remove(self, segment: Segment) -> None:
        """Drop a segment once the server acknowledged it."""
        segment.path.unlink(missing_ok=True)
        with self._lock:
            if segment in self._segments:
                self._segments.remove(segment)
                self._bytes -= segment.size

    # -- introspection ------------------------------------------------------------------------

    def __len__(self) -> int:
        with self._lock:
            return len(self._segments)

    @property
    def bytes(self) -> int:
        with self._lock:
            return self._bytes

    def _fsync_dir(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
