"""What both decision-log stores do on either side of their SQL, written once.

The SQLite store (:mod:`engine.decision_log.store`) and the PostgreSQL store
(:mod:`engine.decision_log.postgres`) keep their own SQL; the mapping of a
:class:`~engine.decision_log.records.DecisionRecord` to a ``decisions`` row (columns in the
order of :data:`~engine.decision_log.schema.DECISION_COLUMNS`), of a row back to a record, and
the cache of vocabularies read back, are the same for both and live here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from .engine_batch import PreparedDecision
from .records import DecisionRecord, packed_features
from .schema import (
    decode_f32,
    decode_f64,
    decode_mask,
    decode_names,
    encode_f64,
    encode_mask,
    encode_names,
    vocab_id,
)

#: ``read(sql, params) -> rows`` of a store.
ReadFn = Callable[[str, Sequence[object]], list[tuple]]


def decision_rows(
    decisions: Sequence[DecisionRecord | PreparedDecision], window: float, stored_vocab: set[str]
) -> tuple[list[tuple[Any, ...]], dict[str, tuple[str, str]]]:
    """The ``decisions`` rows of a batch and the vocabularies it names that are not stored yet.

    Args:
        decisions: The batch: records, and the engine's decisions the writer thread already
            turned into rows (:mod:`~engine.decision_log.engine_batch`).
        window: Reward window (seconds): a row's ``window_closes`` is its timestamp plus this.
        stored_vocab: Vocabulary ids known to be committed already (left out of the result).

    Returns:
        (rows in the column order of ``DECISION_COLUMNS``, ``{vocab_id: (kind, encoded names)}``
        in order of first use).
    """
    rows = []
    new: dict[str, tuple[str, tuple[str, ...]]] = {}
    for rec in decisions:
        if isinstance(rec, PreparedDecision):
            if rec.action_set not in stored_vocab:
                new[rec.action_set] = ("actions", rec.entry.actions)
            if rec.feature_set not in stored_vocab:
                new[rec.feature_set] = ("features", rec.entry.feature_names)
            rows.append(rec.row)
            continue
        names, features = packed_features(rec.features)
        action_set = vocab_id("actions", rec.actions)
        feature_set = vocab_id("features", names)
        if action_set not in stored_vocab:
            new[action_set] = ("actions", rec.actions)
        if feature_set not in stored_vocab:
            new[feature_set] = ("features", names)
        rows.append(
            (
                rec.decision_id,
                rec.timestamp,
                rec.user_hash,
                rec.model_version,
                rec.action,
                rec.action_index,
                rec.probabilities[rec.action_index],
                action_set,
                encode_f64(rec.probabilities),
                encode_mask(rec.actions, rec.eligible),
                feature_set,
                features,
                rec.payload_json,
                rec.fallback,
                rec.timestamp + window,
            )
        )
    return rows, {vid: (kind, encode_names(names)) for vid, (kind, names) in new.items()}


def record_of_row(row: Sequence[Any], names: Callable[[str], tuple[str, ...]]) -> DecisionRecord:
    """Rebuild the decision of a ``decisions`` row (features come back rounded to float32).

    Args:
        row: The columns of ``DECISION_COLUMNS``, in order (blobs as ``bytes`` or a buffer).
        names: Resolves a vocabulary id to its names.
    """
    (
        did,
        ts,
        user_hash,
        model_version,
        action,
        _index,
        _prob,
        action_set,
        probs,
        mask,
        feature_set,
        features,
        payload,
        fallback,
        _closes,
    ) = row
    actions = names(action_set)
    eligible = [name for name, ok in zip(actions, decode_mask(bytes(mask)), strict=True) if ok]
    return DecisionRecord(
        decision_id=did,
        timestamp=ts,
        user_hash=user_hash,
        model_version=model_version,
        actions=actions,
        probabilities=tuple(decode_f64(bytes(probs)).tolist()),
        eligible=tuple(eligible),
        action=action,
        features=dict(zip(names(feature_set), decode_f32(bytes(features)).tolist(), strict=True)),
        payload=json.loads(payload),
        fallback=bool(fallback),
    )


class VocabularyCache:
    """Names of the vocabularies read back from a store, each read once.

    Args:
        read: The store's ``read(sql, params)``.
        sql: Query selecting ``names`` of one ``vocab_id`` (in the store's dialect).
        where: How a missing vocabulary's error names the store.
    """

    def __init__(self, read: ReadFn, sql: str, where: str) -> None:
        self._read = read
        self._sql = sql
        self._where = where
        self._names: dict[str, tuple[str, ...]] = {}

    def names(self, vid: str) -> tuple[str, ...]:
        """The names of vocabulary ``vid`` (``ValueError`` if the store lacks it)."""
        names = self._names.get(vid)
        if names is None:
            rows = self._read(self._sql, (vid,))
            if not rows:
                raise ValueError(f"vocabulary {vid!r} missing from {self._where}")
            names = self._names[vid] = decode_names(rows[0][0])
        return names
