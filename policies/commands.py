"""``cartwise evaluate``: off-policy evaluation of a policy on a decision log.

Registered through the ``cartwise.commands`` entry point ``evaluation``. The target is either a
policy of :func:`policies.make_policy` (``--policy``) or a saved ``DecisionEngine`` model
(``--model``). A model is evaluated as the learner's own probabilities (what the engine samples
from before its exploration floor), or as its exploit action with ``--greedy``; it decides from
the features the logging engine wrote to the log.

With ``--backend`` (or a Parquet ``--log`` folder) the log is evaluated by
:func:`engine.ope.evaluate_lake`: ``memory``, ``stream`` (bounded memory) or ``spark``, with a
progress bar, optional strata (``--by model_version day``) and the same figures on every backend.

Example::

    cartwise evaluate --log decisions.sqlite --policy rule --out reports/ope
    cartwise evaluate --log logs/ --model model.cw --backend spark --spark-master 'local[2]'
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

TABLE_COLUMNS = ("value", "ci_low", "ci_high", "se", "ess", "max_weight")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` command to the ``cartwise`` parser."""
    p = sub.add_parser(
        "evaluate",
        help="estimate a policy's value on a decision log (off-policy evaluation)",
        description="Estimate what a policy would have earned per cart on the decisions of a log "
        "(IPW, SNIPW, DM, DR, ... with confidence intervals), print the table and draw a forest "
        "plot with the logging policy's mean reward as reference.",
    )
    p.add_argument(
        "--log",
        required=True,
        metavar="PATH",
        help="decision log: the engine's SQLite file, its Parquet export, or a Parquet "
        "folder written by cartwise export",
    )
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--policy",
        metavar="NAME",
        help="policy name for policies.make_policy (e.g. rule, uniform, none, static:coupon_10)",
    )
    target.add_argument(
        "--model",
        metavar="FILE",
        help="saved DecisionEngine model: evaluates its learner's own probabilities "
        "(before the engine's exploration floor); see --greedy",
    )
    p.add_argument(
        "--greedy",
        action="store_true",
        help="with --model: evaluate the learner's exploit action instead",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        default="reports/evaluate",
        help="directory for the forest plot (PNG) and the table (CSV) (default reports/evaluate)",
    )
    p.add_argument("--confidence", type=float, default=0.95, help="interval level (default 0.95)")
    p.add_argument(
        "--ci",
        choices=("auto", "analytic", "skew", "floor", "bootstrap"),
        default="auto",
        help="intervals: auto (Hall's skewness-corrected for IPW and SNIPW, variance-floored "
        "normal for DR and SNDR (normal on a lake), normal for the others; default), analytic "
        "(normal), skew (Hall's for all), floor or bootstrap (floor and bootstrap without "
        "--backend only)",
    )
    p.add_argument(
        "--estimators",
        nargs="+",
        metavar="NAME",
        default=None,
        help="among ipw snipw dm dr sndr switch-dr dr-os (default: ipw snipw dm dr sndr switch-dr)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the policy and of the reward model's cross-fitting folds (default 0)",
    )
    p.add_argument(
        "--backend",
        choices=("memory", "stream", "spark"),
        default=None,
        help="evaluate with engine.ope.evaluate_lake (default for a folder: stream)",
    )
    p.add_argument(
        "--spark-master",
        default="local[2]",
        metavar="URL",
        help="with --backend spark: Spark master (default local[2])",
    )
    p.add_argument(
        "--by",
        nargs="+",
        default=(),
        metavar="COLUMN",
        help="with --backend: strata, e.g. model_version day",
    )
    p.add_argument(
        "--reward-rows",
        type=_reward_rows,
        default=None,  # evaluate_lake's own default (not imported when the parser is built)
        metavar="N|all",
        help="with --backend: rows of a Parquet log the DR reward model is fitted on, a sample "
        "spread over the log (default 262,144; all: every row)",
    )
    p.set_defaults(func=_evaluate)


def _reward_rows(text: str) -> int | str:
    if text.strip().lower() == "all":
        return "all"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--reward-rows == {text!r}, must be a positive integer or 'all'"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"--reward-rows == {text!r}, must be >= 1 or 'all'")
    return value


def _reward_rows_option(value: int | str | None) -> dict[str, int | None]:
    """``evaluate_lake``'s ``reward_rows`` for ``--reward-rows`` (none when not given)."""
    if value is None:
        return {}
    return {"reward_rows": None if value == "all" else int(value)}


def _target(args: argparse.Namespace) -> tuple[Any, str, str]:
    """The target policy, its label and a file-name stem for the outputs."""
    if args.model is None:
        if args.greedy:
            raise ValueError("--greedy applies to --model only")
        from policies import make_policy

        return make_policy(args.policy, seed=args.seed), f"policy {args.policy}", args.policy
    path = Path(args.model)
    if not path.is_file():
        raise ValueError(f"--model == {args.model!r}: no such file")
    from engine import DecisionEngine
    from policies import LearnerPolicy

    engine = DecisionEngine.load(path)
    policy = LearnerPolicy(
        engine.learner,
        features=engine.features,
        greedy=args.greedy,
        action_names=engine.action_names,
    )
    suffix = " (greedy)" if args.greedy else ""
    return (
        policy,
        f"model {path.name}{suffix}",
        f"model_{path.stem}{'_greedy' if args.greedy else ''}",
    )


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_")


