"""Tests of engine.cf: item CF, implicit ALS / SVD, features, recommendations, evaluation."""

from __future__ import annotations

import copy
import io
import pickle

import context_factory as factory
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import spearmanr

from engine.cf import (
    CF_FEATURES,
    CFModel,
    holdout_last_orders,
    interactions_from_contexts,
    precision_recall_at_k,
)
from engine.cf_fit import als_step


@pytest.fixture(scope="module")
def world():
    return factory.make_world(seed=0, n_users=800, n_items=300)


@pytest.fixture(scope="module")
def contexts(world):
    return factory.make_contexts(world, seed=1)


@pytest.fixture(scope="module")
def split(contexts):
    return holdout_last_orders(contexts, n_last=1)


@pytest.fixture(scope="module")
def model(contexts):
    return CFModel(seed=0).fit(interactions_from_contexts(contexts))


# ---------------------------------------------------------------------------------------------
# Evaluation against the popularity baseline (ground truth: latent factor world)


@pytest.mark.parametrize("factorization", ["als", "svd"])
def test_item_cf_and_mf_beat_popularity_at_10(split, factorization):
    train, test = split
    fitted = CFModel(factorization=factorization, seed=0).fit(train)
    item = precision_recall_at_k(fitted, train, test, k=10, method="item")
    mf = precision_recall_at_k(fitted, train, test, k=10, method="mf")
    pop = precision_recall_at_k(fitted, train, test, k=10, method="popularity")
    # Measured with these seeds: popularity P@10 0.0141, item CF 0.036, ALS 0.035, SVD 0.034;
    # the oracle that knows the true purchase probabilities reaches 0.055.
    assert item.n_users == mf.n_users == pop.n_users == 800
    assert item.precision > 2.0 * pop.precision
    assert mf.precision > 2.0 * pop.precision
    assert item.recall > 2.0 * pop.recall and mf.recall > 2.0 * pop.recall
    assert pop.precision == pytest.approx(0.0141, abs=0.005)


def test_precision_recall_by_hand():
    # users x and y bought a, b; z bought a only. Item CF from z's "a" ranks b first.
    train = (["x", "x", "y", "y", "z"], ["a", "b", "a", "b", "a"])
    test = (["z", "z"], ["b", "c"])
    fitted = CFModel(n_factors=1, seed=0).fit((train[0] + ["w"], train[1] + ["c"]))
    metrics = precision_recall_at_k(fitted, train, test, k=1, method="item")
    assert (metrics.precision, metrics.recall, metrics.n_users) == (1.0, 0.5, 1)
    metrics = precision_recall_at_k(fitted, train, test, k=2, method="item")
    assert (metrics.precision, metrics.recall) == (1.0, 1.0)


# ---------------------------------------------------------------------------------------------
# Algorithms checked against independent computations


def test_item_similarity_is_cosine_with_top_k():
    rng = np.random.default_rng(4)
    dense = (rng.random((40, 12)) < 0.3).astype(float) * rng.integers(1, 4, size=(40, 12))
    users, items = np.nonzero(dense)
    fitted = CFModel(n_neighbors=3, n_factors=2).fit(
        (users.astype(str), np.char.add("i", items.astype(str)), dense[users, items])
    )
    order = np.argsort([f"i{j}" for j in range(12)])  # model sorts item ids as strings
    norms = np.linalg.norm(dense, axis=0)
    cosine = (dense.T @ dense) / np.outer(norms, norms)
    np.fill_diagonal(cosine, 0.0)
    cosine = cosine[np.ix_(order, order)]
    got = fitted.neighbors_.toarray()
    for row in range(12):
        kept = np.flatnonzero(got[row])
        assert kept.size == 3
        np.testing.assert_allclose(got[row, kept], cosine[row, kept], rtol=1e-12)
        assert got[row, kept].min() >= np.sort(cosine[row])[-3] - 1e-12  # they are the top 3


