"""The arms of a simulated experiment: policies by registry name, instance or factory.

Also :class:`ExploringPolicy`, the pre-period's logging policy: the current policy mixed with a
little uniform exploration, so that every eligible action has a known, positive propensity.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from policies.base import Policy

__all__ = ["ArmSpec", "ExploringPolicy", "RowView", "build_policy", "resolve_arms"]

ArmSpec = Policy | str | Callable[[], Policy]
"""An arm: a :class:`Policy`, a name for ``policies.make_policy`` or a factory returning one."""


def build_policy(spec: ArmSpec, seed: int, label: str) -> Policy:
    """The :class:`Policy` described by ``spec`` (names go to the policy registry with ``seed``)."""
    if isinstance(spec, Policy):
        return spec
    if isinstance(spec, str):
        from policies import make_policy  # lazy: the registry imports every learner

        return make_policy(spec, seed=seed)
    if callable(spec):
        policy = spec()
        if not isinstance(policy, Policy):
            raise ValueError(
                f"{label}: factory returned {type(policy).__name__}, must return a Policy"
            )
        return policy
    raise ValueError(f"{label} == {spec!r}, must be a Policy, a policy name or a factory")


def resolve_arms(
    arms: Mapping[str, ArmSpec] | Sequence[str], seeds: Sequence[int]
) -> dict[str, Policy]:
    """``{arm name: policy}`` in the given order (the first arm is the control).

    A sequence of names uses each name as the arm name; a mapping names the arms and gives a
    spec per arm (the same policy name twice makes an A/A test). Arm ``k`` gets ``seeds[k]``.
    """
    if isinstance(arms, str):
        raise ValueError(f"arms == {arms!r}, must be a sequence of names or a mapping, not a str")
    items = list(arms.items()) if isinstance(arms, Mapping) else [(name, name) for name in arms]
    if len(items) < 2:
        raise ValueError(f"arms has {len(items)} arm(s), need at least two (the first is control)")
    names = [name for name, _ in items]
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"arms contains the name {name!r}, arm names must be non-empty str")
    if len(set(names)) != len(names):
        raise ValueError(f"arms == {names!r} contains duplicate names")
    if len(seeds) < len(items):
        raise ValueError(f"seeds has {len(seeds)} entries, need one per arm ({len(items)})")
    policies = {}
    for (name, spec), seed in zip(items, seeds, strict=False):  # extra seeds are unused
        policy = build_policy(spec, seed, f"arms[{name!r}]")
        if any(policy is other for other in policies.values()):
            raise ValueError(
                f"arms[{name!r}] is the same Policy object as another arm; give each arm its own"
            )
        policies[name] = policy
    return policies


class ExploringPolicy(Policy):
    """``(1 - epsilon) * base + epsilon * uniform over the eligible actions``.

    >>> from policies.base import Policy
    >>> class Nothing(Policy):
    ...     def _probabilities(self, context, eligible, truth):
    ...         return self.one_hot("none", eligible)
    >>> mask = np.array([1, 1, 0, 0, 0, 0, 1], dtype=bool)
    >>> ExploringPolicy(Nothing(), 0.3).probabilities({}, mask).round(2).tolist()
    [0.8, 0.1, 0.0, 0.0, 0.0, 0.0, 0.1]
    """

    def __init__(self, base: Policy, epsilon: float) -> None:
        if not isinstance(base, Policy):
            raise ValueError(f"base == {base!r}, must be a Policy")
        if (
            isinstance(epsilon, bool)
            or not isinstance(epsilon, (int, float))
            or not 0.0 <= float(epsilon) <= 1.0
        ):
            raise ValueError(f"epsilon == {epsilon!r}, must be in [0, 1]")
        super().__init__(base.action_names)
        self.base = base
        self.epsilon = float(epsilon)
        self.name = f"{base.name}+{self.epsilon:g} uniform"
        self.needs_truth = base.needs_truth

    def _mix(self, p: np.ndarray, mask: np.ndarray) -> np.ndarray:
        uniform = mask / mask.sum(axis=-1, keepdims=True)
        return (1.0 - self.epsilon) * p + self.epsilon * uniform

    def _probabilities(
        self, context: Mapping[str, Any], eligible: np.ndarray, truth: np.ndarray | None
    ) -> np.ndarray:
        return self._mix(self.base.probabilities(context, eligible, truth), eligible)

    def probabilities_batch(
        self,
        contexts: Sequence[Mapping[str, Any]],
        eligible: np.ndarray,
        truth: np.ndarray | None = None,
    ) -> np.ndarray:
        """The base policy's batch probabilities, mixed with uniform over the eligible actions."""
        mask = np.asarray(eligible, dtype=bool)
        return self._mix(self.base.probabilities_batch(contexts, mask, truth), mask)


class RowView(Sequence):
    """The items at ``rows`` of a sequence of contexts, without copying or materialising them."""

    def __init__(self, contexts: Sequence[Mapping[str, Any]], rows: np.ndarray) -> None:
        self._contexts, self._rows = contexts, np.asarray(rows, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self._contexts[int(j)] for j in self._rows[i]]
        return self._contexts[int(self._rows[i])]
