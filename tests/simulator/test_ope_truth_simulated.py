"""Off-policy evaluation on decision logs against the simulator's truth.

The truth of a target on a log is its value *on the logged carts*:
``mean_i sum_a pi(a|x_i) q(x_i, a)``, with ``q`` the simulator's ``info["expected_reward"]``.
Simulation helpers (exploring logger, targets, log frames) live in
``tests/support/ope_simulation.py`` (the 200-seed check is
``tests/benchmarks/test_bench_ope_coverage.py``).

Measured (seed 0, 50,000 carts, 50% rule + 50% uniform logger, with purchase intent, issue 22),
relative error of the estimate for the targets none / coupon_10 / uniform / rule / linear, in %:
ipw +5.2 / -4.4 / +2.1 / +2.1 / -11.3; snipw +4.0 / -3.8 / +2.6 / +1.6 / -10.1;
dr +3.2 / -4.5 / +2.4 / +1.7 / -10.6; sndr +3.3 / -4.6 / +2.4 / +1.7 / -10.8;
dm +11.2 / +2.7 / +5.3 / -1.3 / +0.2. The unbiased estimators are within 2.3 se (the linear
target's four estimates, one draw of the same log, 2.1-2.3 se low); their standard errors are
2.5% to 7.7% of the truth. The test holds the estimates to 3 se and the standard errors to 10% of
the truth: before purchase intent it held the realised error to 10% of the truth (and to 4 se),
which the linear target now misses at 2.2 se. A 10% bar on one seed's realised error sat at 1.3
to 4 se depending on the target, a chance event rather than a property of the estimators; the
150-seed coverage test below checks them against their nominal rate.
"""

import re

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from ope_simulation import (
    FEATURES,
    TARGETS,
    UNBIASED,
    binomial_band,
    coverage_table,
    logging_policy,
    simulate_log,
)

import simulator
from engine import DecisionEngine
from engine.cli import main as cartwise
from engine.decision_log import read_log
from engine.guardrails import GuardrailConfig
from engine.ope.logs import evaluate_decision_log, read_log_dataset, target_probabilities
from policies import LearnerPolicy, make_policy


# ---------------------------------------------------------------- accuracy at 50k carts
def test_estimates_match_the_truth_on_50k_logged_carts():
    sim = simulate_log(50_000, seed=0)
    data = read_log_dataset(sim.frame)
    assert data.n == 50_000 and data.feature_names == FEATURES
    for name, target in TARGETS.items():
        truth = sim.true_value(target)
        table = evaluate_decision_log(data, target, seed=1)
        for est in UNBIASED:
            value, se = table.loc[est, ["value", "se"]]
            assert abs(value - truth) <= 3 * se, (name, est, value, truth, se)
            assert se <= 0.1 * abs(truth), (name, est, se, truth)
    # The on-policy row is the logging policy's value on the same carts.
    logged = sim.true_value(logging_policy)
    value, se = table.loc["on-policy", ["value", "se"]]
    assert abs(value - logged) <= 4 * se


# ---------------------------------------------------------------- coverage over seeds
N_SEEDS = 150


@pytest.mark.slow
def test_intervals_cover_the_truth_at_the_nominal_rate():
    """150 seeds x 5 targets = 750 95%-intervals per estimator (seeds 1000+: the benchmark uses
    0-199). Intervals of one seed are correlated (design effect 1.2, measured over 200 seeds),
    so the binomial sd of the coverage is sqrt(0.95 * 0.05 * 1.2 / 750) = 0.87 points; the band
    is 95% +- 3 sd = [92.4%, 97.6%] (a correct estimator falls outside with chance ~0.3%).
    Measured: 93.1-93.3% (IPW, SNIPW, DR, SNDR). 50 seeds proved too few: seeds 1000-1049 alone
    gave 90.4-91.6% while the 200-seed benchmark gives 93.8-94.3% for the same estimators."""
    table = coverage_table(range(1_000, 1_000 + N_SEEDS), 5_000, estimators=UNBIASED)
    low, high = binomial_band(N_SEEDS * len(TARGETS), n_sd=3.0)
    coverage = table.groupby("estimator")["covered"].mean()
    for est in UNBIASED:
        assert low <= coverage[est] <= high, (est, float(coverage[est]), (low, high))


