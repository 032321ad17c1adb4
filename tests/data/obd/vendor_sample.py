"""Rebuild the vendored Open Bandit "men" sample from the files the Open Bandit Pipeline ships.

Usage: ``python tests/data/obd/vendor_sample.py SOURCE_DIR`` where SOURCE_DIR holds the
pipeline's ``random.csv``, ``bts.csv`` and ``bts_action_dist.npz`` for the "men" campaign.
Kept columns are copied as the original text (no float re-formatting), so reading the gzip
files gives exactly the numbers the original CSVs give. The gzip header carries no timestamp,
so a rebuild is byte-identical.
"""

from __future__ import annotations

import csv
import gzip
import io
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent / "men"


def _random_column(name: str) -> bool:
    """The uniform-random log's columns that the OPE test and notebook 03 read."""
    return name in {"item_id", "position", "click", "propensity_score"} or name.startswith(
        ("user_feature_", "user-item_affinity_")
    )


def _bts_column(name: str) -> bool:
    """The BTS log is only used for its on-policy click rate."""
    return name == "click"


def cut_columns(source: Path, target: Path, keep: Callable[[str], bool]) -> None:
    """Write the columns of CSV ``source`` that ``keep`` accepts to gzip CSV ``target``."""
    with source.open(newline="") as handle:
        rows = csv.reader(handle)
        header = next(rows)
        kept = [i for i, name in enumerate(header) if keep(name)]
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow([header[i] for i in kept])
        writer.writerows([row[i] for i in kept] for row in rows)
    with (
        target.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as gz,
    ):
        gz.write(text.getvalue().encode())


def main(source_dir: str) -> None:
    """Rebuild tests/data/obd/men/ from ``source_dir``."""
    source = Path(source_dir)
    HERE.mkdir(exist_ok=True)
    cut_columns(source / "random.csv", HERE / "random.csv.gz", _random_column)
    cut_columns(source / "bts.csv", HERE / "bts.csv.gz", _bts_column)
    shutil.copyfile(source / "bts_action_dist.npz", HERE / "bts_action_dist.npz")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
