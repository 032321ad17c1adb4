"""Build learners by name: ``make_learner("vw-squarecb", actions, features, seed=1)``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .base import Learner
from .lints import LinTSLearner
from .linucb import LinUCBLearner
from .vw import VWLearner

__all__ = ["LEARNERS", "available_learners", "make_learner"]

# name -> (class, fixed keyword arguments, whether the class takes a seed)
LEARNERS: dict[str, tuple[type[Learner], dict[str, Any], bool]] = {
    "vw": (VWLearner, {}, True),
    "vw-epsilon": (VWLearner, {"exploration": "epsilon"}, True),
    "vw-squarecb": (VWLearner, {"exploration": "squarecb"}, True),
    "vw-bag": (VWLearner, {"exploration": "bag"}, True),
    "vw-cover": (VWLearner, {"exploration": "cover"}, True),
    "vw-rnd": (VWLearner, {"exploration": "rnd"}, True),
    "vw-softmax": (VWLearner, {"exploration": "softmax"}, True),
    "linucb": (LinUCBLearner, {}, False),
    "lints": (LinTSLearner, {}, True),
}


def available_learners() -> tuple[str, ...]:
    """Names accepted by :func:`make_learner`.

    >>> available_learners()[:3]
    ('lints', 'linucb', 'vw')
    """
    return tuple(sorted(LEARNERS))


def make_learner(
    name: str,
    action_names: Sequence[str],
    feature_names: Sequence[str],
    *,
    seed: int | np.random.Generator | None = None,
    **kwargs: Any,
) -> Learner:
    """Create the learner called ``name``; ``kwargs`` go to its constructor.

    ``seed`` is passed to learners with internal randomness (VW, linear TS) and ignored by
    deterministic ones (LinUCB). A name that fixes an option (``"vw-bag"`` fixes
    ``exploration="bag"``) refuses a conflicting value for it.

    >>> make_learner("linucb", ["none", "coupon_5"], ["x"], alpha=0.5)
    LinUCBLearner(n_actions=2, n_features=1, alpha=0.5, epsilon=0.05, ridge=1.0, fit_intercept=True)
    >>> make_learner("greedy", ["none"], ["x"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: name == 'greedy', must be one of ['lints', 'linucb', 'vw', 'vw-bag', ...]
    """
    if name not in LEARNERS:
        raise ValueError(f"name == {name!r}, must be one of {list(available_learners())}")
    cls, fixed, seeded = LEARNERS[name]
    for key, value in fixed.items():
        if key in kwargs and kwargs[key] != value:
            raise ValueError(f"{key} == {kwargs[key]!r}, but learner {name!r} requires {value!r}")
    options = {**kwargs, **fixed}
    if seeded:
        options["seed"] = seed
    return cls(action_names, feature_names, **options)
