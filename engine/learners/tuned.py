"""Learner settings tuned on the simulator, shared by the engine and the policies.

They differ from the learners' constructor defaults where tuning on the simulator
(``cartwise compare``) showed a clear gain. The tuning runs and their figures are in
``docs/benchmarks.md`` ("The tuning diary").

* VW (every exploration): learning rate 0.1, and contexts whitened after 2,000 updates
  (``whiten_after=2000``, see :mod:`engine.learners.vw`): SGD learns slowly along correlated
  features. The learner is told a propensity of 1 (``propensity_floor=1.0``): ``cb_type="mtr"``
  weighs each update by 1 / propensity, so rare exploratory actions would get huge, noisy
  updates; with the floor it is an unweighted regression on the taken action, as LinUCB does.
  Logged propensities are unchanged: only what the learner is told is floored.
  VW's own constant feature is off (``extra_args="--noconstant"``): the engine's feature vector
  already ends in a bias column, so VW's constant only duplicated the action-independent
  intercept; without it squarecb stalls less on the purchase-intent shop (gain share at 30k
  carts, seeds 0-11: mean 0.82, lowest 0.77, against 0.76 and 0.59; at 100k, seeds 0-4: 0.91
  against 0.88; ``docs/benchmarks.md``). The other explorations share it, unmeasured. Options
  of one's own replace the tuned ones, so an ``extra_args`` given to the engine should repeat
  ``--noconstant`` to keep it.
  ``squarecb`` uses ``gamma_scale=10``; bagging 10 greedy bags (``bag_size=10, epsilon=0``);
  epsilon-greedy ``epsilon=0.02``. Cover and RND take only the shared settings.
* LinUCB: less uniform exploration (``epsilon=0.01``) and a stronger ridge (30).
* Linear TS: a smaller floor (0.002), a narrower posterior (``posterior_scale=0.5``), ridge 30.

Every learner regresses on profit per cart value (``reward_per_value``, see
:mod:`engine.features`); of the settings above, only VW's learning rate was re-checked with that
target.

>>> learner, options, floor = tuned_settings("vw")
>>> learner, options["learning_rate"], options["whiten_after"], options["extra_args"], floor
('vw', 0.1, 2000, '--noconstant', 1.0)
"""

from __future__ import annotations

from typing import Any

_VW_TUNED: dict[str, Any] = {
    "learning_rate": 0.1,
    "whiten_after": 2000,
    "extra_args": "--noconstant",
}

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
