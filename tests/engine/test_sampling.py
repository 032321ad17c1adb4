"""Inverse-CDF action sampling: the batch form draws what the engine's list form draws, follows
the probabilities and never returns an action without mass."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats

from engine.sampling import sample_actions, sample_index


def test_sample_actions_follows_the_probabilities():
    rng = np.random.default_rng(11)
    p = np.array([0.0, 0.1, 0.0, 0.6, 0.3, 0.0, 0.0])
    draws = sample_actions(np.tile(p, (40_000, 1)), rng)
    freq = np.bincount(draws, minlength=7) / len(draws)
    # binomial standard error <= sqrt(0.25 / 40000) = 0.0025; 4 s.e. tolerance
    np.testing.assert_allclose(freq, p, atol=0.01)
    assert set(np.unique(draws)) <= {1, 3, 4}
    counts = np.bincount(draws, minlength=7)[[1, 3, 4]]
    assert stats.chisquare(counts, 40_000 * p[[1, 3, 4]]).pvalue > 0.001
    one_hot = np.eye(7)[[0, 6, 3]]
    np.testing.assert_array_equal(sample_actions(one_hot, rng), [0, 6, 3])


def test_sample_actions_draws_one_uniform_per_row():
    p = np.full((5, 3), 1 / 3)
    rng, twin = np.random.default_rng(4), np.random.default_rng(4)
    sample_actions(p, rng)
    twin.random(5)
    assert rng.random() == twin.random()


_ROWS = hnp.arrays(
    np.float64,
    st.tuples(st.integers(1, 6), st.integers(1, 8)),
    elements=st.one_of(st.just(0.0), st.floats(1e-12, 1.0)),
).filter(lambda a: (a > 0).any(axis=1).all())


@settings(max_examples=300, deadline=None, derandomize=True)
@given(weights=_ROWS, seed=st.integers(0, 2**32 - 1))
def test_batch_and_list_forms_draw_the_same_action(weights, seed):
    """Row by row, sample_actions equals sample_index given the same uniform (eligible = p > 0)."""
    p = weights / weights.sum(axis=1, keepdims=True)
    got = sample_actions(p, np.random.default_rng(seed))
    uniforms = np.random.default_rng(seed).random(len(p))
    expected = [
        sample_index(row.tolist(), (row > 0).tolist(), float(u))
        for row, u in zip(p, uniforms, strict=True)
    ]
    np.testing.assert_array_equal(got, expected)
    assert (p[np.arange(len(p)), got] > 0).all()


def test_a_draw_past_the_cdf_falls_to_the_last_action_with_mass():
    """The guard for float edge cases: a uniform of 1 (past every cumulative probability) gives
    the last action with mass in both forms, never an index past the end or an action without
    mass."""

    class TopUniform:
        def random(self, n):
            return np.ones(n)

    p = np.array([[0.3, 0.7, 0.0], [1.0, 0.0, 0.0], [0.2, 0.3, 0.5]])
    np.testing.assert_array_equal(sample_actions(p, TopUniform()), [1, 0, 2])
    assert [sample_index(row.tolist(), (row > 0).tolist(), 1.0) for row in p] == [1, 0, 2]
