"""``cartwise run``: the whole Cartwise story on a simulated shop, written up as one report.

1. *Warm-up*: the shop's current practice (a reminder to everyone, a 30% holdout); its carts fit
   the collaborative-filtering model and the abandonment-risk model.
2. *Engine*: the embedded ``DecisionEngine`` (CF and risk features, decision log) serves live
   simulated checkout traffic and learns online; the truth is kept beside every decision.
3. *Scoreboard*: baselines and learners trained online in the simulator, against the oracle and
   the full-information ceiling.
4. *Off-policy evaluation*: candidate policies scored on the engine's decision log, beside
   their true values on the same carts.
5. *A/B test*: a simulated experiment with the growth team's analysis.
6. *Multi-touch flows*: fixed flows, the per-touch bandit and the sequence learner on
   ``CartRecoverySequence-v0`` against the exact DP optimum, and the value of touch 2 and 3.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from engine import DecisionEngine
from engine.guardrails import GuardrailConfig
from engine.ope.logs import read_log_dataset
from policies import make_policy
from simulator.experiments import run_experiment
from simulator.experiments.report import format_table, write_report
from simulator.job.config import RunConfig
from simulator.job.engine_run import EngineRun, run_engine
from simulator.job.offline import offline_evaluation, truth_matrix
from simulator.job.plots import (
    engine_learning_curve,
    ope_truth_plot,
    profit_by_policy,
    profit_by_type,
    risk_reliability,
)
from simulator.job.warmup import Warmup, run_warmup
from simulator.training import run_policy
from simulator.training.plots import learning_curve_plot
from simulator.training.scoreboard import run_row

logger = logging.getLogger(__name__)

BASELINE_POLICIES = ("none", "rule", "uniform")


@dataclass
class JobResult:
    """What one run of the job produced: its folder, each stage's result, figures and timings."""

    out: Path
    warmup: Warmup
    engine: EngineRun
    scoreboard: pd.DataFrame
    ope: pd.DataFrame
    abtest_summary: str
    figures: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    sequence: pd.DataFrame | None = None
    touches: pd.DataFrame | None = None


def new_run_folder(parent: Path, stamp: str) -> Path:
    """Create and return ``parent/stamp``, or ``parent/stamp-2``, ``-3``... if taken.

    Two jobs started in the same second never share a folder (``mkdir`` either creates or fails).
    """
    parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        folder = parent / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise RuntimeError(f"no free run folder for {stamp!r} in {parent}")


def run_job(cfg: RunConfig, progress: bool = True) -> JobResult:
    """Run every step and write ``<out>/<timestamp>/report.html``; return what was measured."""
    out = new_run_folder(Path(cfg.out), time.strftime("%Y%m%d-%H%M%S"))
    shop = {
        "n_shoppers": cfg.shop.n_shoppers,
        "n_items": cfg.shop.n_items,
        "coupon_conditioning": cfg.shop.coupon_conditioning,
        "fatigue": cfg.shop.fatigue,
    }
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = round(now - clock, 1)
        clock = now

    warm = run_warmup(cfg.warmup.carts, cfg.seed, shop, progress)
    lap("warm-up")

    log_path = out / "decisions.db"
    guard = GuardrailConfig(
        exploration_floor=cfg.engine.exploration_floor,
        max_contacts=cfg.engine.max_contacts,
        daily_coupon_budget=cfg.engine.daily_coupon_budget,
    )
    engine = DecisionEngine(
        log_path,
        seed=cfg.seed,
        learner=cfg.engine.learner,
        cf=warm.cf,
        risk=warm.risk,
        guardrails=guard,
    )
    engine_run = run_engine(engine, cfg.engine.carts, cfg.seed, shop, log_path, progress)
    engine.save(out / "model.cw")
    engine.close()
    lap("engine")

    scoreboard, curves = _scoreboard(cfg, shop, progress)
    lap("scoreboard")

    ope_table = _offline_evaluation(cfg, engine_run)
    lap("off-policy evaluation")

    ab_config = {
        **shop,
        "n_shoppers": cfg.abtest.users,
        "carts_per_day": float(cfg.abtest.carts_per_day),
    }
    experiment = run_experiment(
        list(cfg.abtest.arms),
        users=cfg.abtest.users,
        days=cfg.abtest.days,
        seed=cfg.seed,
        config=ab_config,
        pre_days=cfg.abtest.pre_days,
        progress=progress,
    )
    analysis = experiment.analyse()
    ab_report = write_report(experiment, analysis, out / "abtest")
    lap("A/B test")

    sequence_board = touches = None
    if cfg.sequence.carts:
        from simulator.job.sequence_report import sequence_scoreboard, touch_increments

        sequence_board = sequence_scoreboard(
            cfg.sequence.policies, cfg.sequence.carts, cfg.seed, shop
        )
        touches = touch_increments(cfg.seed, shop)
        lap("sequence")

    figures = {
        "engine_curve": engine_learning_curve(
            engine_run.decisions, out / "engine_learning_curve.png"
        ),
        "by_type": profit_by_type(engine_run.decisions, out / "profit_by_type.png"),
        "by_policy": profit_by_policy(scoreboard, out / "profit_by_policy.png"),
        "scoreboard": learning_curve_plot(
            curves, out / "learning_curves.png", title="Policies learning online in the simulator"
        ),
        "ope": ope_truth_plot(ope_table, out / "ope_forest.png"),
        "abtest": out / "abtest" / "abtest_profit_effects.png",
        "risk": risk_reliability(warm, out / "risk_reliability.png"),
    }
    result = JobResult(
        out,
        warm,
        engine_run,
        scoreboard,
        ope_table,
        format_table(analysis),
        figures,
        seconds,
        sequence_board,
        touches,
    )
    from simulator.job.report import write_job_report

    write_job_report(result, cfg, ab_report)
    return result


#: The run scoreboard's columns after ``policy`` (a selection of the training scoreboard's row).
_BOARD_COLUMNS = (
    "value_last",
    "none",
    "best_static",
    "best_static_action",
    "rule",
    "full_information",
    "oracle",
    "gain_share",
    "conversion_last",
    "coupon_cost_last",
    "carts_per_second",
)


def _scoreboard(
    cfg: RunConfig, shop: dict[str, Any], progress: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, curves = [], []
    for name in (*BASELINE_POLICIES, *cfg.train.learners):
        result = run_policy(
            make_policy(name, seed=cfg.seed),
            cfg.train.carts,
            cfg.seed,
            shop,
            batch=cfg.train.batch,
            progress=progress,
        )
        row = run_row(result)
        rows.append({"policy": name, **{column: row[column] for column in _BOARD_COLUMNS}})
        curve = pd.DataFrame(result.curve)
        curve["policy"], curve["seed"] = name, cfg.seed
        curves.append(curve)
    return pd.DataFrame(rows), pd.concat(curves, ignore_index=True)


def _offline_evaluation(cfg: RunConfig, run: EngineRun) -> pd.DataFrame:
    """Score candidate policies on the engine's log, beside their true value on the same carts."""
    data = read_log_dataset(run.log_path)
    return offline_evaluation(
        data,
        truth_matrix(run.decisions, data),
        cfg.ope.targets,
        cfg.ope.confidence,
        cfg.seed,
        ci=cfg.ope.ci,
    )