def test_batched_als_step_matches_per_user_solve():
    rng = np.random.default_rng(2)
    weights = sp.random(30, 20, density=0.2, random_state=3, format="csr") * 3 + 0
    weights.data = np.ceil(weights.data)
    fitted = CFModel(n_factors=4, alpha=5.0, regularization=0.3)
    fixed = rng.normal(size=(20, 4))
    extra = weights.copy()
    extra.data = 5.0 * extra.data
    batched = als_step(extra, fixed, fitted.regularization)
    for u in range(30):
        c = 1.0 + 5.0 * weights[u].toarray().ravel()
        p = (weights[u].toarray().ravel() > 0).astype(float)
        lhs = fixed.T @ (c[:, None] * fixed) + 0.3 * np.eye(4)
        expected = np.linalg.solve(lhs, fixed.T @ (c * p))
        np.testing.assert_allclose(batched[u], expected, rtol=1e-9, atol=1e-12)


def test_svd_fold_in_reproduces_a_low_rank_matrix():
    # 3 disjoint groups of users buying 3 disjoint item blocks: rank 3.
    rows, cols = [], []
    for g in range(3):
        for u in range(10):
            for i in range(5):
                rows.append(f"u{g}{u}")
                cols.append(f"i{g}{i}")
    fitted = CFModel(factorization="svd", n_factors=3, seed=1).fit((rows, cols))
    seeds = sp.csr_matrix(np.kron(np.eye(3), np.ones((1, 5))))  # one user of each group
    scores = fitted.score_matrix(seeds, method="mf")
    np.testing.assert_allclose(scores, seeds.toarray(), atol=1e-5)


def test_als_separates_blocks():
    rows, cols = [], []
    rng = np.random.default_rng(0)
    for g in range(3):
        for u in range(20):
            for i in rng.choice(6, size=3, replace=False):
                rows.append(f"u{g}{u}")
                cols.append(f"i{g}{i}")
    fitted = CFModel(factorization="als", n_factors=3, seed=0).fit((rows, cols))
    seeds = sp.csr_matrix(([1.0], ([0], [fitted._index["i00"]])), shape=(1, 18))
    scores = fitted.score_matrix(seeds, method="mf")[0]
    same = [fitted._index[f"i0{i}"] for i in range(1, 6)]
    other = [j for j in range(18) if j not in same and j != fitted._index["i00"]]
    assert scores[same].min() > scores[other].max()


# ---------------------------------------------------------------------------------------------
# Features


def test_feature_names_and_edge_cases(model, world):
    cases = factory.edge_contexts(world)
    assert len(CF_FEATURES) == 6
    for name, ctx in cases.items():
        f = model.features(ctx)
        assert len(f) == len(CF_FEATURES) and all(np.isfinite(f)), name
        assert -1.0 - 1e-12 <= f[0] <= 1.0 + 1e-12 and 0.0 <= f[1] <= 1.0 + 1e-12
    cold = dict(zip(CF_FEATURES, model.features(cases["cold_user"]), strict=True))
    assert cold["cf_cold_user"] == 1.0 and cold["cf_affinity"] == cold["cf_similarity_max"] == 0.0
    assert cold["cf_popularity"] > 0.0 and cold["cf_unknown_items"] == 0.0
    unknown = dict(zip(CF_FEATURES, model.features(cases["unknown_items"]), strict=True))
    assert unknown == {**dict.fromkeys(CF_FEATURES, 0.0), "cf_unknown_items": 1.0}
    typical = dict(zip(CF_FEATURES, model.features(cases["typical"]), strict=True))
    mixed = dict(zip(CF_FEATURES, model.features(cases["mixed_known_unknown"]), strict=True))
    n = len(cases["mixed_known_unknown"]["cart"])
    assert mixed["cf_unknown_items"] == pytest.approx(1 / n)
    assert mixed["cf_affinity"] == pytest.approx(typical["cf_affinity"])  # unknown lines ignored
    assert model.features(cases["minimal"])[4] == 1.0  # no history: cold


