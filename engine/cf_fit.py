"""Fitting for :class:`~engine.cf.CFModel`: interaction input, item neighbours, ALS and SVD.

The functions here turn a user-by-item weight matrix into what the model serves from: the top
item-item cosine neighbours and item factors with their fold-in projection (implicit ALS, Hu,
Koren & Volinsky 2008, batched with numpy; or a truncated SVD).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

__all__ = [
    "FACTORIZATIONS",
    "SCORING_METHODS",
    "Interactions",
    "als_step",
    "implicit_als",
    "item_neighbors",
    "truncated_svd",
    "unpack_interactions",
]

FACTORIZATIONS = ("als", "svd")
SCORING_METHODS = ("item", "mf", "popularity")  # how a CFModel may score items

Interactions = tuple  # (user_ids, item_ids) or (user_ids, item_ids, weights), array-likes


def unpack_interactions(interactions: Interactions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check ``(user_ids, item_ids[, weights])``; return str ids and float weights (default 1)."""
    if not isinstance(interactions, (tuple, list)) or len(interactions) not in (2, 3):
        raise ValueError(
            f"interactions == {type(interactions).__name__}, must be a tuple "
            "(user_ids, item_ids) or (user_ids, item_ids, weights)"
        )
    users = np.asarray(interactions[0])
    items = np.asarray(interactions[1])
    if users.ndim != 1 or items.shape != users.shape:
        raise ValueError(
            f"interactions shapes == {users.shape} and {items.shape}, must be equal and 1-D"
        )
    if len(interactions) == 3:
        weights = np.asarray(interactions[2], dtype=np.float64)
        if weights.shape != users.shape:
            raise ValueError(f"weights shape == {weights.shape}, must be {users.shape}")
        if not np.all(np.isfinite(weights)) or np.any(weights <= 0):
            raise ValueError("weights contain a value <= 0 or not finite, must be finite > 0")
    else:
        weights = np.ones(users.shape, dtype=np.float64)
    return users.astype(str), items.astype(str), weights


def item_neighbors(matrix: sp.csr_matrix, keep: int) -> sp.csr_matrix:
    """Top-``keep`` cosine similarities between item columns (zero diagonal)."""
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=0)).ravel())
    norms[norms == 0] = 1.0
    scaled = sp.csc_matrix(matrix.multiply(1.0 / norms[None, :]))
    sim = (scaled.T @ scaled).tocsr()
    sim.setdiag(0.0)
    sim.eliminate_zeros()
    indptr = [0]
    indices: list[np.ndarray] = []
    data: list[np.ndarray] = []
    for row in range(sim.shape[0]):
        lo, hi = sim.indptr[row], sim.indptr[row + 1]
        cols, vals = sim.indices[lo:hi], sim.data[lo:hi]
        if vals.size > keep:
            top = np.argpartition(-vals, keep - 1)[:keep]
            cols, vals = cols[top], vals[top]
        order = np.lexsort((cols, -vals))
        indices.append(cols[order])
        data.append(vals[order])
        indptr.append(indptr[-1] + vals.size)
    n = sim.shape[0]
    return sp.csr_matrix(
        (
            np.concatenate(data) if data else np.empty(0),
            np.concatenate(indices) if indices else np.empty(0, dtype=np.int32),
            np.asarray(indptr),
        ),
        shape=(n, n),
    )


def implicit_als(
    matrix: sp.csr_matrix, k: int, *, alpha: float, regularization: float, n_iter: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Implicit ALS; returns item factors ``Y`` and the fold-in projection ``W``."""
    rng = np.random.default_rng(seed)
    n_users, n_items = matrix.shape
    extra = matrix.copy()
    extra.data = alpha * extra.data  # c - 1
    extra_t = extra.T.tocsr()
    user_f = rng.normal(0.0, 0.1, size=(n_users, k))
    item_f = rng.normal(0.0, 0.1, size=(n_items, k))
    for _ in range(n_iter):
        user_f = als_step(extra, item_f, regularization)
        item_f = als_step(extra_t, user_f, regularization)
    gram = item_f.T @ item_f + regularization * np.eye(k)
    projection = np.linalg.solve(gram, item_f.T).T
    return item_f, projection


def als_step(extra: sp.csr_matrix, fixed: np.ndarray, regularization: float) -> np.ndarray:
    """Solve every row's least squares at once: (F'F + F'(C-I)F + reg I) x = F'C p."""
    k = fixed.shape[1]
    gram = fixed.T @ fixed + regularization * np.eye(k)
    outer = (fixed[:, :, None] * fixed[:, None, :]).reshape(fixed.shape[0], k * k)
    lhs = np.asarray(extra @ outer).reshape(-1, k, k) + gram
    pref = extra.copy()
    pref.data = pref.data + 1.0  # c = 1 + alpha w on observed entries, p = 1
    rhs = np.asarray(pref @ fixed)
    return np.linalg.solve(lhs, rhs[:, :, None])[:, :, 0]


def truncated_svd(matrix: sp.csr_matrix, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Truncated SVD of the binarised matrix; item factors ``V`` serve as their own projection."""
    binary = (matrix > 0).astype(np.float64)
    start = np.random.default_rng(seed).uniform(size=min(binary.shape))
    _, _, vt = svds(binary, k=k, v0=start)
    factors = np.ascontiguousarray(vt.T)
    return factors, factors.copy()
