"""Hostile input never reaches checkout as an exception; stored reasons never hold an id.

Covers ``decide`` on malformed contexts (huge ints, numpy arrays, hostile objects, deep nesting,
huge lists, surrogates, bytes), ``reward`` on malformed arguments (and a corrected retry after a
failed call), hot swaps between models with different feature sets racing ``reward``, the
decision log holding no raw identifier, and the development-salt warning.
"""

import contextlib
import copy
import logging
import re
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import DecisionEngine, read_log
from engine.cf import CFModel, interactions_from_contexts
from engine.context import ContextError

BRACKETED_DIGITS = re.compile(r"\[\d+\]")


class Hostile:
    """Every dunder a validator might touch raises."""

    def __repr__(self):
        raise RuntimeError("repr")

    def __bool__(self):
        raise RuntimeError("bool")

    def __eq__(self, other):
        raise RuntimeError("eq")

    def __hash__(self):
        raise RuntimeError("hash")

    def __len__(self):
        raise RuntimeError("len")


class HostileStr(str):
    def __len__(self):
        raise RuntimeError("len")

    def __repr__(self):
        raise RuntimeError("repr")


def _deep(n):
    value = []
    for _ in range(n):
        value = [value]
    return value


HUGE_LIST = list(range(10_000_000))


def _set(ctx, path, value):
    """A copy of ``ctx`` with ``value`` at ``path`` (keys and indices); only the containers on
    the path are copied (``value`` itself is never copied: it may be huge or hostile)."""
    if not path:
        return value
    out = copy.copy(ctx)
    out[path[0]] = _set(ctx[path[0]], path[1:], value)
    return out


def _with_history(ctx):
    out = copy.deepcopy(ctx)
    out["history"] = dict(out.get("history") or {})
    out["history"]["orders"] = [
        {"timestamp": 1.0, "items": ["i1"], "value": 10.0, "coupon_percent": 5},
        {"timestamp": 2.0, "items": ["i2"], "value": 20.0},
    ]
    out["history"]["contacts"] = [{"timestamp": 1.0, "action": "email", "converted": False}]
    out["session"] = {"device": "mobile", "hour": 3, "session_seconds": 10.0}
    out["channels"] = {"email": True, "sms": False, "push": True}
    return out


# The classes of issue 18, each with the field path its fallback must be counted under.
NAMED_CASES = [
    (("cart", 0, "price"), -(10**400), "cart[].price"),
    (("cart", 0, "price"), 10**400, "cart[].price"),
    (("session", "session_seconds"), -(10**400), "session.session_seconds"),
    (("timestamp",), 10**400, "timestamp"),
    (
        ("history", "orders", 0, "coupon_percent"),
        np.array([5, 10]),
        "history.orders[].coupon_percent",
    ),
    (("user_id",), Hostile(), "user_id"),
    (("user_id",), HostileStr("abc"), "user_id"),
    (("user_id",), _deep(1_000), "user_id"),
    (("user_id",), HUGE_LIST, "user_id"),
    (("user_id",), "\ud800", "user_id"),
    (("user_id",), b"john.smith@example.com", "user_id"),
    (("cart", 1, "quantity"), np.array(1), "cart[].quantity"),
    (("history", "orders", 1, "value"), 10**400, "history.orders[].value"),
    (("history", "contacts", 0, "timestamp"), 10**400, "history.contacts[].timestamp"),
]


@pytest.fixture(scope="module")
def base_context(sim_contexts):
    ctx = _with_history(sim_contexts[0])
    ctx["cart"] = [dict(ctx["cart"][0]), dict(ctx["cart"][0])]
    return ctx


@pytest.mark.parametrize(
    "path, value, key", NAMED_CASES, ids=[c[2] + "-" + type(c[1]).__name__ for c in NAMED_CASES]
)
def test_named_bad_inputs_fall_back_counted_under_their_field(base_context, path, value, key):
    eng = DecisionEngine(seed=0, learner="linucb")
    assert not eng.decide(base_context).fallback
    ctx = _set(base_context, path, value)
    start = time.perf_counter()
    d = eng.decide(ctx)
    assert time.perf_counter() - start < 0.2  # never repr'd whole
    assert d.fallback and d.action == "none"
    health = eng.health()
    assert health["fallbacks"] == 1 and health["errors"] == 0
    assert health["fallback_reasons"] == {key: 1}
    strict = DecisionEngine(seed=0, learner="linucb", strict=True)
    with pytest.raises(ContextError) as info:
        strict.decide(ctx)
    assert info.value.field_path == key


