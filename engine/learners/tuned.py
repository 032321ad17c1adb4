"""Learner settings tuned on the simulator, shared by the engine and the policies.

They differ from the learners' constructor defaults where tuning (100k carts, default shop,
several seeds; ``cartwise compare``) showed a clear gain:

* VW: ``cb_type="mtr"`` weighs each update by 1 / propensity, so the rare exploratory actions of
  ``squarecb`` get huge, noisy updates. Reporting a propensity of 1 to the learner
  (``propensity_floor=1.0``: an unweighted regression on the taken action, as LinUCB does) with a
  smaller learning rate (0.05) and a wider squarecb exploration (``gamma_scale=3``) took VW from
  ~0.70 to ~0.82 of the full-information gain. Logged propensities are unchanged: only what the
  learner is told is floored.
* LinUCB: less uniform exploration (``epsilon=0.01``) and a stronger ridge (30).
* Linear TS: a smaller floor (0.002), a narrower posterior (``posterior_scale=0.5``), ridge 30.

>>> learner, options, floor = tuned_settings("vw")
>>> learner, options["learning_rate"], floor
('vw', 0.05, 1.0)
"""

from __future__ import annotations

from typing import Any

_VW_TUNED: dict[str, Any] = {"learning_rate": 0.05}

#: name -> (engine learner name, learner options, propensity floor reported to the learner or None)
TUNED: dict[str, tuple[str, dict[str, Any], float | None]] = {
    "vw": ("vw", {**_VW_TUNED, "gamma_scale": 3.0}, 1.0),
    "vw-epsilon": ("vw-epsilon", dict(_VW_TUNED), 1.0),
    "vw-squarecb": ("vw-squarecb", {**_VW_TUNED, "gamma_scale": 3.0}, 1.0),
    "vw-bag": ("vw-bag", dict(_VW_TUNED), 1.0),
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