def test_features_by_hand(model, world):
    ctx = factory.minimal_context(item_id=world.item_ids[3])
    ctx["history"] = {
        "orders": [
            {"timestamp": 1.0, "items": [world.item_ids[3], world.item_ids[8]], "value": 1.0}
        ]
    }
    f = dict(zip(CF_FEATURES, model.features(ctx), strict=True))
    assert f["cf_similarity_max"] == f["cf_similarity_mean"] == 1.0  # bought this very item
    i3, i8 = model._index[world.item_ids[3]], model._index[world.item_ids[8]]
    user = model.projection_[i3] + model.projection_[i8]
    y = model.item_factors_[i3]
    expected = y @ user / (np.linalg.norm(y) * np.linalg.norm(user))
    assert f["cf_affinity"] == pytest.approx(expected, rel=1e-9)
    pop = model.popularity_
    assert f["cf_popularity"] == pytest.approx(np.log1p(pop[i3]) / np.log1p(pop.max()))
    ctx["history"]["orders"][0]["items"] = [world.item_ids[8]]
    f = dict(zip(CF_FEATURES, model.features(ctx), strict=True))
    assert f["cf_similarity_max"] == pytest.approx(model.neighbors_[i3, i8])


def test_affinity_tracks_true_taste(model, world, contexts):
    """CF features of one-item carts against the latent-factor truth of the synthetic shop."""

    def one_item(ctx, j):
        trial = copy.copy(ctx)
        trial["cart"] = [{"item_id": world.item_ids[j], "price": 1.0, "quantity": 1}]
        return model.features(trial)

    liked, disliked, true_taste, affinity = [], [], [], []
    for u, ctx in enumerate(contexts[:300]):
        probs = world.purchase_probs(u)
        liked.append(one_item(ctx, int(np.argmax(probs))))
        disliked.append(one_item(ctx, int(np.argmin(probs))))
        j = int(np.random.default_rng(u).integers(len(world.item_ids)))
        true_taste.append(world.user_vecs[u] @ world.item_vecs[j])
        affinity.append(one_item(ctx, j)[0])
    liked, disliked = np.array(liked), np.array(disliked)
    # measured: affinity 0.65 vs -0.08, similarity 0.81 vs 0.02, Spearman 0.42
    assert liked[:, 0].mean() > disliked[:, 0].mean() + 0.5
    assert liked[:, 2].mean() > disliked[:, 2].mean() + 0.5
    assert spearmanr(true_taste, affinity).statistic > 0.3


# ---------------------------------------------------------------------------------------------
# Recommendations


def test_recommend_excludes_cart_and_is_deterministic(model, world, contexts):
    ctx = contexts[5]
    recs = model.recommend(ctx, k=5)
    assert len(recs) == len(set(recs)) == 5
    assert not set(recs) & {line["item_id"] for line in ctx["cart"]}
    assert set(recs) <= set(world.item_ids)
    assert model.recommend(ctx, k=5) == recs
    assert model.recommend(ctx, k=3) == recs[:3]


@pytest.mark.parametrize("method", ["item", "mf"])
def test_recommend_is_the_top_of_the_dense_scores(model, contexts, method):
    """The per-decision fast path ranks exactly as the dense evaluation scores (score_matrix)."""
    fitted = CFModel.from_dict({**model.to_dict(), "recommend_method": np.asarray(method)})
    index = {item: j for j, item in enumerate(fitted.item_ids_)}
    for ctx in contexts[:80]:
        cart = {index[line["item_id"]] for line in ctx["cart"] if line["item_id"] in index}
        seeds = cart | {
            index[i] for o in ctx["history"]["orders"] for i in o["items"] if i in index
        }
        row = sp.csr_matrix(
            (np.ones(len(seeds)), (np.zeros(len(seeds), int), sorted(seeds))),
            shape=(1, fitted.item_ids_.size),
        )
        dense = fitted.score_matrix(row, method)[0]
        dense[sorted(cart)] = -np.inf
        got = [index[i] for i in fitted.recommend(ctx, k=7)]
        assert not set(got) & cart
        # same scores as the dense top 7, in order (ids may differ only between exact ties)
        np.testing.assert_allclose(dense[got], np.sort(dense)[::-1][:7], rtol=0, atol=1e-12)


