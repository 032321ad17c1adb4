"""Where a lake evaluation reads its rows: a Parquet folder or file, or a decision-log store.

A Parquet folder is read as one ``pyarrow.dataset`` (hive ``day=...`` folders when present). A
store (SQLite path; ``postgresql://`` once :func:`engine.decision_log.lake.read_chunks` reads
it) is read in chunks and converted to the lake layout on the fly.
"""

from __future__ import annotations

import math
import os
import queue
import threading
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

BATCH_ROWS = 65_536
"""Rows per Arrow record batch in the stream backend."""
PREFETCH = 2
"""Batches read ahead of the consumer by the stream backend's reader thread."""
MIN_SAMPLE_GROUPS = 16
"""Fewest row groups a sample (:meth:`Source.sampled`) is spread over, when the log has them."""
FOOTER_SCAN_FILES = 64
"""A log of at most this many files is sampled from every file's footer; a larger one from the
footers of the files its sample falls in (a driver sampling a remote lake of thousands of files
would otherwise fetch every footer)."""
_DONE = object()


def prefetched(items: Iterator, depth: int = PREFETCH) -> Generator:
    """``items``, produced by a background thread at most ``depth`` items ahead.

    Reading (Parquet decoding releases the GIL) overlaps the consumer's work while memory
    stays bounded by ``depth`` items. An error in the producer is raised in the consumer; a
    consumer that stops early stops the producer.
    """
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        slots.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put((_DONE, None))
        except BaseException as exc:  # handed to the consumer's thread
            slots.put((_DONE, exc))

    worker = threading.Thread(target=produce, name="cartwise-lake-reader", daemon=True)
    worker.start()
    try:
        while True:
            item, error = slots.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
            del item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                slots.get_nowait()
            except queue.Empty:
                worker.join(0.05)


@dataclass(frozen=True, eq=False)
class Piece:
    """One row group of one Parquet file, readable on any thread (each read opens the file).

    ``constants`` are the file's hive partition values (``day``), ``schema`` the dataset's
    unified schema: a requested column the file lacks is read as nulls of its type. ``limit``:
    read only the row group's first ``limit`` rows (a piece of a sample).
    """

    path: str
    filesystem: Any
    metadata: Any  # the file's parsed pyarrow.parquet.FileMetaData, shared by its pieces
    row_group: int
    constants: tuple[tuple[str, Any], ...]
    schema: Any
    limit: int | None = None

    @property
    def num_rows(self) -> int:
        """Rows this piece reads."""
        rows = self.metadata.row_group(self.row_group).num_rows
        return rows if self.limit is None else min(rows, self.limit)

    def batches(self, columns: Sequence[str], batch_rows: int = BATCH_ROWS) -> Iterator:
        """The row group's record batches (at most ``batch_rows`` rows each) with ``columns``."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        constants = dict(self.constants)
        stored = set(self.metadata.schema.names)
        read = [c for c in columns if c in stored]
        left = self.num_rows
        with self.filesystem.open_input_file(self.path) as handle:
            reader = pq.ParquetFile(handle, metadata=self.metadata)
            for batch in reader.iter_batches(
                min(batch_rows, max(left, 1)),
                row_groups=[self.row_group],
                columns=read,
                use_threads=False,
            ):
                if left <= 0:
                    break
                if batch.num_rows > left:
                    batch = batch.slice(0, left)
                left -= batch.num_rows
                n = batch.num_rows
                arrays = []
                for c in columns:
                    kind = self.schema.field(c).type
                    if c in stored:
                        array = batch.column(c)
                        arrays.append(array if array.type == kind else array.cast(kind))
                    elif c in constants:  # one dictionary entry: a constant column costs nothing
                        values = pa.array([constants[c]], kind)
                        codes = pa.array(np.zeros(n, dtype=np.int32))
                        arrays.append(pa.DictionaryArray.from_arrays(codes, values))
                    else:
                        arrays.append(pa.nulls(n, kind))
                yield pa.RecordBatch.from_arrays(arrays, names=list(columns))


def footer(fragment: Any) -> Any:
    """The parsed footer (``FileMetaData``) of a Parquet fragment: one read of the file's end."""
    return fragment.metadata


def _n_groups(max_rows: int, median_rows: int) -> int:
    """How many row groups a sample of ``max_rows`` is spread over (the log may have fewer)."""
    return max(MIN_SAMPLE_GROUPS, math.ceil(max_rows / max(median_rows, 1)))


