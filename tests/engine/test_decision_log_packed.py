"""The engine's hot-path records: packed float32 features and DecisionRecord.from_engine."""

import dataclasses
import json
import pickle
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest

from engine.decision_log import DecisionLog, DecisionRecord
from engine.decision_log.records import PackedFeatures, packed_features

ACTIONS = ("none", "coupon_5", "recall_message")
NAMES = ("cart_value", "hour", "bias")


def engine_record(**overrides):
    fields = dict(
        decision_id="d1",
        timestamp=1767225600.0,
        user_hash="h1",
        model_version="m1",
        actions=ACTIONS,
        probabilities=(0.5, 0.5, 0.0),
        eligible=("none", "coupon_5"),
        action_index=1,
        features=PackedFeatures.from_array(NAMES, np.array([59.9, 21.0, 1.0])),
        payload={"channel": "email", "coupon_percent": 5},
    )
    fields.update(overrides)
    return DecisionRecord.from_engine(**fields)


def test_packed_blob_is_the_stores_float32_format_and_reads_as_the_rounded_dict():
    x = np.random.default_rng(0).normal(scale=1e3, size=40)
    names = tuple(f"f{i}" for i in range(40))
    packed = PackedFeatures.from_array(names, x)
    # the bytes the stores wrote before: struct-packed float32 of the Python floats
    assert packed.blob == struct.pack("<40f", *x.tolist())
    expected = {n: float(np.float32(v)) for n, v in zip(names, x.tolist(), strict=True)}
    assert dict(packed) == expected
    assert packed == expected and list(packed) == list(names) and len(packed) == 40
    assert packed["f3"] == expected["f3"]
    with pytest.raises(KeyError):
        packed["missing"]
    assert packed_features(packed) == (names, packed.blob)
    assert packed_features(expected) == (names, packed.blob)  # a dict packs to the same bytes


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e39])
def test_from_array_rejects_values_float32_cannot_hold_naming_the_feature(bad):
    with pytest.raises(ValueError, match=r"features\['hour'\]"):
        PackedFeatures.from_array(NAMES, np.array([1.0, bad, 1.0]))


def test_from_array_accepts_large_values_whose_squares_overflow_the_quick_check():
    x = np.array([3e38, 3e38, -3e38])  # each fits float32; the sum of squares does not
    assert dict(PackedFeatures.from_array(NAMES, x))["bias"] == float(np.float32(-3e38))


def test_packed_features_check_names_and_length():
    with pytest.raises(ValueError, match="2 values for 3 names"):
        PackedFeatures.from_array(NAMES, np.ones(2))
    with pytest.raises(ValueError, match="must hold 3 float32 values"):
        PackedFeatures(NAMES, b"\0" * 8)
    with pytest.raises(ValueError, match="names must be unique"):
        PackedFeatures(("a", "a"), b"\0" * 8)


def test_packed_features_pickle_for_the_spill_file():
    packed = PackedFeatures.from_array(NAMES, np.array([1.5, 2.0, 3.0]))
    back = pickle.loads(pickle.dumps(packed))
    assert back.names == packed.names and back.blob == packed.blob and back == packed


def test_from_engine_equals_the_validating_constructor():
    rec = engine_record()
    checked = DecisionRecord(
        decision_id="d1",
        timestamp=1767225600.0,
        user_hash="h1",
        model_version="m1",
        actions=ACTIONS,
        probabilities=(0.5, 0.5, 0.0),
        eligible=("none", "coupon_5"),
        action="coupon_5",
        features=rec.features,
        payload={"channel": "email", "coupon_percent": 5},
    )
    for f in dataclasses.fields(DecisionRecord):
        if f.name != "_payload_json":  # encoded later (by the writer) for the engine's records
            assert getattr(rec, f.name) == getattr(checked, f.name), f.name
    assert rec == checked
    assert rec.payload_json == checked.payload_json == '{"channel":"email","coupon_percent":5}'
    assert engine_record(payload={}).payload_json == "{}"


@pytest.mark.parametrize(
    "payload",
    [
        {"channel": "sms", "expires_at": 1767229200.5},
        {"items": ["i1", "i2", 3]},
        {"flag": True, "nested": {"a": [1.5, None]}},  # not in the quick check: encoded at once
    ],
)
def test_engine_payloads_encode_as_the_constructor_does(payload):
    assert engine_record(payload=payload).payload_json == json.dumps(
        payload, separators=(",", ":"), allow_nan=False
    )


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_from_engine_rejects_non_finite_payload_numbers(bad):
    with pytest.raises(ValueError, match="JSON"):
        engine_record(payload={"expires_at": bad})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"probabilities": (0.5, 0.4, 0.0)}, "sum"),
        ({"probabilities": (0.5, 0.25, 0.25)}, "ineligible"),
        ({"probabilities": (1.0, 0.0, 0.0)}, "must be > 0"),
        ({"probabilities": (float("nan"), 1.0, 0.0)}, "probability"),
        ({"probabilities": (1.5, -0.5, 0.0)}, "probability"),
        ({"payload": {"items": {1, 2}}}, "JSON"),
        ({"features": {"cart_value": 1.0}}, "PackedFeatures"),
    ],
)
def test_from_engine_rejects_what_its_inputs_can_get_wrong(overrides, message):
    with pytest.raises(ValueError, match=message):
        engine_record(**overrides)


def test_engine_features_are_stored_and_read_back_as_before():
    path = Path(tempfile.mkdtemp()) / "log.db"
    x = np.array([59.9, 21.0, 1.0])
    with DecisionLog(path, durability="sync") as log:
        log.append_decision(engine_record(features=PackedFeatures.from_array(NAMES, x)))
        log.append_decision(
            dataclasses.replace(
                engine_record(),
                decision_id="d2",
                features=dict(zip(NAMES, x.tolist(), strict=True)),
                action="coupon_5",
            )
        )
        one, two = log.get_decision("d1"), log.get_decision("d2")
    assert one is not None and two is not None
    assert dict(one.features) == dict(two.features)
    assert dict(one.features) == {n: float(np.float32(v)) for n, v in zip(NAMES, x, strict=True)}


def test_engine_records_survive_the_spill_files_pickling():
    rec = engine_record(payload={"channel": "sms", "items": ["i1", "i2"]})
    back = pickle.loads(pickle.dumps([rec], protocol=pickle.HIGHEST_PROTOCOL))[0]
    assert back == rec
    assert back.payload_json == '{"channel":"sms","items":["i1","i2"]}'
    assert packed_features(back.features) == packed_features(rec.features)
