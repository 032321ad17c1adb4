"""Coverage of off-policy intervals on the engine's own decision logs, over many seeds.

Each seed runs the ``cartwise run`` pipeline up to its section 4: the current-practice warm-up
(CF and risk models), the embedded :class:`engine.DecisionEngine` learning online on simulated
checkout traffic with its guardrails and exploration floor, and the job's off-policy evaluation
(:func:`simulator.job.offline.offline_evaluation`) of the configured targets on that log, beside
each target's true value on the same carts. The log is adaptive (propensities change as the
engine learns) and the shoppers' state depends on the engine's earlier actions (coupon
conditioning, contact fatigue), which is what the synthetic coverage tests do not have.

The default configuration is the ``--quick`` job (:data:`simulator.job.config.QUICK`) with
``engine.carts`` carts: a few seconds per seed.

>>> cfg = coverage_config(carts=500)
>>> cfg.engine.carts, cfg.shop.n_shoppers
(500, 3000)
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine import DecisionEngine
from engine.guardrails import GuardrailConfig
from engine.ope.logs import DEFAULT_REWARD_MODEL, read_log_dataset
from engine.ope.merge import DEFAULT_CI
from simulator.job.config import QUICK, RunConfig, load_config
from simulator.job.engine_run import run_engine
from simulator.job.offline import offline_evaluation, truth_matrix
from simulator.job.warmup import run_warmup

logger = logging.getLogger(__name__)

DEFAULT_CARTS = 4_000


def coverage_config(
    carts: int = DEFAULT_CARTS, overrides: Mapping[str, Any] | None = None
) -> RunConfig:
    """The ``--quick`` job configuration with ``carts`` engine carts (and any dotted overrides)."""
    return load_config(None, {**QUICK, "engine.carts": carts, **(overrides or {})})


def seed_table(
    seed: int,
    cfg: RunConfig,
    reward_models: Sequence[str] = (DEFAULT_REWARD_MODEL,),
    cis: Sequence[str] = (DEFAULT_CI,),
) -> pd.DataFrame:
    """The job's OPE table for one seed (``cfg.seed`` replaced by ``seed``).

    With ``seed``, ``reward_model`` and ``ci`` columns: one block of rows per reward model and
    interval method (``engine.ope`` ``ci`` values), all on the same log.
    """
    shop = {
        "n_shoppers": cfg.shop.n_shoppers,
        "n_items": cfg.shop.n_items,
        "coupon_conditioning": cfg.shop.coupon_conditioning,
        "fatigue": cfg.shop.fatigue,
    }
    warm = run_warmup(cfg.warmup.carts, seed, shop, progress=False)
    guard = GuardrailConfig(
        exploration_floor=cfg.engine.exploration_floor,
        max_contacts=cfg.engine.max_contacts,
        daily_coupon_budget=cfg.engine.daily_coupon_budget,
    )
    with tempfile.TemporaryDirectory(prefix="cartwise-ope-") as folder:
        log_path = Path(folder) / "decisions.db"
        engine = DecisionEngine(
            log_path,
            seed=seed,
            learner=cfg.engine.learner,
            cf=warm.cf,
            risk=warm.risk,
            guardrails=guard,
        )
        try:
            run = run_engine(engine, cfg.engine.carts, seed, shop, log_path, progress=False)
        finally:
            engine.close()
        data = read_log_dataset(log_path)
    truth = truth_matrix(run.decisions, data)
    tables = []
    for model in reward_models:
        for ci in cis:
            table = offline_evaluation(
                data, truth, cfg.ope.targets, cfg.ope.confidence, seed, reward_model=model, ci=ci
            )
            table.insert(0, "ci", ci)
            table.insert(0, "reward_model", model)
            table.insert(0, "seed", seed)
            tables.append(table)
    return pd.concat(tables, ignore_index=True)


def _seed_table_args(
    args: tuple[int, RunConfig, tuple[str, ...], tuple[str, ...]],
) -> pd.DataFrame:
    return seed_table(*args)


def coverage_table(
    seeds: Iterable[int],
    cfg: RunConfig | None = None,
    processes: int = 1,
    reward_models: Sequence[str] = (DEFAULT_REWARD_MODEL,),
    cis: Sequence[str] = (DEFAULT_CI,),
) -> pd.DataFrame:
    """:func:`seed_table` of every seed, concatenated.

    With ``processes > 1`` the seeds run in parallel; the result does not depend on it.
    """
    cfg = coverage_config() if cfg is None else cfg
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds is empty, need at least one")
    if processes < 1:
        raise ValueError(f"processes == {processes}, must be >= 1")
    if processes == 1:
        tables = [seed_table(s, cfg, reward_models, cis) for s in seeds]
    else:
        with ProcessPoolExecutor(processes) as pool:
            tables = list(
                pool.map(
                    _seed_table_args,
                    [(s, cfg, tuple(reward_models), tuple(cis)) for s in seeds],
                )
            )
    table = pd.concat(tables, ignore_index=True)
    table["error"] = table["value"] - table["true_value"]
    table["width"] = table["ci_high"] - table["ci_low"]
    return table


def coverage_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per reward model, interval method, target and estimator, summarised over seeds.

    Coverage, share of misses below the truth, mean error (bias) with its standard error, mean
    absolute error and mean interval width.
    """
    g = table.groupby(["reward_model", "ci", "target", "estimator"], sort=False)
    out = pd.DataFrame(
        {
            "seeds": g.size(),
            "coverage": g["covered"].mean(),
            "missed_low": g.apply(
                lambda f: float((f["ci_high"] < f["true_value"]).mean()), include_groups=False
            ),
            "bias": g["error"].mean(),
            "bias_se": g["error"].std(ddof=1) / np.sqrt(g.size()),
            "abs_error": g["error"].apply(lambda e: float(np.abs(e).mean())),
            "width": g["width"].mean(),
        }
    )
    return out


def binomial_band(
    trials: int, level: float = 0.95, sds: float = 3.0, design_effect: float = 1.0
) -> tuple[float, float]:
    """``level +- sds`` binomial standard deviations of a coverage measured on ``trials`` intervals.

    The deviation is inflated by ``design_effect`` for correlated intervals; the band is clipped to
    [0, 1].

    >>> [round(x, 3) for x in binomial_band(100)]
    [0.885, 1.0]
    """
    sd = design_effect * float(np.sqrt(level * (1 - level) / trials))
    return max(0.0, level - sds * sd), min(1.0, level + sds * sd)
