"""CUPED variance reduction for ratio metrics (pre-experiment covariates per unit).

The ratio metric is first linearised per unit (see :mod:`engine.abtest.delta`); the
linearised contributions are regressed on the within-arm centred covariates with one
coefficient vector ``theta`` pooled across the two arms. The adjusted effect is
``(R_t - R_c) - theta . (mean(X_t) - mean(X_c))``: the covariates are independent of the
assignment, so the correction has mean zero (no bias) and removes the share of variance the
covariates explain, about ``rho^2`` for a single covariate with correlation ``rho``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .delta import linearise, ratio_mean_var


@dataclass(frozen=True)
class CupedDifference:
    """CUPED-adjusted absolute effect (arrays broadcast over runs)."""

    abs_effect: np.ndarray
    abs_se: np.ndarray
    variance_reduction: np.ndarray
    theta: np.ndarray


def _as_matrix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim == y.ndim:
        x = x[..., None]
    if x.shape[:-1] != y.shape:
        raise ValueError(f"covariates of shape {x.shape} do not match metric of shape {y.shape}")
    return x


def cuped_difference(
    y_t: np.ndarray,
    n_t: np.ndarray,
    x_t: np.ndarray,
    y_c: np.ndarray,
    n_c: np.ndarray,
    x_c: np.ndarray,
) -> CupedDifference:
    """CUPED-adjusted treatment-minus-control effect on the ratio ``sum(y)/sum(n)``.

    ``x_t``/``x_c`` are per-unit covariates, shaped like ``y`` (one covariate) or with an
    extra trailing axis of covariates. ``variance_reduction`` is ``1 - Var_cuped / Var``.
    """
    y_t = np.asarray(y_t, dtype=float)
    y_c = np.asarray(y_c, dtype=float)
    x_t = _as_matrix(x_t, y_t)
    x_c = _as_matrix(x_c, y_c)
    lin_t, lin_c = linearise(y_t, n_t), linearise(y_c, n_c)
    xc_t = x_t - x_t.mean(axis=-2, keepdims=True)
    xc_c = x_c - x_c.mean(axis=-2, keepdims=True)
    if np.any(np.concatenate([xc_t, xc_c], axis=-2).std(axis=-2) == 0):
        raise ValueError("covariates: a covariate is constant across units; CUPED needs variation")
    gram = np.einsum("...ik,...il->...kl", xc_t, xc_t) + np.einsum("...ik,...il->...kl", xc_c, xc_c)
    cross = np.einsum("...ik,...i->...k", xc_t, lin_t) + np.einsum("...ik,...i->...k", xc_c, lin_c)
    theta = np.einsum("...kl,...l->...k", np.linalg.pinv(gram), cross)
    adj_t = lin_t - np.einsum("...ik,...k->...i", xc_t, theta)
    adj_c = lin_c - np.einsum("...ik,...k->...i", xc_c, theta)
    m_t, m_c = y_t.shape[-1], y_c.shape[-1]
    var_cuped = (adj_t**2).sum(axis=-1) / ((m_t - 1) * m_t)
    var_cuped = var_cuped + (adj_c**2).sum(axis=-1) / ((m_c - 1) * m_c)
    r_t, v_t = ratio_mean_var(y_t, n_t)
    r_c, v_c = ratio_mean_var(y_c, n_c)
    shift = ((x_t.mean(axis=-2) - x_c.mean(axis=-2)) * theta).sum(axis=-1)
    var_plain = v_t + v_c
    with np.errstate(divide="ignore", invalid="ignore"):
        reduction = np.where(var_plain > 0, 1.0 - var_cuped / var_plain, 0.0)
    return CupedDifference(
        abs_effect=r_t - r_c - shift,
        abs_se=np.sqrt(var_cuped),
        variance_reduction=reduction,
        theta=theta,
    )
