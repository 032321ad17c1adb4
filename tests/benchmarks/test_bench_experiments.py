"""Simulated A/B experiments: speed as ratios to raw vector-env stepping, and the statistics
(A/A false-positive rate, coverage of the true effect) over many runs.

Size: small by default (CI runs this file with ``--benchmark-disable``); with
``CARTWISE_BENCH_SCALE=large`` (``make bench``) the speed runs simulate ~60k carts and the
statistical checks use 200 A/A runs and 40 A/B seeds.

Speed reference: the same number of carts stepped through :class:`CartRecoveryVectorEnv` at the
same batch size with a fixed action (``env_only``), and the same with every context record
materialised (``env_with_contexts``: what any loop that reads contexts must pay).
"""

import numpy as np
import pytest
from bench_utils import LARGE, per_call_seconds, record_ratio

from simulator.experiments import run_experiment
from simulator.shop.vector_env import CartRecoveryVectorEnv

BATCH = 64
SPEED = (
    {"users": 20_000, "days": 21, "pre_days": 7, "carts_per_day": 2_000}
    if LARGE
    else {"users": 2_000, "days": 3, "pre_days": 2, "carts_per_day": 350}
)
AA_RUNS = 200 if LARGE else 10
AB_SEEDS = 40 if LARGE else 3


def _env_loop(n_carts: int, contexts: bool) -> None:
    env = CartRecoveryVectorEnv(
        num_envs=BATCH, n_shoppers=SPEED["users"], carts_per_day=SPEED["carts_per_day"]
    )
    _, info = env.reset(seed=0)
    actions = np.zeros(BATCH, dtype=np.int64)
    for _ in range(-(-n_carts // BATCH)):
        if contexts:
            batch = info["context"]
            [batch[i] for i in range(BATCH)]
        _, _, _, _, info = env.step(actions)


def _experiment(arms):
    return run_experiment(
        arms,
        users=SPEED["users"],
        days=SPEED["days"],
        pre_days=SPEED["pre_days"],
        seed=0,
        progress=False,
        batch=BATCH,
        config={"carts_per_day": SPEED["carts_per_day"]},
    )


@pytest.mark.parametrize(
    "arms",
    [["none", "static:recall_message"], ["none", "rule", "vw"]],
    ids=["static", "none-rule-vw"],
)
def test_bench_experiment_vs_env_stepping(benchmark, arms):
    result = benchmark.pedantic(_experiment, args=(arms,), rounds=1, iterations=1)
    n_carts = len(result.carts) + len(result.pre_log)
    expected = (SPEED["days"] + SPEED["pre_days"]) * SPEED["carts_per_day"]
    assert abs(n_carts - expected) < 6 * np.sqrt(expected)
    benchmark.extra_info.update({"carts": n_carts, "arms": ",".join(arms)})
    if benchmark.disabled:
        return
    repeats = 1 if LARGE else 3
    subject = per_call_seconds(lambda: _experiment(arms), calls=1, repeats=repeats)
    env_only = per_call_seconds(lambda: _env_loop(n_carts, False), calls=1, repeats=repeats)
    with_contexts = per_call_seconds(lambda: _env_loop(n_carts, True), calls=1, repeats=repeats)
    record_ratio(benchmark, "experiment_over_env_only", subject, env_only)
    record_ratio(benchmark, "experiment_over_env_with_contexts", subject, with_contexts)
    benchmark.extra_info["experiment_carts_per_second"] = round(n_carts / subject)


def _aa_rejections(runs: int) -> dict[str, int]:
    from policies import make_policy

    rejected = {"delta": 0, "cuped": 0, "sequence": 0}
    for seed in range(runs):
        result = run_experiment(
            {"A": make_policy("uniform"), "B": make_policy("uniform")},
            users=300,
            days=3,
            pre_days=1,
            seed=5000 + seed,
            prescreen=False,
            progress=False,
        )
        row = result.analyse(metrics=["profit"]).table.iloc[0]
        rejected["delta"] += int(row["p_value"] < 0.05)
        rejected["cuped"] += int(row["cuped_p_value"] < 0.05)
        rejected["sequence"] += int(not row["cs_low"] <= 0.0 <= row["cs_high"])
    return rejected


def test_bench_aa_false_positive_rate(benchmark):
    """Binomial(200, 0.05) has mean 10 and P(X >= 20) = 0.3%: at most 19 rejections at scale."""
    rejected = benchmark.pedantic(_aa_rejections, args=(AA_RUNS,), rounds=1, iterations=1)
    benchmark.extra_info.update(
        {
            "runs": AA_RUNS,
            **{f"rejections_{k}": v for k, v in rejected.items()},
            **{f"rate_{k}": v / AA_RUNS for k, v in rejected.items()},
        }
    )
    if LARGE:
        assert all(v <= 19 for v in rejected.values()), rejected
        assert rejected["delta"] >= 3 and rejected["cuped"] >= 3, rejected  # P(X <= 2) = 0.2%


def _coverage(seeds: int) -> dict[str, float]:
    from policies import make_policy

    covered = {"ci": 0, "cuped": 0, "cs": 0, "significant": 0}
    effects = []
    for seed in range(seeds):
        result = run_experiment(
            {"none": make_policy("none"), "oracle": make_policy("oracle")},
            users=4000,
            days=3,
            pre_days=1,
            seed=7000 + seed,
            prescreen=False,
            progress=False,
            config={"carts_per_day": 2000},
        )
        row = result.analyse(metrics=["profit"]).table.iloc[0]
        truth = row["true_effect"]
        effects.append(truth)
        covered["ci"] += int(row["ci_low"] <= truth <= row["ci_high"])
        covered["cuped"] += int(row["cuped_ci_low"] <= truth <= row["cuped_ci_high"])
        covered["cs"] += int(row["cs_low"] <= truth <= row["cs_high"])
        covered["significant"] += int(row["p_value"] < 0.05)
    return {
        **{k: v / seeds for k, v in covered.items()},
        "mean_true_effect": float(np.mean(effects)),
    }


def test_bench_ab_coverage_of_the_true_effect(benchmark):
    """none vs the oracle (about +1 USD per cart): 95% intervals cover the outcome-noise-free
    true effect at least 95% of the time; Binomial(40, 0.95) <= 34 has probability 1.4%."""
    rates = benchmark.pedantic(_coverage, args=(AB_SEEDS,), rounds=1, iterations=1)
    benchmark.extra_info.update({"seeds": AB_SEEDS, **rates})
    assert rates["mean_true_effect"] > 0.5
    if LARGE:
        assert rates["ci"] >= 35 / 40 and rates["cuped"] >= 35 / 40 and rates["cs"] >= 35 / 40, (
            rates
        )
