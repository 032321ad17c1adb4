"""``cartwise export``: the decision log as a hive-partitioned Parquet folder (a data lake).

Registered through the ``cartwise.commands`` entry point ``decision-log``. Layout:
``docs/log-layout.md``.

Example::

    cartwise export --log decisions.db --to logs/ --partition day
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``export``, and the model-loop commands ``learn`` and ``models``."""
    p = sub.add_parser(
        "export",
        help="write a decision log as Parquet files partitioned by day",
        description="Export every decision of a decision log, joined with its outcome, as Parquet "
        "(one row per decision, schema in docs/log-layout.md), in bounded memory.",
    )
    p.add_argument(
        "--log", required=True, metavar="PATH", help="decision log (the engine's SQLite file)"
    )
    p.add_argument("--to", required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--partition",
        choices=("day", "none"),
        default="day",
        help="day: hive folders day=YYYY-MM-DD (default); none: flat files",
    )
    p.add_argument(
        "--chunk-rows",
        type=int,
        default=50_000,
        metavar="N",
        help="decisions read per chunk (bounds memory; default 50000)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace Parquet files already in --to")
    p.set_defaults(func=_export)
    from engine.model_loop.commands import register as register_model_loop

    register_model_loop(sub)  # cartwise learn / cartwise models


def _export(args: argparse.Namespace) -> int:
    import pyarrow.dataset as ds

    from engine.decision_log.lake import export_lake

    try:
        out = export_lake(
            args.log,
            args.to,
            partition=args.partition,
            chunk_rows=args.chunk_rows,
            overwrite=args.overwrite,
        )
    except FileNotFoundError as exc:
        raise ValueError(str(exc)) from None
    files = sorted(out.rglob("*.parquet"))
    rows = ds.dataset([str(f) for f in files], format="parquet").count_rows() if files else 0
    print(
        f"exported {rows:,} decisions to {out} "
        f"({len(files)} Parquet files, partition={args.partition})"
    )
    return 0
