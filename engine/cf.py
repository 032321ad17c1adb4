"""Collaborative filtering on purchase histories: item-item cosine CF and matrix factorisation.

:class:`CFModel` is fitted on implicit feedback (who bought what) and serves two uses inside
``decide``:

* :meth:`CFModel.features` -- :data:`CF_FEATURES` for the bandit: affinity of the cart to the
  shopper's tastes (a user factor folded in from their purchase history, cosine with the cart's
  item factors), max/mean item-CF similarity of cart items to past purchases, cart popularity,
  and two flags (cold user, share of unknown cart items). Unknown items and cold users never
  raise; they give neutral values and set the flags.
* :meth:`CFModel.recommend` -- item ids not in the cart, ranked by CF score, with popularity as
  tie-breaker and fallback.

Item CF keeps the top ``n_neighbors`` cosine neighbours of each item (sparse). The factorisation
is implicit ALS (Hu, Koren & Volinsky 2008, batched with numpy) or a truncated SVD. A shopper's
factor is *folded in* from their items as ``u = sum(W[h])`` with a fixed per-item projection
``W`` (``V`` for SVD; ``Y (Y'Y + reg I)^-1`` for ALS, the least-squares fold-in with unit
confidence), so it costs one small sum per decision and works for shoppers never seen in fit.

>>> users = ["a", "a", "b", "b", "c", "c", "d"]
>>> items = ["x", "y", "x", "y", "y", "z", "z"]
>>> model = CFModel(n_factors=2, seed=0).fit((users, items))
>>> model.recommend({"user_id": "e", "timestamp": 0.0,
...                  "cart": [{"item_id": "x", "price": 1.0, "quantity": 1}]}, k=2)
['y', 'z']
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from itertools import repeat
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from engine.cf_eval import (
    RankingMetrics,
    holdout_last_orders,
    interactions_from_contexts,
    precision_recall_at_k,
)
from engine.cf_fit import (
    FACTORIZATIONS,
    SCORING_METHODS,
    Interactions,
    implicit_als,
    item_neighbors,
    truncated_svd,
    unpack_interactions,
)
from engine.cf_state import model_from_arrays, model_to_arrays
from engine.parsed import ParsedContext, order_summary
from engine.validation import check_choice, check_integer, check_non_negative

__all__ = [
    "CF_FEATURES",
    "CFModel",
    "RankingMetrics",
    "ShopperItems",
    "holdout_last_orders",
    "interactions_from_contexts",
    "precision_recall_at_k",
]

logger = logging.getLogger(__name__)

CF_FEATURES: tuple[str, ...] = (
    "cf_affinity",  # mean cosine of cart item factors with the folded-in user factor
    "cf_similarity_max",  # max over cart items of their best item-CF similarity to a past purchase
    "cf_similarity_mean",  # mean over cart items of the same
    "cf_popularity",  # mean log-popularity of known cart items, scaled to [0, 1]
    "cf_cold_user",  # 1 when no past purchase is known to the model
    "cf_unknown_items",  # share of cart lines whose item the model has never seen
)

_segment_sums = np.add.reduceat
_ZEROS = repeat(0.0)  # endless default argument for map(dict.get, keys, _ZEROS)
_TIE_BREAK = 1e-6  # weight of popularity added to CF scores (tie-breaker and cold fallback)


class ShopperItems(NamedTuple):
    """A context's items as model indices (:meth:`CFModel.shopper_items`).

    Attributes:
        cart: index of each cart line's item, ``None`` for items the model has not seen.
        bought: indices of the known items in the shopper's past orders.
    """

    cart: list[int | None]
    bought: set[int]


class CFModel:
    """Item-based CF plus matrix factorisation on implicit purchase feedback.

    Args:
        n_factors: latent dimension of the factorisation.
        n_neighbors: neighbours kept per item for item CF.
        factorization: ``"als"`` (implicit ALS) or ``"svd"`` (truncated SVD).
        regularization: L2 penalty of ALS.
        alpha: ALS confidence slope, ``c = 1 + alpha * weight``.
        n_iter: ALS sweeps.
        recommend_method: scores used by :meth:`recommend`: ``"item"``, ``"mf"`` or
            ``"popularity"``.
        seed: seed of the ALS initialisation (SVD start vector).
    """

    def __init__(
        self,
        n_factors: int = 16,
        n_neighbors: int = 50,
        factorization: str = "als",
        regularization: float = 1.0,
        alpha: float = 10.0,
        n_iter: int = 10,
        recommend_method: str = "item",
        seed: int = 0,
    ) -> None:
        self.n_factors = check_integer(n_factors, "n_factors", low=1)
        self.n_neighbors = check_integer(n_neighbors, "n_neighbors", low=1)
        self.factorization = check_choice(factorization, "factorization", FACTORIZATIONS)
        self.regularization = check_non_negative(regularization, "regularization")
        self.alpha = check_non_negative(alpha, "alpha")
        self.n_iter = check_integer(n_iter, "n_iter", low=1)
        self.recommend_method = check_choice(recommend_method, "recommend_method", SCORING_METHODS)
        self.seed = int(seed)
        self._fitted = False

    # ------------------------------------------------------------------------------------------
    # Fitting

    def fit(self, interactions: Interactions) -> CFModel:
        """Fit on ``(user_ids, item_ids[, weights])``; repeated pairs have their weights summed."""
        users, items, weights = unpack_interactions(interactions)
        if users.size == 0:
            raise ValueError("interactions has 0 rows, must have at least 1")
        user_ids, user_idx = np.unique(users, return_inverse=True)
        item_ids, item_idx = np.unique(items, return_inverse=True)
        matrix = sp.csr_matrix(
            (weights, (user_idx, item_idx)), shape=(user_ids.size, item_ids.size)
        )
        matrix.sum_duplicates()
        popularity = np.asarray((matrix > 0).sum(axis=0), dtype=np.float64).ravel()
        neighbors = item_neighbors(matrix, self.n_neighbors)
        k = min(self.n_factors, max(1, min(matrix.shape) - 1))
        if self.factorization == "als":
            factors, projection = implicit_als(
                matrix,
                k,
                alpha=self.alpha,
                regularization=self.regularization,
                n_iter=self.n_iter,
                seed=self.seed,
            )
        else:
            factors, projection = truncated_svd(matrix, k, self.seed)
        self._set_state(item_ids, popularity, factors, projection, neighbors)
        logger.info(
            "CFModel fitted: %d users, %d items, %d interactions, %s k=%d",
            user_ids.size,
            item_ids.size,
            matrix.nnz,
            self.factorization,
            k,
        )
        return self

    def _set_state(
        self,
        item_ids: np.ndarray,
        popularity: np.ndarray,
        factors: np.ndarray,
        projection: np.ndarray,
        neighbors: sp.csr_matrix,
    ) -> None:
        self.item_ids_ = np.asarray(item_ids).astype(str)
        self.popularity_ = np.asarray(popularity, dtype=np.float64)
        self.item_factors_ = np.asarray(factors, dtype=np.float64)
        self.projection_ = np.asarray(projection, dtype=np.float64)
        self.neighbors_ = neighbors
        # Derived, fast-path structures.
        self._index = {item: i for i, item in enumerate(self.item_ids_.tolist())}
        top = self.popularity_.max() if self.popularity_.size else 0.0
        pop_scaled = np.log1p(self.popularity_) / math.log1p(top) if top > 0 else self.popularity_
        self._pop_scaled = pop_scaled
        self._pop_list = pop_scaled.tolist()
        self._base_scores = _TIE_BREAK * pop_scaled
        self._item_id_list = self.item_ids_.tolist()
        # Neighbour lists padded to one width, similarities negated: the item scores of any
        # seeds are then one gather and one bincount. Padding points at a sink column
        # (index n_items) whose base score is +inf, so it never ranks.
        n = self.item_ids_.size
        lengths = np.diff(neighbors.indptr)
        width = max(int(lengths.max()) if n else 0, 1)
        self._pad_columns = np.full((n, width), n, dtype=np.intp)
        self._pad_neg_sims = np.zeros((n, width), dtype=np.float64)
        inside = np.arange(width) < lengths[:, None]
        self._pad_columns[inside] = neighbors.indices
        self._pad_neg_sims[inside] = -neighbors.data
        self._neg_base_with_sink = np.append(-self._base_scores, np.inf)
        self._neg_base_scores = self._neg_base_with_sink[:-1]  # a view: the same numbers, no sink
        norms = np.linalg.norm(self.item_factors_, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        self._n_items = self.item_ids_.size
        self._rows = np.ascontiguousarray(np.vstack([self.item_factors_ / norms, self.projection_]))
        ptr, idx, val = neighbors.indptr, neighbors.indices.tolist(), neighbors.data.tolist()
        self._nbr = [
            dict(zip(idx[ptr[i] : ptr[i + 1]], val[ptr[i] : ptr[i + 1]], strict=True))
            for i in range(len(ptr) - 1)
        ]
        self._fitted = True

    def _require_fitted(self) -> None:
        if not self._fitted:
            raise ValueError("CFModel is not fitted, call fit() or from_dict() first")

    # ------------------------------------------------------------------------------------------
    # Scoring

    def shopper_items(self, ctx: ParsedContext | Mapping[str, Any]) -> ShopperItems:
        """The cart lines and past purchases of a validated context as item indices.

        :meth:`features` and :meth:`recommend` compute it themselves; a caller that needs both
        for one context computes it once and passes it to each. ``ctx``: the
        :class:`~engine.parsed.ParsedContext` that :func:`~engine.context.validate_context`
        returned (its cart and order summary are used), or a valid record.
        """
        self._require_fitted()
        if isinstance(ctx, ParsedContext):
            cart, bought_items = ctx.cart, ctx.orders.items
        else:
            cart, bought_items = ctx["cart"], order_summary(ctx).items
        get = self._index.get
        bought: set[int] = set()
        for item in bought_items:
            j = get(item)
            if j is not None:
                bought.add(j)
        return ShopperItems([get(line["item_id"]) for line in cart], bought)

    def features(
        self, ctx: ParsedContext | Mapping[str, Any], items: ShopperItems | None = None
    ) -> list[float]:
        """:data:`CF_FEATURES` of a validated context (neutral values for cold/unknown cases).

        ``items``: :meth:`shopper_items` of ``ctx``, when the caller already has it.
        """
        if items is None:
            items = self.shopper_items(ctx)
        cart, hist = items
        known = [c for c in cart if c is not None]
        unknown_share = 1.0 - len(known) / len(cart)
        cold = 0.0 if hist else 1.0
        if not known:
            return [0.0, 0.0, 0.0, 0.0, cold, unknown_share]
        n_known = len(known)
        popularity = sum(map(self._pop_list.__getitem__, known)) / n_known
        if not hist:
            return [0.0, 0.0, 0.0, popularity, cold, unknown_share]
        nbr = self._nbr
        # best similarity of each cart item to a past purchase (1 when it was bought before)
        best = [1.0 if c in hist else max(map(nbr[c].get, hist, _ZEROS)) for c in known]
        # One take from [unit item factors; fold-in projections], one segmented sum, one
        # mat-vec: sums = [sum of y_c / |y_c|; u], so dots = [<sum, u>, <u, u>].
        known.extend(map(self._n_items.__add__, hist))
        sums = _segment_sums(self._rows.take(known, 0), [0, n_known])
        cart_dot_user, norm2 = sums.dot(sums[1]).tolist()  # the method skips np.dot's dispatch
        affinity = cart_dot_user / (n_known * math.sqrt(norm2)) if norm2 > 1e-300 else 0.0
        return [affinity, max(best), sum(best) / n_known, popularity, cold, unknown_share]

    def _neg_seed_scores(self, seeds: Sequence[int], method: str) -> np.ndarray:
        """Minus the scores of all items given seed item indices, as a fresh array.

        Ties and cold seeds score by popularity. Negated so that the ranking is an ascending
        one. The item method leaves one extra entry at the end, the padding's sink, which is
        +inf and so never ranks.
        """
        neg_base = self._neg_base_scores
        if method == "popularity" or not seeds:
            return neg_base.copy()
        if method == "item":
            base = self._neg_base_with_sink
            neg = np.bincount(
                self._pad_columns.take(seeds, 0).ravel(),
                self._pad_neg_sims.take(seeds, 0).ravel(),
                base.size,
            )
            neg += base
            return neg
        user = self.projection_[list(seeds)].sum(axis=0)
        return neg_base - self.item_factors_ @ user

    def recommend(
        self, ctx: ParsedContext | Mapping[str, Any], k: int = 5, items: ShopperItems | None = None
    ) -> list[str]:
        """Up to ``k`` item ids not in the cart, best CF score first.

        Seeds are the shopper's past purchases and the cart; with no known seed the ranking is
        by popularity. Never raises for cold users or unknown items. ``items``:
        :meth:`shopper_items` of ``ctx``, when the caller already has it.
        """
        if type(k) is not int or k < 1:
            k = check_integer(k, "k", low=1)
        if items is None:
            items = self.shopper_items(ctx)
        in_cart = {j for j in items.cart if j is not None}
        take = min(k, self._n_items - len(in_cart))
        if take <= 0:
            return []
        neg = self._neg_seed_scores(sorted(items.bought | in_cart), self.recommend_method)
        # The best ``take`` items outside the cart are among the best ``take + len(in_cart)``
        # of all items (ties at the cutoff kept), so the cart is filtered out of those few.
        kth = take + len(in_cart) - 1
        part = neg.copy()  # what np.partition does, without its dispatch
        part.partition(kth)
        cutoff = part[kth]
        top = (neg <= cutoff).nonzero()[0]
        ranked = sorted(
            zip(neg[top].tolist(), top.tolist(), strict=True)
        )  # ties broken by item index
        ids = self._item_id_list
        return [ids[j] for _, j in ranked if j not in in_cart][:take]

    def score_matrix(self, seed_matrix: sp.csr_matrix, method: str = "item") -> np.ndarray:
        """Dense scores ``(n_rows, n_items)`` for rows of a seed indicator matrix (evaluation)."""
        self._require_fitted()
        if method not in SCORING_METHODS:
            raise ValueError(f"method == {method!r}, must be one of {SCORING_METHODS}")
        shape = (seed_matrix.shape[0], self._pop_scaled.size)
        base = np.broadcast_to(self._base_scores, shape)
        if method == "popularity":
            return np.array(base)
        if method == "item":
            return base + (seed_matrix @ self.neighbors_).toarray()
        return base + np.asarray(seed_matrix @ self.projection_) @ self.item_factors_.T

    # ------------------------------------------------------------------------------------------
    # Persistence

    def to_dict(self) -> dict[str, np.ndarray]:
        """Model as a flat dict of numpy arrays (``np.savez(path, **model.to_dict())`` works)."""
        self._require_fitted()
        return model_to_arrays(self)

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> CFModel:
        """Rebuild a fitted model from :meth:`to_dict` output (or an ``np.load`` of it)."""
        return model_from_arrays(cls, state)

    def __getstate__(self) -> dict[str, Any]:
        if not self._fitted:
            return {"params": self._params(), "fitted": None}
        return {"params": self._params(), "fitted": self.to_dict()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if state["fitted"] is not None:
            self.__dict__.update(CFModel.from_dict(state["fitted"]).__dict__)
        else:
            CFModel.__init__(self, **state["params"])

    def _params(self) -> dict[str, Any]:
        return {
            "n_factors": self.n_factors,
            "n_neighbors": self.n_neighbors,
            "factorization": self.factorization,
            "regularization": self.regularization,
            "alpha": self.alpha,
            "n_iter": self.n_iter,
            "recommend_method": self.recommend_method,
            "seed": self.seed,
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"CFModel({args})"
