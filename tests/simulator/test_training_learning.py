"""Learners beat the static baselines in the default shop (fixed seed, 30k carts).

Measured on seed 0, last 20% of 30k carts (margins in USD per cart; learners and the
full-information ceiling regress on profit per cart value, see engine.features), with purchase
intent (issue 22) and, in brackets, before it (VW: with the tuned ``--noconstant``, see below):

=========  ===============  ===============  =============
learner    vs best static   vs rule          gain share
=========  ===============  ===============  =============
linucb     +0.419 (+0.472)  +0.815 (+0.879)  0.825 (0.833)
lints      +0.406 (+0.481)  +0.780 (+0.873)  0.810 (0.832)
vw         +0.421 (+0.439)  +0.807 (+0.843)  0.833 (0.840)
=========  ===============  ===============  =============

VW (with its contexts whitened after 2,000 updates) has tolerances of its own, set from its own
figures. With purchase intent and VW's own constant feature on, VW stalled on some seeds (gain
share 0.59 / 0.82 / 0.67 on seeds 0 / 1 / 2 at 30k carts; 0.84 / 0.85 / 0.87 before intent) and
its tolerances had been lowered. VW's constant duplicated the bias column of the engine's
features; with it off (``--noconstant`` in engine.learners.tuned) seeds 0 / 1 / 2 give 0.83 /
0.86 / 0.77 (seeds 0-11: mean 0.82, lowest 0.77, against 0.76 and 0.59 with the constant), and
the original tolerances hold again. Seed 0's figure is sensitive to the trajectory (learning rate
0.05 on top of ``--noconstant`` gives 0.60): the tolerances are bars a learning run clears, not
a measurement of one setting. Every tolerance fails a learner that no longer learns: a static
policy scores a gain share near 0.3 and a margin <= 0 against the best static action.
"""

from __future__ import annotations

import pytest

from policies import make_policy
from simulator.training import run_policy

CARTS = 30_000


#: learner -> (margin over the best static action, margin over the rule, minimum gain share)
TOLERANCES = {"linucb": (0.10, 0.30, 0.60), "lints": (0.10, 0.30, 0.60), "vw": (0.15, 0.50, 0.75)}


@pytest.mark.parametrize("name", sorted(TOLERANCES))
def test_learners_beat_the_best_static_action_and_the_rule(name):
    over_static, over_rule, share = TOLERANCES[name]
    r = run_policy(make_policy(name, seed=0), CARTS, seed=0, progress=False)
    assert r.value_last > r.best_static + over_static, (
        r.value_last,
        r.best_static,
        r.best_static_action,
    )
    assert r.value_last >= r.rule + over_rule, (r.value_last, r.rule)
    assert r.gain_share >= share, r.gain_share
    # learning: the last fifth is better than the first fifth of the run
    first = r.curve[: len(r.curve) // 5]
    last = r.curve[-len(r.curve) // 5 :]
    gain = lambda pts: sum(p["value"] - p["none"] for p in pts) / len(pts)  # noqa: E731
    assert gain(last) > gain(first)
