"""The ``cartwise`` command line.

Commands come from plug-ins: every package that declares an entry point in the
``cartwise.commands`` group (see pyproject.toml) adds sub-commands. This keeps ``engine`` free of
any import of ``simulator``, while ``cartwise simulate``/``train``/... live next to the simulator.
A plug-in is a function ``register(subparsers) -> None`` that adds parsers whose ``func`` default
takes the parsed ``argparse.Namespace`` and returns an exit code.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

log = logging.getLogger(__name__)

COMMAND_GROUP = "cartwise.commands"


def build_parser() -> argparse.ArgumentParser:
    """The ``cartwise`` parser, with one subcommand group per ``cartwise.commands`` plug-in.

    A plug-in that fails to load is logged and left out, so the other commands still work.
    """
    parser = argparse.ArgumentParser(
        prog="cartwise",
        description="Cartwise: a decision engine for abandoned-cart recovery, "
        "with a shopper simulator, off-policy evaluation and A/B analysis.",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-v info, -vv debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for ep in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        try:
            ep.load()(sub)
        except (ImportError, AttributeError) as exc:  # a broken plug-in must not take the CLI down
            log.warning("cartwise: command group %r unavailable: %s", ep.name, exc)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``cartwise`` command line on ``argv`` (default: ``sys.argv``); return the exit code.

    Without a command it prints the help and returns 2; a ``ValueError`` from a command exits
    with status 2 and its message on one line.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ValueError as exc:  # bad input: one clear line, no traceback
        parser.exit(2, f"cartwise {args.command}: error: {exc}\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
