"""Chunked summaries merge exactly into the whole-data result; streaming keeps memory bounded."""

import itertools

import numpy as np
import pandas as pd
import pytest
from ope_streams import stream_peak_bytes, synthetic_chunks

from engine import ope
from engine.ope.synthetic import SyntheticWorld

WORLD = SyntheticWorld.make(n_actions=4, seed=21)
ALL = list(ope.ESTIMATORS)


@pytest.fixture(scope="module")
def log():
    data = WORLD.sample(6_000, np.random.default_rng(2))
    q_hat = np.clip(data.expected_rewards + 0.1 * data.contexts[:, :1], 0, 1)
    # Profit-like rewards away from zero: a naive sum-of-squares variance would lose digits
    # here, the pairwise (Chan) merge of centred co-moments does not.
    return data, q_hat, data.rewards * 30.0 + 25.0


def chunks_of(data, q_hat, rewards, bounds):
    for lo, hi in itertools.pairwise(bounds):
        yield {
            "rewards": rewards[lo:hi],
            "actions": data.actions[lo:hi],
            "logged_probs": data.logged_probs[lo:hi],
            "target_probs": data.target_probs[lo:hi],
            "estimated_rewards": q_hat[lo:hi],
        }


BOUNDS = [0, 1, 2, 1_000, 1_001, 3_500, 6_000]  # includes one-row chunks


def assert_tables_equal(a: pd.DataFrame, b: pd.DataFrame, rtol: float = 1e-12) -> None:
    assert list(a.index) == list(b.index) and list(a.columns) == list(b.columns)
    np.testing.assert_allclose(a.to_numpy(float), b.to_numpy(float), rtol=rtol, atol=0)


def test_chunked_summaries_merge_to_the_whole(log):
    data, q_hat, rewards = log
    whole = ope.evaluate(
        rewards,
        data.actions,
        data.logged_probs,
        data.target_probs,
        estimated_rewards=q_hat,
        estimators=ALL,
    )
    parts = [
        ope.summarize(**chunk, estimators=ALL) for chunk in chunks_of(data, q_hat, rewards, BOUNDS)
    ]
    assert_tables_equal(ope.finalize(ope.merge(parts)), whole)
    added = parts[0]
    for part in parts[1:]:
        added = added + part
    assert_tables_equal(ope.finalize(added, 0.95), whole)
    # A single estimator's Summary merges and finalises on its own too.
    one = ope.merge([p["snipw"] for p in parts])
    assert_tables_equal(ope.finalize(one), whole.loc[["snipw"]])


def test_evaluate_stream_equals_evaluate(log):
    data, q_hat, rewards = log
    whole = ope.evaluate(
        rewards,
        data.actions,
        data.logged_probs,
        data.target_probs,
        estimated_rewards=q_hat,
        estimators=ALL,
        confidence=0.9,
        switch_threshold=3.0,
        dros_lambda=5.0,
    )
    streamed = ope.evaluate_stream(
        chunks_of(data, q_hat, rewards, BOUNDS),
        estimators=ALL,
        confidence=0.9,
        switch_threshold=3.0,
        dros_lambda=5.0,
    )
    assert_tables_equal(streamed, whole)


def test_merge_rejects_incompatible_summaries(log):
    data, q_hat, rewards = log
    chunk = next(chunks_of(data, q_hat, rewards, [0, 100]))
    a = ope.summarize(**chunk, estimators=["switch-dr"], switch_threshold=2.0)
    b = ope.summarize(**chunk, estimators=["switch-dr"], switch_threshold=3.0)
    with pytest.raises(ValueError, match="switch_threshold"):
        a + b
    c = ope.summarize(**chunk, estimators=["ipw"])
    with pytest.raises(ValueError, match="estimators"):
        a + c
    boot = ope.summarize(
        **chunk, estimators=["switch-dr"], switch_threshold=2.0, n_bootstrap=10, seed=0
    )
    with pytest.raises(ValueError, match="n_bootstrap"):
        a + boot
    with pytest.raises(ValueError, match="empty"):
        ope.merge([])


def test_stream_reports_bad_chunk_by_index(log):
    data, q_hat, rewards = log
    chunks = list(chunks_of(data, q_hat, rewards, [0, 10, 20]))
    chunks[1]["logged_probs"] = np.where(np.arange(10) == 4, 0.0, chunks[1]["logged_probs"])
    with pytest.raises(ValueError, match=r"chunk 1: logged_probs row 4 == 0.0"):
        ope.evaluate_stream(chunks)
    with pytest.raises(ValueError, match="chunk 0 is missing \\['target_probs'\\]"):
        ope.evaluate_stream([{k: v for k, v in chunks[0].items() if k != "target_probs"}])
    with pytest.raises(ValueError, match="chunks is empty"):
        ope.evaluate_stream([])


def _peak_bytes(n_chunks: int, rows: int) -> int:
    chunks = synthetic_chunks(WORLD, np.random.default_rng(0), n_chunks, rows)
    return stream_peak_bytes(chunks, ALL)


def test_stream_memory_does_not_grow_with_number_of_chunks():
    rows = 20_000
    one, ten = _peak_bytes(1, rows), _peak_bytes(10, rows)
    # Ten times the rows, (almost) the same peak: only one chunk and the summaries are alive.
    assert ten < 1.1 * one, (one, ten)
    data_bytes = 10 * rows * (2 * 4 + 3) * 8  # what holding all ten chunks would need at least
    assert ten < 0.5 * data_bytes, (ten, data_bytes)
