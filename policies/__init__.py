"""Decision policies behind one small interface (:class:`Policy`).

Baselines, the oracle, the full-information ceiling and the contextual-bandit learners of
:mod:`engine.learners`.

>>> import numpy as np
>>> from policies import make_policy
>>> policy = make_policy("uniform")
>>> policy.probabilities({}, np.array([1, 1, 0, 0, 0, 0, 0], dtype=bool)).tolist()
[0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0]
"""

from policies.base import Policy
from policies.full_information import FullInformationPolicy
from policies.learner_policy import LearnerPolicy
from policies.oracle import OraclePolicy
from policies.registry import LEARNER_SETTINGS, available_policies, make_policy
from policies.rule import RulePolicy
from policies.static import StaticPolicy
from policies.uniform import UniformPolicy

__all__ = [
    "LEARNER_SETTINGS",
    "FullInformationPolicy",
    "LearnerPolicy",
    "OraclePolicy",
    "Policy",
    "RulePolicy",
    "StaticPolicy",
    "UniformPolicy",
    "available_policies",
    "make_policy",
]
