"""``cartwise abtest`` and the report: terminal table, self-contained HTML with its figures."""

import base64
import re

import numpy as np
import pytest

from engine.cli import main
from simulator.experiments import run_experiment
from simulator.experiments.report import format_table, summary_table, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_cli_prints_the_table_and_writes_a_self_contained_html_report(tmp_path, capsys):
    out = tmp_path / "report"
    code = main(
        [
            "abtest",
            "--arms",
            "none,rule,vw",
            "--users",
            "800",
            "--days",
            "3",
            "--pre-days",
            "2",
            "--seed",
            "4",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    stdout = capsys.readouterr().out
    header = next(line for line in stdout.splitlines() if "true effect" in line)
    for column in ("metric", "arm", "effect", "CI", "p", "CUPED", "true effect", "OPE"):
        assert column in header
    for metric in ("profit", "converted", "revenue", "coupon_cost"):
        assert re.search(rf"^\s*{metric}\s+rule\s", stdout, re.M)
        assert re.search(rf"^\s*{metric}\s+vw\s", stdout, re.M)
    assert "Decision for rule:" in stdout and "SRM:" in stdout
    page = (out / "abtest.html").read_text(encoding="utf-8")
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 4
    assert all(base64.b64decode(data).startswith(PNG_MAGIC) for data in images)
    for name in ("profit_effects", "effects_all_metrics", "sequence", "cumulative"):
        assert (out / f"abtest_{name}.png").read_bytes().startswith(PNG_MAGIC)
    assert "True effect (profit only)" in page and "Off-policy pre-screen" in page
    assert "<script" not in page and "http" not in page  # nothing fetched from outside


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--users", "1"], "users == 1"),
        (["--arms", "none,no-such-policy"], "no-such-policy"),
        (["--confidence", "1.5"], "confidence"),
    ],
)
def test_cli_reports_bad_input_as_one_error_line(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "abtest",
                "--days",
                "1",
                "--pre-days",
                "1",
                "--users",
                "200",
                "--out",
                str(tmp_path),
                *argv,
            ]
        )
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_summary_table_formats_every_metric_and_arm(tmp_path):
    result = run_experiment(
        ["none", "static:recall_message"], users=500, days=2, pre_days=2, seed=8, progress=False
    )
    analysis = result.analyse()
    table = summary_table(analysis)
    assert len(table) == 4 and list(table["arm"].unique()) == ["static:recall_message"]
    profit = table.iloc[0]
    row = analysis.table.iloc[0]
    assert profit["effect"] == f"{row['abs_effect']:+.3f}"
    assert profit["true effect"] == f"{row['true_effect']:+.3f}"
    assert profit["OPE"].startswith(f"{row['ope_effect']:+.3f}")
    assert (table.loc[1:, "true effect"] == "-").all()
    text = format_table(analysis)
    assert "SRM:" in text and "Decision for static:recall_message" in text
    assert np.isfinite(row["cuped_abs_effect"])
    path = write_report(result, analysis, tmp_path)
    assert path.name == "abtest.html" and path.stat().st_size > 10_000
