"""The end-of-run benchmark summary (tests/support/bench_summary.py): table, JSON, and the hook
run by pytest with benchmarks on and off."""

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import bench_summary
import numpy as np

SUPPORT = Path(__file__).resolve().parent / "support"


def _fake(name, extra_info, median=None):
    stats = None if median is None else SimpleNamespace(min=median / 2, median=median, rounds=7)
    return SimpleNamespace(
        name=name,
        fullname=f"tests/benchmarks/x.py::{name}",
        group=None,
        extra_info=extra_info,
        stats=stats,
    )


FAKES = [
    _fake(
        "test_b_decide",
        {
            "decide_p50_us": 52.13,
            "decide_p50_ratio": np.float64(1.98),
            "calls": np.int64(20000),
            "reference": "raw VW predict",
        },
        median=5e-5,
    ),
    _fake("test_a_reference", {}, median=2.5e-5),
]


def test_collect_orders_by_name_and_makes_figures_plain_python():
    entries = bench_summary.collect(FAKES)
    assert [e["name"] for e in entries] == ["test_a_reference", "test_b_decide"]
    figures = entries[1]["figures"]
    assert figures == {
        "decide_p50_us": 52.13,
        "decide_p50_ratio": 1.98,
        "calls": 20000,
        "reference": "raw VW predict",
    }
    assert type(figures["decide_p50_ratio"]) is float and type(figures["calls"]) is int
    assert entries[1]["timing"] == {"min_us": 25.0, "median_us": 50.0, "rounds": 7}


def test_table_has_one_row_per_figure_and_the_median_for_a_benchmark_without_figures():
    lines = bench_summary.format_table(bench_summary.collect(FAKES))
    assert lines[0].split() == ["benchmark", "figure", "value"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    rows = [
        line.split(None, 2) if not line.startswith(" ") else ["", *line.split(None, 1)]
        for line in lines[2:]
    ]
    assert rows == [
        ["test_a_reference", "median_us", "25"],
        ["test_b_decide", "decide_p50_us", "52.13"],
        ["", "decide_p50_ratio", "1.98"],
        ["", "calls", "20,000"],
        ["", "reference", "raw VW predict"],
    ]
    columns = {line.index("median_us") for line in lines[2:3]}
    columns |= {line.index("decide_p50") for line in lines[3:5]}
    assert len(columns) == 1  # the figure column is aligned


def test_format_value():
    assert bench_summary.format_value(0.91024) == "0.91024"
    assert bench_summary.format_value(53209.1) == "53,209.1"
    assert bench_summary.format_value(1234567.8) == "1,234,568"
    assert bench_summary.format_value(82000) == "82,000"
    assert bench_summary.format_value(True) == "True"


def test_json_round_trip_and_path(tmp_path, monkeypatch):
    monkeypatch.delenv(bench_summary.ENV_PATH, raising=False)
    assert bench_summary.summary_path(tmp_path) == tmp_path / "reports" / "bench" / "summary.json"
    monkeypatch.setenv(bench_summary.ENV_PATH, str(tmp_path / "elsewhere.json"))
    assert bench_summary.summary_path(tmp_path) == tmp_path / "elsewhere.json"
    entries = bench_summary.collect(FAKES)
    path = bench_summary.write_json(entries, tmp_path / "deep" / "summary.json", scale="large")
    document = json.loads(path.read_text())
    assert document["scale"] == "large" and document["benchmarks"] == entries


def _run_pytest(tmp_path, *options):
    (tmp_path / "test_tiny.py").write_text(
        "def test_tiny(benchmark):\n"
        "    benchmark(sum, range(10))\n"
        "    benchmark.extra_info['speed_ratio'] = 2.5\n"
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    # Not the outer run's xdist/pytest variables: pytest-benchmark disables itself in xdist workers.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "CARTWISE_"))}
    env["PYTHONPATH"] = str(SUPPORT)
    env[bench_summary.ENV_PATH] = str(tmp_path / "out" / "summary.json")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(tmp_path / "pytest.ini"),
            "-p",
            "bench_summary",
            "-p",
            "no:xdist",
            "-p",
            "no:cacheprovider",
            "--benchmark-min-rounds=1",
            "--benchmark-max-time=0.001",
            "--benchmark-warmup=off",
            *options,
            str(tmp_path / "test_tiny.py"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_a_benchmark_run_prints_the_figures_and_writes_the_json(tmp_path):
    out = _run_pytest(tmp_path)
    assert "benchmark figures (extra_info)" in out
    rows = [line.split() for line in out.splitlines()]
    assert ["test_tiny", "speed_ratio", "2.5"] in rows, out
    path = tmp_path / "out" / "summary.json"
    assert f"written to {path}" in out
    (entry,) = json.loads(path.read_text())["benchmarks"]
    assert entry["name"] == "test_tiny" and entry["figures"] == {"speed_ratio": 2.5}
    assert entry["timing"]["rounds"] >= 1


def test_with_benchmarks_disabled_it_says_so_and_writes_nothing(tmp_path):
    out = _run_pytest(tmp_path, "--benchmark-disable")
    assert "benchmarks were disabled" in out
    assert not (tmp_path / "out").exists()
