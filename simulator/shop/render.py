"""Rendering one cart for people: a text summary (``"ansi"``) or a bar chart (``"rgb_array"``).

Both show the cart's true expected profit of every action, which actions the shopper can receive,
and, once an action was taken, which one and what happened.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from simulator.shop.constants import ACTION_NAMES

RENDER_MODES: tuple[str, ...] = ("ansi", "rgb_array")
"""Render modes of both environments (``render_mode=None``: no rendering)."""

_BAR, _GAP, _HEIGHT, _MARK = (
    16,
    4,
    96,
    6,
)  # pixels: bar width, gap, chart height, chosen-action strip
_GAIN, _LOSS, _BLOCKED, _CHOSEN, _AXIS = (
    (46, 160, 67),
    (211, 47, 47),
    (170, 170, 170),
    (25, 118, 210),
    (0, 0, 0),
)


def check_render_mode(render_mode: Any) -> str | None:
    """``render_mode`` if it is None or one of :data:`RENDER_MODES`, else a ValueError naming it."""
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise ValueError(f"render_mode == {render_mode!r}, must be None or one of {RENDER_MODES}")
    return render_mode


def render_cart(
    mode: str,
    cart_value: float,
    expected_reward: np.ndarray,
    action_mask: np.ndarray,
    outcome: Mapping[str, Any] | None = None,
) -> str | np.ndarray:
    """One cart in ``mode``, with ``outcome`` (the step's action and outcome) once resolved."""
    if mode == "ansi":
        return _text(cart_value, expected_reward, action_mask, outcome)
    return _chart(expected_reward, action_mask, None if outcome is None else outcome["action"])


def _text(
    cart_value: float,
    expected_reward: np.ndarray,
    action_mask: np.ndarray,
    outcome: Mapping[str, Any] | None,
) -> str:
    lines = [
        f"abandoned cart of {cart_value:.2f} USD; "
        "expected profit per action (x: cannot be delivered)"
    ]
    rows = zip(ACTION_NAMES, expected_reward.tolist(), action_mask.tolist(), strict=True)
    for name, er, ok in rows:
        lines.append(f"  {name:<20} {er:8.2f}{'' if ok else '  x'}")
    if outcome is not None:
        verdict = "bought" if outcome["converted"] else "not bought"
        sent = "" if outcome["delivered"] else " (not delivered)"
        lines.append(
            f"chosen: {ACTION_NAMES[outcome['action']]}{sent}: {verdict}, "
            f"profit {outcome['profit']:.2f} USD"
        )
    return "\n".join(lines) + "\n"


def _chart(expected_reward: np.ndarray, action_mask: np.ndarray, chosen: int | None) -> np.ndarray:
    """Bars of expected profit around a zero line: green gains, red losses, grey undeliverable."""
    n = len(expected_reward)
    image = np.full((_HEIGHT + _MARK, n * (_BAR + _GAP) + _GAP, 3), 255, dtype=np.uint8)
    top = float(max(np.abs(expected_reward).max(), 1e-9))
    zero = _HEIGHT // 2
    for k, (er, ok) in enumerate(zip(expected_reward.tolist(), action_mask.tolist(), strict=True)):
        x0 = _GAP + k * (_BAR + _GAP)
        size = round(abs(er) / top * (zero - 1))
        rows = slice(zero - size, zero) if er >= 0 else slice(zero, zero + size)
        image[rows, x0 : x0 + _BAR] = (_GAIN if er >= 0 else _LOSS) if ok else _BLOCKED
        if k == chosen:
            image[_HEIGHT:, x0 : x0 + _BAR] = _CHOSEN
    image[zero, :] = _AXIS
    return image
