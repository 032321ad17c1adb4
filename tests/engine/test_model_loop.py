"""The learn -> deploy loop (issue 20): trainer, model registry, serving engines that follow it.

Against a real PostgreSQL server (a throw-away schema per test). Stores are filled by an engine
on simulated carts (tests/support/model_loop_support.py); serving processes are
tests/support/model_loop_worker.py in ``serve`` mode.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from model_loop_support import fill_store, holdout, true_value

from engine import DecisionEngine
from engine.guardrails import GuardrailConfig
from engine.model_file import ModelFileError
from engine.model_loop import registry as model_registry
from engine.model_loop.trainer import Trainer

pytestmark = pytest.mark.postgres

WORKER = str(Path(__file__).parents[1] / "support" / "model_loop_worker.py")
CLI = [sys.executable, "-m", "engine.cli"]


def _cli(*args: str) -> str:
    out = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def _sql(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []


def test_trainer_killed_and_restarted_publishes_the_uninterrupted_model(pg_url):
    n = fill_store(pg_url, 1500, learner="vw")
    # reference: one uninterrupted run (its own checkpoint name, publishing without promoting)
    reference = Trainer(pg_url, learner="vw", batch=100, name="reference", promote=False)
    results = reference.run(once=True)
    assert sum(r.learned for r in results) == n and results[-1].last_event == n
    # the same training in a process killed with SIGKILL after its first published model
    args = ["learn", "--store", pg_url, "--once", "--batch", "100", "--name", "killed"]
    first = subprocess.Popen([*CLI, *args, "--publish-only"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and first.poll() is None:
        done = _sql(pg_url, "SELECT position FROM trainer_checkpoint WHERE name = 'killed'")
        if done:
            break
        time.sleep(0.005)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(30)
    at_kill = _sql(pg_url, "SELECT position FROM trainer_checkpoint WHERE name = 'killed'")[0][0]
    assert 0 < at_kill < n, "the kill must land mid-training"
    _cli(*args, "--publish-only")  # restarted: resumes after its checkpoint
    chain = _sql(
        pg_url,
        "SELECT first_event, last_event, sha256, n_events FROM model_registry"
        " WHERE trainer <> %s ORDER BY version",
        (reference.holder,),
    )
    ref = dict(
        _sql(
            pg_url,
            "SELECT last_event, sha256 FROM model_registry WHERE trainer = %s",
            (reference.holder,),
        )
    )
    # nothing learned twice, nothing skipped: the killed chain covers 1..n once
    assert [c[0] for c in chain] == list(range(1, n, 100))
    assert sum(c[3] for c in chain) == n
    # every model it published equals the uninterrupted run's at the same point, the last too
    assert all(sha == ref[last] for _, last, sha, _ in chain)
    assert chain[-1][1] == n
    state = _sql(pg_url, "SELECT position, n_events FROM trainer_checkpoint WHERE name = 'killed'")
    assert state == [(n, n)]


def test_two_trainers_started_at_once_one_trains_one_waits(pg_url):
    fill_store(pg_url, 500, learner="linucb")
    cmd = [*CLI, "-v", "learn", "--store", pg_url, "--learner", "linucb", "--every", "0.3"]
    procs = [subprocess.Popen([*cmd, "--batch", "100"], stderr=subprocess.PIPE) for _ in range(2)]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = _sql(pg_url, "SELECT position FROM trainer_checkpoint")
            if done and done[0][0] == 500:
                break
            time.sleep(0.05)
        time.sleep(1.0)  # both have run several rounds by now
        holders = _sql(pg_url, "SELECT DISTINCT trainer FROM model_registry")
        assert len(holders) == 1  # one trainer published everything
        active_pid = int(holders[0][0].rsplit(":", 1)[1])
        waiting = next(p for p in procs if p.pid != active_pid)
        active = next(p for p in procs if p.pid == active_pid)
        lines: list[str] = []
        took_over = threading.Event()

        def read() -> None:
            for raw in waiting.stderr:
                lines.append(raw.decode())
                if "took the lease" in lines[-1]:
                    took_over.set()

        threading.Thread(target=read, daemon=True).start()
        time.sleep(1.0)
        assert not took_over.is_set()  # still waiting while the other one lives
        os.kill(active.pid, signal.SIGKILL)  # its connection ends: the lease is free
        active.wait(30)
        assert took_over.wait(20), "".join(lines)[-2000:]
        assert any("another trainer holds the lease" in line for line in lines)
        waiting.send_signal(signal.SIGTERM)
        assert waiting.wait(30) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(30)


def _server_versions(proc: subprocess.Popen, want: str, timeout: float) -> float | None:
    """Read ``proc``'s lines until it reports model ``want``; the time it did (None: timeout)."""
    found: list[float] = []

    def read() -> None:
        for line in proc.stdout:
            t, version = line.split()
            if version == want:
                found.append(float(t))
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    return found[0] if found else None


