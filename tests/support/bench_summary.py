"""End-of-run summary of the benchmarks' figures (what ``make bench`` measures).

The benchmarks store their ratios and figures in pytest-benchmark's ``extra_info``, which the
console table does not show. :func:`pytest_terminal_summary` prints them, one row per figure,
after pytest-benchmark's own table, and writes them to a JSON file (``reports/bench/summary.json``
under the rootdir, or the path in ``CARTWISE_BENCH_SUMMARY``). With ``--benchmark-disable`` (as
``make test`` runs) nothing is measured: it says so in one line and writes nothing.

``tests/benchmarks/conftest.py`` imports the hook; the formatting helpers are plain functions.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

ENV_PATH = "CARTWISE_BENCH_SUMMARY"
DEFAULT_PATH = Path("reports", "bench", "summary.json")
TITLE = "benchmark figures (extra_info)"


def collect(benchmarks: Iterable[Any]) -> list[dict[str, Any]]:
    """One entry per benchmark: its name, group, timing and ``extra_info`` figures.

    ``benchmarks`` are pytest-benchmark's metadata objects (``name``, ``fullname``, ``group``,
    ``extra_info`` and ``stats`` with ``min``/``median``/``rounds`` in seconds) or anything alike.
    """
    entries = []
    for bench in sorted(benchmarks, key=lambda b: getattr(b, "fullname", b.name)):
        stats = getattr(bench, "stats", None)
        timing = {}
        if stats is not None:
            timing = {
                "min_us": float(stats.min) * 1e6,
                "median_us": float(stats.median) * 1e6,
                "rounds": int(stats.rounds),
            }
        entries.append(
            {
                "name": bench.name,
                "fullname": getattr(bench, "fullname", bench.name),
                "group": getattr(bench, "group", None),
                "timing": timing,
                "figures": {str(k): _plain(v) for k, v in dict(bench.extra_info).items()},
            }
        )
    return entries


def _plain(value: Any) -> Any:
    """A JSON-ready scalar: numpy scalars become Python numbers, other objects their text."""
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def format_value(value: Any) -> str:
    """Readable text for one figure: integers with thousands separators, floats to 6 digits."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1e6 else f"{value:,.6g}"
    return str(value)


def format_table(entries: list[Mapping[str, Any]]) -> list[str]:
    """The summary as text lines: ``benchmark  figure  value``, one row per figure.

    A benchmark without figures gets one row with its median time, so every benchmark shows.
    """
    rows: list[tuple[str, str, str]] = []
    for entry in entries:
        figures = dict(entry["figures"])
        if not figures and entry["timing"]:
            figures = {"median_us": round(entry["timing"]["median_us"], 3)}
        name = entry["name"]
        for key, value in figures.items() or [("", "")]:
            rows.append((name, key, format_value(value) if key else "(no figures)"))
            name = ""  # the benchmark's name only on its first row
    header = ("benchmark", "figure", "value")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]

    def join(cells: tuple[str, ...]) -> str:
        return "  ".join(
            cell.ljust(width) for cell, width in zip(cells, widths, strict=True)
        ).rstrip()

    return [join(header), "  ".join("-" * width for width in widths), *map(join, rows)]


def write_json(entries: list[Mapping[str, Any]], path: Path, scale: str) -> Path:
    """Write the summary (with the run's scale, time and interpreter) to ``path``; return it."""
    document = {
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "scale": scale,
        "python": platform.python_version(),
        "benchmarks": list(entries),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def summary_path(rootdir: Path) -> Path:
    """Where the JSON goes: ``CARTWISE_BENCH_SUMMARY`` if set, else reports/bench/summary.json."""
    override = os.environ.get(ENV_PATH)
    return Path(override) if override else rootdir / DEFAULT_PATH


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    """Print every benchmark's figures and write them to JSON (nothing measured: one line)."""
    session = getattr(config, "_benchmarksession", None)
    if session is None:
        return
    entries = collect(session.benchmarks)
    if not entries:
        if session.disabled:
            terminalreporter.write_line(
                f"{TITLE}: none, benchmarks were disabled (no timing, nothing written)"
            )
        return
    terminalreporter.section(TITLE)
    for line in format_table(entries):
        terminalreporter.write_line(line)
    path = write_json(
        entries,
        summary_path(Path(config.rootpath)),
        os.environ.get("CARTWISE_BENCH_SCALE", "small"),
    )
    terminalreporter.write_line(f"written to {path}")
