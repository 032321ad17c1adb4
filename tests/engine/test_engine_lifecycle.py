"""Model lifecycle and the engine's use of the decision log: save/load, hot swap, threads, joins."""

import threading

import gymnasium as gym
import numpy as np
import pytest

import simulator  # noqa: F401  (registers CartRecovery-v0)
from engine import DecisionEngine, ModelFileError, read_log
from engine.guardrails import GuardrailConfig
from engine.learners import make_learner
from engine.learners.tuned import tuned_settings


def _train(eng, contexts, n=300):
    for i, ctx in enumerate(contexts[:n]):
        d = eng.decide(ctx)
        eng.reward(d.decision_id, float(i % 5) - 1.0)


def _shop_contexts(seed, n=500):
    env = gym.make("CartRecovery-v0", n_shoppers=2000, n_items=200)
    _, info = env.reset(seed=seed)
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        out.append(info["context"])
        env.step(int(rng.integers(0, 7)))
        _, info = env.reset()
    return out


#: The contact cap's memory of the engine's own recent contacts is runtime state, not part of the
#: model file: the round trip compares the model with the cap off on both sides (see below).
NO_CAP = GuardrailConfig(max_contacts=None)


@pytest.mark.parametrize("learner", ["vw", "linucb", "lints"])
@pytest.mark.parametrize("shop_seed", [None, 7])  # None: the shared fixture's shop (seed 123)
def test_save_load_round_trip_gives_identical_decisions(tmp_path, sim_contexts, learner, shop_seed):
    contexts = sim_contexts if shop_seed is None else _shop_contexts(shop_seed)
    eng = DecisionEngine(seed=3, learner=learner, guardrails=NO_CAP)
    _train(eng, contexts)
    version = eng.save(tmp_path / "model.cw")
    loaded = DecisionEngine.load(tmp_path / "model.cw", guardrails=NO_CAP)
    assert loaded.model_version == version
    for ctx in contexts[300:500]:
        a, b = eng.decide(ctx), loaded.decide(ctx)
        assert (a.action, a.probabilities) == (b.action, b.probabilities)
        eng.reward(a.decision_id, 2.0)
        loaded.reward(b.decision_id, 2.0)


def test_a_loaded_engine_does_not_remember_the_contacts_the_saved_one_sent(tmp_path):
    """The contact cap counts the engine's own recent decisions, which checkout's history may not
    show yet; that memory is not in the model file, so a freshly loaded engine lets through
    contacts the running one blocks (on this shop, seed 7: the round trip above then diverges;
    with the shared fixture's shop, seed 123, it happens not to)."""
    contexts = _shop_contexts(7)
    eng = DecisionEngine(seed=3, learner="linucb")
    _train(eng, contexts)
    eng.save(tmp_path / "model.cw")
    loaded = DecisionEngine.load(tmp_path / "model.cw")
    blocked_only_before_saving = 0
    for ctx in contexts[300:500]:
        a, b = eng.decide(ctx), loaded.decide(ctx)
        if set(a.probabilities) == {"none"} and len(b.probabilities) > 1:
            blocked_only_before_saving += 1
        assert len(a.probabilities) <= len(b.probabilities)  # the loaded engine never blocks more
        eng.reward(a.decision_id, 2.0)
        loaded.reward(b.decision_id, 2.0)
    assert blocked_only_before_saving > 0