def test_promote_reaches_every_server_within_the_poll_interval_and_rollback(pg_url):
    fill_store(pg_url, 600, learner="linucb")
    first = Trainer(pg_url, learner="linucb", batch=300)
    published = first.run(once=True)
    assert [r.version for r in published] == [1, 2] and all(r.promoted for r in published)
    poll = 0.5
    servers = [
        subprocess.Popen(
            [sys.executable, WORKER, "serve", pg_url, str(poll)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        v1, v2 = published[0].model_version, published[1].model_version
        for s in servers:  # each starts on the current model, version 2
            assert _server_versions(s, v2, 60) is not None
        delays = []
        for target, move in ((v1, ("promote", "1")), (v2, ("rollback",))):
            _cli("models", "--store", pg_url, *move)
            start = _sql(pg_url, "SELECT extract(epoch FROM changed_at)::float8 FROM model_current")
            start = start[0][0]  # when the pointer moved (same host clock as the servers)
            seen = [_server_versions(s, target, poll + 10) for s in servers]
            assert None not in seen
            delays.append(max(seen) - start)
        print(f"pick-up delays (poll {poll} s): {[f'{d:.2f}' for d in delays]}")
        assert max(delays) <= poll + 1.0
        listed = _cli("models", "--store", pg_url, "list")
        assert [line[0] for line in listed.splitlines()] == [" ", "*"]  # version 2 is current
    finally:
        for s in servers:
            s.kill()
            s.wait(30)


def test_corrupt_or_mismatched_model_is_refused_and_serving_goes_on(pg_url):
    fill_store(pg_url, 300, learner="linucb")
    Trainer(pg_url, learner="linucb", batch=300).run(once=True)
    eng = DecisionEngine(
        store=pg_url,
        learner="linucb",
        salt="loop",
        follow_models=True,
        model_poll_seconds=0.1,
        guardrails=GuardrailConfig(max_contacts=None),
    )
    try:
        deadline = time.monotonic() + 30
        while eng.health()["models"]["version"] != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        good = eng.model_version
        assert good.startswith("linucb-300-")
        # a damaged copy of version 1 (one byte flipped, the row's sha256 kept) made current
        _sql(
            pg_url,
            "INSERT INTO model_registry (version, model_version, sha256, parent, learner,"
            " learner_class, n_events, trainer, blob) SELECT 2, model_version, sha256, 1,"
            " learner, learner_class, n_events, 'test', overlay(blob placing '\\x00'::bytea"
            " from 200 for 1) FROM model_registry WHERE version = 1",
        )
        with pytest.raises(subprocess.CalledProcessError):  # promote verifies first
            subprocess.run(
                [*CLI, "models", "--store", pg_url, "promote", "2"], check=True, capture_output=True
            )
        # a sound model of another learner class (this engine serves LinUCB)
        other = Trainer(pg_url, learner="lints", batch=300, name="lints", promote=False)
        (lints,) = other.run(once=True)
        ctx = {
            "user_id": "u1",
            "timestamp": 1_767_225_600.0,
            "cart": [{"item_id": "i1", "price": 50.0, "quantity": 1}],
            "channels": {"email": True, "sms": False, "push": False},
        }
        for bad, refused in ((2, 1), (lints.version, 2)):
            _sql(
                pg_url,
                "UPDATE model_current SET version = %s,"
                " sha256 = (SELECT sha256 FROM model_registry WHERE version = %s)",
                (bad, bad),
            )
            deadline = time.monotonic() + 30
            while eng.health()["models"]["refused"] < refused and time.monotonic() < deadline:
                time.sleep(0.05)
            health = eng.health()["models"]
            assert health["refused"] == refused and health["version"] == 1
            d = eng.decide(ctx)
            assert not d.fallback and d.model_version == good  # the old model keeps serving
        assert "LinTS" in health["last_refused"] or "lints" in health["last_refused"].lower()
        with psycopg.connect(pg_url) as conn, pytest.raises(ModelFileError, match="sha256"):
            model_registry.load_model(conn, 2)
    finally:
        eng.close()


def test_learn_once_on_simulated_traffic_beats_the_initial_model(pg_url):
    fill_store(pg_url, 3000, learner="linucb", floor=0.6)
    out = _cli("learn", "--store", pg_url, "--learner", "linucb", "--once", "--batch", "1000")
    assert "from 3,000 events" in out
    carts = holdout(1500)
    rules = GuardrailConfig(max_contacts=None)
    initial = DecisionEngine(learner="linucb", seed=0, guardrails=rules)
    trained = DecisionEngine(learner="linucb", seed=0, guardrails=rules)
    with psycopg.connect(pg_url) as conn:
        version, sha = model_registry.current(conn)
        _, saved = model_registry.load_model(conn, version, sha)
    trained.install_model(saved, "current")
    before, after = true_value(initial, carts), true_value(trained, carts)
    print(f"simulator truth, profit per cart: initial {before:.3f}, trained {after:.3f}")
    assert after > before + 0.2


def test_trainer_settles_expired_windows_with_the_default_reward(pg_url):
    eng = DecisionEngine(
        store=pg_url, learner="linucb", salt="loop", guardrails=GuardrailConfig(max_contacts=None)
    )
    decisions = [
        eng.decide(
            {
                "user_id": f"u{i}",
                "timestamp": 1_767_225_600.0 + i,  # 2026-01-01: every 72 h window has closed
                "cart": [{"item_id": "i1", "price": 50.0, "quantity": 1}],
                "channels": {"email": True, "sms": False, "push": False},
            }
        )
        for i in range(40)
    ]
    eng.reward(decisions[0].decision_id, 9.0, timestamp=1_767_225_700.0)
    eng.close()
    plain = Trainer(pg_url, learner="linucb", batch=100, name="plain", promote=False)
    assert sum(r.learned for r in plain.run(once=True)) == 1  # only the joined outcome
    trainer = Trainer(pg_url, learner="linucb", batch=100, settle_expired=True, contact_cost=0.5)
    (result,) = trainer.run(once=True)
    assert result.learned == 40
    rewards = dict(_sql(pg_url, "SELECT decision_id, reward FROM outcomes"))
    for d in decisions[1:]:
        assert rewards[d.decision_id] == (0.0 if d.action == "none" else -0.5)
    assert rewards[decisions[0].decision_id] == 9.0


def test_hot_swaps_under_concurrent_decisions_vw(pg_url):
    fill_store(pg_url, 400, learner="vw")
    published = Trainer(pg_url, learner="vw", batch=200).run(once=True)
    versions = {r.model_version for r in published}
    eng = DecisionEngine(
        store=pg_url,
        learner="vw",
        salt="loop",
        follow_models=True,
        model_poll_seconds=0.02,
        guardrails=GuardrailConfig(max_contacts=None),
    )
    seen: set[str] = set()
    failures: list[str] = []
    stop = threading.Event()

    def decide(k: int) -> None:
        i = 0
        while not stop.is_set():
            d = eng.decide(
                {
                    "user_id": f"c{k}-{i}",
                    "timestamp": 1_767_225_600.0 + i,
                    "cart": [{"item_id": "i1", "price": 30.0 + k, "quantity": 1}],
                    "channels": {"email": True, "sms": True, "push": False},
                }
            )
            seen.add(d.model_version)
            if d.fallback:
                failures.append(d.reason or "fallback")
            i += 1

    threads = [threading.Thread(target=decide, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    try:
        for k in range(12):  # move the pointer back and forth while 4 threads decide
            model_registry.promote(pg_url, 1 + k % 2, verify=False)
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        health = eng.health()
        eng.close()
    assert not failures and health["errors"] == 0 and health["fallbacks"] == 0
    assert health["models"]["swaps"] >= 6 and health["models"]["refused"] == 0
    assert versions <= seen  # both versions served decisions


def test_rollback_walks_back_and_promote_is_undone_too(pg_url):
    fill_store(pg_url, 300, learner="linucb")
    published = Trainer(pg_url, learner="linucb", batch=100).run(once=True)
    assert [r.version for r in published] == [1, 2, 3]

    def now():
        with psycopg.connect(pg_url) as conn:
            return model_registry.current(conn)[0]

    assert now() == 3
    assert [model_registry.rollback(pg_url) for _ in range(2)] == [2, 1]
    with pytest.raises(ValueError, match="no earlier model version"):
        model_registry.rollback(pg_url)
    assert model_registry.promote(pg_url, 3) == 1 and now() == 3
    assert model_registry.rollback(pg_url) == 1  # undoes the promote
    with pytest.raises(ValueError, match="no such version"):
        model_registry.promote(pg_url, 9)
    listed = [(m.version, m.current, m.parent) for m in model_registry.list_models(pg_url)]
    assert listed == [(1, True, None), (2, False, 1), (3, False, 2)]
