"""Tests of the DecisionEngine's parts: persistence, pending rewards, sampling, the update rule."""

from __future__ import annotations

import io

import numpy as np
import pytest

from engine import DecisionEngine, ModelFileError
from engine.features import FeatureBuilder
from engine.learners import make_learner
from engine.model_file import read_model, write_model
from engine.pending_rewards import PendingDecision, PendingRewards
from engine.persistence import check_model_fits, read_saved_model
from engine.update_rule import teach
from policies.learner_policy import LearnerPolicy


def test_saved_model_round_trip_and_unknown_learner_class(tmp_path, sim_contexts):
    eng = DecisionEngine(seed=1, learner="linucb")
    for ctx in sim_contexts[:50]:
        eng.reward(eng.decide(ctx).decision_id, 1.0)
    version = eng.save(tmp_path / "m.cw")
    saved = read_saved_model(tmp_path / "m.cw")
    assert saved.version == version and saved.cf is None and saved.risk is None
    assert saved.learner.to_bytes() == eng.learner.to_bytes()
    assert saved.meta["learner_name"] == "linucb" and saved.meta["action_names"] == list(
        eng.action_names
    )
    assert (
        check_model_fits(tmp_path / "m.cw", saved, eng.action_names).feature_names
        == eng.features.feature_names
    )
    with pytest.raises(ModelFileError, match="has actions"):
        check_model_fits(tmp_path / "m.cw", saved, eng.action_names[:-1])
    # a learner whose bytes name a class nobody registered
    arrays, meta, _ = read_model(tmp_path / "m.cw")
    with np.load(io.BytesIO(arrays["learner"].tobytes())) as archive:
        parts = {key: archive[key] for key in archive.files}
    parts["__header__"] = np.frombuffer(
        parts["__header__"].tobytes().replace(b"LinUCBLearner", b"NoSuchLearner"), np.uint8
    )
    buffer = io.BytesIO()
    np.savez(buffer, **parts)
    arrays["learner"] = np.frombuffer(buffer.getvalue(), np.uint8)
    write_model(tmp_path / "bad.cw", arrays, meta)
    with pytest.raises(ModelFileError, match=r"bad\.cw.*cannot be rebuilt.*NoSuchLearner"):
        eng.load_model(tmp_path / "bad.cw")
    assert eng.model_version == version


def test_pending_rewards_evict_oldest_and_tell_duplicates_from_unknown():
    pending = PendingRewards(max_pending=3, remembered_settled=2)
    entry = PendingDecision(np.zeros(2), 0, 1.0, 10.0, None)
    assert [pending.add(f"d{i}", entry._replace(timestamp=float(i))) for i in range(5)] == [
        False
    ] * 3 + [True] * 2
    assert list(pending.ids()) == ["d2", "d3", "d4"] and len(pending) == 3
    assert pending.settle("d0") is None and not pending.was_settled("d0")  # evicted: unknown
    assert pending.settle("d3").timestamp == 3.0 and pending.was_settled("d3")
    assert pending.settle("d3") is None and pending.was_settled("d3")  # second outcome: duplicate
    assert [d for d, _ in pending.expire(now=12.5, window=10.0)] == [
        "d2"
    ]  # 2 + 10 <= 12.5 < 4 + 10
    pending.mark_settled("x")
    assert not pending.was_settled("d3")  # only the 2 most recent settled ids are remembered


def test_engine_and_learner_policy_apply_one_update_rule(sim_contexts):
    """The same outcomes teach the engine's learner and a LearnerPolicy's learner identically."""
    features = FeatureBuilder()
    mine, theirs = (
        make_learner("vw", tuple(DecisionEngine().action_names), features.feature_names, seed=4)
        for _ in range(2)
    )
    eng = DecisionEngine(seed=2, learner=mine, propensity_floor=0.4)
    policy = LearnerPolicy(theirs, propensity_floor=0.4, features=features)
    for i, ctx in enumerate(sim_contexts[:60]):
        d = eng.decide(ctx)
        reward = float(i % 5) - 1.0
        assert eng.reward(d.decision_id, reward)
        policy.update(ctx, eng.action_names.index(d.action), d.probability, reward)
    assert mine.to_bytes() == theirs.to_bytes()


def test_teach_single_and_batch_agree():
    X = np.random.default_rng(0).normal(size=(20, 3))
    actions, probs, rewards = (
        np.arange(20) % 2,
        np.linspace(0.05, 0.9, 20),
        np.linspace(-1.0, 3.0, 20),
    )

    def divisor(x):
        return np.abs(x[..., 0]) + 1.0

    one, many = (make_learner("linucb", ("a", "b"), ("x", "y", "z")) for _ in range(2))
    for row, a, p, r in zip(X, actions.tolist(), probs.tolist(), rewards.tolist(), strict=True):
        teach(one, row, a, p, r, propensity_floor=0.3, reward_divisor=divisor)
    teach(many, X, actions, probs, rewards, propensity_floor=0.3, reward_divisor=divisor)
    probe = np.ones(3)
    assert one.n_updates == many.n_updates == 20
    np.testing.assert_allclose(
        one.probabilities(probe, np.ones(2, bool)),
        many.probabilities(probe, np.ones(2, bool)),
        rtol=0,
        atol=1e-9,
    )
