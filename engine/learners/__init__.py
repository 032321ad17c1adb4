"""Contextual-bandit learners behind one interface.

A learner maps a context vector ``x`` (``(d,)``, named by ``feature_names``) and an eligibility
mask over ``action_names`` to action probabilities, learns from ``(x, action, probability,
reward)`` rounds, and round-trips through bytes. Implementations: Vowpal Wabbit
``cb_explore_adf`` (:class:`VWLearner`), disjoint LinUCB (:class:`LinUCBLearner`) and linear
Thompson sampling (:class:`LinTSLearner`); :func:`make_learner` builds them by name.

>>> import numpy as np
>>> learner = make_learner("linucb", ["none", "coupon_10"], ["cart_value"])
>>> learner.probabilities(np.array([0.4]), np.array([True, True])).tolist()
[0.975, 0.025]
"""

from .base import Learner
from .lints import LinTSLearner
from .linucb import LinUCBLearner
from .registry import available_learners, make_learner
from .vw import EXPLORATIONS, VWLearner, default_action_features

__all__ = [
    "EXPLORATIONS",
    "Learner",
    "LinTSLearner",
    "LinUCBLearner",
    "VWLearner",
    "available_learners",
    "default_action_features",
    "make_learner",
]