def test_cart_value_beyond_float_range_is_rejected(base_context):
    eng = DecisionEngine(seed=0, learner="linucb")
    ctx = _set(_set(base_context, ("cart", 0, "price"), 10**308), ("cart", 0, "quantity"), 10)
    d = eng.decide(ctx)
    assert d.fallback and eng.health()["fallback_reasons"] == {"cart": 1}


# ------------------------------------------------------------------ property test: decide

_floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [1e308, -1e308, 5e-324, -0.0]
)
_ints = (
    st.integers()
    | st.sampled_from([10**400, -(10**400), 2**63, -(2**63)])
    | st.just(0).map(lambda _: 10**5000)
)
_numpy = st.sampled_from(
    [
        np.array([5, 10]),
        np.array(1.0),
        np.float32("nan"),
        np.int64(3),
        np.float64(1e300),
        np.bool_(True),
        np.array([]),
        np.uint8(255),
        np.float16("inf"),
    ]
)
_texts = st.text(max_size=300) | st.sampled_from(["\ud800", "x" * 257, "", "\x00", "é" * 256])
HOSTILE_VALUES = (
    _floats
    | _ints
    | _numpy
    | _texts
    | st.binary(max_size=50)
    | st.booleans()
    | st.none()
    | st.builds(Hostile)
    | st.builds(HostileStr, st.just("x"))
    | st.builds(object)
    | st.sampled_from([0, 1, 2]).map(lambda i: (_deep(1_000), HUGE_LIST, [1, 2])[i])
    | st.recursive(
        st.none() | st.integers() | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
        ),
        max_leaves=10,
    )
)
PATHS = [
    (),
    ("user_id",),
    ("timestamp",),
    ("cart",),
    ("cart", 0),
    ("cart", 1, "price"),
    ("cart", 0, "quantity"),
    ("cart", 1, "item_id"),
    ("cart", 0, "category"),
    ("session",),
    ("session", "device"),
    ("session", "hour"),
    ("session", "session_seconds"),
    ("session", "product_views"),
    ("channels",),
    ("channels", "sms"),
    ("history",),
    ("history", "first_seen"),
    ("history", "sessions"),
    ("history", "orders"),
    ("history", "orders", 0),
    ("history", "orders", 1, "timestamp"),
    ("history", "orders", 0, "items"),
    ("history", "orders", 0, "value"),
    ("history", "orders", 0, "coupon_percent"),
    ("history", "orders", 1, "recovered_by"),
    ("history", "contacts", 0, "timestamp"),
    ("history", "contacts", 0, "action"),
    ("history", "contacts", 0, "converted"),
]


@pytest.fixture(scope="module")
def fuzz_engines(base_context, sim_contexts):
    cf = CFModel(seed=0).fit(interactions_from_contexts(sim_contexts[:300]))
    return {
        strict: DecisionEngine(seed=0, learner="linucb", cf=cf, strict=strict)
        for strict in (False, True)
    }


