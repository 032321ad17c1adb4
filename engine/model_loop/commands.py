"""``cartwise learn`` (the trainer) and ``cartwise models`` (the registry) for a shared store.

Registered with the decision-log commands (:func:`engine.decision_log.commands.register`).

Example::

    cartwise learn  --store postgresql://host/db --learner vw --every 60
    cartwise models --store postgresql://host/db list
    cartwise models --store postgresql://host/db promote 12
    cartwise models --store postgresql://host/db rollback
"""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from engine.decision_log.store_api import is_postgres_url


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``learn`` and ``models`` sub-commands."""
    p = sub.add_parser(
        "learn",
        help="the trainer: learn from a shared store's settled decisions, publish models",
        description="Read the settled decisions of a PostgreSQL store from the trainer's "
        "checkpoint, learn, and publish versioned models to the store's registry (one trainer "
        "per store: a second one waits for the first one's lease).",
    )
    p.add_argument("--store", required=True, metavar="URL", help="postgresql:// store")
    p.add_argument("--learner", default="vw", help="vw, linucb, lints... (default vw)")
    p.add_argument(
        "--every",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds between training rounds (default 60)",
    )
    p.add_argument("--once", action="store_true", help="train on what is settled, then exit")
    p.add_argument(
        "--batch",
        type=int,
        default=2000,
        metavar="N",
        help="events per published model and checkpoint (default 2000)",
    )
    p.add_argument("--seed", type=int, default=0, help="learner seed (default 0)")
    p.add_argument("--name", default="default", help="checkpoint name (default 'default')")
    p.add_argument("--initial-model", metavar="PATH", help="saved model to start from")
    p.add_argument(
        "--publish-only",
        action="store_true",
        help="publish models without moving the serving pointer (promote them by hand)",
    )
    p.add_argument(
        "--settle-expired",
        action="store_true",
        help="give the default reward to decisions whose window closed (by the wall clock) "
        "without an outcome, so they are learned",
    )
    p.add_argument(
        "--contact-cost",
        type=float,
        default=0.25,
        metavar="USD",
        help="default reward of a contact with no outcome is minus this (default 0.25)",
    )
    p.set_defaults(func=_learn)

    m = sub.add_parser(
        "models",
        help="list, promote or roll back the models of a shared store",
        description="The model registry of a PostgreSQL store: serving engines with "
        "follow_models=True run the current version.",
    )
    m.add_argument("--store", required=True, metavar="URL", help="postgresql:// store")
    verbs = m.add_subparsers(dest="verb", metavar="VERB", required=True)
    verbs.add_parser("list", help="every published model; * marks the current one")
    promote = verbs.add_parser("promote", help="make VERSION current (after verifying it)")
    promote.add_argument("version", type=int, metavar="VERSION")
    verbs.add_parser("rollback", help="undo the latest move of the current pointer")
    m.set_defaults(func=_models)


def _check_store(url: str) -> str:
    if not is_postgres_url(url):
        raise ValueError(f"--store == {url!r}, must be a postgresql:// URL")
    return url


def _learn(args: argparse.Namespace) -> int:
    from engine.model_loop.trainer import Trainer

    trainer = Trainer(
        _check_store(args.store),
        learner=args.learner,
        seed=args.seed,
        batch=args.batch,
        name=args.name,
        initial_model=args.initial_model,
        promote=not args.publish_only,
        settle_expired=args.settle_expired,
        contact_cost=args.contact_cost,
    )
    stop = threading.Event()

    def _stop(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    results = trainer.run(every=args.every, once=args.once, stop=stop)
    learned = sum(r.learned for r in results)
    seconds = sum(r.seconds for r in results)
    last = results[-1] if results else None
    print(
        f"published {len(results)} model(s) from {learned:,} events"
        + (f" ({learned / seconds:,.0f} events/s)" if seconds > 0 else "")
        + (f"; latest version {last.version} ({last.model_version})" if last else "")
    )
    return 0


def _models(args: argparse.Namespace) -> int:
    from engine.model_loop import registry as model_registry

    url = _check_store(args.store)
    if args.verb == "list":
        for info in model_registry.list_models(url):
            parent = "-" if info.parent is None else str(info.parent)
            events = "-" if info.first_event is None else f"{info.first_event}..{info.last_event}"
            print(
                f"{'*' if info.current else ' '} {info.version:>5}  {info.model_version:<28} "
                f"sha256 {info.sha256[:12]}  parent {parent:>5}  events {events:<15} "
                f"n {info.n_events:>7}  {info.created_at:%Y-%m-%d %H:%M:%S}"
            )
        return 0
    if args.verb == "promote":
        before = model_registry.promote(url, args.version)
        print(f"current model: version {args.version} (was {before})")
        return 0
    now = model_registry.rollback(url)
    print(f"current model: version {now} (rolled back)")
    return 0
