"""The DR reward model from mergeable sums: cross-fitted ridge regressions, one per action and fold.

Pass 1 reads a bounded sample of the log (every row of a log up to :data:`SAMPLE_ROWS` rows)
and folds, for every (fold, action), the count, mean and centred cross-products of
``[features, reward]`` (Chan et al.'s pairwise merge, as :class:`engine.ope.merge.Summary`), so
batches, files and Spark partitions give the same statistics to rounding. Fitting then solves,
for fold ``k``, the ridge regression (standardised features, intercept, ``alpha``: the model of
``StandardScaler() + Ridge(alpha)``) on the rows of the *other* folds. Pass 2 predicts each row
with the model of its own fold.

A row's fold is a hash of its timestamp (:func:`fold_of`), fixed before its reward is seen and
the same whatever the batching. A row's prediction never uses its own reward: a sampled row is
predicted by the models of the other folds, a row outside the sample by models fitted on other
rows only. So DR's correction term has mean zero given the model, and DR stays unbiased when the
logged propensities are right, however good or bad the ridge fit is; the sample bounds the
first pass's cost (beyond a few hundred thousand rows a 2 x 7 x 35-coefficient model gains
little from more) at the price of a slightly less accurate model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ALPHA = 1.0
"""Ridge penalty on the standardised coefficients."""
SAMPLE_ROWS = 262_144
"""Rows of a Parquet log the reward model is fitted on by default (a sample spread over the
log, :meth:`engine.ope.lake.source.Source.sampled`); every row of a smaller log."""
MIN_ROWS = 5
"""Fewest training rows of an action for which a regression is fitted (else its mean reward)."""


def fold_of(timestamps: np.ndarray, n_folds: int) -> np.ndarray:
    """Fold label in ``[0, n_folds)`` of each row: splitmix64 of the timestamp's float64 bits.

    >>> folds = fold_of(np.array([1.0, 2.0, 1.0]), 2)
    >>> bool(folds[0] == folds[2] == fold_of(np.array([1.0]), 2)[0])
    True
    """
    with np.errstate(over="ignore"):
        z = np.ascontiguousarray(timestamps, dtype=np.float64).view(np.uint64) + np.uint64(
            0x9E3779B97F4A7C15
        )
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(n_folds)).astype(np.int64)


def regressors(features: np.ndarray) -> np.ndarray:
    """The reward model's inputs: features with NaN (absent in a row) as 0.

    ``features`` itself when it has no NaN (it is not written to).
    """
    missing = np.isnan(features)
    if not missing.any():
        return features
    out = features.copy(order="K")  # keeps the column-major layout of a batch
    out[missing] = 0.0
    return out


@dataclass(frozen=True, eq=False)
class Moments:
    """Count, mean and centred cross-products of rows ``z`` (mergeable with ``+``)."""

    n: int
    mean: np.ndarray  # (p,)
    comoment: np.ndarray  # (p, p)

    @classmethod
    def of(cls, z: np.ndarray, overwrite: bool = False) -> Moments:
        """The moments of the rows of ``z`` (``n x p``); ``overwrite``: centre ``z`` in place."""
        mean = z.mean(axis=0)
        if overwrite:
            z -= mean
            centred = z
        else:
            centred = z - mean
        return cls(z.shape[0], mean, centred.T @ centred)

    @classmethod
    def empty(cls, p: int) -> Moments:
        """The moments of no row of width ``p`` (the identity of ``+``)."""
        return cls(0, np.zeros(p), np.zeros((p, p)))

    def __add__(self, other: Moments) -> Moments:
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        return Moments(
            n,
            self.mean + delta * (other.n / n),
            self.comoment + other.comoment + np.outer(delta, delta) * (self.n * other.n / n),
        )


@dataclass(frozen=True, eq=False)
class RewardStats:
    """Moments of ``[x, r]`` per fold and action: ``cells[k][a]``."""

    cells: tuple[tuple[Moments, ...], ...]

    @classmethod
    def of(
        cls,
        x: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        timestamps: np.ndarray,
        n_folds: int,
        n_actions: int,
    ) -> RewardStats:
        """The moments of one batch's regressors ``x`` and rewards, per time fold and action."""
        n, d = x.shape
        cell = fold_of(timestamps, n_folds) * n_actions + actions
        if n_folds * n_actions <= np.iinfo(np.int16).max:
            cell = cell.astype(np.int16)  # a stable sort of 16-bit keys is a radix sort
        # rows grouped by cell (in their order within a cell), so each cell is a slice
        order = np.argsort(cell, kind="stable")
        bounds = np.zeros(n_folds * n_actions + 1, dtype=np.int64)
        np.cumsum(np.bincount(cell, minlength=n_folds * n_actions), out=bounds[1:])
        z = np.empty((n, d + 1), order="F")  # gathered column by column: contiguous reads
        for j in range(d):
            np.take(x[:, j], order, out=z[:, j])
        np.take(rewards, order, out=z[:, d])
        cells = []
        for k in range(n_folds):
            row = []
            for a in range(n_actions):
                lo, hi = bounds[k * n_actions + a], bounds[k * n_actions + a + 1]
                row.append(
                    Moments.of(z[lo:hi], overwrite=True) if hi > lo else Moments.empty(d + 1)
                )
            cells.append(tuple(row))
        return cls(tuple(cells))

    @property
    def n(self) -> int:
        """Rows folded into the statistics."""
        return sum(m.n for row in self.cells for m in row)

    def __add__(self, other: RewardStats) -> RewardStats:
        """Merge cell by cell (both have the same folds and actions)."""
        return RewardStats(
            tuple(
                tuple(a + b for a, b in zip(ra, rb, strict=True))
                for ra, rb in zip(self.cells, other.cells, strict=True)
            )
        )

    def fit(self, alpha: float = ALPHA) -> RewardModel:
        """The cross-fitted model: fold ``k``'s regressions use the other folds' rows."""
        n_folds, n_actions = len(self.cells), len(self.cells[0])
        p = self.cells[0][0].mean.shape[0]
        d = p - 1
        coef = np.zeros((n_folds, n_actions, d))
        centre = np.zeros((n_folds, n_actions, d))
        scale = np.ones((n_folds, n_actions, d))
        intercept = np.zeros((n_folds, n_actions))
        for k in range(n_folds):
            train_folds = [j for j in range(n_folds) if j != k] if n_folds > 1 else [k]
            per_action = []
            for a in range(n_actions):
                m = Moments.empty(p)
                for j in train_folds:
                    m = m + self.cells[j][a]
                per_action.append(m)
            total = Moments.empty(p)
            for m in per_action:
                total = total + m
            fallback = float(total.mean[d]) if total.n else 0.0
            for a, m in enumerate(per_action):
                if m.n == 0:
                    intercept[k, a] = fallback
                    continue
                intercept[k, a] = m.mean[d]
                if m.n < MIN_ROWS:
                    continue
                var = np.diag(m.comoment)[:d] / m.n
                s = np.where(var > 1e-24, np.sqrt(np.maximum(var, 0.0)), 1.0)
                gram = m.comoment[:d, :d] / np.outer(s, s)
                rhs = m.comoment[:d, d] / s
                coef[k, a] = np.linalg.solve(gram + alpha * np.eye(d), rhs)
                centre[k, a] = m.mean[:d]
                scale[k, a] = s
        return RewardModel(coef, centre, scale, intercept)


@dataclass(frozen=True, eq=False)
class RewardModel:
    """Fitted per-fold, per-action ridge regressions (arrays; pickles small for broadcasting)."""

    coef: np.ndarray  # (K, A, d) on standardised features
    centre: np.ndarray  # (K, A, d)
    scale: np.ndarray  # (K, A, d)
    intercept: np.ndarray  # (K, A): the training mean reward

    def predict(self, x: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
        """``(n, A)`` predicted reward of every action, each row by its own fold's models."""
        n_folds, n_actions, _ = self.coef.shape
        folds = fold_of(timestamps, n_folds)
        slopes = self.coef / self.scale  # (K, A, d): coefficients on the raw features
        offsets = self.intercept - np.einsum("kad,kad->ka", self.centre, slopes)
        if n_folds == 1:
            return x @ slopes[0].T + offsets[0]
        # every fold's prediction of every row in one product, then each row's own fold
        every = (x @ slopes.reshape(n_folds * n_actions, -1).T).reshape(-1, n_folds, n_actions)
        rows = np.arange(x.shape[0])
        return every[rows, folds] + offsets[folds]