def test_recommend_cold_user_falls_back_to_popularity(model, world):
    ctx = factory.minimal_context(item_id="never_seen", user_id="nobody")
    order = np.lexsort((np.arange(model.popularity_.size), -model.popularity_))
    assert model.recommend(ctx, k=4) == model.item_ids_[order[:4]].tolist()
    most_popular = model.item_ids_[order[0]]
    ctx["cart"] = [{"item_id": most_popular, "price": 1.0, "quantity": 1}]
    ctx2 = factory.minimal_context(item_id="never_seen")
    pop_only = CFModel.from_dict({**model.to_dict(), "recommend_method": np.asarray("popularity")})
    assert most_popular not in pop_only.recommend(ctx, k=4)
    assert pop_only.recommend(ctx2, k=4) == model.item_ids_[order[:4]].tolist()


def test_recommend_hits_future_purchases_more_than_popularity(split, contexts):
    train, test = split
    fitted = CFModel(seed=0).fit(train)
    pop_only = CFModel(seed=0, recommend_method="popularity").fit(train)
    wanted: dict[str, set[str]] = {}
    for user, item in zip(*test[:2], strict=True):
        wanted.setdefault(user, set()).add(item)
    hits_cf = hits_pop = 0
    for ctx in contexts:
        hist_ctx = copy.deepcopy(ctx)
        hist_ctx["history"]["orders"] = hist_ctx["history"]["orders"][:-1]  # as seen in train
        goal = wanted.get(ctx["user_id"], set())
        hits_cf += len(goal & set(fitted.recommend(hist_ctx, k=10)))
        hits_pop += len(goal & set(pop_only.recommend(hist_ctx, k=10)))
    assert hits_cf > 1.5 * hits_pop


def test_recommend_all_items_in_cart():
    ctx = factory.minimal_context()
    small = CFModel(n_factors=1).fit((["a", "a", "b"], ["x", "y", "x"]))
    ctx["cart"] = [{"item_id": i, "price": 1.0, "quantity": 1} for i in ("x", "y")]
    assert small.recommend(ctx, k=5) == []
    ctx["cart"] = [{"item_id": "x", "price": 1.0, "quantity": 1}]
    assert small.recommend(ctx, k=5) == ["y"]


# ---------------------------------------------------------------------------------------------
# Data helpers


def test_interactions_from_contexts_uses_latest_context_per_user():
    old = factory.minimal_context(user_id="u1")
    old["timestamp"] = 100.0
    old["history"] = {"orders": [{"timestamp": 1.0, "items": ["a"], "value": 1.0}]}
    new = copy.deepcopy(old)
    new["timestamp"] = 200.0
    new["history"]["orders"].append({"timestamp": 2.0, "items": ["a", "b"], "value": 2.0})
    other = factory.minimal_context(user_id="u2")  # no history at all
    users, items, weights = interactions_from_contexts([new, other, old])
    got = sorted(zip(users.tolist(), items.tolist(), weights.tolist(), strict=True))
    assert got == [("u1", "a", 2.0), ("u1", "b", 1.0)]


