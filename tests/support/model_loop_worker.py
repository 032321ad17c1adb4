"""A checkout process for the model-loop tests, run as ``python model_loop_worker.py MODE ...``.

Modes:
- ``budget URL K N BUDGET FOLDER [THREADS]``: decide ``N`` carts of 50 USD (distinct shoppers, one
  UTC day) on ``THREADS`` threads with a coupon budget shared through the store; prints the coupon
  value this process gave (``$LOOP_PROCESSES`` processes meet at the barrier, default 4).
- ``caps URL K ROUNDS CAP FOLDER``: decide for the same 200 shoppers ``ROUNDS`` times, cap ``CAP``.
- ``serve URL POLL``: a following engine deciding every 20 ms; prints ``<unix time> <version>``
  each time the served model changes, until killed.

``FOLDER`` is where the processes of a test meet (a barrier), so they begin together.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

from engine import DecisionEngine
from engine.actions import COUPON_PERCENT
from engine.guardrails import GuardrailConfig

T0 = 1_767_225_600.0  # 2026-01-01 UTC


def cart(user: str, ts: float) -> dict:
    return {
        "user_id": user,
        "timestamp": ts,
        "cart": [{"item_id": "i1", "price": 50.0, "quantity": 1}],
        "channels": {"email": True, "sms": True, "push": True},
    }


def wait_until(start: float) -> None:
    while time.time() < start:
        time.sleep(0.005)


def barrier(folder: str, k: int, n: int = 4) -> None:
    """Wait until the ``n`` processes of a test have their engine ready."""
    Path(folder, f"ready-{k}").touch()
    while len(list(Path(folder).glob("ready-*"))) < n:
        time.sleep(0.005)


def budget(url: str, k: int, n: int, budget: float, folder: str, threads: int = 1) -> None:
    eng = DecisionEngine(
        store=url,
        seed=k,
        learner="linucb",
        salt="loop",
        guardrails=GuardrailConfig(
            daily_coupon_budget=budget, max_contacts=None, exploration_floor=0.9
        ),
    )
    barrier(folder, k, int(os.environ.get("LOOP_PROCESSES", "4")))
    given = [0.0] * threads

    def run(t: int) -> None:
        for i in range(t, n, threads):
            d = eng.decide(cart(f"b{k}-{i}", T0 + 3600.0 + i))
            if d.action in COUPON_PERCENT:
                given[t] += COUPON_PERCENT[d.action] / 100.0 * 50.0

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    errors = eng.guardrails.shared.state()["budget"]["store_errors"]
    eng.close()
    print(f"{sum(given):.2f} {errors}", flush=True)


def caps(url: str, k: int, rounds: int, cap: int, start: str) -> None:
    eng = DecisionEngine(
        store=url,
        seed=k,
        learner="linucb",
        salt="loop",
        guardrails=GuardrailConfig(max_contacts=cap, exploration_floor=0.9),
    )
    barrier(start, k)
    contacted = 0
    for r in range(rounds):
        for u in range(200):
            d = eng.decide(cart(f"s{u}", T0 + 60.0 * r + 0.001 * k))
            contacted += d.action != "none"
    errors = eng.guardrails.shared.state()["contact_caps"]["store_errors"]
    eng.close()
    print(f"{contacted} {errors}", flush=True)


def serve(url: str, poll: float) -> None:
    eng = DecisionEngine(
        store=url, seed=0, learner="linucb", salt="loop", follow_models=True,
        model_poll_seconds=poll, shared_guardrails=False,
    )  # fmt: skip
    seen = None
    i = 0
    while True:
        d = eng.decide(cart(f"v{i}", T0 + i))
        if d.model_version != seen:
            seen = d.model_version
            print(f"{time.time():.3f} {seen}", flush=True)
        i += 1
        time.sleep(0.02)


if __name__ == "__main__":
    mode, url, *rest = sys.argv[1:]
    if mode == "budget":
        threads = int(rest[4]) if len(rest) > 4 else 1
        budget(url, int(rest[0]), int(rest[1]), float(rest[2]), rest[3], threads)
    elif mode == "caps":
        caps(url, int(rest[0]), int(rest[1]), int(rest[2]), rest[3])
    else:
        serve(url, float(rest[0]))
