"""The learn -> deploy loop and the shared guardrails (issue 20), against a real PostgreSQL.

* Trainer throughput: ``Trainer`` (read settled events from the store, teach, publish and
  checkpoint) against the same learner taught the same events from memory, timed in the same
  run (ratio = what the store round trips and publishing add).
* ``decide`` with the store-wide guardrails (budget lease + contact-cap claim) against the same
  engine with per-process guardrails, in alternating blocks.
"""

import time

import numpy as np
import pytest
from model_loop_support import fill_store

from engine import DecisionEngine
from engine.actions import ACTION_NAMES
from engine.guardrails import GuardrailConfig
from engine.learners import make_learner
from engine.learners.tuned import tuned_settings
from engine.model_loop.trainer import Trainer

pytestmark = pytest.mark.postgres


def test_trainer_events_per_second(benchmark, pg_url):
    n = fill_store(pg_url, 1000 if benchmark.disabled else 4000, learner="linucb")
    rows = None
    for learner in ("linucb", "vw"):
        trainer = Trainer(pg_url, learner=learner, batch=1000, name=learner, promote=False)
        start = time.perf_counter()
        results = trainer.run(once=True)
        took = time.perf_counter() - start
        assert sum(r.learned for r in results) == n
        if rows is None:  # the same events, from memory: the reference
            from engine.decision_log import read_log
            from engine.features import FeatureBuilder
            from engine.ope.logs import read_log_dataset

            frame = read_log(pg_url)
            data = read_log_dataset(frame, ACTION_NAMES)
            names = FeatureBuilder().feature_names
            cols = [data.feature_names.index(f) for f in names]
            rows = (data.features[:, cols].astype(np.float64), data.actions, data.logged_probs)
            rewards = data.rewards
        base, options, floor = tuned_settings(learner)
        model = make_learner(base, ACTION_NAMES, names, seed=0, **options)
        divisor = FeatureBuilder().reward_divisor
        start = time.perf_counter()
        for x, a, p, r in zip(*rows, rewards, strict=True):
            model.update(x, int(a), max(p, floor or 0.0), float(r) / float(divisor(x)))
        ref = time.perf_counter() - start
        benchmark.extra_info[f"trainer_{learner}_events_per_s"] = round(n / took)
        benchmark.extra_info[f"memory_{learner}_events_per_s"] = round(n / ref)
        benchmark.extra_info[f"trainer_over_memory_{learner}"] = round(took / ref, 2)
    benchmark(lambda: None)


def test_decide_with_shared_guardrails(benchmark, pg_url):
    rules = GuardrailConfig(daily_coupon_budget=1e9, max_contacts=3)
    shared = DecisionEngine(store=pg_url, seed=0, learner="linucb", salt="b", guardrails=rules)
    local = DecisionEngine(
        store=pg_url, seed=0, learner="linucb", salt="b", guardrails=rules, shared_guardrails=False
    )
    n = 400 if benchmark.disabled else 4000

    def ctx(i):
        return {
            "user_id": f"u{i}",
            "timestamp": 1_767_225_600.0 + i,
            "cart": [{"item_id": "i1", "price": 50.0, "quantity": 1}],
            "channels": {"email": True, "sms": False, "push": False},
        }

    lat = {"shared": np.empty(n), "local": np.empty(n)}
    for first in range(0, n, 200):
        for name, eng in (("local", local), ("shared", shared)):
            for i in range(first, first + 200):
                start = time.perf_counter_ns()
                eng.decide(ctx(i + (0 if name == "local" else 10**6)))
                lat[name][i] = time.perf_counter_ns() - start
    claimed = shared.health()["guardrails"]["shared"]["contact_caps"]["claimed"]
    assert claimed > 0.5 * n  # the shared engine really went to the store
    for name in lat:
        benchmark.extra_info[f"{name}_p50_us"] = round(np.percentile(lat[name], 50) / 1e3, 1)
        benchmark.extra_info[f"{name}_p99_us"] = round(np.percentile(lat[name], 99) / 1e3, 1)
    benchmark.extra_info["shared_over_local_p50"] = round(
        np.percentile(lat["shared"], 50) / np.percentile(lat["local"], 50), 2
    )
    benchmark(lambda: None)
    shared.close()
    local.close()
