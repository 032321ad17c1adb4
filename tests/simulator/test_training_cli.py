"""``cartwise train`` and ``cartwise compare`` end to end (in-process through engine.cli.main)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from engine.cli import main
from simulator.training.cli import SHIFT_MIXTURE, parse_options

REQUIRED = {
    "policy",
    "carts",
    "value_last",
    "none",
    "best_static",
    "full_information",
    "oracle",
    "conversion_last",
    "coupon_cost_last",
    "curve",
}


def test_train_json_last_line_parses_with_the_required_keys(capsys):
    code = main(
        [
            "train",
            "--policy",
            "linucb",
            "--carts",
            "1500",
            "--seed",
            "2",
            "--json",
            "--batch",
            "128",
            "--shoppers",
            "1500",
            "--no-progress",
        ]
    )
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) > 3  # the table comes first
    payload = json.loads(lines[-1])
    assert set(payload) >= REQUIRED
    assert payload["policy"] == "linucb" and payload["carts"] == 1500
    assert payload["oracle"] >= max(
        payload["value_last"], payload["best_static"], payload["full_information"]
    )
    assert len(payload["curve"]) == 50 and payload["curve"][-1]["carts"] == 1500
    assert {"carts", "value", "none", "oracle", "full_information"} <= set(payload["curve"][0])


def test_train_with_shift_options_and_no_conditioning(capsys):
    code = main(
        [
            "train",
            "--policy",
            "static:coupon_10",
            "--carts",
            "1200",
            "--seed",
            "0",
            "--json",
            "--no-conditioning",
            "--shift",
            "--shoppers",
            "1000",
            "--no-progress",
            "--option",
            'fallback="none"',
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    payload = json.loads(out.strip().splitlines()[-1])
    assert payload["shift_at"] == 600 and "mixture shift at cart 600" in out and "oracle" in out
    assert payload["value_last"] == pytest.approx(payload["static"]["coupon_10"])


def test_train_rejects_unknown_policies_with_a_clear_message(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--policy", "bogus", "--carts", "10", "--no-progress"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "bogus" in err and "linucb" in err


def test_compare_prints_and_writes_the_scoreboard(tmp_path, capsys):
    out = tmp_path / "board"
    code = main(
        [
            "compare",
            "--carts",
            "800",
            "--seeds",
            "2",
            "--policies",
            "none,rule,linucb,oracle",
            "--out",
            str(out),
            "--shoppers",
            "1000",
            "--batch",
            "100",
            "--no-progress",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "| policy |" in printed and "| linucb |" in printed and "±" in printed
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 8 and set(runs["seed"]) == {0, 1}
    summary = pd.read_csv(out / "summary.csv")
    assert summary["policy"].tolist() == ["none", "rule", "linucb", "oracle"]
    oracle_row = summary.set_index("policy").loc["oracle"]
    assert oracle_row["regret_oracle_mean"] == pytest.approx(0.0, abs=1e-12)
    assert (out / "scoreboard.md").read_text().startswith("# Cartwise scoreboard")
    png = (out / "learning_curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def test_parse_options_reads_json_values_and_rejects_bad_items():
    assert parse_options(["alpha=0.3", 'interactions=["UA"]', "exploration=bag"]) == {
        "alpha": 0.3,
        "interactions": ["UA"],
        "exploration": "bag",
    }
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_options(["alpha"])
    assert abs(sum(SHIFT_MIXTURE.values()) - 1.0) < 1e-12
