"""One Arrow batch of a decision-log lake as validated numpy arrays.

The same function turns a whole in-memory table (``memory``), a ``pyarrow.dataset`` record batch
(``stream``) or a Spark partition's Arrow batch (``spark``) into :class:`LogBatch`, so every
backend computes its statistics from identical per-row values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

REQUIRED = ("decision_id", "timestamp", "action", "probability", "reward", "fallback")
REWARD_REQUIRED = ("timestamp", "action", "reward", "fallback")
"""Columns of the reward model's pass (:func:`read_reward_batch`): no ``decision_id``, which
only names a bad row, and the estimators' pass checks every row naming it."""
SUM_TOLERANCE = 1e-6
"""Allowed deviation of a row's logged probabilities (``p_<action>``) from summing to 1."""
PROB_TOLERANCE = 1e-6
"""Allowed gap between ``probability`` and the logged action's ``p_<action>``."""


class LazyIds(Sequence):
    """``decision_id`` values of a batch's kept rows, made Python strings only when indexed.

    ``index``: the kept rows' positions in the batch (None: all rows are kept).
    """

    def __init__(self, column, index: np.ndarray | None = None) -> None:
        self._column = column
        self._index = index

    def __len__(self) -> int:
        return len(self._column) if self._index is None else int(self._index.size)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        row = int(i) if self._index is None else int(self._index[int(i)])
        return str(self._column[row].as_py())


@dataclass(frozen=True)
class LogBatch:
    """The kept rows of a batch (not fallback, reward settled), ``n`` rows and ``A`` actions."""

    decision_ids: Sequence[str]
    timestamps: np.ndarray  # (n,) float64
    rewards: np.ndarray  # (n,) float64
    actions: np.ndarray  # (n,) int64, index into the plan's action_names
    logged_probs: np.ndarray  # (n,) float64
    logging_probs: np.ndarray  # (n, A) float64
    features: np.ndarray  # (n, d) float64, NaN where absent
    strata: np.ndarray  # (n,) int64 code into keys
    keys: tuple[tuple[object, ...], ...]  # stratum values per code
    n_fallback: int
    n_no_reward: int

    @property
    def n(self) -> int:
        """Number of kept rows."""
        return int(self.rewards.shape[0])


def required_columns(
    action_names: Sequence[str], feature_names: Sequence[str], by: Sequence[str]
) -> list[str]:
    """Columns a batch must hold, in reading order."""
    cols = list(REQUIRED) + [f"p_{a}" for a in action_names] + [f"f_{f}" for f in feature_names]
    return cols + [c for c in by if c not in cols]


def check_columns(
    names: Sequence[str],
    action_names: Sequence[str],
    by: Sequence[str],
    where: str,
    required: Sequence[str] = REQUIRED,
) -> None:
    """Raise naming the first required column missing from ``names``."""
    have = set(names)
    for col in list(required) + [f"p_{a}" for a in action_names] + list(by):
        if col not in have:
            raise ValueError(
                f"{where} has no column {col!r} (required: {', '.join(REQUIRED)}, "
                f"p_<action> for each action and the strata {list(by)})"
            )


def _numpy(column, dtype, fill: float | None = None) -> np.ndarray:
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    nan_fill = fill is not None and math.isnan(fill) and pa.types.is_floating(column.type)
    if fill is not None and column.null_count and not nan_fill:  # floats convert nulls to NaN
        import pyarrow.compute as pc

        column = pc.fill_null(column, fill)
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=dtype)


def _first_rows(mask: ArrayLike, ids: Sequence[str]) -> str:
    rows = np.flatnonzero(mask)
    more = f" and {rows.size - 1} more" if rows.size > 1 else ""
    return f"row {rows[0]} (decision_id {ids[rows[0]]}){more}"


def reward_columns(feature_names: Sequence[str]) -> list[str]:
    """Columns the reward model's pass reads (no probabilities, no strata)."""
    return [*REWARD_REQUIRED, *(f"f_{f}" for f in feature_names)]


