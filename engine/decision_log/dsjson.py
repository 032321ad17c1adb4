"""Export a decision log to Vowpal Wabbit's DSJSON, ready for ``--cb_explore_adf --dsjson``.

One line per rewarded decision. The action set of a line is the decision's *eligible*
actions, in catalogue order, each as one ``_multi`` example with a one-hot feature
``{action_namespace: {<name>: 1}}``; the shared example carries the features under
``shared_namespace``. Conventions (as in VW's decision-service logs):

- ``_labelIndex``: 0-based position of the chosen action in ``_multi``;
  ``_label_Action`` = ``_labelIndex + 1``;
- ``_label_cost`` = ``-reward`` (VW minimises cost), ``_label_probability`` = propensity;
- ``a``: 1-based positions in ``_multi``, chosen action first, then the others in
  catalogue order; ``p``: their probabilities, aligned with ``a``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .export import read_log


def dsjson_event(
    row: Mapping[str, Any], *, shared_namespace: str = "features", action_namespace: str = "action"
) -> dict[str, Any]:
    """DSJSON object of one :func:`read_log` row (which must have a reward).

    >>> row = {"decision_id": "d1", "timestamp": 0.0, "reward": 2.0, "action": "coupon_5",
    ...        "actions": ["none", "coupon_5", "sms"], "eligible": ["none", "coupon_5"],
    ...        "probabilities": [0.25, 0.75, 0.0], "features": {"x": 1.0}}
    >>> event = dsjson_event(row)
    >>> event["_labelIndex"], event["a"], event["p"], event["_label_cost"]
    (1, [2, 1], [0.75, 0.25], -2.0)
    """
    reward = float(row["reward"])
    if math.isnan(reward):
        raise ValueError(
            f"reward of decision {row['decision_id']!r} == nan, only rewarded decisions export"
        )
    allowed = set(row["eligible"])
    slots = [
        (name, p)
        for name, p in zip(row["actions"], row["probabilities"], strict=True)
        if name in allowed
    ]
    names = [name for name, _ in slots]
    chosen = names.index(row["action"])
    order = [chosen] + [i for i in range(len(slots)) if i != chosen]
    stamp = dt.datetime.fromtimestamp(float(row["timestamp"]), tz=dt.UTC)
    return {
        "_label_cost": -reward,
        "_label_probability": slots[chosen][1],
        "_label_Action": chosen + 1,
        "_labelIndex": chosen,
        "Timestamp": stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "Version": "1",
        "EventId": row["decision_id"],
        "a": [i + 1 for i in order],
        "c": {
            shared_namespace: dict(row["features"]),
            "_multi": [{action_namespace: {name: 1}} for name in names],
        },
        "p": [slots[i][1] for i in order],
    }


def to_dsjson(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    since: float | None = None,
    until: float | None = None,
    shared_namespace: str = "features",
    action_namespace: str = "action",
) -> int:
    """Write every rewarded decision of the log at ``path`` to ``out``; return the line count.

    Namespaces should start with different letters so that VW interactions such as
    ``-q fa`` (features x action) address them.
    """
    for name, value in (
        ("shared_namespace", shared_namespace),
        ("action_namespace", action_namespace),
    ):
        if not isinstance(value, str) or not value or value.startswith("_"):
            raise ValueError(f"{name} == {value!r}, must be a non-empty str not starting with '_'")
    df = read_log(path, since=since, until=until)
    rewarded = df[df["reward"].notna()]
    columns = [
        "decision_id",
        "timestamp",
        "reward",
        "action",
        "actions",
        "eligible",
        "probabilities",
        "features",
    ]
    target = Path(out)
    with target.open("w", encoding="utf-8") as handle:
        for values in rewarded[columns].itertuples(index=False, name=None):
            event = dsjson_event(
                dict(zip(columns, values, strict=True)),
                shared_namespace=shared_namespace,
                action_namespace=action_namespace,
            )
            handle.write(json.dumps(event, separators=(",", ":")) + "\n")
    return len(rewarded)
