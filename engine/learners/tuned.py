"""Learner settings tuned on the simulator, shared by the engine and the policies.

They differ from the learners' constructor defaults where tuning (100k carts, default shop,
several seeds; ``cartwise compare``) showed a clear gain:

* VW: ``cb_type="mtr"`` weighs each update by 1 / propensity, so the rare exploratory actions of
  ``squarecb`` get huge, noisy updates. Reporting a propensity of 1 to the learner
  (``propensity_floor=1.0``: an unweighted regression on the taken action, as LinUCB does) helps;
  logged propensities are unchanged: only what the learner is told is floored. A re-tuning (100k
  carts, seeds 0-4, November 2026) then moved the learning rate from 0.05 to 0.1 (0.75 -> 0.84 of
  the full-information gain) and squarecb's ``gamma_scale`` from 3 to 10 (0.86: 0.85 to 0.87 per
  seed). Bagging does as well with 10 greedy bags (``bag_size=10, epsilon=0``: 0.87), epsilon-
  greedy best with ``epsilon=0.02`` (0.82 on seeds 0-2). Cover and RND only share the learning
  rate (not re-tuned; both were well below squarecb). Given every action's true reward, VW's SGD
  matches the ridge ceiling (1.00): the gap was SGD learning from noisy bandit feedback along
  correlated features. Whitening the contexts after 2,000 updates (``whiten_after=2000``, see
  :mod:`engine.learners.vw`) lifts squarecb to 0.91 (0.89 to 0.91 per seed) and removed the
  collapses of some seeds (seeds 5-9: 0.90, against 0.80 with two runs at 0.67 and 0.77).
* LinUCB: less uniform exploration (``epsilon=0.01``) and a stronger ridge (30).
* Linear TS: a smaller floor (0.002), a narrower posterior (``posterior_scale=0.5``), ridge 30.

Every learner regresses on profit per cart value (``reward_per_value``, see
:mod:`engine.features`), which the settings above were tuned without. Re-checked with it (100k
carts, seeds 0-9): VW's learning rate stays at 0.1 (0.15: 0.88, 0.2: 0.90 of the full-information
gain, against 0.90 for 0.1; 0.05: 0.87 on seeds 0-4).

>>> learner, options, floor = tuned_settings("vw")
>>> learner, options["learning_rate"], options["whiten_after"], floor
('vw', 0.1, 2000, 1.0)
"""

from __future__ import annotations

from typing import Any

_VW_TUNED: dict[str, Any] = {"learning_rate": 0.1, "whiten_after": 2000}

#: name -> (engine learner name, learner options, propensity floor reported to the learner or None)
TUNED: dict[str, tuple[str, dict[str, Any], float | None]] = {
    "vw": ("vw", {**_VW_TUNED, "gamma_scale": 10.0}, 1.0),
    "vw-epsilon": ("vw-epsilon", {**_VW_TUNED, "epsilon": 0.02}, 1.0),
    "vw-squarecb": ("vw-squarecb", {**_VW_TUNED, "gamma_scale": 10.0}, 1.0),
    "vw-bag": ("vw-bag", {**_VW_TUNED, "bag_size": 10, "epsilon": 0.0}, 1.0),
    "vw-cover": ("vw-cover", dict(_VW_TUNED), 1.0),
    "vw-rnd": ("vw-rnd", dict(_VW_TUNED), 1.0),
    "linucb": ("linucb", {"alpha": 1.0, "epsilon": 0.01, "ridge": 30.0}, None),
    "lints": ("lints", {"floor": 0.002, "posterior_scale": 0.5, "ridge": 30.0}, None),
}


def tuned_settings(name: str) -> tuple[str, dict[str, Any], float | None]:
    """``(learner name, options, propensity floor)`` for ``name``; untuned names get no options."""
    if name in TUNED:
        learner, options, floor = TUNED[name]
        return learner, dict(options), floor
    return name, {}, None