def _evaluate(args: argparse.Namespace) -> int:
    from engine.ope import forest_plot
    from engine.ope.logs import evaluate_decision_log, read_log_dataset
    from engine.ope.merge import describe_intervals

    log_path = Path(args.log)
    if args.backend is not None or log_path.is_dir():
        return _evaluate_lake(args, log_path)
    if args.by:
        raise ValueError("--by applies with --backend only")
    if not log_path.is_file():
        raise ValueError(f"--log == {args.log!r}: no such file")
    target, label, name = _target(args)
    data = read_log_dataset(log_path)
    table = evaluate_decision_log(
        data,
        target,
        estimators=args.estimators,
        confidence=args.confidence,
        ci=args.ci,
        seed=args.seed,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "ope_" + _slug(name)
    table.to_csv(out / f"{stem}.csv")
    title = f"{label} on {log_path.name}\nmean profit per cart, USD ({data.n:,} decisions)"
    png = forest_plot(table, out / f"{stem}.png", title=title)
    dropped = data.dropped
    intervals = describe_intervals(table.attrs["ci"], table.attrs["ci_methods"])
    print(f"Off-policy evaluation of {label} on {log_path}")
    print(
        f"{data.n_read:,} decisions read, {data.n:,} evaluated "
        f"(dropped {dropped['fallback']:,} fallback, {dropped['no_reward']:,} without reward); "
        f"{table.attrs['confidence']:.0%} {intervals}; "
        "value = mean profit per cart"
    )
    print("on-policy = mean logged reward, the logging policy's own value (the reference)")
    formats = {c: "{:.4f}".format for c in ("value", "ci_low", "ci_high", "se")}
    formats.update(ess="{:,.0f}".format, max_weight="{:.3g}".format)
    print(table.loc[:, list(TABLE_COLUMNS)].to_string(formatters=formats, na_rep="-"))
    print(f"forest plot: {png}")
    print(f"table: {out / (stem + '.csv')}")
    return 0


def _evaluate_lake(args: argparse.Namespace, log_path: Path) -> int:
    from engine.ope import evaluate_lake, forest_plot
    from engine.ope.merge import describe_intervals

    if args.ci in ("bootstrap", "floor"):
        raise ValueError(f"--ci {args.ci} applies without --backend only (not on a lake)")
    if not log_path.exists():
        raise ValueError(f"--log == {args.log!r}: no such file or folder")
    if args.model is None and args.greedy:
        raise ValueError("--greedy applies to --model only")
    if args.model is not None and not Path(args.model).is_file():
        raise ValueError(f"--model == {args.model!r}: no such file")
    backend = args.backend or "stream"
    policy = args.model if args.model is not None else args.policy
    estimators = args.estimators if args.estimators is not None else ("ipw", "snipw", "dr")
    table = evaluate_lake(
        log_path,
        policy,
        estimators=estimators,
        backend=backend,
        by=tuple(args.by),
        confidence=args.confidence,
        ci=args.ci,
        seed=args.seed,
        greedy=args.greedy,
        spark_master=args.spark_master,
        progress=True,
        **_reward_rows_option(args.reward_rows),
    )
    label = table.attrs["policy"] + (" (greedy)" if args.greedy else "")
    name = (
        ("model_" + Path(args.model).stem + ("_greedy" if args.greedy else ""))
        if args.model
        else args.policy
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "ope_" + _slug(name)
    table.to_csv(out / f"{stem}.csv")
    total = table.xs(("(all)",) * len(args.by), level=list(args.by)) if args.by else table
    n = int(total["n"].iloc[0])
    png = forest_plot(
        total,
        out / f"{stem}.png",
        title=f"{label} on {log_path.name}\nmean profit per cart, USD ({n:,} decisions)",
    )
    intervals = describe_intervals(table.attrs["ci"], table.attrs["ci_methods"])
    print(f"Off-policy evaluation of {label} on {log_path} (backend {backend})")
    print(
        f"{n:,} decisions evaluated (dropped {table.attrs['n_fallback']:,} fallback, "
        f"{table.attrs['n_no_reward']:,} without reward); {table.attrs['confidence']:.0%} "
        f"{intervals}; value = mean profit per cart"
    )
    formats = {c: "{:.4f}".format for c in ("value", "ci_low", "ci_high", "se")}
    formats.update(ess="{:,.0f}".format, max_weight="{:.3g}".format, w_p99="{:.3g}".format)
    print(table.loc[:, [*TABLE_COLUMNS, "w_p99"]].to_string(formatters=formats, na_rep="-"))
    print(f"forest plot: {png}")
    print(f"table: {out / (stem + '.csv')}")
    return 0
