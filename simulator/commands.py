"""``cartwise`` sub-commands backed by the simulator (registered through an entry point)."""

from __future__ import annotations

import argparse

import pandas as pd

from simulator.summary import truth_table


def register(sub: argparse._SubParsersAction) -> None:
    """Add the simulator's sub-commands, ``simulate`` and ``run``, to the ``cartwise`` parser."""
    p = sub.add_parser(
        "simulate", help="simulate abandoned carts and print the ground truth by shopper type"
    )
    p.add_argument(
        "--carts", type=int, default=20_000, help="number of abandoned carts (default 20000)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--shoppers", type=int, default=10_000, help="population size (default 10000)")
    p.set_defaults(func=_simulate)

    r = sub.add_parser(
        "run", help="the main job: train, evaluate offline, A/B test, and write a report"
    )
    r.add_argument(
        "--config", default=None, help="TOML configuration (defaults built in; see cartwise.toml)"
    )
    r.add_argument(
        "--quick", action="store_true", help="small sizes: the whole job in under a minute"
    )
    r.add_argument("--seed", type=int, default=None, help="random seed (overrides the config)")
    r.add_argument("--out", default=None, help="reports folder (default: reports)")
    r.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config key, e.g. --set train.carts=50000 (repeatable)",
    )
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    r.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from simulator.job.config import QUICK, load_config
    from simulator.job.job import run_job
    from simulator.job.report import summary_lines

    overrides = dict(QUICK) if args.quick else {}
    for item in args.set:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        overrides[key.strip()] = _parse_value(raw.strip())
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.out is not None:
        overrides["out"] = args.out
    result = run_job(load_config(args.config, overrides), progress=not args.no_progress)
    print("\n".join(summary_lines(result)))
    return 0


def _parse_value(raw: str):
    import tomllib

    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _simulate(args: argparse.Namespace) -> int:
    table = truth_table(args.carts, args.seed, {"n_shoppers": args.shoppers})
    with pd.option_context(
        "display.width", 200, "display.max_columns", 20, "display.float_format", "{:.2f}".format
    ):
        print(
            "Expected profit per cart (USD) by shopper type and action, "
            f"{args.carts} carts, seed {args.seed}"
        )
        print(table.to_string())
    return 0
