"""Validation of decision-log records and user-id hashing."""

import hashlib
import math

import numpy as np
import pytest

from engine.decision_log import (
    DecisionRecord,
    OutcomeRecord,
    OutcomeStatus,
    hash_user_id,
    user_hasher,
)
from engine.decision_log.records import OutcomeReceipt

ACTIONS = ("none", "coupon_5", "recall_message")


def record(**overrides):
    fields = dict(
        timestamp=1767225600.0,
        user_hash="h1",
        model_version="m1",
        actions=ACTIONS,
        probabilities=(0.5, 0.5, 0.0),
        eligible=("none", "coupon_5"),
        action="coupon_5",
        features={"cart_value": 59.9, "hour": 21},
        payload={"coupon_percent": 5},
    )
    fields.update(overrides)
    return DecisionRecord(**fields)


def test_valid_record_derives_index_probability_and_payload_json():
    rec = record()
    assert rec.action_index == 1
    assert rec.probability == 0.5
    assert rec.payload_json == '{"coupon_percent":5}'
    assert rec.features == {"cart_value": 59.9, "hour": 21.0}
    assert len(rec.decision_id) == 32 and rec.decision_id != record().decision_id


def test_numpy_inputs_are_normalised_to_python_floats():
    rec = record(probabilities=np.array([0.25, 0.75, 0.0]), features={"x": np.float32(1.5)})
    assert rec.probabilities == (0.25, 0.75, 0.0)
    assert type(rec.features["x"]) is float


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"action": "coupon_20"}, "action == 'coupon_20'"),
        ({"action": "recall_message", "probabilities": (0.5, 0.0, 0.5)}, "must be in eligible"),
        ({"probabilities": (0.5, 0.4, 0.0)}, "sum(probabilities) == 0.9"),
        ({"probabilities": (0.5, 0.5)}, "one entry per action (3)"),
        ({"probabilities": (0.5, 0.25, 0.25)}, "ineligible action 'recall_message' == 0.25"),
        ({"probabilities": (1.0, 0.0, 0.0)}, "probability of action 'coupon_5' == 0.0"),
        ({"probabilities": (1.5, -0.5, 0.0)}, "probability of 'none' == 1.5"),
        ({"eligible": ("none", "sms")}, "eligible contains ['sms']"),
        ({"actions": ("none", "none", "coupon_5")}, "names must be unique"),
        ({"features": {"x": math.nan}}, "features['x'] == nan"),
        (
            {"features": {"x": 1e39}},
            "features['x'] == 1e+39, must be a number in [-3.4028234663852886e+38, ",
        ),
        ({"features": {"x": "high"}}, "features['x'] == 'high'"),
        ({"payload": {"when": object()}}, "JSON-serialisable"),
        ({"timestamp": -1.0}, "timestamp == -1.0"),
        ({"user_hash": ""}, "user_hash == ''"),
        ({"fallback": 1}, "fallback == 1"),
    ],
)
def test_invalid_records_raise_value_error_naming_the_field(overrides, message):
    with pytest.raises(ValueError) as info:
        record(**overrides)
    assert message in str(info.value)


def test_outcome_record_validation():
    assert OutcomeRecord("d1", 10.0, 2.5, "event", "o1").order_id == "o1"
    with pytest.raises(ValueError, match="source == 'refund'"):
        OutcomeRecord("d1", 10.0, 2.5, "refund")
    with pytest.raises(ValueError, match="reward == inf"):
        OutcomeRecord("d1", 10.0, math.inf)
    with pytest.raises(ValueError, match="reward == True"):
        OutcomeRecord("d1", 10.0, True)


def test_receipt_accepted_only_for_accepted_status():
    assert OutcomeReceipt("d", OutcomeStatus.ACCEPTED).accepted
    assert not OutcomeReceipt("d", OutcomeStatus.DUPLICATE).accepted


def test_hash_matches_an_independent_keyed_blake2b_and_depends_on_salt():
    expected = hashlib.blake2b(b"u000042", key=b"pepper", digest_size=16).hexdigest()
    assert hash_user_id("u000042", "pepper") == expected
    assert hash_user_id("u000042", b"pepper") == expected
    assert hash_user_id("u000042", "salt2") != expected
    assert "u000042" not in expected
    hasher = user_hasher("pepper")  # the engine's: one keyed state, copied for each id
    assert [hasher(u) for u in ("u000042", "u7", "u000042")] == [
        expected,
        hashlib.blake2b(b"u7", key=b"pepper", digest_size=16).hexdigest(),
        expected,
    ]


def test_hash_rejects_bad_inputs():
    with pytest.raises(ValueError, match="user_id == 42"):
        hash_user_id(42, "pepper")
    with pytest.raises(ValueError, match="salt has 0 bytes"):
        hash_user_id("u1", "")
    with pytest.raises(ValueError, match="salt has 65 bytes"):
        hash_user_id("u1", "x" * 65)


def test_hashes_of_many_ids_are_distinct():
    hashes = {hash_user_id(f"u{i:06d}", "pepper") for i in range(20_000)}
    assert len(hashes) == 20_000
