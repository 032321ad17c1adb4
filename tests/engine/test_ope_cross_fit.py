"""Cross-fitted reward models: out-of-fold, deterministic, accurate on a well-specified world."""

import numpy as np

from engine import ope
from engine.ope.reward_model import cross_fit_rewards, fold_ids
from engine.ope.synthetic import SyntheticWorld

WORLD = SyntheticWorld.make(n_actions=3, seed=13)


def test_fold_ids_are_balanced_and_seeded():
    a = fold_ids(101, 3, np.random.default_rng(0))
    b = fold_ids(101, 3, np.random.default_rng(0))
    np.testing.assert_array_equal(a, b)
    assert sorted(np.bincount(a).tolist()) == [33, 34, 34]


def test_predictions_are_out_of_fold():
    log = WORLD.sample(2_000, np.random.default_rng(1))
    folds = fold_ids(2_000, 2, np.random.default_rng(7))
    base = cross_fit_rewards(log.contexts, log.actions, log.rewards, 3, np.random.default_rng(7))
    flipped_rewards = log.rewards.copy()
    in_fold0 = folds == 0
    flipped_rewards[in_fold0] = 1.0 - flipped_rewards[in_fold0]
    moved = cross_fit_rewards(
        log.contexts, log.actions, flipped_rewards, 3, np.random.default_rng(7)
    )
    # Changing fold-0 rewards leaves fold-0 predictions untouched (they come from fold 1) ...
    np.testing.assert_array_equal(base[in_fold0], moved[in_fold0])
    # ... and changes fold-1 predictions, which were trained on fold 0.
    assert np.abs(base[~in_fold0] - moved[~in_fold0]).mean() > 0.05


def test_cross_fit_is_deterministic_and_accurate():
    log = WORLD.sample(20_000, np.random.default_rng(2))
    args = (log.contexts, log.actions, log.rewards, 3)
    a = cross_fit_rewards(*args, np.random.default_rng(3))
    b = cross_fit_rewards(*args, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    # The logistic model is well specified here: predictions close to the true q.
    assert np.abs(a - log.expected_rewards).mean() < 0.02
    ridge = cross_fit_rewards(*args, np.random.default_rng(3), model="ridge", n_folds=3)
    assert np.abs(ridge - log.expected_rewards).mean() < 0.06


def test_rare_actions_fall_back_to_means():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(40, 2))
    actions = np.r_[np.zeros(36, int), np.ones(4, int)]  # action 1 too rare, action 2 never
    rewards = np.r_[rng.integers(0, 2, 36), np.ones(4)].astype(float)
    q = cross_fit_rewards(x, actions, rewards, 3, np.random.default_rng(0), n_folds=1)
    np.testing.assert_allclose(q[:, 1], 1.0)
    np.testing.assert_allclose(q[:, 2], rewards.mean())


def test_evaluate_with_contexts_is_seeded():
    log = WORLD.sample(3_000, np.random.default_rng(5))
    args = (log.rewards, log.actions, log.logged_probs, log.target_probs)
    a = ope.evaluate(*args, contexts=log.contexts, seed=1)
    b = ope.evaluate(*args, contexts=log.contexts, seed=1)
    np.testing.assert_array_equal(a.to_numpy(float), b.to_numpy(float))
    assert list(a.index) == [*list(ope.DEFAULT_ESTIMATORS), "on-policy"]
