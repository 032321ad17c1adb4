"""Configuration of ``cartwise run``: one TOML file with defaults, overridable by CLI flags.

Every table and key is optional; unknown tables or keys are errors that name them.

Example:
    >>> cfg = load_config(None, {"seed": 3})
    >>> cfg.seed, cfg.train.carts
    (3, 60000)
    >>> load_config(None, {"train.kart": 5})
    Traceback (most recent call last):
    ...
    ValueError: config: unknown key 'train.kart'; known keys in [train]: batch, carts, learners
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.ope.merge import CI_METHODS
from simulator.training.sequence_loop import DEFAULT_SEQUENCE_POLICIES


@dataclass(frozen=True)
class ShopSection:
    """``[shop]``: the simulated shop (CartRecovery-v0).

    ``coupon_conditioning``: shoppers who often get coupons learn to wait for one; ``fatigue``:
    repeated contacts lose effect.
    """

    n_shoppers: int = 10_000
    n_items: int = 500
    coupon_conditioning: bool = True
    fatigue: bool = True


@dataclass(frozen=True)
class WarmupSection:
    """``[warmup]``: carts under current practice, before Cartwise."""

    carts: int = 8_000  # carts before Cartwise: fit CF and the risk model on them


@dataclass(frozen=True)
class EngineSection:
    """``[engine]``: the embedded DecisionEngine serving simulated checkout traffic.

    ``max_contacts`` is per shopper per 7 days; ``daily_coupon_budget`` is USD of coupon face
    value per day (``None``: no budget).
    """

    learner: str = "vw"
    carts: int = 40_000  # carts the embedded DecisionEngine decides (its log feeds OPE)
    exploration_floor: float = 0.05
    daily_coupon_budget: float | None = None
    max_contacts: int = 3


@dataclass(frozen=True)
class TrainSection:
    """``[train]``: the scoreboard of the baselines (none, rule, uniform) and these learners."""

    carts: int = 60_000
    learners: tuple[str, ...] = ("linucb", "lints", "vw")
    batch: int = 256


@dataclass(frozen=True)
class OpeSection:
    """``[ope]``: candidate policies scored on the engine's decision log."""

    targets: tuple[str, ...] = ("rule", "static:recall_message", "static:coupon_10", "uniform")
    confidence: float = 0.95
    ci: str = "auto"  # engine.ope.evaluate's intervals: auto, analytic, skew, floor, bootstrap

    def __post_init__(self) -> None:
        if self.ci not in CI_METHODS:
            raise ValueError(f"config: ope.ci == {self.ci!r}, must be one of {list(CI_METHODS)}")


@dataclass(frozen=True)
class AbTestSection:
    """``[abtest]``: the simulated A/B test (the first arm is control)."""

    arms: tuple[str, ...] = ("none", "rule", "linucb")
    users: int = 20_000
    days: int = 14
    pre_days: int = 7
    carts_per_day: int = 2_000


@dataclass(frozen=True)
class SequenceSection:
    """``[sequence]``: multi-touch flows on CartRecoverySequence-v0 against the DP optimum."""

    carts: int = 20_000  # flows per policy on CartRecoverySequence-v0 (0: skip the section)
    policies: tuple[str, ...] = DEFAULT_SEQUENCE_POLICIES


@dataclass(frozen=True)
class RunConfig:
    """The whole configuration: the run's seed, the report folder and one field per table."""

    seed: int = 0
    out: str = "reports"
    shop: ShopSection = field(default_factory=ShopSection)
    warmup: WarmupSection = field(default_factory=WarmupSection)
    engine: EngineSection = field(default_factory=EngineSection)
    train: TrainSection = field(default_factory=TrainSection)
    ope: OpeSection = field(default_factory=OpeSection)
    abtest: AbTestSection = field(default_factory=AbTestSection)
    sequence: SequenceSection = field(default_factory=SequenceSection)


QUICK: dict[str, Any] = {
    "shop.n_shoppers": 3_000,
    "shop.n_items": 200,
    "warmup.carts": 3_000,
    "engine.carts": 4_000,
    "train.carts": 6_000,
    "abtest.users": 4_000,
    "abtest.days": 7,
    "abtest.pre_days": 3,
    "abtest.carts_per_day": 800,
    "sequence.carts": 3_000,
}
"""Overrides applied by ``--quick`` (the whole job in well under a minute)."""


def load_config(path: str | Path | None, overrides: Mapping[str, Any] | None = None) -> RunConfig:
    """Defaults, then the TOML file at ``path`` (if any), then dotted ``overrides`` (CLI flags)."""
    values: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as handle:
                values = _flatten(tomllib.load(handle))
        except FileNotFoundError:
            raise ValueError(f"config: file {str(path)!r} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"config: {str(path)!r} is not valid TOML: {exc}") from None
    values.update(overrides or {})
    return _build(RunConfig, values, "")


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _build(cls: type, values: Mapping[str, Any], prefix: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    mine = {k[len(prefix) :]: v for k, v in values.items() if k.startswith(prefix)}
    kwargs: dict[str, Any] = {}
    for key in mine:
        head = key.split(".", 1)[0]
        if head not in fields:
            where = f" in [{prefix.rstrip('.')}]" if prefix else ""
            known = ", ".join(sorted(fields))
            raise ValueError(f"config: unknown key {prefix + key!r}; known keys{where}: {known}")
    for name, f in fields.items():
        if dataclasses.is_dataclass(
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None
        ):
            kwargs[name] = _build(f.default_factory().__class__, values, f"{prefix}{name}.")
        elif name in mine:
            kwargs[name] = _coerce(prefix + name, mine[name], f)
    return cls(**kwargs)


def _coerce(name: str, value: Any, f: dataclasses.Field) -> Any:
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    if isinstance(default, tuple):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"config: {name} == {value!r}, must be a list of names")
        return tuple(value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"config: {name} == {value!r}, must be true or false")
        return value
    if isinstance(default, int) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"config: {name} == {value!r}, must be a non-negative integer")
        return value
    if isinstance(default, float) or default is None:
        if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
            return None if value is None else float(value)
        raise ValueError(f"config: {name} == {value!r}, must be a number")
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ValueError(f"config: {name} == {value!r}, must be a string")
        return value
    return value
