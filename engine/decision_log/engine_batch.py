"""The writer thread's fast path: a batch of engine decisions checked as arrays, rows built once.

:func:`prepare_batch` takes what the writer took from its queue. The engine's decisions
(:class:`~engine.decision_log.engine_decision.EngineDecision`) of one catalogue and feature
layout are stacked into arrays and checked together (probabilities a distribution, 0 off the
eligible actions, > 0 at the action; features finite and within float32; payload encodes as
JSON), and each one that passes becomes a :class:`PreparedDecision`: the entry and its
``decisions`` row (the columns of :data:`~engine.decision_log.schema.DECISION_COLUMNS`), built
from plain values and blob slices instead of a :class:`DecisionRecord` per decision. The rows
are byte-identical to what :func:`~engine.decision_log.store_rows.decision_rows` writes for
the record (``tests/engine/test_decision_log_engine_batch.py``).

A decision the array checks do not clear (or a batch the arrays cannot hold: ragged vectors,
an unusual dtype) takes the record path, :meth:`EngineDecision.to_record`, which accepts it or
says what is wrong; so the checks only have to be conservative, never exact.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from json import encoder as json_encoder
from typing import Any, NamedTuple

import numpy as np

from .engine_decision import EngineDecision
from .packed import FLOAT32_MAX, PAYLOAD_ENCODER, hashable_values, unique_feature_names
from .records import PROBABILITY_SUM_TOLERANCE, DecisionRecord, action_catalogue
from .schema import vocab_id

__all__ = ["PreparedDecision", "prepare_batch"]

_FLOAT32 = np.dtype("<f4")
_FLOAT64 = np.dtype("<f8")
# the array check uses a plain sum, the record path math.fsum: sums this close to the
# tolerance go to the record path, which decides exactly
_SUM_MARGIN = PROBABILITY_SUM_TOLERANCE / 2.0


def _payload_encoder() -> Callable[[Any], str]:
    """The C encoder behind ``PAYLOAD_ENCODER.encode``, built once instead of per call.

    ``JSONEncoder.encode`` builds a new C encoder for every payload; this one has the same
    options (compact separators, ASCII, no NaN), without the circular-reference check (a
    payload that recurses raises, and the record path then says what is wrong).
    """
    make = getattr(json_encoder, "c_make_encoder", None)  # the C accelerator, when built
    base = PAYLOAD_ENCODER
    if make is None:  # no C accelerator: the encoder as it is
        return base.encode
    # (markers, default, encoder, indent, key_sep, item_sep, sort_keys, skipkeys, allow_nan)
    encode = make(
        None,
        base.default,
        json_encoder.encode_basestring_ascii,
        None,
        base.key_separator,
        base.item_separator,
        base.sort_keys,
        base.skipkeys,
        base.allow_nan,
    )
    join = "".join
    return lambda payload: join(encode(payload, 0))


_encode = _payload_encoder()


class PreparedDecision(NamedTuple):
    """An engine decision that passed the checks, with its ``decisions`` row.

    Attributes:
        entry: The decision as the engine handed it (what the log's index of buffered
            decisions holds until the commit).
        row: Its row, in the column order of ``DECISION_COLUMNS`` (``window_closes``
            included, from the log's attribution window).
    """

    entry: EngineDecision
    row: tuple[Any, ...]

    @property
    def decision_id(self) -> str:
        """The decision's id."""
        return self.entry.decision_id

    @property
    def action_set(self) -> str:
        """The vocabulary id of the decision's actions (the row's ``action_set``)."""
        return self.row[7]

    @property
    def feature_set(self) -> str:
        """The vocabulary id of the decision's feature names (the row's ``feature_set``)."""
        return self.row[10]


#: ``_prepared((entry, row))``: a :class:`PreparedDecision` without the generated ``__new__``.
_prepared = partial(tuple.__new__, PreparedDecision)


def prepare_batch(
    events: list[Any], window: float
) -> tuple[
    list[Any], list[tuple[EngineDecision, DecisionRecord]], list[tuple[EngineDecision, str]]
]:
    """Turn the engine decisions among ``events`` into prepared rows (the writer thread).

    Args:
        events: What the writer took from its queue, in order.
        window: The log's attribution window (seconds).

    Returns:
        ``(out, built, invalid)``: ``out`` is ``events`` in order with each engine decision
        replaced by its :class:`PreparedDecision`, or by its record when it took the record
        path (listed in ``built`` as ``(entry, record)``), or left out when its record is
        invalid (listed in ``invalid`` as ``(entry, reason)``); other events are unchanged.
    """
    groups: dict[tuple[int, int], list[int]] = {}
    for i, event in enumerate(events):
        if type(event) is EngineDecision:
            groups.setdefault((id(event[4]), id(event[8])), []).append(i)
    if not groups:
        return events, [], []
    out: list[Any] = list(events)
    slow: list[int] = []
    for indices in groups.values():
        slow.extend(_prepare_group(events, indices, window, out))
    built: list[tuple[EngineDecision, DecisionRecord]] = []
    invalid: list[tuple[EngineDecision, str]] = []
    drop: set[int] = set()
    for i in slow:
        entry = events[i]
        try:
            record = entry.to_record()
        except Exception as exc:  # never lose the rest of the batch
            invalid.append((entry, str(exc)))
            drop.add(i)
            continue
        built.append((entry, record))
        out[i] = record
    if drop:
        out = [event for i, event in enumerate(out) if i not in drop]
    return out, built, invalid


def _prepare_group(
    events: list[Any], indices: list[int], window: float, out: list[Any]
) -> list[int]:
    """Prepare the decisions ``events[i]`` (one catalogue and feature layout) into ``out``.

    Returns the indices left to the record path.
    """
    entries = [events[i] for i in indices]
    first = entries[0]
    actions, names = first.actions, first.feature_names
    try:
        action_catalogue(hashable_values("actions", actions))
        unique_feature_names(hashable_values("feature names", names))
        k, d, n = len(actions), len(names), len(entries)
        probs = np.array([e.probabilities for e in entries], dtype=_FLOAT64)
        mask = np.array([e.eligible for e in entries], dtype=bool)
        chosen = np.array([e.action_index for e in entries], dtype=np.intp)
        features = np.stack([e.features for e in entries])
    except Exception:  # names, shapes or types the arrays cannot take: the record path says
        return indices
    if (
        probs.shape != (n, k)
        or mask.shape != (n, k)
        or features.dtype != _FLOAT64
        or features.shape != (n, d)
        or type(actions) is not tuple
        or type(names) is not tuple
    ):
        return indices
    rows = np.arange(n)
    in_range = (chosen >= 0) & (chosen < k)
    at = probs[rows, np.where(in_range, chosen, 0)]
    ok = (
        in_range
        & (np.abs(probs.sum(axis=1) - 1.0) <= _SUM_MARGIN)
        & (probs.min(axis=1) >= 0.0)
        & (probs.max(axis=1) <= 1.0)
        & (at > 0.0)
        & ~((probs != 0.0) & ~mask).any(axis=1)
    )
    if d:
        ok &= (np.abs(features) <= FLOAT32_MAX).all(axis=1)  # NaN fails too
    action_set = vocab_id("actions", actions)
    feature_set = vocab_id("features", names)
    prob_blob = probs.tobytes()
    mask_blob = mask.tobytes()  # numpy bools are the bytes 0 and 1, as encode_mask writes
    with np.errstate(over="ignore", invalid="ignore"):  # rows that overflow take the record path
        feature_blob = features.astype(_FLOAT32).tobytes()
    pw, fw = 8 * k, 4 * d
    slow = []
    for j, (i, entry, good, a, p) in enumerate(
        zip(indices, entries, ok.tolist(), chosen.tolist(), at.tolist(), strict=True)
    ):
        if not good:
            slow.append(i)
            continue
        payload = entry.payload
        if type(payload) is not dict:
            slow.append(i)
            continue
        try:
            text = _encode(payload) if payload else "{}"
        except Exception:  # TypeError, ValueError, RecursionError: the record path says
            slow.append(i)
            continue
        ts = entry.timestamp
        out[i] = _prepared(
            (
                entry,
                (
                    entry.decision_id,
                    ts,
                    entry.user_hash,
                    entry.model_version,
                    actions[a],
                    a,
                    p,
                    action_set,
                    prob_blob[j * pw : (j + 1) * pw],
                    mask_blob[j * k : (j + 1) * k],
                    feature_set,
                    feature_blob[j * fw : (j + 1) * fw],
                    text,
                    False,
                    ts + window,
                ),
            )
        )
    return slow