@dataclass(frozen=True)
class _Kept:
    """A batch's kept rows: the batch and their positions (``index``; None when all are kept).

    Columns are converted to numpy and then subset (:meth:`column`), so the batch's other
    columns are never copied by an Arrow filter.
    """

    batch: Any  # pyarrow RecordBatch or Table
    index: np.ndarray | None
    ids: LazyIds
    actions: np.ndarray
    rewards: np.ndarray
    n_fallback: int
    n_no_reward: int

    @property
    def n(self) -> int:
        """Number of kept rows."""
        return int(self.rewards.shape[0])

    def column(self, name: str, dtype, fill: float | None = None, out=None) -> np.ndarray:
        """The kept rows of column ``name`` as numpy (written to ``out`` when given)."""
        values = _numpy(self.batch.column(name), dtype, fill)
        if self.index is not None:
            return np.take(values, self.index, out=out)
        if out is None:
            return values
        out[...] = values
        return out


def _keep(batch, action_names: Sequence[str], strict: bool = True) -> _Kept:
    """The rows that are not fallback and have a settled reward, their actions checked.

    ``strict=False`` (no ``decision_id`` column): rows with an unknown action are dropped
    instead of raising (the reward pass; the estimators' pass raises naming them).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    fallback = _numpy(batch.column("fallback"), bool)
    reward_col = batch.column("reward")
    no_reward = ~fallback & _numpy(pc.is_null(reward_col, nan_is_null=True), bool)
    keep = ~(fallback | no_reward)
    value_set = pa.array(list(action_names), pa.string())
    action = batch.column("action")
    index = pc.index_in(action, value_set=value_set)
    codes = _numpy(pc.fill_null(index, -1), np.int64)
    if not strict:
        keep &= codes >= 0
    rows = None if keep.all() else np.flatnonzero(keep)
    ids = LazyIds(batch.column("decision_id") if strict else pa.nulls(len(batch)), rows)
    actions = codes if rows is None else codes[rows]
    if strict and actions.size and actions.min() < 0:
        unknown = actions < 0
        first = int(np.flatnonzero(unknown)[0])
        value = action[first if rows is None else int(rows[first])].as_py()
        raise ValueError(
            f"column 'action' == {value!r} in {_first_rows(unknown, ids)}, "
            f"must be one of {list(action_names)}"
        )
    rewards = _numpy(reward_col, np.float64)
    return _Kept(
        batch,
        rows,
        ids,
        actions,
        rewards if rows is None else rewards[rows],
        int(fallback.sum()),
        int(no_reward.sum()),
    )


def _features(kept: _Kept, feature_names: Sequence[str]) -> np.ndarray:
    """``(n, d)`` float64 features, NaN where a column is absent or a value null."""
    features = np.empty((kept.n, len(feature_names)), order="F")
    names = set(kept.batch.schema.names)
    for j, f in enumerate(feature_names):
        col = f"f_{f}"
        if col in names:
            kept.column(col, np.float64, np.nan, out=features[:, j])
        else:
            features[:, j] = np.nan
    return features


@dataclass(frozen=True)
class RewardRows:
    """What the reward model's pass needs of a batch's kept rows."""

    features: np.ndarray  # (n, d) float64, NaN where absent
    actions: np.ndarray  # (n,) int64
    rewards: np.ndarray  # (n,) float64
    timestamps: np.ndarray  # (n,) float64

    @property
    def n(self) -> int:
        """Number of kept rows."""
        return int(self.rewards.shape[0])


def read_reward_batch(
    batch, action_names: Sequence[str], feature_names: Sequence[str]
) -> RewardRows:
    """The kept rows of a batch holding :func:`reward_columns` (actions checked).

    The probabilities are not read here: the estimators' pass (:func:`read_batch`) reads and
    checks them on every row.
    """
    check_columns(batch.schema.names, (), (), "the log", REWARD_REQUIRED)
    rows = _keep(batch, action_names, strict=False)
    return RewardRows(
        _features(rows, feature_names),
        rows.actions,
        rows.rewards,
        rows.column("timestamp", np.float64),
    )


def read_batch(
    batch, action_names: Sequence[str], feature_names: Sequence[str], by: Sequence[str]
) -> LogBatch:
    """Validate a ``pyarrow`` RecordBatch/Table and keep its evaluable rows.

    Raises ``ValueError`` naming the column, the row (``decision_id``) and the value for a
    missing column, an unknown logged action, probabilities that are negative, not finite or do
    not sum to 1, or a ``probability`` that differs from the logged action's ``p_<action>``.
    """
    check_columns(batch.schema.names, action_names, by, "the log")
    rows = _keep(batch, action_names)
    ids, actions, n = rows.ids, rows.actions, rows.n
    probs = np.empty((n, len(action_names)), order="F")  # filled column by column
    for j, a in enumerate(action_names):
        rows.column(f"p_{a}", np.float64, 0.0, out=probs[:, j])
    bad = ~np.isfinite(probs).all(axis=1) | (probs < 0).any(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"columns p_<action> hold {probs[row].tolist()} in {_first_rows(bad, ids)}, "
            "must be finite and >= 0"
        )
    sums = probs.sum(axis=1)
    bad = np.abs(sums - 1.0) > SUM_TOLERANCE
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"columns p_<action> sum to {float(sums[row])!r} in {_first_rows(bad, ids)}, "
            f"must sum to 1 (within {SUM_TOLERANCE})"
        )
    logged = rows.column("probability", np.float64)
    at_logged = probs[np.arange(n), actions]
    bad = ~((logged > 0.0) & (logged <= 1.0)) | (np.abs(at_logged - logged) > PROB_TOLERANCE)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"column 'probability' == {float(logged[row])!r} in {_first_rows(bad, ids)}, "
            f"must be in (0, 1] and equal p_{action_names[actions[row]]} == "
            f"{float(at_logged[row])!r}"
        )
    strata, keys = _strata(rows.batch, by, rows.index)
    return LogBatch(
        decision_ids=ids,
        timestamps=rows.column("timestamp", np.float64),
        rewards=rows.rewards,
        actions=actions,
        logged_probs=logged,
        logging_probs=probs,
        features=_features(rows, feature_names),
        strata=strata,
        keys=keys,
        n_fallback=rows.n_fallback,
        n_no_reward=rows.n_no_reward,
    )


def _strata(
    table, by: Sequence[str], index: np.ndarray | None = None
) -> tuple[np.ndarray, tuple[tuple[object, ...], ...]]:
    """Per-row stratum code and the key (tuple of ``by`` values) of each code.

    ``index``: the positions of the rows to code (None: all); only their strata get codes.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    n = table.num_rows if index is None else int(index.size)
    if not by:
        return np.zeros(n, dtype=np.int64), ((),)
    codes = np.zeros(table.num_rows, dtype=np.int64)
    dictionaries = []
    for col in by:
        column = table.column(col)
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        encoded = None
        if pa.types.is_dictionary(column.type):
            if column.null_count == 0 and len(pc.unique(column.dictionary)) == len(
                column.dictionary
            ):  # e.g. a hive partition value: its codes are the strata already
                encoded = column
            else:
                column = column.cast(column.type.value_type)
        if encoded is None:
            encoded = pc.dictionary_encode(column, null_encoding="encode")  # null: own stratum
        values = encoded.dictionary.to_pylist()
        idx = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
        codes = codes * (len(values) + 1) + idx
        dictionaries.append((values, len(values) + 1))
    if index is not None:
        codes = codes[index]
    size = math.prod(base for _, base in dictionaries)
    if size <= max(4 * n, 1 << 16):  # few combinations: count instead of sorting
        unique = np.flatnonzero(np.bincount(codes, minlength=size))
        lookup = np.zeros(size, dtype=np.int64)
        lookup[unique] = np.arange(unique.size)
        inverse = lookup[codes]
    else:
        unique, inverse = np.unique(codes, return_inverse=True)
    keys = []
    for code in unique.tolist():
        parts = []
        for values, base in reversed(dictionaries):
            parts.append(values[code % base])
            code //= base
        keys.append(tuple(reversed(parts)))
    return inverse.astype(np.int64), tuple(keys)
