"""Section 4 of ``cartwise run``: a target that needs actions the engine never tried is flagged
in the OPE table and in the report (issue 23, "say when not to trust an estimate")."""

import logging

import numpy as np
import pandas as pd

from engine.actions import ACTION_NAMES
from engine.ope.logs import read_log_dataset
from simulator.job.offline import offline_evaluation
from simulator.job.report import _ope_warnings_html


def engine_like_log(n: int = 3_000) -> pd.DataFrame:
    """A log over the engine's actions in which ``coupon_20`` is logged with probability 0.001."""
    rng = np.random.default_rng(5)
    probs = np.full(len(ACTION_NAMES), (1.0 - 0.001) / (len(ACTION_NAMES) - 1))
    probs[ACTION_NAMES.index("coupon_20")] = 0.001
    actions = rng.choice(len(ACTION_NAMES), size=n, p=probs)
    frame = {
        "decision_id": [f"d{i}" for i in range(n)],
        "action": [ACTION_NAMES[a] for a in actions],
        "probability": probs[actions],
        "reward": np.where(rng.random(n) < 0.1, rng.gamma(2.0, 30.0, n), 0.0),
        "fallback": np.zeros(n, dtype=bool),
        "f_x": rng.normal(size=n),
    }
    frame.update({f"p_{a}": np.full(n, probs[j]) for j, a in enumerate(ACTION_NAMES)})
    return pd.DataFrame(frame)


def test_target_needing_a_never_tried_action_is_flagged_in_table_and_report(caplog):
    data = read_log_dataset(engine_like_log())
    assert np.count_nonzero(data.actions == ACTION_NAMES.index("coupon_20")) <= 10
    truth = np.full((data.n, data.n_actions), 3.0)
    with caplog.at_level(logging.WARNING, logger="engine.ope.diagnostics"):
        table = offline_evaluation(data, truth, ["static:coupon_20", "static:coupon_10"], seed=0)
    flagged = table[table["target"] == "static:coupon_20"]
    healthy = table[table["target"] == "static:coupon_10"]
    assert len(flagged) == len(healthy) == 5  # one row per estimator, each with the diagnostics
    assert flagged["warning"].str.contains("coupon_20").all()
    assert flagged["warning"].str.contains("never took").all()
    assert (flagged["rare_share"] == 1.0).all() and (flagged["ess"] < 20).all()
    assert (healthy["warning"] == "").all() and (healthy["rare_share"] == 0.0).all()
    assert any("coupon_20" in r.getMessage() for r in caplog.records)
    page = _ope_warnings_html(table)
    assert "Do not trust these estimates blindly" in page
    assert "static:coupon_20" in page and "static:coupon_10" not in page
    assert "healthy for every target" in _ope_warnings_html(healthy)
