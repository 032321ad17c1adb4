"""Abandonment-risk model: P(shopper returns and buys with no recovery action), and its metrics.

A standardised L2 logistic regression (scikit-learn) fitted on profile features. After fitting,
the scaler is folded into the coefficients, so a prediction is one dot product and a sigmoid:
:meth:`RiskModel.predict_one` does that in plain Python for the single-row ``decide`` path.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(2000, 2))
>>> y = (rng.random(2000) < 1 / (1 + np.exp(-(2 * X[:, 0] - X[:, 1])))).astype(int)
>>> model = RiskModel(feature_names=("a", "b")).fit(X, y)
>>> [bool(s) for s in np.sign(model.coef_) == [1, -1]]
[True, True]
>>> abs(model.predict_one([0.5, 0.5]) - float(model.predict_proba([[0.5, 0.5]])[0])) < 1e-12
True

How well it ranks and how calibrated it is on held-out carts: :func:`roc_auc`,
:func:`reliability_table` and :func:`expected_calibration_error` (the ``cartwise run`` report
sets them against the ceiling, the AUC of the carts' true return probability).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from operator import mul
from typing import Any

import numpy as np

from engine.profile import PROFILE_FEATURES
from engine.validation import as_float_array, check_integer

__all__ = ["RiskModel", "expected_calibration_error", "reliability_table", "roc_auc"]

logger = logging.getLogger(__name__)

_exp = math.exp


def _sigmoid(z: float) -> float:
    if z >= 0.0:
        return 1.0 / (1.0 + _exp(-z))
    e = _exp(z)
    return e / (1.0 + e)


class RiskModel:
    """Logistic regression on named features with a fast single-row predict.

    Args:
        feature_names: names of the columns of ``X`` (default: :data:`PROFILE_FEATURES`).
        C: inverse L2 strength on standardised features (scikit-learn convention).
        max_iter: solver iterations.

    Attributes (after fit):
        coef_: coefficients on the *raw* features, shape ``(n_features,)``.
        intercept_: intercept on the raw features.
    """

    def __init__(
        self,
        feature_names: Sequence[str] = PROFILE_FEATURES,
        C: float = 1.0,
        max_iter: int = 1000,
    ) -> None:
        names = tuple(feature_names)
        if not names or not all(isinstance(n, str) for n in names):
            raise ValueError(
                f"feature_names == {feature_names!r}, must be a non-empty sequence of str"
            )
        if len(set(names)) != len(names):
            raise ValueError(f"feature_names == {feature_names!r}, must not repeat a name")
        if isinstance(C, bool) or not isinstance(C, (int, float)) or not (0 < C < math.inf):
            raise ValueError(f"C == {C!r}, must be a finite number > 0")
        if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
            raise ValueError(f"max_iter == {max_iter!r}, must be an int >= 1")
        self.feature_names = names
        self.C = float(C)
        self.max_iter = max_iter
        self._coef_list: list[float] | None = None

    def _check_X(self, X: Any, name: str = "X") -> np.ndarray:
        arr = np.asarray(X, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != len(self.feature_names):
            raise ValueError(f"{name} shape == {arr.shape}, must be (n, {len(self.feature_names)})")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains a non-finite value, must be all finite")
        return arr

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> RiskModel:
        """Fit on ``X`` (n, d) and binary labels ``y`` (1 = returned and bought unprompted)."""
        X = self._check_X(X)
        y = np.asarray(y)
        if y.shape != (X.shape[0],):
            raise ValueError(f"y shape == {y.shape}, must be ({X.shape[0]},)")
        labels = set(np.unique(y).tolist())
        if not labels <= {0, 1}:
            raise ValueError(f"y values == {sorted(labels)}, must be 0/1")
        if len(labels) < 2:
            raise ValueError(f"y has only class {labels.pop()}, must contain both 0 and 1")
        # scikit-learn is imported here, not at module level: ``import engine`` (every checkout
        # process) then does not pay its import time; only fitting a risk model needs it
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(X)
        clf = LogisticRegression(C=self.C, max_iter=self.max_iter)
        clf.fit(scaler.transform(X), y.astype(int), sample_weight=sample_weight)
        coef = clf.coef_[0] / scaler.scale_
        self.coef_ = coef
        self.intercept_ = float(clf.intercept_[0] - coef @ scaler.mean_)
        self._coef_list = coef.tolist()
        logger.info("RiskModel fitted on %d rows, base rate %.4f", X.shape[0], float(y.mean()))
        return self

    def _require_fitted(self) -> None:
        if self._coef_list is None:
            raise ValueError("RiskModel is not fitted, call fit() or from_dict() first")

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits, shape ``(n,)``."""
        self._require_fitted()
        return self._check_X(X) @ self.coef_ + self.intercept_

    def predict_proba(self, X: Any) -> np.ndarray:
        """P(return and buy with no action) for each row of ``X`` (n, d), shape ``(n,)``."""
        z = self.decision_function(X)
        out = np.empty_like(z)
        pos = z >= 0
        out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
        e = np.exp(z[~pos])
        out[~pos] = e / (1.0 + e)
        return out

    def predict_one(self, x: Sequence[float]) -> float:
        """Probability for one row given as a float sequence (no validation: decide path)."""
        coef = self._coef_list
        if coef is None:
            raise ValueError("RiskModel is not fitted, call fit() or from_dict() first")
        return _sigmoid(self.intercept_ + sum(map(mul, coef, x)))

    def to_dict(self) -> dict[str, np.ndarray]:
        """Fitted state as numpy arrays."""
        self._require_fitted()
        return {
            "feature_names": np.asarray(self.feature_names),
            "C": np.asarray(self.C),
            "max_iter": np.asarray(self.max_iter),
            "coef": self.coef_.copy(),
            "intercept": np.asarray(self.intercept_),
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> RiskModel:
        """Inverse of :meth:`to_dict`."""
        try:
            model = cls(
                feature_names=[str(n) for n in np.asarray(state["feature_names"]).tolist()],
                C=float(state["C"]),
                max_iter=int(state["max_iter"]),
            )
            coef = np.asarray(state["coef"], dtype=np.float64)
            intercept = float(state["intercept"])
        except KeyError as err:
            raise ValueError(f"state is missing key {err.args[0]!r}") from None
        if coef.shape != (len(model.feature_names),):
            raise ValueError(f"coef shape == {coef.shape}, must be ({len(model.feature_names)},)")
        model.coef_ = coef
        model.intercept_ = intercept
        model._coef_list = coef.tolist()
        return model


def _scores_and_labels(scores: Any, labels: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """1-d float scores and 0/1 labels of the same, non-zero length."""
    s = as_float_array(scores, name, 1)
    y = as_float_array(labels, "labels", 1)
    if s.shape != y.shape or len(s) == 0:
        raise ValueError(
            f"{name} has shape {s.shape}, must equal labels' shape {y.shape} (non-empty)"
        )
    if not np.all(np.isfinite(s)):
        raise ValueError(f"{name} contains a non-finite value, must be all finite")
    if not np.all((y == 0) | (y == 1)):
        bad = y[(y != 0) & (y != 1)][0]
        raise ValueError(f"labels contains {bad!r}, must be 0/1")
    return s, y


def roc_auc(scores: Any, labels: Any) -> float:
    """Area under the ROC curve of ``scores`` against 0/1 ``labels``; nan when one class is absent.

    The rank-sum (Mann-Whitney) formula, ties averaged.

    >>> roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    0.75
    """
    from scipy.stats import rankdata

    s, y = _scores_and_labels(scores, labels, "scores")
    pos = y == 1
    n_pos = int(pos.sum())
    n_neg = len(pos) - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(s)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def reliability_table(probabilities: Any, labels: Any, bins: int = 10) -> dict[str, np.ndarray]:
    """Predicted against observed rates in ``bins`` equal-count bins of the predictions.

    Returns:
        ``{"predicted": mean prediction, "observed": share of 1s, "count": rows}`` per bin, in
        increasing order of prediction (bins left empty by fewer rows than bins are dropped).

    >>> t = reliability_table([0.1, 0.1, 0.9, 0.9], [0, 0, 1, 1], bins=2)
    >>> t["predicted"].tolist(), t["observed"].tolist(), t["count"].tolist()
    ([0.1, 0.9], [0.0, 1.0], [2, 2])
    """
    p, y = _scores_and_labels(probabilities, labels, "probabilities")
    check_integer(bins, "bins", low=1)
    order = np.argsort(p, kind="stable")
    groups = [g for g in np.array_split(order, bins) if len(g)]
    return {
        "predicted": np.array([p[g].mean() for g in groups]),
        "observed": np.array([y[g].mean() for g in groups]),
        "count": np.array([len(g) for g in groups]),
    }


def expected_calibration_error(probabilities: Any, labels: Any, bins: int = 10) -> float:
    """Count-weighted mean of ``|predicted - observed|`` over :func:`reliability_table`'s bins.

    >>> expected_calibration_error([0.2, 0.2, 0.6, 0.6], [0, 0, 1, 1], bins=2)
    0.3
    """
    t = reliability_table(probabilities, labels, bins)
    gap = np.abs(t["predicted"] - t["observed"]) @ t["count"] / t["count"].sum()
    return float(np.round(gap, 12))
