"""Off-policy estimators as per-row terms plus a smooth function of their means.

Every estimator maps the validated rows to ``p`` per-row term vectors ``T`` (``p x n``) and a
function ``g`` such that the estimate is ``g(mean(T, axis=1))``. The point estimate,
the delta-method standard error ``sqrt(grad g' Cov(T) grad g / n)``, the bootstrap replicates
(``g`` of re-weighted means) and the mergeable summaries all reuse ``T``.

Notation (row ``i``): ``w_i = pi(a_i|x_i) / mu_i`` is the importance weight,
``q_i = qhat(x_i, a_i)`` the reward-model prediction for the logged action and
``d_i = sum_a pi(a|x_i) qhat(x_i, a)`` the direct-method term.

=============  ====================================================  ================
name           estimate                                              reference
=============  ====================================================  ================
``on-policy``  ``mean(r)`` (value of the logging policy)
``ipw``        ``mean(w r)``                                         Horvitz-Thompson
``snipw``      ``sum(w r) / sum(w)``                                 Swaminathan & Joachims 2015
``dm``         ``mean(d)``                                           Dudik et al. 2011
``dr``         ``mean(d + w (r - q))``                               Dudik et al. 2011
``sndr``       ``mean(d) + sum(w (r - q)) / sum(w)``                 self-normalised DR
``switch-dr``  ``mean(d + 1[w <= tau] w (r - q))``                   Wang et al. 2017
``dr-os``      ``mean(d + lam w / (w^2 + lam) (r - q))``             Su et al. 2020
=============  ====================================================  ================

Switch-DR: Wang et al. use DR on actions whose weight is at most ``tau`` and the reward model
on the others; since ``d_i`` already sums the model over all actions, this is exactly the row
term above and needs the logging propensity of the logged action only.

Precision: standard errors of the self-normalised estimators come from the co-moments of their
terms; with rewards far from zero relative to their spread (mean/sd = m) they lose about
``2 log10(m)`` of the 16 digits, whole-data and merged alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from engine.ope.validation import ValidatedFeedback

DEFAULT_SWITCH_THRESHOLD = 20.0
"""Switch-DR threshold ``tau``: rows with importance weight above it use the reward model only."""

DEFAULT_DROS_LAMBDA = 400.0
"""DR-OS shrinkage ``lambda`` (= 20**2: weights well below 20 are barely shrunk)."""


@dataclass(frozen=True)
class EstimatorParams:
    """Tuning parameters of the estimators that have one.

    ``switch_threshold`` (``tau`` >= 0, ``inf`` gives DR) and ``dros_lambda`` (``lambda`` >= 0,
    ``0`` gives DM, ``inf`` gives DR). Pass them to :func:`engine.ope.evaluate` by keyword.
    """

    switch_threshold: float = DEFAULT_SWITCH_THRESHOLD
    dros_lambda: float = DEFAULT_DROS_LAMBDA

    def __post_init__(self) -> None:
        for name in ("switch_threshold", "dros_lambda"):
            value = getattr(self, name)
            if not isinstance(value, (int, float, np.floating, np.integer)) or not value >= 0:
                raise ValueError(f"{name} == {value!r}, must be a number >= 0 (inf allowed)")


_NO_MODEL = "this estimator needs a reward model: pass estimated_rewards or contexts"


@dataclass(frozen=True)
class RowTerms:
    """Quantities shared by all estimators for one batch of rows."""

    rewards: np.ndarray
    weights: np.ndarray  # w_i
    target_logged: np.ndarray  # pi(a_i | x_i)
    dm: np.ndarray | None  # d_i
    model_logged: np.ndarray | None  # q_i
    variance_logged: np.ndarray | None = None  # sigma^2_i: reward-model variance at (x_i, a_i)

    @classmethod
    def from_data(cls, data: ValidatedFeedback) -> RowTerms:
        """The shared quantities of validated rows (model terms when it has predictions)."""
        flat = np.arange(data.n) * data.n_actions + data.actions  # faster than [rows, actions]
        target_logged = data.target_probs.ravel()[flat]
        weights = target_logged / data.logged_probs
        dm = q = v = None
        if data.estimated_rewards is not None:
            dm = np.einsum("ij,ij->i", data.target_probs, data.estimated_rewards)
            q = data.estimated_rewards.ravel()[flat]
        if data.estimated_variances is not None:
            v = data.estimated_variances.ravel()[flat]
        return cls(data.rewards, weights, target_logged, dm, q, v)

    def direct(self) -> np.ndarray:
        """The direct-method terms ``d_i`` (estimators that need a reward model only)."""
        if self.dm is None:
            raise ValueError(_NO_MODEL)
        return self.dm

    def residual_weighted(self, weights: np.ndarray) -> np.ndarray:
        """``weights * (r_i - q_i)``: the weighted reward-model residuals."""
        if self.model_logged is None:
            raise ValueError(_NO_MODEL)
        return weights * (self.rewards - self.model_logged)

    def variance_gap(self, weights: np.ndarray) -> float | None:
        """``sum(weights^2 (sigma^2_i - (r_i - q_i)^2))``, or None without variances.

        The amount by which the squared weighted residuals fall short of (or, negative, exceed)
        their conditional expectation given the contexts and actions (the ``"floor"`` interval).
        """
        if self.variance_logged is None or self.model_logged is None:
            return None
        residual = self.rewards - self.model_logged
        return float(np.sum(weights**2 * (self.variance_logged - residual**2)))


def _mean0(m: np.ndarray) -> np.ndarray:
    return m[..., 0]


def _grad_linear(m: np.ndarray) -> np.ndarray:
    return np.ones(1)


def _ratio(m: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return m[..., 0] / m[..., 1]


def _grad_ratio(m: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.array([1.0 / m[1], -m[0] / m[1] ** 2])


def _sndr(m: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return m[..., 0] + m[..., 1] / m[..., 2]


def _grad_sndr(m: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.array([1.0, 1.0 / m[2], -m[1] / m[2] ** 2])


def _switch_weights(t: RowTerms, p: EstimatorParams) -> np.ndarray:
    return np.where(t.weights <= p.switch_threshold, t.weights, 0.0)


def _shrunk_weights(t: RowTerms, p: EstimatorParams) -> np.ndarray:
    lam = float(p.dros_lambda)
    if np.isinf(lam):
        return t.weights
    denom = t.weights**2 + lam
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0, lam * t.weights / denom, 0.0)


@dataclass(frozen=True)
class Estimator:
    """One estimator: its per-row term vectors, the function of their means and its gradient."""

    name: str
    needs_model: bool
    columns: Callable[[RowTerms, EstimatorParams], tuple[np.ndarray, ...]]
    value: Callable[[np.ndarray], np.ndarray]
    gradient: Callable[[np.ndarray], np.ndarray]
    weights: Callable[[RowTerms, EstimatorParams], np.ndarray] | None
    parameter: str | None = None  # name of the EstimatorParams field it uses
    residual_column: int | None = None  # column holding weights(t, p) * (r - q), if any


ESTIMATORS: dict[str, Estimator] = {
    e.name: e
    for e in (
        Estimator("on-policy", False, lambda t, p: (t.rewards,), _mean0, _grad_linear, None),
        Estimator(
            "ipw",
            False,
            lambda t, p: (t.weights * t.rewards,),
            _mean0,
            _grad_linear,
            lambda t, p: t.weights,
        ),
        Estimator(
            "snipw",
            False,
            lambda t, p: (t.weights * t.rewards, t.weights),
            _ratio,
            _grad_ratio,
            lambda t, p: t.weights,
        ),
        Estimator("dm", True, lambda t, p: (t.direct(),), _mean0, _grad_linear, None),
        Estimator(
            "dr",
            True,
            lambda t, p: (t.direct() + t.residual_weighted(t.weights),),
            _mean0,
            _grad_linear,
            lambda t, p: t.weights,
            residual_column=0,
        ),
        Estimator(
            "sndr",
            True,
            lambda t, p: (t.direct(), t.residual_weighted(t.weights), t.weights),
            _sndr,
            _grad_sndr,
            lambda t, p: t.weights,
            residual_column=1,
        ),
        Estimator(
            "switch-dr",
            True,
            lambda t, p: (t.direct() + t.residual_weighted(_switch_weights(t, p)),),
            _mean0,
            _grad_linear,
            _switch_weights,
            "switch_threshold",
            0,
        ),
        Estimator(
            "dr-os",
            True,
            lambda t, p: (t.direct() + t.residual_weighted(_shrunk_weights(t, p)),),
            _mean0,
            _grad_linear,
            _shrunk_weights,
            "dros_lambda",
            0,
        ),
    )
}

DEFAULT_ESTIMATORS: tuple[str, ...] = ("ipw", "snipw", "dm", "dr", "sndr", "switch-dr")


def resolve(estimators: str | Iterable[str] | None, have_model: bool) -> tuple[str, ...]:
    """Check estimator names; ``None`` means the defaults that the inputs allow.

    ``on-policy`` is always appended (once) as the reference row.
    """
    if estimators is None:
        names = tuple(n for n in DEFAULT_ESTIMATORS if have_model or not ESTIMATORS[n].needs_model)
    else:
        if isinstance(estimators, str):
            estimators = (estimators,)
        names = tuple(estimators)
        unknown = [n for n in names if n not in ESTIMATORS]
        if unknown:
            raise ValueError(
                f"estimators contains {unknown[0]!r}, must be among {sorted(ESTIMATORS)}"
            )
        if len(set(names)) != len(names):
            raise ValueError(f"estimators == {names}, contains duplicates")
        need = [n for n in names if ESTIMATORS[n].needs_model]
        if need and not have_model:
            raise ValueError(
                f"estimators {need} need a reward model: pass estimated_rewards or contexts"
            )
    if "on-policy" not in names:
        names = (*names, "on-policy")
    return names
