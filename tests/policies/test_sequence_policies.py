"""Flow policies and the fitted-Q sequence learner."""

import numpy as np
import pytest

from policies import make_policy
from policies.sequence import FittedQPolicy, FlowPolicy

ALL = np.ones(7, dtype=bool)


def _ctx(touch, price=30.0):
    return {
        "user_id": "u",
        "timestamp": 0.0,
        "cart": [{"item_id": "i", "price": price, "quantity": 1}],
        "recovery": {"touch": touch, "previous": []},
    }


@pytest.mark.parametrize(
    "name, expected",
    [
        ("seq:reminder", ["recall_message", "none", "none"]),
        ("seq:3-reminders", ["recall_message"] * 3),
        ("seq:reminders-coupon", ["recall_message", "recall_message", "coupon_10"]),
    ],
)
def test_fixed_flows_send_their_steps(name, expected):
    policy = make_policy(name)
    got = [
        policy.action_names[int(policy.probabilities(_ctx(k + 1), ALL).argmax())] for k in range(3)
    ]
    assert got == expected and policy.kind == "flow"


def test_rule_flow_and_ineligible_fallback():
    rule = make_policy("seq:rule")
    assert (
        rule.action_names[int(rule.probabilities(_ctx(2, price=150.0), ALL).argmax())]
        == "coupon_10"
    )
    flow = FlowPolicy(["time_limited_offer"])
    no_sms = np.array([1, 1, 1, 1, 1, 0, 1], dtype=bool)
    assert flow.probabilities(_ctx(1), no_sms).tolist() == [1.0, 0, 0, 0, 0, 0, 0]
    with pytest.raises(ValueError, match="steps\\[0\\] == 'coupon_50'"):
        FlowPolicy(["coupon_50"])


@pytest.mark.parametrize(
    "options",
    [{}, {"touch_interactions": True}, {"deviation_ridge": 1e-6}],
    ids=["per-action", "per-touch-and-action", "pooled"],
)
def test_fitted_q_recovers_a_known_two_touch_optimum(options):
    """Touch 2 pays 1 for action 2 (else 0); touch 1 pays 0.2 for action 1 and ends the flow,
    or 0 and continues: the best first action is any that continues (return 1 > 0.2)."""
    policy = FittedQPolicy(n_touches=2, ridge=1e-6, **options)
    d = len(policy.features.names)
    rng = np.random.default_rng(0)
    n = 4000
    X1 = np.zeros((n, d))
    X1[:, -1] = 1.0  # bias
    X1[:, policy.features.names.index("cart_value_log")] = np.log1p(74.0) - 4.0  # divisor 1
    X2 = X1.copy()
    X2[:, policy.features.names.index("touch_index")] = 1.0
    a1 = rng.integers(0, 7, n)
    a2 = rng.integers(0, 7, n)
    done1 = a1 == 1
    policy.observe(X1, a1, np.where(done1, 0.2, 0.0), done1, X2, np.ones((n, 7), dtype=bool))
    policy.observe(
        X2[~done1],
        a2[~done1],
        (a2[~done1] == 2).astype(float),
        np.ones((~done1).sum(), dtype=bool),
        X2[~done1],
        np.ones(((~done1).sum(), 7), dtype=bool),
    )
    policy.fit()
    q1, q2 = policy.q_values(X1[:1])[0], policy.q_values(X2[:1])[0]
    assert q2.argmax() == 2 and q2[2] == pytest.approx(1.0, abs=1e-3)
    assert q1[1] == pytest.approx(0.2, abs=1e-3) and q1[0] == pytest.approx(1.0, abs=1e-3)


def test_fitted_q_needs_recovery_features():
    from engine.features import FeatureBuilder

    with pytest.raises(ValueError, match="recovery=True"):
        FittedQPolicy(features=FeatureBuilder())
