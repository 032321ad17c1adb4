"""Policies for multi-touch recovery flows (contexts with ``recovery``, docs/context-schema.md).

* :class:`FlowPolicy` — a fixed flow: a given action (or the hand rule) at each touch.
* :class:`~policies.sequence_learner.FittedQPolicy` (its own module) — the sequence learner.

The per-touch contextual bandit is a :class:`~policies.LearnerPolicy` on
``FeatureBuilder(recovery=True)`` updated with each touch's reward (myopic). Every policy here has
a ``kind``: ``"flow"``, ``"bandit"`` or ``"sequence"``.

>>> import numpy as np
>>> flow = FlowPolicy(["recall_message", "recall_message", "coupon_10"])
>>> cart = [{"item_id": "i", "price": 30.0, "quantity": 1}]
>>> ctx = {"cart": cart, "recovery": {"touch": 3, "previous": []}}
>>> flow.action_names[int(flow.probabilities(ctx, np.ones(7, dtype=bool)).argmax())]
'coupon_10'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from engine.actions import ACTION_NAMES
from engine.features import PROFILE_SCALING
from policies._batch import check_mask_batch, column_index
from policies.base import Policy
from policies.rule import RulePolicy, cart_value

RULE = "rule"


def touch_of(context: Mapping[str, Any]) -> int:
    """0-based touch index of a context (0 without ``recovery``)."""
    recovery = context.get("recovery")
    return int(recovery["touch"]) - 1 if recovery else 0


class FlowPolicy(Policy):
    """A fixed flow: ``steps[k]`` at touch ``k + 1`` (an action name or ``"rule"``).

    ``none`` after the last step and when the action is not eligible.
    """

    kind = "flow"

    def __init__(
        self,
        steps: Sequence[str],
        name: str | None = None,
        action_names: Sequence[str] = ACTION_NAMES,
    ) -> None:
        super().__init__(action_names)
        steps = tuple(steps)
        if not steps:
            raise ValueError("steps is empty, must name at least one action")
        for i, s in enumerate(steps):
            if s != RULE and s not in self._index:
                raise ValueError(
                    f"steps[{i}] == {s!r}, must be 'rule' or one of {list(self.action_names)}"
                )
        self.steps = steps
        self.name = name or "flow:" + "-".join(steps)
        self._rule = RulePolicy(action_names=action_names)

    def decide_touches(
        self, touch: np.ndarray, values: np.ndarray, eligible: np.ndarray
    ) -> np.ndarray:
        """``(n, n_actions)`` one-hot rows for carts at 0-based ``touch`` worth ``values`` USD."""
        mask = check_mask_batch(eligible, len(self.action_names), len(touch))
        out = np.zeros(mask.shape)
        out[:, self._index["none"]] = 1.0
        for k, step in enumerate(self.steps):
            at = np.flatnonzero(np.asarray(touch) == k)
            if not len(at):
                continue
            if step == RULE:
                out[at] = self._rule.decide_values(np.asarray(values)[at], mask[at])
            else:
                a = self._index[step]
                ok = mask[at, a]
                out[at] = 0.0
                out[at, np.where(ok, a, self._index["none"])] = 1.0
        return out

    def feature_probabilities(
        self, features: np.ndarray, feature_names: Sequence[str], eligible: np.ndarray
    ) -> np.ndarray:
        """Decisions from logged features.

        The touch comes from ``touch_index`` (0 when not logged), the cart value from
        ``cart_value_log`` (for the rule).
        """
        X = np.asarray(features, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(feature_names):
            raise ValueError(f"features has shape {X.shape}, must be (n, {len(feature_names)})")
        names = [str(n)[2:] if str(n).startswith("f_") else str(n) for n in feature_names]
        touch = (
            np.rint(X[:, names.index("touch_index")]).astype(np.int64)
            if "touch_index" in names
            else np.zeros(len(X), dtype=np.int64)
        )
        (col,) = column_index(feature_names, ["cart_value_log"])
        centre, scale = PROFILE_SCALING["cart_value_log"]
        values = np.expm1(X[:, col] * scale + centre) * (1.0 + 1e-9)
        return self.decide_touches(touch, values, eligible)

    def _probabilities(
        self, context: Mapping[str, Any], eligible: np.ndarray, truth: np.ndarray | None
    ) -> np.ndarray:
        return self.decide_touches(
            np.array([touch_of(context)]), np.array([cart_value(context)]), eligible[None, :]
        )[0]

    def probabilities_batch(
        self,
        contexts: Sequence[Mapping[str, Any]],
        eligible: np.ndarray,
        truth: np.ndarray | None = None,
    ) -> np.ndarray:
        """``(n, n_actions)`` one-hot decisions for a batch of contexts."""
        return self.decide_touches(
            np.array([touch_of(c) for c in contexts], dtype=np.int64),
            np.array([cart_value(c) for c in contexts]),
            eligible,
        )


#: The fixed flows, by registry name: one reminder at the first touch; three reminders; reminder,
#: reminder, coupon_10 last; the hand rule at every touch.
FLOWS: dict[str, tuple[str, ...]] = {
    "seq:reminder": ("recall_message",),
    "seq:3-reminders": ("recall_message",) * 3,
    "seq:reminders-coupon": ("recall_message", "recall_message", "coupon_10"),
    "seq:rule": (RULE,) * 3,
}
