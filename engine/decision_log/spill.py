"""Local spill file: batches the store could not take, kept on disk until it takes them.

Append-only frames (length, CRC32, pickled list of events), each append fsynced, so an
event acknowledged after :meth:`SpillFile.append` survives ``kill -9``. A torn last frame
(the process died mid-write) fails its CRC and is ignored. The file is locked
(``flock``) while a process owns it; files left by a dead process are *orphans* that the
next log on the same store adopts and replays. Replays are idempotent (the stores skip
rows they already hold), so replaying a frame twice after a crash is harmless.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import pickle
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_HEADER = struct.Struct("<II")  # payload length, CRC32 of the payload
SUFFIX = ".spill"


def store_key(location: str) -> str:
    """Short stable name of a store, for spill file names.

    >>> len(store_key("postgresql://db/x")), store_key("a") == store_key("a")
    (16, True)
    """
    return hashlib.blake2b(location.encode("utf-8"), digest_size=8).hexdigest()


class SpillFile:
    """One process's spill file for one store (created, opened and locked)."""

    def __init__(self, directory: str | os.PathLike[str], location: str) -> None:
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        self.prefix = store_key(location)
        self.path = folder / f"{self.prefix}-{os.getpid()}-{os.urandom(4).hex()}{SUFFIX}"
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.events = 0  # events in the file not yet replayed
        self._replayed_to = 0  # file offset up to which frames were replayed

    def append(self, events: list[Any]) -> None:
        """Append one frame and fsync it (raises OSError on failure: nothing is acknowledged)."""
        data = pickle.dumps(events, protocol=pickle.HIGHEST_PROTOCOL)
        _write_all(self._fd, _HEADER.pack(len(data), zlib.crc32(data)) + data)
        os.fsync(self._fd)
        self.events += len(events)

    def frames(self, max_events: int) -> Iterator[tuple[int, list[Any]]]:
        """(end offset, events) of frames not yet replayed, merged up to ``max_events``."""
        merged: list[Any] = []
        end = self._replayed_to
        for end, events in _read_frames(self._fd, self._replayed_to):
            merged += events
            if len(merged) >= max_events:
                yield end, merged
                merged = []
        if merged:
            yield end, merged

    def replayed(self, offset: int, n_events: int) -> None:
        """Mark frames up to ``offset`` as written to the store."""
        self._replayed_to = offset
        self.events = max(0, self.events - n_events)

    def clear(self) -> None:
        """Empty the file once everything in it is in the store."""
        os.ftruncate(self._fd, 0)
        os.fsync(self._fd)
        self.events = 0
        self._replayed_to = 0

    def adopt_orphans(self) -> int:
        """Move the frames of unlocked spill files of the same store into this file.

        Unlocked files were left by dead processes; their frames are appended in file order
        and the files deleted.

        Returns:
            The number of events adopted.
        """
        adopted = 0
        for path in sorted(
            self.path.parent.glob(f"{self.prefix}-*{SUFFIX}"), key=lambda p: p.stat().st_mtime
        ):
            if path == self.path:
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # a live process owns it
                os.close(fd)
                continue
            try:
                for _, events in _read_frames(fd, 0):
                    self.append(events)
                    adopted += len(events)
                path.unlink()
            finally:
                os.close(fd)
        if adopted:
            logger.warning(
                "decision log: adopted %d events from spill files of dead processes", adopted
            )
        return adopted

    def close(self) -> None:
        """Release the file; delete it when empty (else it stays for the next process)."""
        if self._fd < 0:
            return
        if self.events == 0:
            self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = -1


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_frames(fd: int, offset: int) -> Iterator[tuple[int, list[Any]]]:
    size = os.fstat(fd).st_size
    while offset + _HEADER.size <= size:
        length, crc = _HEADER.unpack(os.pread(fd, _HEADER.size, offset))
        data = os.pread(fd, length, offset + _HEADER.size)
        if len(data) != length or zlib.crc32(data) != crc:
            logger.error("spill file: torn frame at offset %d ignored", offset)
            return
        offset += _HEADER.size + length
        yield offset, pickle.loads(data)
