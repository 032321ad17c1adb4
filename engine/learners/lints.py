"""Linear Thompson sampling with Monte Carlo propensities."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.validation import check_bool, check_integer, check_number, check_positive

from ._checks import as_float_matrix, check_seed, generator_from_state
from ._ridge import RidgeLearnerMixin, RidgeStats
from .base import Learner

__all__ = ["LinTSLearner"]

_ROW_BLOCK = 2048


class LinTSLearner(RidgeLearnerMixin, Learner):
    """Linear Thompson sampling with a Bayesian ridge model per action.

    Action ``a``'s posterior is ``theta_a ~ N(theta_hat_a, s^2 sigma_a^2 C_a)`` (``C_a`` the
    ridge covariance, ``s`` = ``posterior_scale``), so for ``z = [x, 1]`` the sampled score
    ``z . theta_a`` is normal with mean ``z . theta_hat_a`` and variance
    ``s^2 sigma_a^2 z^T C_a z``, independently across actions. The probability that Thompson
    sampling picks each eligible action is estimated from ``n_draws`` joint score draws, then
    mixed so that every eligible action gets at least ``floor``:
    ``p = floor + (1 - |eligible| * floor) * p_mc``. The engine samples from ``p``, so the
    logged propensity is the true one. ``sigma_a^2`` is ``noise_variance`` if given, else the
    ridge residual variance shrunk toward 1.0 with a weight of ``n_features + 1`` pseudo rows.
    The exploit action (:meth:`greedy`) maximises the posterior mean.

    Parameters
    ----------
    posterior_scale
        Multiplier ``s`` of the posterior standard deviation (> 0).
    ridge
        Prior precision of the coefficients (> 0).
    n_draws
        Monte Carlo draws per decision (>= 1).
    floor
        Minimum probability of each eligible action, in [0, 1 / n_actions].
    noise_variance
        Known noise variance in scaled-reward units, or None to estimate it per action.
    fit_intercept
        Append a constant feature.
    seed
        int, ``np.random.Generator`` or None; the only source of randomness.

    >>> ts = LinTSLearner(["a", "b", "c"], ["x"], floor=0.05, seed=1)
    >>> p = ts.probabilities(np.array([0.5]), np.array([True, False, True]))
    >>> bool(p[1] == 0.0 and p[0] >= 0.05 and p[2] >= 0.05 and abs(p.sum() - 1) < 1e-12)
    True
    """

    def __init__(
        self,
        action_names: Sequence[str],
        feature_names: Sequence[str],
        *,
        posterior_scale: float = 1.0,
        ridge: float = 1.0,
        n_draws: int = 64,
        floor: float = 0.01,
        noise_variance: float | None = None,
        fit_intercept: bool = True,
        reward_scale: float = 10.0,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__(action_names, feature_names, reward_scale=reward_scale)
        self.posterior_scale = check_positive(posterior_scale, "posterior_scale")
        self.ridge = check_positive(ridge, "ridge")
        self.n_draws = check_integer(n_draws, "n_draws", low=1)
        self.floor = check_number(floor, "floor", low=0.0, high=1.0 / self.n_actions)
        if noise_variance is not None:
            noise_variance = check_positive(noise_variance, "noise_variance")
        self.noise_variance = noise_variance
        fit_intercept = check_bool(fit_intercept, "fit_intercept")
        self.fit_intercept = fit_intercept
        self.seed = seed
        self._rng = check_seed("seed", seed)
        self._n_dims = self.n_features + fit_intercept
        self._stats = RidgeStats(self.n_actions, self._n_dims, self.ridge)

    @property
    def coefficients(self) -> np.ndarray:
        """Copy of the posterior means, ``(n_actions, n_features [+ 1 intercept])``."""
        with self._lock:
            return self._stats.coef.copy()

    def _noise_variance(self) -> np.ndarray:
        if self.noise_variance is not None:
            return np.full(self.n_actions, self.noise_variance)
        return self._stats.residual_variance(1.0, float(self._n_dims))

    def score_distribution(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of the sampled scores for the rows of ``X`` (``(n, d)``).

        Both are ``(n, n_actions)`` arrays in scaled-reward units.
        """
        X = as_float_matrix("X", X, self.n_features)
        with self._lock:
            return self._score_distribution(X)

    def _score_distribution(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, variances = self._scores(X)
        sd = self.posterior_scale * np.sqrt(variances * self._noise_variance())
        return mean, sd

    def _probabilities_batch(self, X: np.ndarray, eligible: np.ndarray) -> np.ndarray:
        mean, sd = self._score_distribution(X)
        n, n_actions, m = X.shape[0], self.n_actions, self.n_draws
        mean = np.where(eligible, mean, -np.inf)
        mean -= mean.max(axis=1, keepdims=True)  # centre before float32 to keep resolution
        mean = mean.astype(np.float32)[:, None, :]
        sd = sd.astype(np.float32)[:, None, :]
        counts = np.empty((n, n_actions))
        for start in range(0, n, _ROW_BLOCK):
            rows = slice(start, start + _ROW_BLOCK)
            size = mean[rows].shape[0]
            scores = self._rng.standard_normal((size, m, n_actions), dtype=np.float32)
            scores *= sd[rows]
            scores += mean[rows]
            winners = np.argmax(scores, axis=2)
            flat = (np.arange(size)[:, None] * n_actions + winners).ravel()
            counts[rows] = np.bincount(flat, minlength=size * n_actions).reshape(size, n_actions)
        n_eligible = eligible.sum(axis=1, keepdims=True)
        return self.floor * eligible + (1.0 - n_eligible * self.floor) * (counts / m)

    def _probabilities(self, x: np.ndarray, eligible: np.ndarray) -> np.ndarray:
        return self._probabilities_batch(x[None, :], eligible[None, :])[0]

    def _params(self) -> dict[str, Any]:
        return {
            "posterior_scale": self.posterior_scale,
            "ridge": self.ridge,
            "n_draws": self.n_draws,
            "floor": self.floor,
            "noise_variance": self.noise_variance,
            "fit_intercept": self.fit_intercept,
        }

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"rng": self._rng.bit_generator.state}, self._stats.arrays()

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self._stats.load(arrays)
        self._rng = generator_from_state(meta["rng"])