@settings(
    max_examples=400,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(edits=st.lists(st.tuples(st.sampled_from(PATHS), HOSTILE_VALUES), min_size=1, max_size=3))
def test_decide_never_raises_on_malformed_contexts(base_context, fuzz_engines, edits):
    ctx = base_context
    for path, value in edits:
        if path == ():
            ctx = value
            break
        # An earlier edit may have removed the container (TypeError, KeyError, IndexError).
        with contextlib.suppress(TypeError, KeyError, IndexError):
            ctx = _set(ctx, path, value)
    eng = fuzz_engines[False]
    before = eng.health()
    d = eng.decide(ctx)
    after = eng.health()
    assert after["errors"] == before["errors"]
    if d.fallback:
        assert after["fallbacks"] == before["fallbacks"] + 1
        assert d.action == "none" and d.probabilities == {"none": 1.0}
    else:
        assert after["decisions"] == before["decisions"] + 1
    assert not any(BRACKETED_DIGITS.search(key) for key in after["fallback_reasons"])
    try:
        fuzz_engines[True].decide(ctx)
    except ValueError as exc:
        assert isinstance(exc, ContextError) and d.fallback


# ------------------------------------------------------------------ reward

BAD_REWARD_ARGS = [
    ("x", 10**400, None),
    ([], 1.0, None),
    (None, 1.0, None),
    ("\ud800", 1.0, None),
    (b"abc", 1.0, None),
    (Hostile(), 1.0, None),
    (HostileStr("x"), 1.0, None),
    ("x" * 10_000, 1.0, None),
    (HUGE_LIST, 1.0, None),
]


def _valid_id_bad_args(decision_id):
    return [
        (decision_id, 10**400, None),
        (decision_id, float("nan"), None),
        (decision_id, True, None),
        (decision_id, np.array([1.0]), None),
        (decision_id, Hostile(), None),
        (decision_id, "1.0", None),
        (decision_id, 1.0, "yesterday"),
        (decision_id, 1.0, float("nan")),
        (decision_id, 1.0, float("inf")),
        (decision_id, 1.0, 10**400),
        (decision_id, 1.0, Hostile()),
        (decision_id, 1.0, np.array([1.0, 2.0])),
    ]


@pytest.mark.parametrize("with_log", [False, True])
def test_reward_never_raises_and_a_failed_call_loses_nothing(tmp_path, sim_contexts, with_log):
    log_path = tmp_path / "d.db" if with_log else None
    eng = DecisionEngine(log_path, seed=0, learner="linucb", salt="test-salt")
    strict = DecisionEngine(seed=0, learner="linucb", strict=True)
    d = eng.decide(sim_contexts[0])
    ts = sim_contexts[0]["timestamp"]
    bad = BAD_REWARD_ARGS + _valid_id_bad_args(d.decision_id)
    for args in bad:
        assert eng.reward(*args) is False
        with contextlib.suppress(ValueError):
            strict.reward(*args)
    health = eng.health()
    assert health["invalid_rewards"] == len(bad) and health["errors"] == 0
    assert health["rewards"] == 0 and health["rewards_learned"] == 0 and health["pending"] == 1
    assert eng.reward(d.decision_id, 3.5, ts + 60.0) is True  # the corrected retry is learned
    health = eng.health()
    assert (health["rewards"], health["rewards_learned"], health["duplicate_rewards"]) == (1, 1, 0)
    assert eng.reward(d.decision_id, 3.5, ts + 60.0) is False
    assert eng.health()["duplicate_rewards"] == 1
    eng.close()


def test_reward_retry_after_a_failed_log_write_is_learned(tmp_path, sim_contexts, monkeypatch):
    eng = DecisionEngine(tmp_path / "d.db", seed=0, learner="linucb", salt="test-salt")
    d = eng.decide(sim_contexts[0])
    real = eng.log.append_outcome

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(eng.log, "append_outcome", broken)
    assert eng.reward(d.decision_id, 2.0) is False
    assert eng.health()["errors"] == 1 and eng.health()["pending"] == 1
    monkeypatch.setattr(eng.log, "append_outcome", real)
    assert eng.reward(d.decision_id, 2.0) is True
    assert eng.health()["rewards_learned"] == 1
    eng.close()


@settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(
    decision_id=HOSTILE_VALUES | st.just("known"), value=HOSTILE_VALUES, timestamp=HOSTILE_VALUES
)
def test_reward_property_never_raises(fuzz_engines, decision_id, value, timestamp):
    eng = fuzz_engines[False]
    before = eng.health()
    result = eng.reward(decision_id, value, timestamp)
    after = eng.health()
    assert result is False and after["errors"] == before["errors"]
    assert (after["invalid_rewards"] + after["rewards"]) == (
        before["invalid_rewards"] + before["rewards"] + 1
    )
    with contextlib.suppress(ValueError):
        fuzz_engines[True].reward(decision_id, value, timestamp)


# ------------------------------------------------------------------ hot swap vs reward


def test_hot_swaps_between_feature_sets_race_rewards_without_error(tmp_path, sim_contexts):
    cf = CFModel(seed=0).fit(interactions_from_contexts(sim_contexts[:300]))
    with_cf = DecisionEngine(seed=1, learner="linucb", cf=cf)
    plain = DecisionEngine(seed=2, learner="linucb")
    assert with_cf.features.feature_names != plain.features.feature_names
    paths = [tmp_path / "cf.cw", tmp_path / "plain.cw"]
    with_cf.save(paths[0])
    plain.save(paths[1])
    eng = DecisionEngine(seed=0, learner="linucb")
    stop = threading.Event()
    done = [0] * 8
    rewarded = [0] * 8
    fallbacks = []

    def worker(k):
        i = k
        while not stop.is_set() or done[k] < 20:
            d = eng.decide(sim_contexts[i % len(sim_contexts)])
            if d.fallback:
                fallbacks.append(d.reason)
            done[k] += 1
            rewarded[k] += eng.reward(d.decision_id, 1.0)
            i += 8

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for s in range(50):
        eng.load_model(paths[s % 2])
        time.sleep(0.002)
    stop.set()
    for t in threads:
        t.join()
    health = eng.health()
    assert fallbacks == [] and health["errors"] == 0 and health["swaps"] == 50
    assert health["decisions"] == sum(done) and health["rewards"] == sum(done)
    assert health["rewards_learned"] == sum(rewarded) == sum(done)
    assert health["pending"] == 0


# ------------------------------------------------------------------ no raw ids in the log


def test_fallback_reasons_in_the_log_hold_no_raw_identifier(tmp_path, sim_contexts):
    path = tmp_path / "d.db"
    eng = DecisionEngine(path, seed=0, learner="linucb", salt="test-salt", durability="sync")
    long_id = "customer-" + "7" * 300
    ctx = sim_contexts[0]
    cases = [
        _set(ctx, ("user_id",), 90210417),
        _set(ctx, ("user_id",), b"john.smith@example.com"),
        _set(ctx, ("user_id",), long_id),
        _set(ctx, ("user_id",), "jane.doe@example.org\ud800"),
        _set(_set(ctx, ("user_id",), "jane.roe@example.net"), ("cart", 0, "item_id"), 4417123456),
    ]
    for case in cases:
        d = eng.decide(case)
        assert d.fallback
    eng.flush()
    secrets = [b"90210417", b"john.smith", b"7" * 40, b"jane.doe", b"jane.roe", b"4417123456"]

    def scan():
        found = []
        for file in tmp_path.iterdir():
            data = file.read_bytes()
            found += [
                (file.name, s)
                for s in secrets
                if s in data or s.decode().encode("utf-16-le") in data
            ]
        return found

    assert (tmp_path / "d.db-wal").exists() or (tmp_path / "d.db").exists()
    assert scan() == []
    eng.close()
    assert scan() == []
    reasons = sorted(p["reason"] for p in read_log(path)["payload"])
    assert "user_id: int found, must be a non-empty string" in reasons
    assert "cart[].item_id: int found, must be a non-empty string" in reasons


# ------------------------------------------------------------------ salt


def test_development_salt_warns_and_shows_in_health(tmp_path, caplog, monkeypatch):
    monkeypatch.delenv("CARTWISE_SALT", raising=False)
    monkeypatch.delenv("CARTWISE_ENV", raising=False)
    with caplog.at_level(logging.WARNING, logger="engine.engine"):
        eng = DecisionEngine(tmp_path / "d.db", seed=0, learner="linucb")
    assert any("development" in r.message and r.levelno == logging.WARNING for r in caplog.records)
    assert eng.health()["salt"] == "development"
    eng.close()
    configured = DecisionEngine(tmp_path / "e.db", seed=0, learner="linucb", salt="s3cret")
    assert configured.health()["salt"] == "configured"
    configured.close()
    monkeypatch.setenv("CARTWISE_ENV", "production")
    with pytest.raises(ValueError, match="development salt"):
        DecisionEngine(tmp_path / "f.db", seed=0, learner="linucb")
    with pytest.raises(ValueError, match="development salt"):  # store= is log_path's alias
        DecisionEngine(store=tmp_path / "g.db", seed=0, learner="linucb")
    DecisionEngine(seed=0, learner="linucb").close()  # no store: nothing hashed is kept
