"""A decorrelating (whitening) map of the context vector, fitted on a sample of contexts.

Stochastic-gradient learners (Vowpal Wabbit) converge slowly along directions in which features
are correlated; VW's per-feature normalisation rescales each feature but cannot undo
correlations. Ridge-based learners (LinUCB, linear TS, the full-information learner) are not
affected by an invertible linear map of the features, so only SGD learners need this.

:class:`Whitening` is the ZCA map ``z = (x - mean) @ W`` with
``W = V diag(1 / sqrt(max(lambda, floor * mean(lambda)))) V^T`` from the eigen-decomposition
``V diag(lambda) V^T`` of the sample covariance of the columns that vary in the sample. The
eigenvalue floor keeps directions that barely vary in the sample (rare features, one-hot groups
that sum to a constant) from being blown up when they do vary later. Columns constant in the
sample (the bias) pass through unchanged.

>>> rng = np.random.default_rng(0)
>>> a = rng.normal(size=20_000)
>>> X = np.column_stack([a, a + 0.2 * rng.normal(size=20_000), np.ones(20_000)])
>>> Z = Whitening.fit(X, floor=0.0).transform(X)
>>> bool(np.allclose(np.cov(Z[:, :2], rowvar=False), np.eye(2))), Z[:2, 2].tolist()
(True, [1.0, 1.0])
"""

from __future__ import annotations

import numpy as np

from engine.validation import check_probability

__all__ = ["Whitening"]

_CONSTANT = 1e-12  # sample variance at or below this: the column passes through unchanged


class Whitening:
    """The affine map ``x -> x @ matrix + offset`` (see the module docstring)."""

    def __init__(self, matrix: np.ndarray, offset: np.ndarray) -> None:
        matrix = np.asarray(matrix, dtype=np.float64)
        offset = np.asarray(offset, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"matrix.shape == {matrix.shape}, must be square (d, d)")
        if offset.shape != (matrix.shape[0],):
            raise ValueError(f"offset.shape == {offset.shape}, must be ({matrix.shape[0]},)")
        if not (np.isfinite(matrix).all() and np.isfinite(offset).all()):
            raise ValueError("matrix and offset must be finite")
        self.matrix = matrix
        self.offset = offset

    @classmethod
    def fit(cls, X: np.ndarray, floor: float = 0.15) -> Whitening:
        """Fit on the rows of ``X`` (``(n, d)``, n >= 2).

        ``floor`` in [0, 1] is relative to the mean eigenvalue.
        """
        floor = check_probability(floor, "floor")
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] < 2:
            raise ValueError(f"X.shape == {X.shape}, must be (n, d) with n >= 2")
        if not np.isfinite(X).all():
            raise ValueError("X has non-finite entries, all must be finite")
        d = X.shape[1]
        matrix, offset = np.eye(d), np.zeros(d)
        varying = np.flatnonzero(X.var(axis=0) > _CONSTANT)
        if varying.size:
            sample = X[:, varying]
            mean = sample.mean(axis=0)
            eigenvalues, vectors = np.linalg.eigh(np.atleast_2d(np.cov(sample, rowvar=False)))
            eigenvalues = np.maximum(eigenvalues, max(floor * eigenvalues.mean(), _CONSTANT))
            w = (vectors / np.sqrt(eigenvalues)) @ vectors.T
            matrix[np.ix_(varying, varying)] = w
            offset[varying] = -mean @ w
        return cls(matrix, offset)

    @property
    def n_features(self) -> int:
        """Length of the vectors it maps."""
        return self.matrix.shape[0]

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Map one vector ``(d,)`` or the rows of a matrix ``(n, d)``."""
        if type(X) is not np.ndarray:
            X = np.asarray(X, dtype=np.float64)
        out = X.dot(self.matrix)  # the method: less call overhead than @ or np.dot on one vector
        out += self.offset
        return out