def test_holdout_last_orders():
    ctx = factory.minimal_context(user_id="u1")
    ctx["history"] = {
        "orders": [
            {"timestamp": 3.0, "items": ["c"], "value": 1.0},  # out of order on purpose
            {"timestamp": 1.0, "items": ["a"], "value": 1.0},
            {"timestamp": 2.0, "items": ["b", "a"], "value": 1.0},
        ]
    }
    single = factory.minimal_context(user_id="u2")
    single["history"] = {"orders": [{"timestamp": 1.0, "items": ["z"], "value": 1.0}]}
    train, test = holdout_last_orders([ctx, single], n_last=1)
    assert sorted(zip(*[a.tolist() for a in train], strict=True)) == [
        ("u1", "a", 2.0),
        ("u1", "b", 1.0),
        ("u2", "z", 1.0),
    ]
    assert sorted(zip(*[a.tolist() for a in test], strict=True)) == [("u1", "c", 1.0)]
    with pytest.raises(ValueError, match="n_last == 0"):
        holdout_last_orders([ctx], n_last=0)


# ---------------------------------------------------------------------------------------------
# Persistence and validation


def test_to_dict_npz_and_pickle_round_trips(model, contexts):
    buffer = io.BytesIO()
    np.savez(buffer, **model.to_dict())
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as data:
        loaded = CFModel.from_dict(data)
    clone = pickle.loads(pickle.dumps(model))
    for ctx in contexts[:20]:
        assert loaded.features(ctx) == model.features(ctx)
        assert clone.features(ctx) == model.features(ctx)
        assert loaded.recommend(ctx) == model.recommend(ctx)
    assert all(isinstance(v, np.ndarray) for v in model.to_dict().values())
    unfitted = pickle.loads(pickle.dumps(CFModel(n_factors=3)))
    assert unfitted.n_factors == 3


def test_fit_is_deterministic(contexts):
    data = interactions_from_contexts(contexts[:200])
    a = CFModel(seed=3).fit(data)
    b = CFModel(seed=3).fit(data)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    np.testing.assert_array_equal(a.neighbors_.toarray(), b.neighbors_.toarray())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_factors": 0}, "n_factors == 0"),
        ({"n_neighbors": 2.5}, "n_neighbors == 2.5"),
        ({"factorization": "nmf"}, "factorization == 'nmf'"),
        ({"regularization": -1.0}, "regularization == -1.0"),
        ({"alpha": float("nan")}, "alpha == nan"),
        ({"n_iter": True}, "n_iter == True"),
        ({"recommend_method": "random"}, "recommend_method == 'random'"),
    ],
)
def test_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        CFModel(**kwargs)


def test_bad_inputs_and_unfitted_use():
    with pytest.raises(ValueError, match="not fitted"):
        CFModel().features(factory.minimal_context())
    with pytest.raises(ValueError, match="must be equal and 1-D"):
        CFModel().fit((["a", "b"], ["x"]))
    with pytest.raises(ValueError, match="must be finite > 0"):
        CFModel().fit((["a"], ["x"], [0.0]))
    with pytest.raises(ValueError, match="0 rows"):
        CFModel().fit(([], []))
    with pytest.raises(ValueError, match="interactions == dict"):
        CFModel().fit({"users": ["a"]})
    state = CFModel(n_factors=1).fit((["a"], ["x"])).to_dict()
    with pytest.raises(ValueError, match="missing key 'item_ids'"):
        CFModel.from_dict({k: v for k, v in state.items() if k != "item_ids"})
    fitted = CFModel(n_factors=1).fit((["a"], ["x"]))
    with pytest.raises(ValueError, match="k == 0"):
        fitted.recommend(factory.minimal_context(), k=0)
    with pytest.raises(ValueError, match="method == 'best'"):
        precision_recall_at_k(fitted, (["a"], ["x"]), (["a"], ["x"]), method="best")


def test_features_and_recommend_reuse_shopper_items(model, contexts):
    for ctx in contexts[:200]:
        items = model.shopper_items(ctx)
        assert model.features(ctx, items) == model.features(ctx)
        assert model.recommend(ctx, 5, items) == model.recommend(ctx, 5)
    ctx = contexts[0]
    bought = {i for o in ctx["history"]["orders"] for i in o["items"]}
    assert {model.item_ids_[j] for j in model.shopper_items(ctx).bought} == bought & set(
        model.item_ids_
    )
