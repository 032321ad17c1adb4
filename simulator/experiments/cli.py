"""``cartwise abtest``: simulate an A/B test of policies, analyse it and write an HTML report."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]


def _arm_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if len(names) < 2:
        raise argparse.ArgumentTypeError(
            f"--arms == {text!r}, need at least two comma-separated names"
        )
    return names


def _weights(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--weights == {text!r}, must be comma-separated numbers"
        ) from None


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``abtest`` sub-command."""
    p = sub.add_parser(
        "abtest",
        help="simulate an A/B test of policies in one shop and report it",
        description="Simulate a logged pre-period then an A/B test of the given policies "
        "(the first is control) in one simulated shop; print the effects beside the true "
        "effect and the off-policy pre-screen, and write DIR/abtest.html.",
    )
    p.add_argument(
        "--arms",
        type=_arm_list,
        default=["none", "rule", "vw"],
        help="comma-separated policy names, control first (default none,rule,vw)",
    )
    p.add_argument("--users", type=int, default=10_000, help="shoppers in the shop (default 10000)")
    p.add_argument("--days", type=int, default=14, help="days of the test (default 14)")
    p.add_argument(
        "--pre-days", type=int, default=7, help="days of the logged pre-period (default 7)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("reports/abtest"),
        help="directory of the HTML report (default reports/abtest)",
    )
    p.add_argument(
        "--weights",
        type=_weights,
        default=None,
        help="traffic shares per arm, comma-separated (default equal)",
    )
    p.add_argument(
        "--exploration",
        type=float,
        default=0.1,
        help="uniform exploration mixed into the pre-period's rule policy (default 0.1)",
    )
    p.add_argument(
        "--carts-per-day",
        type=float,
        default=None,
        help="abandoned carts per day (default: the simulator's, 350)",
    )
    p.add_argument("--confidence", type=float, default=0.95, help="interval level (default 0.95)")
    p.set_defaults(func=_abtest)


def _abtest(args: argparse.Namespace) -> int:
    from simulator.experiments.experiment import run_experiment
    from simulator.experiments.report import format_table, write_report

    config = {} if args.carts_per_day is None else {"carts_per_day": args.carts_per_day}
    result = run_experiment(
        args.arms,
        users=args.users,
        days=args.days,
        seed=args.seed,
        config=config,
        pre_days=args.pre_days,
        progress=True,
        weights=args.weights,
        exploration=args.exploration,
        confidence=args.confidence,
    )
    analysis = result.analyse(confidence=args.confidence)
    print(
        f"A/B test: {len(result.carts)} carts of {result.carts['user_id'].nunique()} shoppers "
        f"over {args.days} days, after a {args.pre_days}-day pre-period "
        f"({len(result.pre_log)} logged carts)"
    )
    print(format_table(analysis))
    path = write_report(result, analysis, args.out)
    print(f"report: {path}")
    return 0
