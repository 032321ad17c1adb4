"""Ridge model banks against a brute-force solve of their normal equations."""

import numpy as np
import pytest

from policies.ridge_models import PooledRidge, RidgeModels


def _data(n=300, d=4, models=3, seed=1):
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, d))
    return Z, rng.integers(0, models, n), rng.normal(size=n) + Z[:, 0]


def test_independent_models_equal_their_own_ridge_solves():
    Z, m, y = _data()
    bank = RidgeModels(3, 4, ridge=2.0)
    bank.add_rows(Z[:100], m[:100], y[:100])
    bank.add_rows(Z[100:], m[100:], y[100:])
    for j in range(3):
        Zj, yj = Z[m == j], y[m == j]
        cov = np.linalg.inv(Zj.T @ Zj + 2.0 * np.eye(4))
        assert bank.coef[j] == pytest.approx(cov @ Zj.T @ yj, abs=1e-12)
        assert bank.covariance[j] == pytest.approx(cov, abs=1e-12)
    widths = bank.widths(Z[:5], [2, 0])
    assert widths[:, 0] == pytest.approx(np.einsum("nd,de,ne->n", Z[:5], bank.covariance[2], Z[:5]))
    y2 = -y  # refit on new targets without adding rows again
    bank.refit(Z, m, y2, [1])
    Z1 = Z[m == 1]
    assert bank.coef[1] == pytest.approx(
        np.linalg.solve(Z1.T @ Z1 + 2.0 * np.eye(4), Z1.T @ y2[m == 1]), abs=1e-12
    )


def test_pooled_models_equal_the_joint_solve_of_shared_weight_and_deviations():
    """Joint ridge over [w, d_0, d_1, d_2]: row z of model a is [z, 0.., z at a, ..0]."""
    Z, m, y = _data()
    penalty = np.array([2.0, 3.0, 4.0, 5.0])
    bank = PooledRidge(3, 4, 1.5, penalty)
    bank.add_rows(Z, m, y)
    D = 4 * 4
    P = np.zeros((D, D))
    P[:4, :4] = 1.5 * np.eye(4)
    for j in range(3):
        P[4 * (j + 1) : 4 * (j + 2), 4 * (j + 1) : 4 * (j + 2)] = np.diag(penalty)
    b = np.zeros(D)
    for z, a, t in zip(Z, m, y, strict=True):
        v = np.zeros(D)
        v[:4], v[4 * (a + 1) : 4 * (a + 2)] = z, z
        P += np.outer(v, v)
        b += t * v
    S = np.linalg.inv(P)
    theta = S @ b
    for j in range(3):
        E = np.zeros((D, 4))
        E[:4], E[4 * (j + 1) : 4 * (j + 2)] = np.eye(4), np.eye(4)
        assert bank.coef[j] == pytest.approx(E.T @ theta, abs=1e-10)
        assert bank.covariance[j] == pytest.approx(E.T @ S @ E, abs=1e-12)


def test_pooled_models_need_positive_penalties():
    with pytest.raises(ValueError, match="deviation must be 4 positive penalties"):
        PooledRidge(3, 4, 1.0, np.array([1.0, 0.0, 1.0, 1.0]))