# ---------------------------------------------------------------- through a real engine log
N_BATCHES, BATCH = 8, 500
START = 1_767_225_600.0


@pytest.fixture(scope="module")
def engine_log(tmp_path_factory):
    """A DecisionEngine (LinUCB, exploration floor 0.5) decides 4,000 simulated carts and logs
    them; rewards are the simulator's profits, except for half of the last batch (pending),
    plus one fallback decision. Returns the paths and the true q of each decision."""
    root = tmp_path_factory.mktemp("engine_log")
    log_path, model_path = root / "decisions.sqlite", root / "model.npz"
    env = gym.make_vec(
        "CartRecovery-v0", num_envs=BATCH, vectorization_mode="vector_entry_point", n_shoppers=2_000
    )
    _, info = env.reset(seed=5)
    truth = {}
    engine = DecisionEngine(
        log_path,
        seed=3,
        learner="linucb",
        salt="test",
        guardrails=GuardrailConfig(exploration_floor=0.5),
    )
    for step in range(N_BATCHES):
        contexts = info["context"][:]
        decisions = [engine.decide(c) for c in contexts]
        actions = np.array([engine.action_names.index(d.action) for d in decisions])
        truth.update(
            {d.decision_id: q for d, q in zip(decisions, info["expected_reward"], strict=True)}
        )
        _, profit, _, _, info = env.step(actions)
        for i, (c, d) in enumerate(zip(contexts, decisions, strict=True)):
            if step < N_BATCHES - 1 or i % 2:
                engine.reward(d.decision_id, float(profit[i]), timestamp=c["timestamp"] + 600.0)
    engine.decide({"user_id": "u-bad", "timestamp": START})  # no cart: a fallback decision
    engine.save(model_path)
    engine.close()
    env.close()
    return log_path, model_path, truth


def static_coupon_10(X, names, eligible):
    """coupon_10 where the logger could send it, else none (log action order)."""
    out = np.zeros(eligible.shape)
    out[:, 3] = eligible[:, 3]
    out[:, 0] = ~eligible[:, 3]
    return out