def _picks_by_bytes(fragments: list, max_rows: int) -> tuple[tuple[str, int, int], ...] | None:
    """A sample's ``(file, row group, rows)`` at evenly spaced byte positions of the log.

    File sizes come from the file system's listing; footers are read for the files the
    positions fall in only. First :data:`MIN_SAMPLE_GROUPS` positions estimate the rows per
    byte and the median row group; then the sample's own positions are placed. Within a file, a
    position picks the row group holding the same share of the file's rows. None when the log
    is estimated to hold no more than twice ``max_rows`` rows: the caller then reads every
    footer and decides exactly.
    """
    filesystem = fragments[0].filesystem
    sizes = np.array([info.size for info in filesystem.get_file_info([f.path for f in fragments])])
    ends = np.cumsum(sizes)
    total = int(ends[-1])
    read: dict[int, Any] = {}

    def files_at(m: int) -> list[tuple[int, float]]:
        """``(file, share of the file)`` at ``m`` positions, each in the middle of its m-th."""
        out = []
        for j in range(m):
            position = (2 * j + 1) * total / (2 * m)
            f = min(int(np.searchsorted(ends, position, side="right")), len(fragments) - 1)
            start = ends[f] - sizes[f]
            out.append((f, (position - start) / max(int(sizes[f]), 1)))
        return out

    def metadata(f: int) -> Any:
        if f not in read:
            read[f] = footer(fragments[f])
        return read[f]

    first = files_at(MIN_SAMPLE_GROUPS)
    seen = {f for f, _ in first}
    rows_seen = sum(metadata(f).num_rows for f in seen)
    bytes_seen = sum(int(sizes[f]) for f in seen)
    if total * rows_seen / max(bytes_seen, 1) <= 2 * max_rows:
        return None
    group_rows = sorted(
        metadata(f).row_group(k).num_rows for f in seen for k in range(metadata(f).num_row_groups)
    )
    m = _n_groups(max_rows, group_rows[len(group_rows) // 2])
    per_group = math.ceil(max_rows / m)
    picks: dict[tuple[int, int], int] = {}
    for f, share in files_at(m):
        meta = metadata(f)
        if meta.num_row_groups == 0:
            continue
        counts = np.cumsum([meta.row_group(k).num_rows for k in range(meta.num_row_groups)])
        row = min(share, 1.0) * counts[-1]
        k = min(int(np.searchsorted(counts, row, side="right")), meta.num_row_groups - 1)
        picks[f, k] = min(per_group, meta.row_group(k).num_rows)
    return tuple((fragments[f].path, k, rows) for (f, k), rows in sorted(picks.items()))


@dataclass(frozen=True)
class Source:
    """An opened source: its column names and how to read it."""

    location: str
    kind: str  # "parquet" or "store"
    names: tuple[str, ...]
    hive: bool = False
    sample: tuple[tuple[str, int, int], ...] | None = None
    """Read only these ``(file, row group, first rows)`` (:meth:`sampled`); None: every row."""

    @property
    def action_names(self) -> tuple[str, ...]:
        """Actions of the source, from its ``p_<action>`` columns."""
        return tuple(c[2:] for c in self.names if c.startswith("p_"))

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Features of the source, from its ``f_<feature>`` columns, sorted."""
        return tuple(sorted(c[2:] for c in self.names if c.startswith("f_")))

    def dataset(self):
        """The ``pyarrow.dataset`` of a Parquet source."""
        import pyarrow as pa
        import pyarrow.dataset as ds

        partitioning = (
            ds.partitioning(pa.schema([("day", pa.string())]), flavor="hive") if self.hive else None
        )
        return ds.dataset(self.location, format="parquet", partitioning=partitioning)

    def batches(self, columns: Sequence[str], batch_rows: int = BATCH_ROWS) -> Generator:
        """Arrow record batches (Parquet) or tables (store chunks) holding ``columns``.

        A Parquet source is read one row group at a time, with :data:`PREFETCH` batches decoded
        ahead in a background thread: memory is bounded by a few row groups whatever the
        dataset's size (``Dataset.to_batches`` queues decoded batches without bound when the
        consumer is slower than the reader, so its peak grows with the log).
        """
        if self.kind == "parquet":
            batches: Iterator
            if self.sample is not None:
                batches = self._sample_batches(columns, batch_rows)
            else:
                batches = self._row_groups(list(columns), batch_rows)
            yield from prefetched(batches, PREFETCH)
            return
        from engine.decision_log.lake import lake_schema, read_chunks, to_arrow

        schema = lake_schema(self.action_names, self.feature_names)
        for frame in read_chunks(self.location, chunk_rows=batch_rows):
            yield to_arrow(frame, schema).select(list(columns))

    def pieces(self) -> Iterator[Piece]:
        """The row groups of a Parquet source (those of its sample), in the dataset's order."""
        dataset = self.dataset()
        return self._pieces(dataset, dataset.get_fragments())

    def _pieces(self, dataset: Any, fragments: Iterable[Any]) -> Iterator[Piece]:
        """:meth:`pieces` of ``dataset``'s ``fragments`` (already listed)."""
        import pyarrow.dataset as ds

        limits = None if self.sample is None else {(f, g): n for f, g, n in self.sample}
        files = None if self.sample is None else {f for f, _, _ in self.sample}
        for fragment in fragments:
            if files is not None and fragment.path not in files:
                continue
            keys = ds.get_partition_keys(fragment.partition_expression)
            metadata = footer(fragment)
            for k in range(metadata.num_row_groups):
                if limits is not None and (fragment.path, k) not in limits:
                    continue
                yield Piece(
                    fragment.path,
                    fragment.filesystem,
                    metadata,
                    k,
                    tuple(keys.items()),
                    dataset.schema,
                    None if limits is None else limits[fragment.path, k],
                )

    def sampled(self, max_rows: int | None) -> Source:
        """This source reduced to about ``max_rows`` rows spread evenly over the log.

        The sample takes the first rows of row groups at evenly spaced positions in the
        dataset's order (at least :data:`MIN_SAMPLE_GROUPS` groups when the log has them, and
        at most ``ceil(max_rows / groups)`` rows of each), so it reaches every part of a log
        partitioned by day and reads at most ``max_rows`` rows plus one per group. A log of at
        most :data:`FOOTER_SCAN_FILES` files spaces the groups by their order among all row
        groups; a larger one spaces them by byte position and reads only the footers of the
        files they fall in. The source itself when ``max_rows`` is None, when it holds no more
        rows, or when it is a store (a decision-log store is read whole).

        >>> src = Source("logs/", "store", ())
        >>> src.sampled(1000) is src
        True
        """
        if max_rows is None or self.kind != "parquet" or self.sample is not None:
            return self
        dataset = self.dataset()
        fragments = list(dataset.get_fragments())  # listed once; their footers cached on them
        if len(fragments) > FOOTER_SCAN_FILES:
            by_bytes = _picks_by_bytes(fragments, max_rows)
            if by_bytes is not None:
                return replace(self, sample=by_bytes)
        groups = [(p.path, p.row_group, p.num_rows) for p in self._pieces(dataset, fragments)]
        sizes = sorted(rows for _, _, rows in groups)
        if sum(sizes) <= max_rows:
            return self
        m = min(len(groups), _n_groups(max_rows, sizes[len(sizes) // 2]))
        per_group = math.ceil(max_rows / m)
        picks = sorted({(2 * j + 1) * len(groups) // (2 * m) for j in range(m)})
        return replace(
            self,
            sample=tuple((groups[g][0], groups[g][1], min(per_group, groups[g][2])) for g in picks),
        )

    def _sample_batches(self, columns: Sequence[str], batch_rows: int) -> Iterator:
        """The record batches of a sampled source's pieces, in the dataset's order."""
        for piece in self.pieces():
            yield from piece.batches(columns, batch_rows)

    def _row_groups(self, columns: list[str], batch_rows: int) -> Iterator:
        dataset = self.dataset()
        for fragment in dataset.get_fragments():
            for piece in fragment.split_by_row_group():
                yield from piece.to_batches(
                    schema=dataset.schema,  # fills the hive `day` column of the piece
                    columns=columns,
                    batch_size=batch_rows,
                    batch_readahead=0,
                    fragment_readahead=0,
                )

    def table(self, columns: Sequence[str]):
        """The whole source as one Arrow table (the memory backend)."""
        import pyarrow as pa

        if self.kind == "parquet":
            if self.sample is not None:
                return pa.Table.from_batches(list(self._sample_batches(columns, BATCH_ROWS)))
            return self.dataset().to_table(columns=list(columns))
        from engine.decision_log import read_log
        from engine.decision_log.lake import lake_schema, to_arrow

        table = to_arrow(
            read_log(self.location), lake_schema(self.action_names, self.feature_names)
        )
        return pa.Table.from_batches(table.select(list(columns)).to_batches())

    def count_files(self) -> int:
        """Parquet files of the source (1 for a decision-log store)."""
        return len(self.dataset().files) if self.kind == "parquet" else 1


def open_source(source: str | os.PathLike[str]) -> Source:
    """Open a Parquet folder/file or a decision-log store and read its column names."""
    if not isinstance(source, (str, os.PathLike)):
        raise ValueError(
            f"source == {source!r}, must be a Parquet folder, a .parquet file, a SQLite "
            "decision log or a database URL"
        )
    text = os.fspath(source)
    path = Path(text)
    if "://" in text:
        raise ValueError(
            f"source == {text!r}: only Parquet and SQLite decision logs can be read so far"
        )
    if path.is_dir() or path.suffix.lower() in (".parquet", ".pq"):
        if not path.exists():
            raise ValueError(f"source == {text!r}: no such file or folder")
        hive = path.is_dir() and any(
            p.is_dir() and p.name.startswith("day=") for p in path.iterdir()
        )
        src = Source(text, "parquet", (), hive)
        try:
            names = tuple(src.dataset().schema.names)
        except Exception as exc:  # pyarrow raises its own error types for unreadable files
            raise ValueError(f"source == {text!r} cannot be read as Parquet: {exc}") from None
        if not names:
            raise ValueError(f"source == {text!r} holds no Parquet file")
        return Source(text, "parquet", names, hive)
    if not path.is_file():
        raise ValueError(f"source == {text!r}: no such file or folder")
    from engine.decision_log.lake import lake_schema, log_names

    actions, features = log_names(text)
    return Source(text, "store", tuple(lake_schema(actions, features).names))
