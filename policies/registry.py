"""Build policies by name: ``make_policy("linucb", seed=1)``.

Names: ``none``, ``static:<action>`` for every other action, ``uniform``, ``rule``, ``oracle``
(needs truth), ``full-information`` (learns from truth), and the bandit learners ``vw`` (VW's
default exploration), ``vw-epsilon``, ``vw-squarecb``, ``vw-bag``, ``vw-cover``, ``vw-rnd``,
``linucb``, ``lints``; for multi-touch flows (:mod:`policies.sequence`) the fixed flows
``seq:reminder``, ``seq:3-reminders``, ``seq:reminders-coupon``, ``seq:rule``, the per-touch
bandits ``seq:linucb``, ``seq:vw``, the sequence learner ``seq:fqi`` and ``seq:myopic-oracle``
(each touch's best action for that touch's expected reward, from the truth). Learner policies start
from the settings in :data:`LEARNER_SETTINGS` (tuned on the simulator, see the module notes
there); keyword arguments override them.

>>> make_policy("rule").name, make_policy("static:coupon_10").name
('rule', 'static:coupon_10')
>>> make_policy("greedy")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: policy name == 'greedy', must be one of ['full-information', 'lints', ...]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.actions import ACTION_NAMES
from engine.features import FeatureBuilder
from engine.learners.tuned import TUNED
from policies.base import Policy
from policies.full_information import FullInformationPolicy
from policies.learner_policy import LearnerPolicy
from policies.oracle import OraclePolicy
from policies.rule import RulePolicy
from policies.sequence import FLOWS, FlowPolicy
from policies.sequence_learner import FittedQPolicy
from policies.static import StaticPolicy
from policies.uniform import UniformPolicy

#: Learner policies start from the settings tuned on the simulator, shared with the engine
#: (:mod:`engine.learners.tuned`, which says why each differs from the learners' defaults).
LEARNER_SETTINGS: dict[str, tuple[str, dict[str, Any]]] = {
    name: (learner, {**options, **({"propensity_floor": floor} if floor is not None else {})})
    for name, (learner, options, floor) in TUNED.items()
}


def _static(action: str) -> Callable[..., Policy]:
    return lambda seed=0, **kw: StaticPolicy(action, **kw)


def _learner(name: str) -> Callable[..., Policy]:
    engine_name, defaults = LEARNER_SETTINGS[name]

    def build(seed: Any = 0, **kw: Any) -> Policy:
        policy = LearnerPolicy(engine_name, seed=seed, **{**defaults, **kw})
        policy.name = name
        return policy

    return build


def _flow_bandit(name: str) -> Callable[..., Policy]:
    """The per-touch (myopic) bandit of a multi-touch flow.

    Learner ``name`` on the features with the flow's recovery fields, taught each touch's reward.
    """
    engine_name, defaults = LEARNER_SETTINGS[name]

    def build(seed: Any = 0, **kw: Any) -> Policy:
        policy = LearnerPolicy(
            engine_name, seed=seed, features=FeatureBuilder(recovery=True), **{**defaults, **kw}
        )
        policy.name, policy.kind = f"seq:{name}", "bandit"
        return policy

    return build


def _myopic_oracle(**kw: Any) -> Policy:
    """The best action for this touch's expected reward under the truth (no look-ahead)."""
    policy = OraclePolicy(**kw)
    policy.name, policy.kind = "seq:myopic-oracle", "oracle"
    return policy


_BUILDERS: dict[str, Callable[..., Policy]] = {
    "none": _static("none"),
    **{f"static:{a}": _static(a) for a in ACTION_NAMES if a != "none"},
    "uniform": lambda seed=0, **kw: UniformPolicy(**kw),
    "rule": lambda seed=0, **kw: RulePolicy(**kw),
    "oracle": lambda seed=0, **kw: OraclePolicy(**kw),
    "full-information": lambda seed=0, **kw: FullInformationPolicy(**kw),
    **{name: _learner(name) for name in LEARNER_SETTINGS},
    **{
        name: (lambda seed=0, _s=steps, _n=name, **kw: FlowPolicy(_s, name=_n, **kw))
        for name, steps in FLOWS.items()
    },
    **{f"seq:{name}": _flow_bandit(name) for name in ("linucb", "vw")},
    "seq:fqi": lambda seed=0, **kw: FittedQPolicy(seed=seed, **kw),
    "seq:myopic-oracle": lambda seed=0, **kw: _myopic_oracle(**kw),
}


def available_policies() -> list[str]:
    """Names accepted by :func:`make_policy`, sorted.

    >>> {"none", "rule", "oracle", "vw", "linucb", "lints"} <= set(available_policies())
    True
    """
    return sorted(_BUILDERS)


def make_policy(name: str, *, seed: Any = 0, **kwargs: Any) -> Policy:
    """A new policy called ``name``.

    ``seed`` seeds learners' randomness; ``kwargs`` go to the policy's constructor (for learners:
    :class:`LearnerPolicy` options and learner options).
    """
    if not isinstance(name, str) or name not in _BUILDERS:
        raise ValueError(f"policy name == {name!r}, must be one of {available_policies()}")
    return _BUILDERS[name](seed=seed, **kwargs)
