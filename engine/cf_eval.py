"""Purchase data for :class:`~engine.cf.CFModel` from contexts, and its offline evaluation.

:func:`interactions_from_contexts` and :func:`holdout_last_orders` read ``history.orders`` of
each shopper's latest context; :func:`precision_recall_at_k` scores held-out purchases.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from engine.cf_fit import SCORING_METHODS, Interactions, unpack_interactions
from engine.validation import check_integer

if TYPE_CHECKING:
    from engine.cf import CFModel

__all__ = [
    "RankingMetrics",
    "holdout_last_orders",
    "interactions_from_contexts",
    "precision_recall_at_k",
]


@dataclass(frozen=True)
class RankingMetrics:
    """Mean precision and recall at ``k`` over ``n_users`` evaluated users."""

    precision: float
    recall: float
    n_users: int
    k: int


def _latest_by_user(contexts: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    latest: dict[str, Mapping[str, Any]] = {}
    for ctx in contexts:
        user = ctx["user_id"]
        seen = latest.get(user)
        if seen is None or ctx["timestamp"] >= seen["timestamp"]:
            latest[user] = ctx
    return latest


def _to_arrays(pairs: dict[tuple[str, str], float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not pairs:
        empty = np.empty(0, dtype=str)
        return empty, empty.copy(), np.empty(0, dtype=np.float64)
    users, items = zip(*pairs, strict=True)
    return np.asarray(users), np.asarray(items), np.fromiter(pairs.values(), np.float64, len(pairs))


def _orders_of(ctx: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    history = ctx.get("history") or {}
    return sorted(history.get("orders") or (), key=lambda order: order["timestamp"])


def interactions_from_contexts(
    contexts: Iterable[Mapping[str, Any]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(user_ids, item_ids, weights)`` from each user's latest context's ``history.orders``.

    Histories are cumulative, so only the latest context of a user is read (no double counting);
    ``weights`` counts how often the user bought the item.
    """
    pairs: dict[tuple[str, str], float] = {}
    for user, ctx in _latest_by_user(contexts).items():
        for order in _orders_of(ctx):
            for item in order["items"]:
                pairs[(user, item)] = pairs.get((user, item), 0.0) + 1.0
    return _to_arrays(pairs)


def holdout_last_orders(
    contexts: Iterable[Mapping[str, Any]], n_last: int = 1
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Split each user's latest purchase history: the last ``n_last`` orders go to test.

    Users with ``n_last`` orders or fewer stay entirely in train.
    """
    n_last = check_integer(n_last, "n_last", low=1)
    train: dict[tuple[str, str], float] = {}
    test: dict[tuple[str, str], float] = {}
    for user, ctx in _latest_by_user(contexts).items():
        orders = _orders_of(ctx)
        cut = len(orders) - n_last if len(orders) > n_last else len(orders)
        for i, order in enumerate(orders):
            target = train if i < cut else test
            for item in order["items"]:
                target[(user, item)] = target.get((user, item), 0.0) + 1.0
    return _to_arrays(train), _to_arrays(test)


def precision_recall_at_k(
    model: CFModel,
    train: Interactions,
    test: Interactions,
    k: int = 10,
    method: str = "item",
) -> RankingMetrics:
    """Mean precision@k and recall@k of held-out purchases.

    For every user with test items, items are scored from the user's ``train`` items (folded in,
    exactly as in production), train items are excluded, and the top ``k`` are compared with the
    user's distinct test items. ``method="popularity"`` is the baseline. ``model`` should be fitted
    on ``train``; test items unknown to it count as misses.
    """
    k = check_integer(k, "k", low=1)
    if method not in SCORING_METHODS:
        raise ValueError(f"method == {method!r}, must be one of {SCORING_METHODS}")
    model._require_fitted()
    train_users, train_items, _ = unpack_interactions(train)
    test_users, test_items, _ = unpack_interactions(test)
    eval_users = np.unique(test_users)
    if eval_users.size == 0:
        raise ValueError("test has 0 rows, must have at least 1")
    row_of = {user: i for i, user in enumerate(eval_users.tolist())}
    index = model._index
    n_items = model.item_ids_.size
    rows, cols = [], []
    for user, item in zip(train_users.tolist(), train_items.tolist(), strict=True):
        r, c = row_of.get(user), index.get(item)
        if r is not None and c is not None:
            rows.append(r)
            cols.append(c)
    seeds = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(eval_users.size, n_items))
    seeds.data[:] = 1.0  # duplicates summed by the constructor: back to an indicator
    scores = model.score_matrix(seeds, method)
    scores[seeds.nonzero()] = -np.inf
    take = min(k, n_items)
    top = np.argpartition(-scores, take - 1, axis=1)[:, :take]
    truth: dict[int, set[str]] = {}
    for user, item in zip(test_users.tolist(), test_items.tolist(), strict=True):
        truth.setdefault(row_of[user], set()).add(item)
    ids = model.item_ids_
    precision = recall = 0.0
    for r, wanted in truth.items():
        hits = sum(1 for item in ids[top[r]].tolist() if item in wanted)
        precision += hits / k
        recall += hits / len(wanted)
    n = len(truth)
    return RankingMetrics(precision=precision / n, recall=recall / n, n_users=n, k=k)
