"""The scoreboard: summary statistics, shift detection and recovery, markdown and the PNG."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pandas as pd
import pytest

from simulator import CartRecoveryVectorEnv
from simulator.training import TrainingResult, compare_policies, summarise_over_seeds
from simulator.training.plots import learning_curve_plot
from simulator.training.scoreboard import first_shifted_cart, markdown_table, shift_recovery


def _result(value, none, full, shift_at, batch=100):
    n = len(value)
    trace = {
        "value": np.asarray(value, float),
        "none": np.full(n, none),
        "oracle": np.full(n, full),
    }
    return TrainingResult(
        policy="p",
        carts=n,
        seed=0,
        batch=batch,
        value_last=0,
        none=none,
        best_static=0,
        best_static_action="none",
        rule=0,
        full_information=full,
        oracle=full,
        conversion_last=0,
        coupon_cost_last=0,
        profit_last=0,
        static={},
        curve=[],
        seconds=1.0,
        shift_at=shift_at,
        trace=trace,
    )


def test_shift_recovery_on_a_constructed_trace():
    # share of the oracle's gain 0.9 before the shift (cart 1000), 0.3 for 300 carts, then 0.9 again
    value = np.full(2000, 1.9)
    value[1000:1300] = 1.3
    rec = shift_recovery(_result(value, none=1.0, full=2.0, shift_at=1000), window=100)
    assert rec["oracle_share_before"] == pytest.approx(0.9)
    assert rec["oracle_share_after"] == pytest.approx(0.3)
    assert rec["oracle_share_end"] == pytest.approx(0.9)
    assert rec["recovery_carts"] == pytest.approx(400)  # first full window of 0.9 is [1300, 1400)
    steady = shift_recovery(_result(np.full(2000, 1.9), 1.0, 2.0, 1000), window=100)
    assert steady["recovery_carts"] == 0.0
    never = value.copy()
    never[1000:] = 1.2
    assert np.isnan(shift_recovery(_result(never, 1.0, 2.0, 1000), window=100)["recovery_carts"])
    with pytest.raises(ValueError, match="shift"):
        shift_recovery(_result(value, 1.0, 2.0, None))


def test_first_shifted_cart_is_where_the_env_changes_the_mixture():
    batch, at = 64, 300
    env = CartRecoveryVectorEnv(
        num_envs=batch,
        n_shoppers=800,
        n_items=100,
        mixture_shift={"at_episode": at, "mixture": {"forgetful": 1.0}},
    )
    _, info = env.reset(seed=0)
    types = []
    for _ in range(8):
        types.extend(info["shopper_type"])
        _, _, _, _, info = env.step(np.zeros(batch, dtype=np.int64))
    types = np.array(types)
    start = first_shifted_cart(at, batch)
    assert start == 320
    assert (types[start:] == "forgetful").all() and (types[:start] != "forgetful").any()


def test_summarise_is_mean_and_sample_sd_per_policy():
    runs = pd.DataFrame(
        {
            "policy": ["a", "a", "a", "b"],
            "seed": [0, 1, 2, 0],
            "value_last": [1.0, 2.0, 4.0, 3.0],
            "gain_share": [0.1, 0.2, 0.3, 0.5],
        }
    )
    s = summarise_over_seeds(runs).set_index("policy")
    assert s.loc["a", "value_last_mean"] == pytest.approx(7 / 3)
    assert s.loc["a", "value_last_sd"] == pytest.approx(np.std([1.0, 2.0, 4.0], ddof=1))
    assert s.loc["a", "seeds"] == 3 and np.isnan(s.loc["b", "value_last_sd"])
    shifted = runs.assign(recovery_carts=[100.0, np.nan, 300.0, 50.0])
    r = summarise_over_seeds(shifted).set_index("policy")
    assert np.isnan(r.loc["a", "recovery_carts_mean"]) and r.loc[
        "a", "recovered_mean"
    ] == pytest.approx(2 / 3)
    assert r.loc["b", "recovery_carts_mean"] == 50.0 and r.loc["b", "recovered_mean"] == 1.0
    table = markdown_table(summarise_over_seeds(runs), seeds=[0, 1, 2])
    assert "| a | 2.333 ± 1.528 | 0.200 ± 0.100 |" in table and "| b | 3.000 | 0.500 |" in table


def test_compare_policies_under_a_shift_reports_recovery_and_draws_the_plot(tmp_path):
    config = {
        "n_shoppers": 800,
        "n_items": 100,
        "mixture_shift": {"at_episode": 1000, "mixture": {"forgetful": 0.7, "hesitant": 0.3}},
    }
    board = compare_policies(
        ["rule", "linucb"],
        carts=2000,
        seeds=[3, 4],
        config=config,
        batch=100,
        progress=False,
        curve_points=20,
    )
    assert board.shift_at == 1000
    assert {
        "oracle_share_before",
        "oracle_share_after",
        "oracle_share_end",
        "recovery_carts",
    } <= set(board.runs.columns)
    assert len(board.curves) == 2 * 2 * 20
    paths = board.write(tmp_path)
    assert paths["plot"].stat().st_size > 20_000
    assert "recovery (carts)" in paths["markdown"].read_text()
    with pytest.raises(ValueError, match="policy name"):
        compare_policies(["rule", "nope"], carts=100, seeds=1, progress=False)
    with pytest.raises(ValueError, match="curves"):
        learning_curve_plot(pd.DataFrame({"policy": []}), tmp_path / "x.png")


@pytest.mark.parametrize("name", ["simulator.training.loop", "simulator.training.scoreboard"])
def test_docstring_examples_pass(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
