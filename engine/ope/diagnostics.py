"""Importance-weight diagnostics: when an off-policy estimate should not be trusted.

Every estimator that re-weights logged rows (IPW, SNIPW, DR...) is only as good as the overlap
between the target policy and the logging policy. :func:`weight_diagnostics` measures it on one
log and one target, and turns bad values into plain-language warnings:

- ``max_weight_share``: the largest importance weight over their sum. Above
  :data:`MAX_WEIGHT_SHARE` one row moves the estimate by a visible amount on its own.
- ``ess``: the effective sample size ``(sum w)^2 / sum w^2``; below :data:`MIN_ESS_SHARE` of the
  rows (or :data:`MIN_ESS` rows) the normal interval is not reliable.
- ``rare_share``: share of rows where the target puts at least :data:`MIN_TARGET_MASS` on an
  action the logger took with probability below :data:`RARE_PROPENSITY` there (weights of 1/0.01
  and more); needs the full logging distribution.
- ``unlogged``: actions the target relies on (mass summed over rows at least
  :data:`MIN_TARGET_MASS` of the rows) that appear fewer than :data:`MIN_LOGGED` times in the
  log; their value is the reward model's guess, not data.

>>> d = weight_diagnostics([0, 0, 1, 0], [0.9, 0.9, 0.1, 0.9], [[0.0, 1.0]] * 4,
...                        logging_probs=[[0.9, 0.1]] * 4)
>>> round(d.ess, 3), d.unlogged, len(d.warnings) > 0
(1.0, ('action 1',), True)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

RARE_PROPENSITY = 0.01
"""A logging propensity below this counts as "the logger almost never takes it" (weight > 100)."""
MIN_TARGET_MASS = 0.01
"""Target probability (per row, or summed over rows per row) that counts as relying on an action."""
MAX_WEIGHT_SHARE = 0.05
"""Warn when one row carries more than this share of the total importance weight."""
MIN_ESS_SHARE = 0.01
"""Warn when the effective sample size is below this share of the rows..."""
MIN_ESS = 30.0
"""... or below this many rows."""
MAX_RARE_SHARE = 0.05
"""Warn when more than this share of the rows needs an action the logger almost never took."""
MIN_LOGGED = 5
"""An action the target relies on but logged fewer times than this is flagged."""


@dataclass(frozen=True)
class WeightDiagnostics:
    """Overlap between one target policy and the logging policy on one log."""

    n: int
    max_weight: float
    max_weight_share: float
    ess: float
    rare_share: float  # NaN when the full logging distribution is unknown
    unlogged: tuple[str, ...]
    warnings: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when no diagnostic is bad."""
        return not self.warnings

    def as_dict(self) -> dict[str, object]:
        """Flat mapping for tables: numbers, the unlogged actions and the joined warnings."""
        return {
            "ess": self.ess,
            "max_weight": self.max_weight,
            "max_weight_share": self.max_weight_share,
            "rare_share": self.rare_share,
            "unlogged": ", ".join(self.unlogged),
            "warning": " ".join(self.warnings),
        }


def _matrix(name: str, value: object, n: int) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != n:
        raise ValueError(f"{name} has shape {arr.shape}, must be ({n}, n_actions)")
    return arr


def weight_diagnostics(
    actions: object,
    logged_probs: object,
    target_probs: object,
    logging_probs: object | None = None,
    action_names: Sequence[str] | None = None,
) -> WeightDiagnostics:
    """Importance-weight diagnostics of ``target_probs`` on a log, with warnings when bad.

    Args:
        actions: ``(n,)`` logged action indices.
        logged_probs: ``(n,)`` propensities of the logged actions, in ``(0, 1]``.
        target_probs: ``(n, A)`` the target's distribution on each row.
        logging_probs: ``(n, A)`` the logger's full distribution on each row (enables
            ``rare_share``); optional.
        action_names: names used in the warnings (default ``"action <j>"``).
    """
    a = np.asarray(actions)
    p = np.asarray(logged_probs, dtype=np.float64)
    if a.ndim != 1 or p.shape != a.shape or a.size == 0:
        raise ValueError(
            f"actions has shape {a.shape} and logged_probs {p.shape}, must be equal (n,), n >= 1"
        )
    n = a.size
    pi = _matrix("target_probs", target_probs, n)
    n_actions = pi.shape[1]
    if not (np.issubdtype(a.dtype, np.integer) and a.min() >= 0 and a.max() < n_actions):
        raise ValueError(f"actions must be integers in [0, {n_actions})")
    if not np.all((p > 0) & (p <= 1)):
        raise ValueError("logged_probs must be in (0, 1]")
    names = (
        tuple(action_names)
        if action_names is not None
        else tuple(f"action {j}" for j in range(n_actions))
    )
    if len(names) != n_actions:
        raise ValueError(
            f"action_names has {len(names)} names, target_probs has {n_actions} columns"
        )
    w = pi[np.arange(n), a] / p
    total, sq = float(w.sum()), float(w @ w)
    ess = total**2 / sq if sq > 0 else 0.0
    max_w = float(w.max())
    max_share = max_w / total if total > 0 else 1.0
    rare_share = float("nan")
    if logging_probs is not None:
        mu = _matrix("logging_probs", logging_probs, n)
        if mu.shape[1] != n_actions:
            raise ValueError(f"logging_probs has {mu.shape[1]} columns, target_probs {n_actions}")
        rare = ((pi >= MIN_TARGET_MASS) & (mu < RARE_PROPENSITY)).any(axis=1)
        rare_share = float(rare.mean())
    counts = np.bincount(a, minlength=n_actions)
    needed = pi.sum(axis=0) >= MIN_TARGET_MASS * n
    unlogged = tuple(names[j] for j in np.flatnonzero(needed & (counts < MIN_LOGGED)))
    warnings = []
    if unlogged:
        warnings.append(
            f"The target relies on {', '.join(unlogged)}, which the logger (almost) never took "
            f"(< {MIN_LOGGED} rows): no estimator can value it from this log."
        )
    if rare_share > MAX_RARE_SHARE:
        warnings.append(
            f"On {rare_share:.0%} of the rows the target needs an action the logger took with "
            f"probability below {RARE_PROPENSITY}: estimates rest on a few heavily weighted rows."
        )
    if ess < max(MIN_ESS, MIN_ESS_SHARE * n):
        warnings.append(f"Effective sample size {ess:.0f} of {n} rows: intervals are unreliable.")
    if max_share > MAX_WEIGHT_SHARE:
        warnings.append(
            f"One row carries {max_share:.0%} of the total importance weight (max weight "
            f"{max_w:.3g}): the estimate hinges on it."
        )
    for text in warnings:
        logger.warning("off-policy evaluation: %s", text)
    return WeightDiagnostics(n, max_w, max_share, ess, rare_share, unlogged, tuple(warnings))
