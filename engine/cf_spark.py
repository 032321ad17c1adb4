"""Fit :class:`engine.cf.CFModel`'s matrix factorisation with Spark MLlib's implicit ALS.

For purchase tables too large for the in-process ALS: the factorisation runs on Spark
(``pyspark.ml.recommendation.ALS`` with ``implicitPrefs=True``) and its item factors become a
plain :class:`CFModel` (through :meth:`CFModel.from_dict`), with the same fold-in projection
``W = Y (Y'Y + reg I)^-1``, popularity and item-CF neighbours, so the engine uses it unchanged.
Popularity is counted on Spark; the item-item neighbours are computed in process from the
(user, item) matrix, whose size is the number of purchases, not of decisions.

Note: MLlib scales ``regParam`` by each user's and item's number of ratings (ALS-WR), so its
good values are much smaller than the in-process ALS's ``regularization``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import scipy.sparse as sp

from engine.cf import CFModel
from engine.cf_fit import item_neighbors

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)


def purchases_frame(spark: Any, interactions: tuple) -> Any:
    """A Spark DataFrame ``(user_id, item_id, weight)`` from ``(users, items[, weights])``."""
    users, items = np.asarray(interactions[0]).astype(str), np.asarray(interactions[1]).astype(str)
    weights = (
        np.ones(users.size)
        if len(interactions) < 3
        else np.asarray(interactions[2], dtype=np.float64)
    )
    if not (users.size == items.size == weights.size):
        raise ValueError(
            f"interactions have {users.size} users, {items.size} items and {weights.size} weights, "
            "must be equal"
        )
    import pandas as pd

    return spark.createDataFrame(
        pd.DataFrame({"user_id": users, "item_id": items, "weight": weights})
    )


def fit_cf_spark(
    purchases: Any,
    spark: Any = None,
    *,
    n_factors: int = 16,
    reg_param: float = 0.05,
    alpha: float = 10.0,
    n_iter: int = 10,
    n_neighbors: int = 50,
    projection_regularization: float = 1.0,
    seed: int = 0,
) -> CFModel:
    """A fitted :class:`CFModel` whose factors come from Spark MLlib implicit ALS.

    Args:
        purchases: a Spark DataFrame with ``user_id``, ``item_id`` and optionally ``weight``
            (purchase counts; repeated pairs are summed), or ``(users, items[, weights])`` arrays.
        spark: the SparkSession (needed for arrays; default: the DataFrame's).
        n_factors: MLlib's ``rank`` (latent factors per user and item).
        reg_param: MLlib's ``regParam`` (L2 regularisation of the factors).
        alpha: MLlib's ``alpha`` (confidence scale of implicit feedback).
        n_iter: MLlib's ``maxIter`` (ALS sweeps).
        n_neighbors: neighbours kept per item for item CF (as in :class:`CFModel`).
        projection_regularization: ``reg`` of the fold-in projection (the model's
            ``regularization``).
        seed: MLlib's ``seed``.
    """
    from pyspark.ml.feature import StringIndexer
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import functions as F

    if isinstance(purchases, tuple):
        if spark is None:
            raise ValueError("spark is None, pass the SparkSession to fit from arrays")
        purchases = purchases_frame(spark, purchases)
    missing = [c for c in ("user_id", "item_id") if c not in purchases.columns]
    if missing:
        raise ValueError(
            f"purchases has no column {missing[0]!r}, needs user_id, item_id[, weight]"
        )
    weight = F.col("weight").cast("double") if "weight" in purchases.columns else F.lit(1.0)
    table = (
        purchases.select(
            F.col("user_id").cast("string"), F.col("item_id").cast("string"), weight.alias("weight")
        )
        .groupBy("user_id", "item_id")
        .agg(F.sum("weight").alias("weight"))
    )
    users = StringIndexer(inputCol="user_id", outputCol="u", stringOrderType="alphabetAsc").fit(
        table
    )
    items = StringIndexer(inputCol="item_id", outputCol="i", stringOrderType="alphabetAsc").fit(
        table
    )
    indexed = (
        items.transform(users.transform(table))
        .select(F.col("u").cast("int"), F.col("i").cast("int"), "weight")
        .cache()
    )
    item_ids = np.asarray(items.labels, dtype=str)
    n_items, n_users = item_ids.size, len(users.labels)
    k = min(n_factors, max(1, min(n_users, n_items) - 1))
    als = ALS(
        rank=k,
        maxIter=n_iter,
        regParam=reg_param,
        alpha=alpha,
        implicitPrefs=True,
        seed=seed,
        userCol="u",
        itemCol="i",
        ratingCol="weight",
        nonnegative=False,
        coldStartStrategy="drop",
    )
    fitted = als.fit(indexed)
    factors = np.zeros((n_items, k))
    for row in fitted.itemFactors.collect():
        factors[row["id"]] = row["features"]
    # pyspark types toPandas() as a protocol without column access; it returns a DataFrame
    pairs = cast("pd.DataFrame", indexed.select("u", "i", "weight").toPandas())
    indexed.unpersist()
    matrix = sp.csr_matrix(
        (pairs["weight"].to_numpy(), (pairs["u"].to_numpy(), pairs["i"].to_numpy())),
        shape=(n_users, n_items),
    )
    popularity = np.asarray((matrix > 0).sum(axis=0), dtype=np.float64).ravel()
    gram = factors.T @ factors + projection_regularization * np.eye(k)
    projection = np.linalg.solve(gram, factors.T).T
    model = CFModel(
        n_factors=k,
        n_neighbors=n_neighbors,
        regularization=projection_regularization,
        alpha=alpha,
        n_iter=n_iter,
        seed=seed,
    )
    neighbors = item_neighbors(matrix, model.n_neighbors)
    state = {
        **{
            name: np.asarray(getattr(model, name))
            for name in (
                "n_factors",
                "n_neighbors",
                "factorization",
                "regularization",
                "alpha",
                "n_iter",
                "recommend_method",
                "seed",
            )
        },
        "item_ids": item_ids,
        "popularity": popularity,
        "item_factors": factors,
        "projection": projection,
        "neighbors_indptr": neighbors.indptr,
        "neighbors_indices": neighbors.indices,
        "neighbors_data": neighbors.data,
    }
    logger.info(
        "Spark ALS: %d users, %d items, %d purchases, rank %d", n_users, n_items, matrix.nnz, k
    )
    return CFModel.from_dict(state)
