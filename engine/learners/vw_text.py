"""The text Vowpal Wabbit reads for :class:`~engine.learners.vw.VWLearner`.

Safe tokens, the shared line's template, the action lines with their descriptors, and the
checks of the options that shape them (action features, interactions, seed).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from engine.validation import check_number

from ._checks import check_seed

__all__ = [
    "action_lines",
    "check_action_features",
    "check_interactions",
    "default_action_features",
    "shared_template",
    "vw_name",
    "vw_seed",
    "vw_values",
]

_UNSAFE = re.compile(r"[\s|:%]")
_COUPON = re.compile(r"coupon_(\d+(?:\.\d+)?)")


def default_action_features(name: str) -> dict[str, float]:
    """Descriptors of the default catalogue's actions (the one-hot id is added separately).

    >>> default_action_features("coupon_10")
    {'discount': 0.1, 'is_contact': 1.0}
    >>> default_action_features("time_limited_offer")
    {'is_contact': 1.0, 'is_urgent': 1.0}
    >>> default_action_features("none"), default_action_features("something_new")
    ({}, {})
    """
    coupon = _COUPON.fullmatch(name)
    if coupon:
        return {"discount": float(coupon.group(1)) / 100.0, "is_contact": 1.0}
    known = {
        "recommendation": {"is_contact": 1.0, "is_information": 1.0},
        "time_limited_offer": {"is_contact": 1.0, "is_urgent": 1.0},
        "recall_message": {"is_contact": 1.0},
    }
    return dict(known.get(name, {}))


def vw_name(name: str) -> str:
    """A token VW can parse: no whitespace, ``|``, ``:`` (and no ``%`` for our templates)."""
    return _UNSAFE.sub("_", name)


def check_action_features(
    action_features: Mapping[str, Mapping[str, float]] | None, action_names: Sequence[str]
) -> dict[str, dict[str, float]] | None:
    """``action_features`` checked (known actions, numeric values) and copied to plain dicts."""
    if action_features is None:
        return None
    if not isinstance(action_features, Mapping):
        raise ValueError(f"action_features == {action_features!r}, must be a mapping or None")
    out: dict[str, dict[str, float]] = {}
    for action, features in action_features.items():
        if action not in action_names:
            raise ValueError(
                f"action_features has key {action!r}, must be one of {list(action_names)}"
            )
        if not isinstance(features, Mapping):
            raise ValueError(f"action_features[{action!r}] == {features!r}, must be a mapping")
        out[action] = {
            str(k): check_number(v, f"action_features[{action!r}][{k!r}]")
            for k, v in features.items()
        }
    return out


def shared_template(feature_names: Sequence[str]) -> str:
    """The shared line with a ``%.9g`` slot per feature (namespace ``U``)."""
    names = [vw_name(n) for n in feature_names]
    if len(set(names)) != len(names):
        raise ValueError(f"feature_names == {feature_names!r} collide once made VW-safe: {names}")
    return "shared |U " + " ".join(f"{n}:%.9g" for n in names)


def action_lines(
    action_names: Sequence[str], action_features: Mapping[str, Mapping[str, float]] | None
) -> list[str]:
    """One line per action (namespace ``A``): its one-hot id and its nonzero descriptors."""
    ids = [vw_name(n) for n in action_names]
    if len(set(ids)) != len(ids):
        raise ValueError(f"action_names == {action_names!r} collide once made VW-safe")
    lines = []
    for name, token in zip(action_names, ids, strict=True):
        if action_features is not None and name in action_features:
            features = action_features[name]
        else:
            features = default_action_features(name)
        described = " ".join(f"{vw_name(k)}:{v:.7g}" for k, v in features.items() if v)
        lines.append(f"|A id_{token} {described}".rstrip())
    return lines


def vw_values(x: np.ndarray) -> np.ndarray:
    """Values as VW stores them (float32): magnitudes below float32's range become 0.

    This matters because VW's text parser turns e.g. ``3.5e-180`` into garbage.
    """
    return x.astype(np.float32)


def check_interactions(interactions: Sequence[str]) -> tuple[str, ...]:
    """``interactions`` as a tuple of 2-3 letter strings over the namespaces ``U`` and ``A``."""
    if isinstance(interactions, str):
        raise ValueError(f"interactions == {interactions!r}, must be a sequence like ('UA',)")
    out = tuple(interactions)
    for item in out:
        if not isinstance(item, str) or not 2 <= len(item) <= 3 or set(item) - {"U", "A"}:
            raise ValueError(
                f"interactions contains {item!r}, each must be 2-3 letters from 'U' and 'A'"
            )
    return out


def vw_seed(seed: int | np.random.Generator | None) -> int:
    """VW's ``--random_seed`` in [0, 2**31 - 1) from an int, a Generator or None."""
    if isinstance(seed, int | np.integer) and not isinstance(seed, bool) and seed >= 0:
        return int(seed) % (2**31 - 1)
    return int(check_seed("seed", seed).integers(2**31 - 1))
