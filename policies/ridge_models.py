"""Banks of linear ridge models on one design, with the covariances a confidence bonus needs.

* :class:`RidgeModels` — independent ridge regressions (one per action, or per touch and action).
* :class:`PooledRidge` — one per action, ``x . (w + d_a)``: a weight ``w`` shared by the actions
  plus penalised per-action deviations ``d_a``, so what every action shares (the cart's
  unprompted purchase) is learnt from every row.

Both expose ``coef`` ``(n_models, d)`` and ``covariance`` ``(n_models, d, d)`` (of the model's
coefficients, per unit noise variance) and :meth:`widths` ``z' C_m z``.

>>> import numpy as np
>>> bank = RidgeModels(2, 1, ridge=1.0)
>>> bank.add_rows(np.ones((3, 1)), np.array([0, 0, 1]), np.array([2.0, 2.0, 5.0]))
>>> bank.coef.ravel().round(3).tolist()
[1.333, 2.5]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _symmetric(a: np.ndarray) -> np.ndarray:
    return (a + np.swapaxes(a, -1, -2)) * 0.5


class RidgeModels:
    """``n_models`` independent ridge regressions of dimension ``dim`` (penalty ``ridge``)."""

    def __init__(self, n_models: int, dim: int, ridge: float) -> None:
        self.ridge = float(ridge)
        self.gram = np.zeros((n_models, dim, dim))
        self.xty = np.zeros((n_models, dim))
        self.coef = np.zeros((n_models, dim))
        self.covariance = np.repeat(np.eye(dim)[None] / self.ridge, n_models, axis=0)

    def add_rows(self, Z: np.ndarray, models: np.ndarray, y: np.ndarray | None = None) -> None:
        """Add rows ``Z`` of ``models`` to the grams and refit the models that got rows.

        With targets ``y`` they are added to ``Z'y`` too.
        """
        for m in np.unique(models):
            Zm = Z[models == m]
            self.gram[m] += Zm.T @ Zm
            if y is not None:
                self.xty[m] += Zm.T @ y[models == m]
            self._solve(int(m))

    def refit(self, Z: np.ndarray, models: np.ndarray, y: np.ndarray, which: Sequence[int]) -> None:
        """Refit models ``which`` on new targets ``y`` of rows ``Z`` (already in their grams)."""
        for m in which:
            rows = models == m
            self.xty[m] = Z[rows].T @ y[rows]
            self._solve(int(m))

    def _solve(self, m: int) -> None:
        precision = self.gram[m] + self.ridge * np.eye(self.gram.shape[1])
        self.covariance[m] = _symmetric(np.linalg.inv(precision))
        self.coef[m] = self.covariance[m] @ self.xty[m]

    def widths(self, Z: np.ndarray, models: Sequence[int]) -> np.ndarray:
        """``(n, len(models))`` quadratic forms ``z' C_m z`` (at least 0)."""
        projected = np.einsum("nd,mde->nme", Z, self.covariance[np.asarray(models)])
        return np.maximum(np.einsum("nme,ne->nm", projected, Z), 0.0)


class PooledRidge(RidgeModels):
    """Per-action models ``x . (w + d_a)``, penalties ``ridge`` on ``w``, ``deviation`` on ``d_a``.

    ``deviation`` holds one penalty per coordinate.
    Solved by block elimination of the joint normal equations: with ``G_a`` action ``a``'s gram,
    ``D_a = diag(deviation) + G_a``, ``H_a = D_a^-1 G_a`` and ``S = (ridge I + sum_a G_a (I -
    H_a))^-1`` (the shared block of the joint inverse), ``w = S (sum_a b_a - sum_a H_a' b_a)``,
    ``w + d_a = (I - H_a) w + D_a^-1 b_a`` and its covariance ``(I - H_a) S (I - H_a)' + D_a^-1``.
    """

    def __init__(self, n_models: int, dim: int, ridge: float, deviation: np.ndarray) -> None:
        super().__init__(n_models, dim, ridge)
        self.deviation = np.asarray(deviation, dtype=np.float64)
        if self.deviation.shape != (dim,) or not np.all(self.deviation > 0):
            raise ValueError(f"deviation must be {dim} positive penalties, got {deviation!r}")
        self.covariance += np.diag(1.0 / self.deviation)[None]

    def add_rows(self, Z: np.ndarray, models: np.ndarray, y: np.ndarray | None = None) -> None:
        """Add rows (with targets ``y``) and refit every model (they share ``w``)."""
        for m in np.unique(models):
            Zm = Z[models == m]
            self.gram[m] += Zm.T @ Zm
            if y is not None:
                self.xty[m] += Zm.T @ y[models == m]
        self._solve_all()

    def refit(self, Z: np.ndarray, models: np.ndarray, y: np.ndarray, which: Sequence[int]) -> None:
        """Refit on new targets ``y`` (every model: they share ``w``)."""
        for m in which:
            self.xty[m] = Z[models == m].T @ y[models == m]
        self._solve_all()

    def _solve_all(self) -> None:
        eye = np.eye(self.gram.shape[1])
        d_inv = _symmetric(np.linalg.inv(self.gram + np.diag(self.deviation)[None]))
        h = d_inv @ self.gram
        shared = self.ridge * eye + np.einsum("aij,ajk->ik", self.gram, eye[None] - h)
        s = _symmetric(np.linalg.inv(shared))
        w = s @ (self.xty.sum(axis=0) - np.einsum("aji,aj->i", h, self.xty))
        keep = eye[None] - h
        self.coef = np.einsum("aij,j->ai", keep, w) + np.einsum("aij,aj->ai", d_inv, self.xty)
        self.covariance = _symmetric(keep @ s[None] @ keep.transpose(0, 2, 1) + d_inv)
