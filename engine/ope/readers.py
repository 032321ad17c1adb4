"""Readers that turn logged bandit feedback from other tools into plain arrays.

* :func:`read_dsjson`: Vowpal Wabbit "decision service" JSON (``--dsjson``, ``cb_adf``), one
  joined event per line.
* :func:`from_obp`: Open Bandit Pipeline ``bandit_feedback`` dicts.
* :func:`target_probs_at_positions`: an OBP-style ``action_dist`` to ``(n, n_actions)``
  target probabilities at the logged positions.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

PROB_TOLERANCE = 1e-6
"""Allowed gap between a logged propensity and the logged action's entry of the logging
distribution (DSJSON ``_label_probability`` vs ``p``; a decision log's ``probability`` vs
``p_<action>``)."""


@dataclass(frozen=True)
class LoggedFeedback:
    """Logged bandit feedback as arrays (actions are 0-based).

    ``contexts`` is the list of parsed ``c`` objects for DSJSON and the ``(n, d)`` context
    array for OBP. ``logging_probs`` is the full ``(n, n_actions)`` logging distribution when
    the log records it (DSJSON ``a``/``p``), zero for actions not offered in a row.
    """

    rewards: np.ndarray
    actions: np.ndarray
    logged_probs: np.ndarray
    n_actions: int
    contexts: object
    logging_probs: np.ndarray | None = None
    positions: np.ndarray | None = None
    action_context: np.ndarray | None = None
    event_ids: tuple[str | None, ...] | None = None

    def __len__(self) -> int:
        return int(self.rewards.shape[0])


def _lines(source: str | PathLike[str] | Iterable[str]) -> Iterable[str]:
    if isinstance(source, (str, PathLike)):
        with Path(source).open(encoding="utf-8") as handle:
            yield from handle
    else:
        yield from source


def _require(obj: Mapping[str, Any], key: str, line_no: int) -> Any:
    """``obj[key]`` of a parsed DSJSON line (any JSON value), or a ValueError naming the line."""
    if key not in obj:
        raise ValueError(f"DSJSON line {line_no} has no {key!r} field")
    return obj[key]


def _parse_event(
    obj: Mapping[str, Any], line_no: int
) -> tuple[float, int, float, dict[int, float], Any, str | None]:
    """(reward, chosen action, its propensity, logging distribution, context, event id)."""
    cost = float(_require(obj, "_label_cost", line_no))
    prob = float(_require(obj, "_label_probability", line_no))
    ids = _require(obj, "a", line_no)
    probs = _require(obj, "p", line_no)
    context = _require(obj, "c", line_no)
    lists = isinstance(ids, list) and isinstance(probs, list)
    if not lists or len(ids) != len(probs) or not ids:
        raise ValueError(
            f"DSJSON line {line_no}: 'a' and 'p' must be non-empty lists of equal length, "
            f"got {len(ids) if isinstance(ids, list) else ids!r} and "
            f"{len(probs) if isinstance(probs, list) else probs!r}"
        )
    if "_labelIndex" in obj:
        index = int(obj["_labelIndex"])
        if "_label_Action" in obj and int(obj["_label_Action"]) != index + 1:
            raise ValueError(
                f"DSJSON line {line_no}: _label_Action == {obj['_label_Action']} but "
                f"_labelIndex == {index}, must be _labelIndex + 1"
            )
    else:
        index = int(_require(obj, "_label_Action", line_no)) - 1
    n_offered = len(context.get("_multi", ids)) if isinstance(context, Mapping) else len(ids)
    dist: dict[int, float] = {}
    for action_id, p in zip(ids, probs, strict=True):
        if not isinstance(action_id, int) or not 1 <= action_id <= max(n_offered, len(ids)):
            raise ValueError(
                f"DSJSON line {line_no}: 'a' contains {action_id!r}, must be 1-based action ids "
                f"in [1, {max(n_offered, len(ids))}]"
            )
        dist[action_id - 1] = float(p)
    if index not in dist:
        raise ValueError(f"DSJSON line {line_no}: chosen action {index + 1} is not listed in 'a'")
    if abs(dist[index] - prob) > PROB_TOLERANCE:
        raise ValueError(
            f"DSJSON line {line_no}: _label_probability == {prob} but 'p' gives {dist[index]} "
            "for the chosen action"
        )
    if not 0.0 < prob <= 1.0:
        raise ValueError(f"DSJSON line {line_no}: _label_probability == {prob}, must be in (0, 1]")
    return -cost, index, prob, dist, context, obj.get("EventId")


def read_dsjson(source: str | PathLike[str] | Iterable[str]) -> LoggedFeedback:
    """Read Vowpal Wabbit DSJSON contextual-bandit logs (``cb_adf``).

    Per line: ``_label_cost`` (reward = -cost), ``_label_probability`` (logging propensity of
    the chosen action), ``_labelIndex`` (0-based chosen action, i.e. its position in
    ``c._multi``; ``_label_Action`` is the same 1-based), ``a`` (1-based action ids in the order
    of ``p``) and ``p`` (logging probabilities), ``c`` (context: shared features and ``_multi``,
    one entry per action). Lines without ``_label_cost`` (events never joined to an outcome)
    are skipped and counted in the log; ``pdrop`` is ignored.

    ``source`` is a path or an iterable of lines.

    >>> line = ('{"_label_cost": -1, "_label_probability": 0.7, "_label_Action": 2, '
    ...         '"_labelIndex": 1, "a": [2, 1], "p": [0.7, 0.3], '
    ...         '"c": {"u": {"x": 1}, "_multi": [{"i": "a"}, {"i": "b"}]}}')
    >>> log = read_dsjson([line])
    >>> log.rewards.tolist(), log.actions.tolist(), log.logging_probs.tolist()
    ([1.0], [1], [[0.3, 0.7]])
    """
    rewards, actions, probs, dists, contexts, ids = [], [], [], [], [], []
    skipped = 0
    for line_no, line in enumerate(_lines(source), start=1):
        text = line.strip()
        if not text:
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"DSJSON line {line_no} is not valid JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise ValueError(f"DSJSON line {line_no} is a {type(obj).__name__}, must be an object")
        if "_label_cost" not in obj:
            skipped += 1
            continue
        r, a, p, dist, ctx, event_id = _parse_event(obj, line_no)
        rewards.append(r)
        actions.append(a)
        probs.append(p)
        dists.append(dist)
        contexts.append(ctx)
        ids.append(event_id)
    if skipped:
        logger.info("read_dsjson skipped %d lines without _label_cost", skipped)
    if not rewards:
        raise ValueError("DSJSON source holds no labelled events")
    n_actions = 1 + max(max(d) for d in dists)
    logging_probs = np.zeros((len(dists), n_actions))
    for i, dist in enumerate(dists):
        logging_probs[i, list(dist)] = list(dist.values())
    return LoggedFeedback(
        rewards=np.asarray(rewards, dtype=np.float64),
        actions=np.asarray(actions, dtype=np.int64),
        logged_probs=np.asarray(probs, dtype=np.float64),
        n_actions=int(n_actions),
        contexts=contexts,
        logging_probs=logging_probs,
        event_ids=tuple(ids),
    )


def from_obp(bandit_feedback: Mapping[str, Any]) -> LoggedFeedback:
    """Convert an Open Bandit Pipeline ``bandit_feedback`` dict to arrays.

    Keys used: ``action``, ``reward``, ``pscore`` (required), ``n_actions`` (default
    ``max(action) + 1``), ``position`` (0-based, default 0), ``context``, ``action_context``.
    """
    for key in ("action", "reward", "pscore"):
        if key not in bandit_feedback:
            raise ValueError(f"bandit_feedback has no {key!r} key")
    actions = np.asarray(bandit_feedback["action"])
    if actions.ndim != 1 or actions.dtype.kind not in "iu":
        raise ValueError(
            f"bandit_feedback['action'] has dtype {actions.dtype} and shape "
            f"{actions.shape}, must be 1-D integers"
        )
    n = actions.shape[0]
    rewards = np.asarray(bandit_feedback["reward"], dtype=np.float64)
    pscore = np.asarray(bandit_feedback["pscore"], dtype=np.float64)
    for key, arr in (("reward", rewards), ("pscore", pscore)):
        if arr.shape != (n,):
            raise ValueError(f"bandit_feedback[{key!r}] has shape {arr.shape}, must be ({n},)")
    n_actions = int(bandit_feedback.get("n_actions", int(actions.max()) + 1 if n else 0))
    if n and (actions.min() < 0 or actions.max() >= n_actions):
        bad = int(np.flatnonzero((actions < 0) | (actions >= n_actions))[0])
        raise ValueError(
            f"bandit_feedback['action'] row {bad} == {actions[bad]}, must be in [0, {n_actions})"
        )
    position = bandit_feedback.get("position")
    positions = np.zeros(n, dtype=np.int64) if position is None else np.asarray(position)
    if positions.shape != (n,) or positions.dtype.kind not in "iu" or (n and positions.min() < 0):
        raise ValueError("bandit_feedback['position'] must be (n,) non-negative 0-based integers")
    context = bandit_feedback.get("context")
    action_context = bandit_feedback.get("action_context")
    return LoggedFeedback(
        rewards=rewards,
        actions=actions.astype(np.int64),
        logged_probs=pscore,
        n_actions=n_actions,
        contexts=None if context is None else np.asarray(context),
        positions=positions.astype(np.int64),
        action_context=None if action_context is None else np.asarray(action_context),
    )


def target_probs_at_positions(action_dist: object, positions: object) -> np.ndarray:
    """``(n, n_actions)`` target probabilities at each row's (0-based) position.

    ``action_dist`` is OBP's ``(n, n_actions, len_list)`` array, or ``(n_actions, len_list)``
    when it is the same for every row (as the Open Bandit Dataset's BTS ``action_dist``).

    >>> dist = np.array([[0.9, 0.2], [0.1, 0.8]])      # 2 actions x 2 positions
    >>> target_probs_at_positions(dist, [1, 0]).tolist()
    [[0.2, 0.8], [0.9, 0.1]]
    """
    dist = np.asarray(action_dist, dtype=np.float64)
    pos = np.asarray(positions)
    if pos.ndim != 1 or pos.dtype.kind not in "iu":
        raise ValueError(
            f"positions has dtype {pos.dtype} and shape {pos.shape}, must be 1-D integers"
        )
    len_list = dist.shape[-1]
    if pos.size and (pos.min() < 0 or pos.max() >= len_list):
        bad = int(np.flatnonzero((pos < 0) | (pos >= len_list))[0])
        raise ValueError(f"positions row {bad} == {pos[bad]}, must be in [0, {len_list})")
    if dist.ndim == 2:
        return dist[:, pos].T.copy()
    if dist.ndim == 3 and dist.shape[0] == pos.shape[0]:
        return dist[np.arange(pos.shape[0]), :, pos]
    raise ValueError(
        f"action_dist has shape {dist.shape}, must be (n_actions, len_list) or "
        f"({pos.shape[0]}, n_actions, len_list)"
    )
