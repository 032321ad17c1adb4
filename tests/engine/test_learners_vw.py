"""VWLearner specifics: action mapping under eligibility, epsilon-greedy's exact distribution,
action descriptors, feature-name handling and thread safety."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from engine.actions import ACTION_NAMES
from engine.learners import Learner, VWLearner, default_action_features
from engine.learners.vw import EXPLORATIONS

ACTIONS = ACTION_NAMES
FEATURES = ("cart_value", "views", "hour")
N_A, N_D = len(ACTIONS), len(FEATURES)
# expected reward of each action, whatever the context (order one: these tests use
# reward_scale=1.0, the scale that matches such rewards)
TRUE_MEANS = np.array([0.0, 0.5, -0.5, 1.5, 1.0, -1.0, 0.25])


def _learn_constant_means(learner: Learner, rounds: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(rounds):
        x = rng.normal(size=N_D)
        a = int(rng.integers(N_A))
        learner.update(x, a, 1.0 / N_A, float(TRUE_MEANS[a] + rng.normal(0, 0.1)))


def test_epsilon_greedy_distribution_is_exact_under_any_eligibility():
    eps = 0.2
    learner = VWLearner(
        ACTIONS, FEATURES, exploration="epsilon", epsilon=eps, reward_scale=1.0, seed=0
    )
    _learn_constant_means(learner, 1000, seed=1)
    rng = np.random.default_rng(2)
    for _ in range(40):
        mask = rng.random(N_A) < 0.5
        mask[rng.integers(N_A)] = True
        x = rng.normal(size=N_D)
        best = int(np.argmax(np.where(mask, TRUE_MEANS, -np.inf)))
        expected = np.where(mask, eps / mask.sum(), 0.0)
        expected[best] += 1 - eps
        np.testing.assert_allclose(learner.probabilities(x, mask), expected, atol=1e-6)
        assert learner.greedy(x, mask) == best


@pytest.mark.parametrize("exploration", ["squarecb", "softmax", "bag", "cover", "rnd"])
def test_every_exploration_puts_most_mass_on_the_best_eligible_action(exploration):
    learner = VWLearner(ACTIONS, FEATURES, exploration=exploration, reward_scale=1.0, seed=3)
    _learn_constant_means(learner, 1500, seed=4)
    rng = np.random.default_rng(5)
    hits = 0
    for _ in range(30):
        mask = rng.random(N_A) < 0.6
        mask[0] = True
        probs = learner.probabilities(rng.normal(size=N_D), mask)
        best = int(np.argmax(np.where(mask, TRUE_MEANS, -np.inf)))
        hits += int(np.argmax(probs) == best)
        assert np.all(probs[~mask] == 0.0)
    assert hits >= 27  # measured 30/30 for every exploration with these seeds


def test_action_descriptors_let_an_untried_coupon_tier_interpolate():
    """Trained on coupon_5 (reward 2.0), coupon_20 (0.5) and none (1.0) only, the learner
    places the never-tried coupon_10 between its neighbours (truth: 1.5, linear in the
    discount) through the shared 'discount' descriptor."""
    rng = np.random.default_rng(6)
    learner = VWLearner(ACTIONS, FEATURES, exploration="epsilon", reward_scale=1.0, seed=0)
    for _ in range(900):
        a = int(rng.choice([0, 2, 4]))
        reward = {0: 1.0, 2: 2.0, 4: 0.5}[a] + rng.normal(0, 0.05)
        learner.update(rng.normal(size=N_D), a, 1 / 3, reward)
    x = np.zeros(N_D)

    def pick(*names: str) -> str:
        mask = np.isin(ACTIONS, names)
        return ACTIONS[learner.greedy(x, mask)]

    assert pick("none", "coupon_10") == "coupon_10"
    assert pick("coupon_10", "coupon_20") == "coupon_10"
    assert pick("coupon_5", "coupon_10") == "coupon_5"


def test_default_action_descriptors():
    assert default_action_features("coupon_20") == {"discount": 0.2, "is_contact": 1.0}
    assert default_action_features("recommendation") == {"is_contact": 1.0, "is_information": 1.0}
    assert default_action_features("recall_message") == {"is_contact": 1.0}
    assert default_action_features("none") == {}


def test_awkward_feature_names_work_and_collisions_are_refused():
    names = ("price: total", "views|7d", "share 100%")
    learner = VWLearner(
        ["none", "coupon_5"], names, exploration="epsilon", epsilon=0.1, reward_scale=1.0, seed=0
    )
    rng = np.random.default_rng(7)
    for _ in range(400):
        x = rng.normal(size=3)
        a = int(rng.integers(2))
        learner.update(x, a, 0.5, float(x[0] if a == 1 else 0.0))  # coupon pays when x0 > 0
    both = np.ones(2, dtype=bool)
    assert learner.greedy(np.array([2.0, 0.0, 0.0]), both) == 1
    assert learner.greedy(np.array([-2.0, 0.0, 0.0]), both) == 0
    with pytest.raises(ValueError, match="collide once made VW-safe"):
        VWLearner(["none"], ["a b", "a:b"])


def test_values_too_small_for_vw_text_are_treated_as_zero():
    learner = VWLearner(ACTIONS, FEATURES, exploration="epsilon", seed=0)
    _learn_constant_means(learner, 100, seed=8)
    mask = np.ones(N_A, dtype=bool)
    tiny = np.array([3.5e-180, 1.0, -1e-45])
    np.testing.assert_array_equal(
        learner.probabilities(tiny, mask), learner.probabilities(np.array([0.0, 1.0, 0.0]), mask)
    )


def test_generator_seed_is_accepted_and_reproducible():
    def make():
        return VWLearner(ACTIONS, FEATURES, exploration="bag", seed=np.random.default_rng(9))

    a, b = make(), make()
    _learn_constant_means(a, 200, seed=10)
    _learn_constant_means(b, 200, seed=10)
    x, mask = np.ones(N_D), np.ones(N_A, dtype=bool)
    np.testing.assert_array_equal(a.probabilities(x, mask), b.probabilities(x, mask))


def test_concurrent_calls_from_eight_threads_are_all_counted():
    learner = VWLearner(ACTIONS, FEATURES, exploration="squarecb", seed=0)
    before = learner.vw_examples
    per_thread, errors = 150, []
    snapshots: list[bytes] = []

    def work(k: int) -> None:
        rng = np.random.default_rng(100 + k)
        try:
            for i in range(per_thread):
                x = rng.normal(size=N_D)
                mask = rng.random(N_A) < 0.7
                mask[0] = True
                probs = learner.probabilities(x, mask)
                if np.any(probs[~mask] != 0) or abs(probs.sum() - 1) > 1e-12:
                    errors.append(f"invalid probabilities {probs}")
                a = int(rng.choice(N_A, p=probs))
                learner.update(x, a, float(probs[a]), float(TRUE_MEANS[a] + rng.normal()))
                if k == 0 and i % 50 == 0:
                    snapshots.append(learner.to_bytes())
        except Exception as exc:  # collected and reported by the main thread
            errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert learner.n_updates == 8 * per_thread
    # VW's own counter: one example per update (predictions reuse kept examples, uncounted)
    assert learner.vw_examples - before == 8 * per_thread
    assert len(snapshots) == 3
    restored = Learner.from_bytes(snapshots[-1])
    assert 0 < restored.n_updates <= 8 * per_thread


@pytest.mark.parametrize("exploration", EXPLORATIONS)
def test_native_calls_give_the_same_model_as_the_public_workspace_methods(exploration):
    """The fast path (kept examples for predictions, C++ parse + VW's multi-line learn for
    updates) must be a pure speed-up: the same probabilities, to the float32 rounding of the
    text the public path parses, and the same weights."""
    fast = VWLearner(ACTIONS, FEATURES, exploration=exploration, seed=3)
    public = VWLearner(ACTIONS, FEATURES, exploration=exploration, seed=3)
    assert fast._native and fast._examples is not None  # every supported release offers them
    public._native = False
    rng = np.random.default_rng(12)
    for i in range(300):
        x = rng.normal(size=N_D)
        x[i % N_D] = 0.0 if i % 5 == 0 else x[i % N_D]  # zero features are left out by both
        mask = rng.random(N_A) < 0.7
        mask[int(rng.integers(N_A))] = True
        np.testing.assert_allclose(
            fast.probabilities(x, mask), public.probabilities(x, mask), rtol=1e-5, atol=1e-8
        )
        a = int(rng.choice(np.flatnonzero(mask)))
        reward = float(TRUE_MEANS[a] + rng.normal(0, 0.1))
        fast.update(x, a, 0.5, reward)
        public.update(x, a, 0.5, reward)
    # the saved files differ only in VW's example counters (predictions are counted by one path)
    assert fast._ws.json_weights() == public._ws.json_weights()
    restored = Learner.from_bytes(fast.to_bytes())
    assert restored._native and restored._examples is not None
    x, mask = np.ones(N_D), np.ones(N_A, dtype=bool)
    np.testing.assert_array_equal(restored.probabilities(x, mask), fast.probabilities(x, mask))


def test_unchecked_inputs_give_the_checked_answer_and_outputs_are_still_checked():
    learner = VWLearner(ACTIONS, FEATURES, exploration="squarecb", seed=0)
    _learn_constant_means(learner, 100, seed=4)
    x, mask = np.array([0.5, -1.0, 2.0]), np.array([1, 0, 1, 1, 0, 1, 1], dtype=bool)
    np.testing.assert_array_equal(
        learner.decision_probabilities(x, mask.tolist()), learner.probabilities(x, mask)
    )
    with pytest.raises(ValueError, match=r"x\.shape"):
        learner.probabilities(np.ones(2), mask)  # the public path checks its inputs
    learner._predict = lambda values, eligible: [float("nan")] * len(eligible)
    with pytest.raises(RuntimeError, match="invalid probabilities"):
        learner.decision_probabilities(x, mask.tolist())


def _public_twin_agrees(fast: VWLearner, public: VWLearner, rounds: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(rounds):
        x = rng.normal(size=N_D)
        mask = np.ones(N_A, dtype=bool)
        np.testing.assert_allclose(
            fast.probabilities(x, mask), public.probabilities(x, mask), rtol=1e-5, atol=1e-8
        )
        a = int(rng.integers(N_A))
        reward = float(TRUE_MEANS[a] + x[0] * (a - 3) + rng.normal(0, 0.1))
        fast.update(x, a, 1.0 / N_A, reward)
        public.update(x, a, 1.0 / N_A, reward)


def test_kept_prediction_examples_follow_the_workspace_when_whitening_restarts_it():
    fast = VWLearner(ACTIONS, FEATURES, whiten_after=40, seed=5)
    public = VWLearner(ACTIONS, FEATURES, whiten_after=40, seed=5)
    public._native = False
    kept = fast._examples
    _public_twin_agrees(fast, public, 120, seed=6)
    assert fast.whitening is not None
    assert (
        fast._examples is not None and fast._examples is not kept
    )  # rebuilt for the new workspace


def test_options_that_rewrite_parsed_text_keep_predictions_on_the_text_path():
    # --ignore U drops the shared namespace in the text parser: kept examples would not match
    fast = VWLearner(ACTIONS, FEATURES, extra_args="--ignore U", seed=7)
    assert fast._native and fast._examples is None
    public = VWLearner(ACTIONS, FEATURES, extra_args="--ignore U", seed=7)
    public._native = False
    _public_twin_agrees(fast, public, 50, seed=8)