def test_engine_log_end_to_end(engine_log):
    log_path, _, truth = engine_log
    df = read_log(log_path)
    data = read_log_dataset(df)
    assert data.n_read == N_BATCHES * BATCH + 1
    assert dict(data.dropped) == {"fallback": 1, "no_reward": BATCH // 2}
    assert data.action_names == simulator.ACTION_NAMES
    q = np.stack([truth[i] for i in data.decision_ids])
    for target in (static_coupon_10, make_policy("rule"), make_policy("uniform")):
        pi = target_probabilities(data, target)
        value_true = float(np.mean(np.sum(pi * q, axis=1)))
        table = evaluate_decision_log(df, target, seed=0)
        for est in UNBIASED:
            value, se = table.loc[est, ["value", "se"]]
            assert abs(value - value_true) <= 4 * se, (target, est, value, value_true, se)
    # static coupon_10 computed independently from the frame's columns
    kept = df[~df["fallback"] & df["reward"].notna()]
    coupon_ok = kept["p_coupon_10"].to_numpy() > 0
    expected = np.where(coupon_ok, q[:, 3], q[:, 0]).mean()
    pi = target_probabilities(data, static_coupon_10)
    assert float(np.mean(np.sum(pi * q, axis=1))) == pytest.approx(expected)


# ---------------------------------------------------------------- the command line
def _printed_table(text):
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^(ipw|snipw|dm|dr|sndr|switch-dr|dr-os|on-policy)\s+(-?\d+\.\d+)", line)
        if m:
            rows[m.group(1)] = float(m.group(2))
    return rows


def test_cartwise_evaluate_policy(engine_log, tmp_path, capsys):
    log_path, _, _ = engine_log
    out = tmp_path / "report"
    code = cartwise(
        [
            "evaluate",
            "--log",
            str(log_path),
            "--policy",
            "rule",
            "--out",
            str(out),
            "--confidence",
            "0.9",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    expected = evaluate_decision_log(log_path, make_policy("rule"), seed=0, confidence=0.9)
    assert expected.attrs["ci"] == "auto"
    values = _printed_table(printed)
    assert set(values) == set(expected.index)
    for est, value in values.items():
        assert value == pytest.approx(expected.loc[est, "value"], abs=5e-5)
    assert "dropped 1 fallback, 250 without reward" in printed
    assert "90% auto intervals (Hall's skewness-corrected for ipw, snipw;" in printed
    png = (out / "ope_rule.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    saved = pd.read_csv(out / "ope_rule.csv", index_col=0)
    cols = ["value", "ci_low", "ci_high"]
    np.testing.assert_allclose(saved[cols], expected[cols], rtol=1e-9)
    assert "variance-floored normal for dr, sndr;" in printed
    # --ci analytic: the normal interval for every estimator, IPW's narrower on this log; DR's
    # is the auto (floored) one or inside it, around the same estimate.
    assert cartwise([*argv_of(log_path, out), "--confidence", "0.9", "--ci", "analytic"]) == 0
    assert "90% normal (analytic) intervals" in capsys.readouterr().out
    normal = pd.read_csv(out / "ope_rule.csv", index_col=0)
    assert normal.loc["dr", "value"] == pytest.approx(saved.loc["dr", "value"], rel=1e-12)
    assert saved.loc["dr", "ci_low"] <= normal.loc["dr", "ci_low"] + 1e-12
    assert normal.loc["dr", "ci_high"] <= saved.loc["dr", "ci_high"] + 1e-12
    assert not np.allclose(normal.loc["ipw", cols], saved.loc["ipw", cols], rtol=1e-6)


def argv_of(log_path, out):
    return ["evaluate", "--log", str(log_path), "--policy", "rule", "--out", str(out)]


@pytest.mark.parametrize("greedy", [False, True])
def test_cartwise_evaluate_model(engine_log, tmp_path, capsys, greedy):
    log_path, model_path, _ = engine_log
    argv = [
        "evaluate",
        "--log",
        str(log_path),
        "--model",
        str(model_path),
        "--out",
        str(tmp_path),
        "--estimators",
        "ipw",
        "dr",
    ] + (["--greedy"] if greedy else [])
    assert cartwise(argv) == 0
    values = _printed_table(capsys.readouterr().out)
    engine = DecisionEngine.load(model_path)
    policy = LearnerPolicy(engine.learner, features=engine.features, greedy=greedy)
    expected = evaluate_decision_log(log_path, policy, estimators=["ipw", "dr"], seed=0)
    assert set(values) == {"ipw", "dr", "on-policy"}
    for est, value in values.items():
        assert value == pytest.approx(expected.loc[est, "value"], abs=5e-5)
    assert (tmp_path / f"ope_model_model{'_greedy' if greedy else ''}.png").is_file()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--policy", "rule", "--greedy"], "--greedy applies to --model only"),
        (["--policy", "oracle"], "cannot be evaluated on a log"),
        (["--policy", "nope"], "policy name == 'nope'"),
        (["--policy", "rule", "--estimators", "ipw", "magic"], "estimators contains 'magic'"),
        (["--policy", "rule", "--confidence", "1.5"], "confidence == 1.5"),
        (["--policy", "rule", "--ci", "bootstrap", "--backend", "memory"], "--ci bootstrap"),
        (["--policy", "rule", "--ci", "normal"], "invalid choice: 'normal'"),
    ],
)
def test_cartwise_evaluate_reports_bad_input_in_one_line(
    engine_log, tmp_path, capsys, argv, message
):
    log_path, _, _ = engine_log
    with pytest.raises(SystemExit) as exit_info:
        cartwise(["evaluate", "--log", str(log_path), "--out", str(tmp_path), *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_cartwise_evaluate_missing_files(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cartwise(["evaluate", "--log", str(tmp_path / "none.sqlite"), "--policy", "rule"])
    assert "no such file" in capsys.readouterr().err
