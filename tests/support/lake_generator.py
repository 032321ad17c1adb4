"""Write a large synthetic decision-log lake in the Parquet layout of docs/log-layout.md.

Rows are generated chunk by chunk (memory: one chunk), with the engine's action catalogue and
feature names, logging probabilities with an exploration floor over a random eligible set, and
rewards that depend on the features and the action. Used by the streaming memory benchmark.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from engine.actions import ACTION_NAMES
from engine.decision_log.lake import lake_schema
from engine.features import FeatureBuilder

START = 1_767_225_600.0
ROW_GROUP = 65_536
"""Default rows per Parquet row group (what a reader decodes at once)."""


def write_lake(
    out: Path,
    n_rows: int,
    *,
    rows_per_file: int = 500_000,
    days: int = 10,
    seed: int = 0,
    row_group: int = ROW_GROUP,
) -> Path:
    """``n_rows`` decisions over ``days`` days in ``out/day=.../part-*.parquet``; returns out."""
    rng = np.random.default_rng(seed)
    features = FeatureBuilder().feature_names
    schema = lake_schema(ACTION_NAMES, features).remove(2)  # hive: `day` is the folder
    n_actions = len(ACTION_NAMES)
    per_day = -(-n_rows // days)
    written = 0
    for day in range(days):
        folder = out / f"day={np.datetime64(int(START // 86_400) + day, 'D')}"
        folder.mkdir(parents=True, exist_ok=True)
        day_rows = min(per_day, n_rows - written)
        for k, start in enumerate(range(0, day_rows, rows_per_file)):
            n = min(rows_per_file, day_rows - start)
            pq.write_table(
                _chunk(rng, schema, written + start, n, day, n_actions, features),
                folder / f"part-{k:06d}.parquet",
                row_group_size=row_group,
            )
        written += day_rows
    return out


def _chunk(rng, schema, offset, n, day, n_actions, features) -> pa.Table:
    X = rng.normal(size=(n, len(features))).astype(np.float32)
    eligible = rng.random((n, n_actions)) < 0.8
    eligible[:, 0] = True
    probs = eligible * (0.05 + rng.random((n, n_actions)))
    probs /= probs.sum(axis=1, keepdims=True)
    u = rng.random(n)[:, None]
    actions = np.minimum((np.cumsum(probs, axis=1) < u).sum(axis=1), n_actions - 1)
    actions = np.where(probs[np.arange(n), actions] > 0, actions, 0)
    rewards = 0.5 * X[:, 0] + 0.2 * actions + rng.normal(size=n)
    ts = START + day * 86_400.0 + np.sort(rng.random(n)) * 86_000.0
    ids = np.char.add("g", np.arange(offset, offset + n).astype("U12"))
    names = np.asarray(ACTION_NAMES)
    cols = {
        "decision_id": pa.array(ids),
        "timestamp": pa.array(ts),
        "user_hash": pa.array(ids),
        "model_version": pa.array(np.where(np.arange(n) % 2, "gen-a", "gen-b")),
        "action": pa.array(names[actions]),
        "action_index": pa.array(actions.astype(np.int32)),
        "probability": pa.array(probs[np.arange(n), actions]),
        "reward": pa.array(rewards),
        "reward_source": pa.array(np.full(n, "event")),
        "reward_timestamp": pa.array(ts + 600.0),
        "order_id": pa.nulls(n, pa.string()),
        "fallback": pa.array(np.zeros(n, dtype=bool)),
        "window_closes": pa.array(ts + 72 * 3600.0),
        "actions": pa.FixedSizeListArray.from_arrays(
            pa.array(names).take(pa.array(np.tile(np.arange(n_actions), n))), n_actions
        ).cast(pa.list_(pa.string())),
        "payload": pa.array(np.full(n, "{}")),
    }
    for j, a in enumerate(ACTION_NAMES):
        cols[f"p_{a}"] = pa.array(probs[:, j])
        cols[f"e_{a}"] = pa.array(eligible[:, j])
    for j, f in enumerate(features):
        cols[f"f_{f}"] = pa.array(X[:, j])
    return pa.table({f.name: cols[f.name] for f in schema}, schema=schema)
