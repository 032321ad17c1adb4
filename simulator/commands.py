"""``cartwise`` sub-commands backed by the simulator (registered through an entry point)."""

from __future__ import annotations

import argparse

import pandas as pd

from simulator.summary import truth_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="simulate abandoned carts and print the ground truth by shopper type")
    p.add_argument("--carts", type=int, default=20_000, help="number of abandoned carts (default 20000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--shoppers", type=int, default=10_000, help="population size (default 10000)")
    p.set_defaults(func=_simulate)


def _simulate(args: argparse.Namespace) -> int:
    table = truth_table(args.carts, args.seed, {"n_shoppers": args.shoppers})
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.2f}".format):
        print(f"Expected profit per cart (USD) by shopper type and action, {args.carts} carts, seed {args.seed}")
        print(table.to_string())
    return 0
