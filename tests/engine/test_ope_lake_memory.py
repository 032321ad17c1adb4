"""The stream backend's memory stays flat as the log grows (issue 21), and its bounded reader.

The 20M-row figure is too slow for CI; it is measured by ``make bench`` at
``CARTWISE_BENCH_SCALE=large`` (``tests/benchmarks/test_bench_lake.py``) and recorded in
docs/benchmarks.md. Here the same measurement runs at CI-affordable sizes: two generated logs
with the same layout (row groups of 16,384 rows) and 10x apart in size,
each evaluated (IPW, SNIPW and DR, two passes) in a fresh interpreter whose peak resident set
size (``VmHWM`` of ``/proc/self/status``: it counts Arrow's buffers, which ``tracemalloc`` does
not see; ``getrusage``'s ``ru_maxrss`` is not used because a child inherits its parent's) is
compared.
Bounded reading must give the same peak within a small allowance; the previous reader
(``Dataset.to_batches``, which queued decoded batches without bound) grew by more than 100 MB
between these sizes.
"""

import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from lake_generator import write_lake
from ope_streams import HIGH_WATER_MB, child_json

from engine.ope import evaluate_log
from engine.ope.lake.source import prefetched

ROOT = Path(__file__).resolve().parents[2]
SMALL, BIG = 100_000, 1_000_000
ROW_GROUP = 16_384
"""Rows per row group (and so per batch): SMALL already holds enough batches to fill the
reader's read-ahead, so both runs are in the steady state."""
GROWTH_MB = 64.0
"""Allowed peak-RSS growth from SMALL to BIG rows: the allocator's high-water mark varies by
about 40 MB from run to run; the previous reader grew by 230 MB."""

CHILD = (
    """
import json, sys
from engine.ope import evaluate_log
"""
    + HIGH_WATER_MB
    + """
before = high_water_mb()
table = evaluate_log(sys.argv[1], policy="rule", estimators=("ipw", "snipw", "dr"),
                     backend="stream", by=("model_version",))
print(json.dumps({"imports_mb": before, "peak_mb": high_water_mb(),
                  "n": int(table.loc[("(all)", "ipw"), "n"])}))
"""
)


def _peak(path: Path) -> dict:
    return child_json(CHILD, path, ROOT)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's /proc")
def test_stream_peak_memory_does_not_grow_with_the_log(tmp_path):
    small = write_lake(tmp_path / "small", SMALL, days=1, row_group=ROW_GROUP)
    big = write_lake(tmp_path / "big", BIG, days=4, row_group=ROW_GROUP)
    at_small, at_big = _peak(small), _peak(big)
    assert (at_small["n"], at_big["n"]) == (SMALL, BIG)
    growth = at_big["peak_mb"] - at_small["peak_mb"]
    assert growth < GROWTH_MB, (at_small, at_big)
    assert at_big["peak_mb"] < 1024


def _readers() -> list:
    return [t for t in threading.enumerate() if t.name == "cartwise-lake-reader"]


def test_prefetched_keeps_order_and_reads_at_most_depth_ahead():
    produced = []

    def items():
        for i in range(20):
            produced.append(i)
            yield i

    seen = []
    for item in prefetched(items(), depth=2):
        time.sleep(0.01)  # a slow consumer: the producer waits on the full queue
        # taken: item + 1 values; queued: at most 2; one more may wait on the queue's put
        assert len(produced) <= item + 1 + 2 + 1
        seen.append(item)
    assert seen == list(range(20))
    assert not _readers()


def test_prefetched_raises_the_producers_error_and_stops_when_closed():
    def failing():
        yield 1
        raise ValueError("column 'x' == 3")

    with pytest.raises(ValueError, match="column 'x' == 3"):
        list(prefetched(failing(), depth=2))
    stream = prefetched(iter(range(1_000)), depth=2)
    assert next(stream) == 0
    stream.close()  # a consumer that stops early (an error in its batch work)
    assert not _readers()


def test_an_error_in_a_batch_stops_the_reader(lake, tmp_path):
    def damage(t):  # an unknown action in every file
        col = pa.array(["no_such_action"] * t.num_rows)
        return t.set_column(t.schema.get_field_index("action"), "action", col)

    bad = tmp_path / "bad"
    for file in lake[2].rglob("*.parquet"):
        dest = bad / file.relative_to(lake[2])
        dest.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(damage(pq.read_table(file)), dest)
    with pytest.raises(ValueError, match="column 'action' == 'no_such_action'"):
        evaluate_log(bad, policy="rule", backend="stream", batch_rows=100)
    assert not _readers()
