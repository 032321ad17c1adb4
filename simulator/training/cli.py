"""``cartwise train`` and ``cartwise compare`` (registered through the ``training`` entry point)."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from policies import available_policies, make_policy
from simulator.training.loop import TrainingResult, run_policy
from simulator.training.scoreboard import DEFAULT_POLICIES, compare_policies
from simulator.training.sequence_loop import (
    DEFAULT_SEQUENCE_POLICIES,
    compare_sequence_policies,
    markdown_sequence_table,
)

#: Mixture after the ``--shift`` change: price-sensitive shoppers become rare and forgetful ones
#: common, so coupons stop paying and reminders pay more.
SHIFT_MIXTURE = {"hesitant": 0.20, "price_sensitive": 0.10, "impulsive": 0.25, "forgetful": 0.45}


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``train`` and ``compare`` to the ``cartwise`` command line."""
    p = sub.add_parser(
        "train", help="train one policy online in the simulator and score it against baselines"
    )
    p.add_argument(
        "--policy",
        default="vw",
        help=f"policy name (default vw); one of {', '.join(available_policies())}",
    )
    p.add_argument(
        "--carts", type=int, default=100_000, help="abandoned carts to decide (default 100000)"
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the shop and the action sampling (default 0)"
    )
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="policy/learner option, e.g. --option alpha=0.3 (repeatable; VALUE parsed as JSON)",
    )
    p.add_argument(
        "--json", action="store_true", help="print the result as one JSON object on the last line"
    )
    _simulation_options(p)
    p.set_defaults(func=_train)

    c = sub.add_parser(
        "compare", help="run several policies over several seeds: the decision-quality scoreboard"
    )
    c.add_argument("--carts", type=int, default=20_000, help="carts per run (default 20000)")
    c.add_argument("--seeds", type=int, default=3, help="number of seeds, 0..K-1 (default 3)")
    c.add_argument(
        "--policies",
        default=None,
        help=f"comma-separated policy names (default {','.join(DEFAULT_POLICIES)}; "
        f"with --env sequence {','.join(DEFAULT_SEQUENCE_POLICIES)})",
    )
    c.add_argument(
        "--env",
        choices=("cart", "sequence"),
        default="cart",
        help="cart: CartRecovery-v0 (one decision per cart, default); "
        "sequence: CartRecoverySequence-v0 (a flow of touches, scored against the DP optimum)",
    )
    c.add_argument(
        "--json",
        action="store_true",
        help="with --env sequence: print the scoreboard as JSON on the last line",
    )
    c.add_argument(
        "--out", default="reports/compare", help="output folder (default reports/compare)"
    )
    _simulation_options(c)
    c.set_defaults(func=_compare)


def _simulation_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--batch", type=int, default=256, help="carts decided per model snapshot (default 256)"
    )
    p.add_argument(
        "--shoppers", type=int, default=10_000, help="shopper population (default 10000)"
    )
    p.add_argument("--no-conditioning", action="store_true", help="turn coupon conditioning off")
    p.add_argument(
        "--shift",
        action="store_true",
        help="shift the shopper-type mixture half-way through (price-sensitive -> forgetful)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def sim_config(args: argparse.Namespace) -> dict[str, Any]:
    """SimConfig fields from the shared options."""
    if args.carts < 1:
        raise ValueError(f"--carts == {args.carts}, must be >= 1")
    config: dict[str, Any] = {
        "n_shoppers": args.shoppers,
        "coupon_conditioning": not args.no_conditioning,
    }
    if args.shift:
        if args.carts < 2:
            raise ValueError(f"--carts == {args.carts}, must be >= 2 with --shift")
        config["mixture_shift"] = {"at_episode": args.carts // 2, "mixture": dict(SHIFT_MIXTURE)}
    return config


def parse_options(items: list[str]) -> dict[str, Any]:
    """Parse ``key=value`` options, each value as JSON or else as a plain string.

    Example:
        >>> parse_options(["alpha=0.3", 'interactions=["UA"]'])
        {'alpha': 0.3, 'interactions': ['UA']}
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--option == {item!r}, must be KEY=VALUE")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def _fmt(x: float, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def result_table(r: TrainingResult) -> str:
    """Plain-text table of one run: the policy and its baselines on the same carts."""
    ceiling = r.full_information - r.none
    rows = [
        (r.policy, r.value_last),
        ("none", r.none),
        (f"best static ({r.best_static_action})", r.best_static),
        ("rule", r.rule),
        ("full information", r.full_information),
        ("oracle", r.oracle),
    ]
    width = max(len(name) for name, _ in rows) + 2
    lines = [
        f"{r.policy}: {r.carts} carts, seed {r.seed}, batch {r.batch}, {r.seconds:.1f} s "
        f"({r.carts_per_second:,.0f} carts/s); "
        "last 20% of carts, true expected profit per cart (USD)",
        f"{'':{width}}{'value':>9}{'gain':>9}{'share':>9}",
    ]
    for name, value in rows:
        gain = value - r.none
        share = gain / ceiling if ceiling > 0 else float("nan")
        lines.append(f"{name:<{width}}{value:>9.3f}{gain:>9.3f}{_fmt(share):>9}")
    lines.append(
        f"conversion {r.conversion_last:.4f}, coupon cost {r.coupon_cost_last:.3f} USD/cart, "
        f"realised profit {r.profit_last:.3f} USD/cart"
    )
    if r.shift_at is not None:
        from simulator.training.scoreboard import shift_recovery

        rec = shift_recovery(r)
        lines.append(
            f"mixture shift at cart {r.shift_at}: share of the oracle's gain "
            f"{_fmt(rec['oracle_share_before'])} before, {_fmt(rec['oracle_share_after'])} right "
            f"after, {_fmt(rec['oracle_share_end'])} at the end; "
            f"back to 90% of the pre-shift share after {_fmt(rec['recovery_carts'], 0)} carts"
        )
    return "\n".join(lines)


def _train(args: argparse.Namespace) -> int:
    config = sim_config(args)
    policy = make_policy(args.policy, seed=args.seed, **parse_options(args.option))
    result = run_policy(
        policy,
        args.carts,
        args.seed,
        config=config,
        batch=args.batch,
        progress=not args.no_progress,
    )
    print(result_table(result))
    if args.json:
        print(json.dumps(result.to_dict()))
    return 0


def _compare(args: argparse.Namespace) -> int:
    default = DEFAULT_SEQUENCE_POLICIES if args.env == "sequence" else DEFAULT_POLICIES
    names = [n.strip() for n in (args.policies or ",".join(default)).split(",") if n.strip()]
    if args.seeds < 1:
        raise ValueError(f"--seeds == {args.seeds}, must be >= 1")
    if args.env == "sequence":
        board = compare_sequence_policies(
            names, carts=args.carts, seeds=args.seeds, config=sim_config(args)
        )
        print(markdown_sequence_table(board))
        if args.json:
            print(json.dumps({k: board[k] for k in ("optimal", "none", "policies")}))
        return 0
    board = compare_policies(
        names,
        carts=args.carts,
        seeds=args.seeds,
        config=sim_config(args),
        batch=args.batch,
        progress=not args.no_progress,
    )
    print(board.to_markdown())
    paths = board.write(args.out)
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0