def test_damaged_model_files_raise_and_the_engine_keeps_serving(tmp_path, sim_contexts):
    eng = DecisionEngine(seed=0, learner="linucb")
    _train(eng, sim_contexts, 100)
    path = tmp_path / "model.cw"
    version = eng.save(path)
    data = path.read_bytes()
    (tmp_path / "truncated.cw").write_bytes(data[: len(data) // 2])
    flipped = bytearray(data)
    flipped[-10] ^= 0xFF
    (tmp_path / "corrupt.cw").write_bytes(bytes(flipped))
    (tmp_path / "garbage.cw").write_bytes(b"hello")
    for name, message in [
        ("truncated.cw", "truncated"),
        ("corrupt.cw", "checksum"),
        ("garbage.cw", "not a Cartwise model"),
        ("missing.cw", "cannot be read"),
    ]:
        with pytest.raises(ModelFileError, match=message):
            eng.load_model(tmp_path / name)
        with pytest.raises(ValueError):
            DecisionEngine.load(tmp_path / name)
        assert eng.model_version == version
        assert not eng.decide(sim_contexts[0]).fallback


def test_save_is_atomic_no_temp_files_left(tmp_path, sim_contexts):
    eng = DecisionEngine(seed=0, learner="linucb")
    eng.save(tmp_path / "m.cw")
    eng.save(tmp_path / "m.cw")
    assert [p.name for p in tmp_path.iterdir()] == ["m.cw"]


def test_hot_swap_while_threads_decide(tmp_path, sim_contexts):
    eng = DecisionEngine(seed=0, learner="vw")
    _train(eng, sim_contexts, 200)
    path = tmp_path / "next.cw"
    trained = DecisionEngine(seed=1, learner="vw")
    _train(trained, sim_contexts, 400)
    new_version = trained.save(path)
    old_version = eng.model_version
    failures, versions = [], set()
    stop = threading.Event()

    def worker(k):
        i = k
        while not stop.is_set():
            d = eng.decide(sim_contexts[i % len(sim_contexts)])
            if d.fallback:
                failures.append(d.reason)
            versions.add(d.model_version)
            eng.reward(d.decision_id, 1.0)
            i += 4

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for _ in range(5):
        eng.load_model(path)
    stop.set()
    for t in threads:
        t.join()
    assert failures == []
    assert eng.model_version == new_version
    # Every decision used the old or the new model (the threads may stop before using the new one).
    assert versions and versions <= {old_version, new_version}
    assert eng.health()["swaps"] == 5


@pytest.mark.parametrize("durability", ["batch", "sync"])
def test_eight_threads_every_decision_and_reward_in_the_log_exactly_once(
    tmp_path, sim_contexts, durability
):
    path = tmp_path / "decisions.db"
    eng = DecisionEngine(path, seed=0, learner="vw", durability=durability)
    ids = [[] for _ in range(8)]
    per_thread = 400 if durability == "sync" else 1000

    def worker(k):
        for i in range(per_thread):
            d = eng.decide(sim_contexts[(k * per_thread + i) % len(sim_contexts)])
            assert eng.reward(d.decision_id, float(i % 3))
            ids[k].append(d.decision_id)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    eng.close()
    log = read_log(path)
    all_ids = [i for chunk in ids for i in chunk]
    assert len(all_ids) == 8 * per_thread == len(set(all_ids))
    assert len(log) == len(all_ids) and set(log["decision_id"]) == set(all_ids)
    assert log["reward"].notna().all()
    assert eng.learner.n_updates == len(all_ids)


def test_log_rows_carry_features_probabilities_and_version(tmp_path, sim_contexts):
    path = tmp_path / "d.db"
    with DecisionEngine(path, seed=0, learner="linucb") as eng:
        decisions = [eng.decide(ctx) for ctx in sim_contexts[:50]]
        eng.reward(decisions[0].decision_id, 9.5)
    log = read_log(path).set_index("decision_id")
    row = log.loc[decisions[0].decision_id]
    assert row["action"] == decisions[0].action and row["reward"] == 9.5
    assert row["probability"] == pytest.approx(decisions[0].probability)
    assert row["model_version"] == decisions[0].model_version
    p_cols = [c for c in log.columns if c.startswith("p_")]
    np.testing.assert_allclose(log[p_cols].sum(axis=1), 1.0)
    assert any(c.startswith("f_") for c in log.columns)
    assert (
        log.loc[decisions[1].decision_id, "reward"] != log.loc[decisions[1].decision_id, "reward"]
    )  # NaN: open
    raw_ids = {ctx["user_id"] for ctx in sim_contexts[:50]}
    assert not raw_ids & set(log["user_hash"])  # only salted hashes are stored


@pytest.mark.parametrize("per_value", [True, False])
def test_the_learner_is_taught_the_reward_per_cart_value(sim_contexts, per_value):
    """An engine's LinUCB equals one fed the same features with reward / divisor (per_value on),
    or the reward itself (off); the setting survives save and load."""
    eng = DecisionEngine(seed=0, learner="linucb", reward_per_value=per_value)
    rows = []
    for i, ctx in enumerate(sim_contexts[:200]):
        d = eng.decide(ctx)
        value = 0.05 * sum(line["price"] * line["quantity"] for line in ctx["cart"]) - (i % 3)
        eng.reward(d.decision_id, value)
        x = eng.features.transform(ctx)
        rows.append((x, eng.action_names.index(d.action), d.probability, value))
    X = np.stack([r[0] for r in rows])
    divisor = eng.features.reward_divisor(X)
    assert (divisor != 1.0).any() == per_value
    base, options, _ = tuned_settings("linucb")
    twin = make_learner(base, eng.action_names, eng.features.feature_names, seed=0, **options)
    twin.update_batch(
        X,
        np.array([r[1] for r in rows]),
        np.array([r[2] for r in rows]),
        np.array([r[3] for r in rows]) / divisor,
    )
    np.testing.assert_allclose(eng.learner.coefficients, twin.coefficients, rtol=1e-9, atol=1e-12)


def test_reward_per_value_is_saved_with_the_model(tmp_path, sim_contexts):
    eng = DecisionEngine(seed=0, learner="linucb", reward_per_value=False)
    _train(eng, sim_contexts, n=50)
    eng.save(tmp_path / "plain.cw")
    assert DecisionEngine.load(tmp_path / "plain.cw").features.reward_per_value is False
    per_value = DecisionEngine(seed=0, learner="linucb")
    assert per_value.features.reward_per_value is True
    per_value.load_model(tmp_path / "plain.cw")  # a hot swap brings the model's own target along
    assert per_value.features.reward_per_value is False


def test_windows_close_with_the_default_reward_and_the_learner_sees_it(tmp_path, sim_contexts):
    path = tmp_path / "d.db"
    eng = DecisionEngine(path, seed=0, learner="linucb", contact_cost=0.3, attribution_window=3600)
    decisions = [eng.decide(ctx) for ctx in sim_contexts[:40]]
    eng.reward(decisions[0].decision_id, 4.0, timestamp=sim_contexts[0]["timestamp"] + 60)
    latest = max(ctx["timestamp"] for ctx in sim_contexts[:40])
    closed = eng.close_expired(latest + 7200)
    assert closed == 39 and eng.learner.n_updates == 40
    eng.close()
    log = read_log(path).set_index("decision_id")
    for d in decisions[1:]:
        assert log.loc[d.decision_id, "reward"] == (0.0 if d.action == "none" else -0.3)
    assert log.loc[decisions[0].decision_id, "reward"] == 4.0


def test_order_events_keyed_by_user_join_the_latest_open_decision(tmp_path, sim_contexts):
    eng = DecisionEngine(tmp_path / "d.db", seed=0, learner="linucb")
    ctx = sim_contexts[0]
    d = eng.decide(ctx)
    joined = eng.outcome(ctx["user_id"], 12.0, ctx["timestamp"] + 3600, order_id="o-1")
    assert joined == d.decision_id
    assert eng.outcome("someone-else", 3.0, ctx["timestamp"] + 60) is None
    eng.close()


def test_full_disk_decide_keeps_serving_and_nothing_committed_is_lost(tmp_path, sim_contexts):
    """A page quota gives a genuine SQLITE_FULL: decide keeps serving, health reports it, and once
    space is back every decision is written exactly once."""
    import sqlite3

    from engine.decision_log import DecisionLog
    from engine.decision_log.store import default_connect

    path = tmp_path / "full.db"
    with DecisionEngine(path, seed=0, learner="linucb", durability="sync") as eng:
        first = [eng.decide(ctx).decision_id for ctx in sim_contexts[:20]]
    quota = {"pages": sqlite3.connect(path).execute("PRAGMA page_count").fetchone()[0] + 2}

    def connect(p):
        conn = default_connect(p)
        if quota["pages"] is not None:
            conn.execute(f"PRAGMA max_page_count = {quota['pages']}")
        return conn

    log = DecisionLog(path, durability="sync", salt="s", _connect=connect)
    eng = DecisionEngine(seed=0, learner="linucb", log=log)
    later = []
    for ctx in sim_contexts[20:600]:
        d = eng.decide(ctx)
        assert not d.fallback
        later.append(d.decision_id)
    health = eng.health()["log"]
    assert health["failed_writes"] > 0 and "full" in health["last_error"]
    committed = set(read_log(path)["decision_id"])
    assert set(first) <= committed  # what was committed before the disk filled is intact
    quota["pages"] = None  # space freed
    assert log.flush()
    eng.close()
    assert set(read_log(path)["decision_id"]) == set(first) | set(later)


def test_sampling_uniforms_are_the_seeded_stream_one_per_decision(tmp_path):
    """Uniforms are drawn a block at a time, yet form the seed's one-draw-per-decision stream,
    also across a save and load in the middle of a block."""
    eng = DecisionEngine(seed=11, learner="linucb")
    reference = np.random.default_rng(11)
    drawn = [eng._uniforms.next() for _ in range(70)]
    eng.save(tmp_path / "model.cw")
    loaded = DecisionEngine.load(tmp_path / "model.cw")
    drawn += [loaded._uniforms.next() for _ in range(70)]
    assert drawn == [reference.random() for _ in range(140)]
