"""Speed of off-policy evaluation, reported as ratios against references timed in the same run.

Size: ``n = 10,000 * scale`` rows, where ``CARTWISE_BENCH_SCALE`` is ``small`` (default, 1),
``large`` (100: the 1M rows of ``make bench``) or a number.

* analytic path: ``ope.evaluate`` with IPW, SNIPW and DR, point estimates and 95% intervals,
  against a bare numpy IPW point estimate (``ratio_to_plain_ipw``);
* a straightforward row-resampling bootstrap (1,000 resamples, each re-computing the three
  estimators with plain numpy) is timed on ``min(n, 50,000)`` rows and 10 resamples and scaled
  linearly in rows and resamples to ``n`` rows x 1,000 (both costs are linear in each): the
  analytic path must be at least 10x faster (goal of the OPE brief); the vectorised Poisson
  bootstrap of ``ope.evaluate(ci="bootstrap")`` is reported on the same footing;
* streaming: the tracemalloc peak of ``evaluate_stream`` over 10 chunks vs 1 chunk.
"""

import numpy as np
import pytest
from bench_utils import best_seconds, scale
from ope_streams import stream_peak_bytes, synthetic_chunks

from engine import ope
from engine.ope.synthetic import SyntheticWorld

SCALE = scale(large=100)
N_ROWS = max(2_000, int(10_000 * SCALE))
NAMES = ["ipw", "snipw", "dr"]
N_BOOT = 1_000


@pytest.fixture(scope="module")
def data():
    world = SyntheticWorld.make(n_actions=7, seed=0)
    log = world.sample(N_ROWS, np.random.default_rng(1))
    q_hat = np.clip(log.expected_rewards + 0.05, 0.0, 1.0)
    return log.rewards, log.actions, log.logged_probs, log.target_probs, q_hat


def analytic(data):
    r, a, p, pi, q = data
    return ope.evaluate(r, a, p, pi, estimated_rewards=q, estimators=NAMES)


def plain_ipw(data):
    r, a, p, pi, _ = data
    return float(np.mean(r * pi[np.arange(r.size), a] / p))


def naive_bootstrap(data, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Textbook bootstrap: resample rows, recompute each estimator from the raw arrays."""
    r, a, p, pi, q = data
    n = r.size
    out = np.empty((n_resamples, 3))
    for b in range(n_resamples):
        idx = rng.integers(n, size=n)
        rb, ab, pb, pib, qb = r[idx], a[idx], p[idx], pi[idx], q[idx]
        rows = np.arange(n)
        w = pib[rows, ab] / pb
        dm = (pib * qb).sum(axis=1)
        out[b] = [
            np.mean(w * rb),
            np.sum(w * rb) / np.sum(w),
            np.mean(dm + w * (rb - qb[rows, ab])),
        ]
    return out


def test_bench_analytic_vs_plain_and_bootstrap(benchmark, data):
    table = benchmark(analytic, data)
    assert np.isfinite(table[["value", "ci_low", "ci_high"]].to_numpy()).all()

    # The fixture's own minimum when it ran timed rounds; otherwise a best-of-3.
    timed = not benchmark.disabled and benchmark.stats is not None
    t_analytic = benchmark.stats.stats.min if timed else best_seconds(lambda: analytic(data), 3)
    t_plain = best_seconds(lambda: plain_ipw(data), 7)
    np.testing.assert_allclose(table.loc["ipw", "value"], plain_ipw(data), rtol=1e-12)

    sub_rows, sub_resamples = min(N_ROWS, 50_000), 10
    sub = tuple(x[:sub_rows] for x in data)
    t_naive_sub = best_seconds(
        lambda: naive_bootstrap(sub, sub_resamples, np.random.default_rng(0)), 2
    )
    t_naive = t_naive_sub * (N_BOOT / sub_resamples) * (N_ROWS / sub_rows)
    r, a, p, pi, q = sub
    t_poisson_sub = best_seconds(
        lambda: ope.evaluate(
            r,
            a,
            p,
            pi,
            estimated_rewards=q,
            estimators=NAMES,
            ci="bootstrap",
            n_bootstrap=N_BOOT,
            seed=0,
        ),
        1,
    )
    t_poisson = t_poisson_sub * (N_ROWS / sub_rows)

    info = {
        "n_rows": N_ROWS,
        "analytic_seconds": t_analytic,
        "plain_ipw_seconds": t_plain,
        "ratio_to_plain_ipw": t_analytic / t_plain,
        "naive_bootstrap_seconds_scaled": t_naive,
        "speedup_analytic_vs_naive_bootstrap": t_naive / t_analytic,
        "poisson_bootstrap_seconds_scaled": t_poisson,
        "speedup_poisson_vs_naive_bootstrap": t_naive / t_poisson,
        "bootstrap_timed_on_rows": sub_rows,
        "naive_bootstrap_timed_resamples": sub_resamples,
    }
    benchmark.extra_info.update(info)
    assert info["speedup_analytic_vs_naive_bootstrap"] >= 10, info


def _chunks(n_chunks: int, rows: int):
    world = SyntheticWorld.make(n_actions=7, seed=0)
    return synthetic_chunks(world, np.random.default_rng(2), n_chunks, rows)


def _stream_peak(n_chunks: int, rows: int) -> int:
    return stream_peak_bytes(_chunks(n_chunks, rows), NAMES)


def test_bench_stream_memory_is_bounded(benchmark):
    rows = max(1_000, N_ROWS // 10)
    table = benchmark(lambda: ope.evaluate_stream(_chunks(10, rows), estimators=NAMES))
    assert table.loc["ipw", "n"] == 10 * rows
    one, ten = _stream_peak(1, rows), _stream_peak(10, rows)
    benchmark.extra_info.update(
        chunk_rows=rows,
        peak_bytes_1_chunk=one,
        peak_bytes_10_chunks=ten,
        peak_ratio_10_to_1=ten / one,
    )
    assert ten < 1.1 * one, (one, ten)
