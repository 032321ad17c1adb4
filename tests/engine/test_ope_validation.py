"""Bad inputs raise ValueError naming the argument, the row and the value."""

import numpy as np
import pytest

from engine import ope

N = 6


def good():
    return {
        "rewards": np.ones(N),
        "actions": np.array([0, 1, 2, 0, 1, 2]),
        "logged_probs": np.full(N, 1 / 3),
        "target_probs": np.tile([0.2, 0.3, 0.5], (N, 1)),
        "estimated_rewards": np.zeros((N, 3)),
    }


def with_row(key, row, value):
    def change(args):
        arr = np.array(args[key], dtype=float if key != "actions" else None)
        arr[row] = value
        args[key] = arr

    return change


def set_key(key, value):
    def change(args):
        args[key] = value

    return change


CASES = [
    (with_row("rewards", 3, np.nan), r"rewards row 3 contains nan, must be finite"),
    (with_row("rewards", 2, np.inf), r"rewards row 2 contains inf, must be finite"),
    (set_key("rewards", []), r"rewards is empty"),
    (set_key("rewards", np.ones((N, 1))), r"rewards has shape \(6, 1\), must be 1-dimensional"),
    (with_row("actions", 4, 3), r"actions row 4 == 3, must be in \[0, 3\)"),
    (with_row("actions", 1, -1), r"actions row 1 == -1, must be in \[0, 3\)"),
    (
        set_key("actions", np.array([0, 1, 2, 0, 1.5, 2])),
        r"actions row 4 == 1.5, must be an integer",
    ),
    (set_key("actions", np.zeros(N - 1, int)), r"actions has shape \(5,\), must be \(6,\)"),
    (with_row("logged_probs", 5, 0.0), r"logged_probs row 5 == 0.0, must be in \(0, 1\]"),
    (with_row("logged_probs", 0, 1.2), r"logged_probs row 0 == 1.2, must be in \(0, 1\]"),
    (with_row("logged_probs", 2, -0.1), r"logged_probs row 2 == -0.1, must be in \(0, 1\]"),
    (with_row("logged_probs", 1, np.nan), r"logged_probs row 1 contains nan, must be finite"),
    (
        with_row("target_probs", 4, [0.2, 0.3, 0.43]),
        r"target_probs row 4 sums to 0.93, must sum to 1",
    ),
    (
        with_row("target_probs", 1, [-0.1, 0.6, 0.5]),
        r"target_probs row 1 contains -0.1, must be non-negative",
    ),
    (
        with_row("target_probs", 2, [np.nan, 0.5, 0.5]),
        r"target_probs row 2 contains nan, must be finite",
    ),
    (
        set_key("target_probs", np.full((N, 3), 0.5)),
        r"target_probs row 0 sums to 1.5, must sum to 1 \(and 5 more rows\)",
    ),
    (set_key("target_probs", np.ones(N)), r"target_probs has shape \(6,\), must be 2-dimensional"),
    (
        set_key("target_probs", np.ones((N + 1, 1))),
        r"target_probs has shape \(7, 1\), must be \(6, n_actions\)",
    ),
    (with_row("estimated_rewards", 3, [0.0, np.inf, 0.0]), r"estimated_rewards row 3 contains inf"),
    (
        set_key("estimated_rewards", np.zeros((N, 2))),
        r"estimated_rewards has shape \(6, 2\), must be \(6, 3\)",
    ),
    (set_key("target_probs", [["a", "b", "c"]] * N), r"target_probs must be numeric"),
]


@pytest.mark.parametrize("change,message", CASES)
def test_bad_input_names_argument_row_and_value(change, message):
    args = good()
    change(args)
    with pytest.raises(ValueError, match=message):
        ope.evaluate(**args)
    with pytest.raises(ValueError, match=message):
        ope.summarize(**args)


def test_good_input_passes_and_tolerates_tiny_rounding():
    args = good()
    args["target_probs"] = args["target_probs"] + np.array([5e-7, 0.0, 0.0])
    table = ope.evaluate(**args)
    assert np.isfinite(table.loc["dr", "value"])


PARAM_CASES = [
    ({"confidence": 1.5}, r"confidence == 1.5, must be a number in \(0, 1\)$"),
    ({"confidence": 0.0}, r"confidence == 0.0, must be a number in \(0, 1\)$"),
    (
        {"ci": "percentile"},
        r"ci == 'percentile', must be one of \['auto', 'analytic', 'bootstrap', 'skew', 'floor'\]$",
    ),
    ({"ci": "bootstrap", "n_bootstrap": 0}, r"n_bootstrap == 0, must be an int >= 1$"),
    ({"estimators": ["ipw", "ips"]}, r"estimators contains 'ips', must be among"),
    ({"estimators": ["ipw", "ipw"]}, r"contains duplicates"),
    ({"switch_threshold": -1.0}, r"switch_threshold == -1.0, must be a number >= 0"),
    ({"dros_lambda": float("nan")}, r"dros_lambda == nan, must be a number >= 0"),
    (
        {"seed": 1, "rng": np.random.default_rng(1), "ci": "bootstrap"},
        r"rng and seed == 1 both given",
    ),
    ({"contexts": np.zeros((N, 2))}, r"estimated_rewards and contexts both given"),
]


@pytest.mark.parametrize("kwargs,message", PARAM_CASES)
def test_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ope.evaluate(**good(), **kwargs)


def test_model_based_estimators_need_a_model():
    args = good()
    del args["estimated_rewards"]
    with pytest.raises(ValueError, match=r"estimators \['dm', 'dr'\] need a reward model"):
        ope.evaluate(**args, estimators=["ipw", "dm", "dr"])


def test_bad_contexts_and_reward_model():
    args = good()
    del args["estimated_rewards"]
    with pytest.raises(ValueError, match=r"contexts has shape \(5, 2\), must be \(6, d\)"):
        ope.evaluate(**args, contexts=np.zeros((N - 1, 2)), estimators=["dm"])
    with pytest.raises(ValueError, match=r"reward_model == 'forest'"):
        ope.evaluate(**args, contexts=np.zeros((N, 2)), estimators=["dm"], reward_model="forest")
    args["rewards"] = np.linspace(0, 1, N)
    with pytest.raises(ValueError, match="rewards are not all 0 or 1"):
        ope.evaluate(**args, contexts=np.zeros((N, 2)), estimators=["dm"], reward_model="logistic")
    with pytest.raises(ValueError, match=r"n_folds == 4 needs at least 8 rows"):
        ope.evaluate(**args, contexts=np.zeros((N, 2)), estimators=["dm"], n_folds=4)
