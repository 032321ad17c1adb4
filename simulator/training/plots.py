"""Learning-curve figure of the scoreboard (matplotlib Agg canvas; no pyplot global state)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from engine.plotting import save_figure

_NEEDED = ("policy", "seed", "carts", "value", "none", "full_information", "oracle")


def learning_curve_plot(
    curves: pd.DataFrame,
    path: str | Path,
    shift_at: int | None = None,
    title: str = "Learning curves",
    target_share: float = 0.9,
) -> Path:
    """Two panels over carts seen, one line per policy (mean over seeds).

    * regret to the oracle per window (USD per cart; lower is better), with the regret of the
      full-information shadow learner (mean over all runs) dashed;
    * share of the full-information gain, ``(value - none) / (full_information - none)``, with the
      ``target_share`` line.

    ``shift_at`` marks a mixture shift. Returns the written path.
    """
    missing = [c for c in _NEEDED if c not in curves.columns]
    if not isinstance(curves, pd.DataFrame) or curves.empty or missing:
        raise ValueError(
            f"curves must be a non-empty DataFrame with columns {list(_NEEDED)}; missing {missing}"
        )
    from matplotlib.figure import Figure

    frame = curves.assign(
        regret=curves["oracle"] - curves["value"],
        shadow_regret=curves["oracle"] - curves["full_information"],
        gain=curves["value"] - curves["none"],
        ceiling=curves["full_information"] - curves["none"],
    )
    figure = Figure(figsize=(10, 8.5), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True)
    colours = _colours(len(frame["policy"].unique()))
    groups = frame.groupby("policy", sort=False)  # no colour for a missing policy name
    for colour, (name, rows) in zip(colours, groups, strict=False):
        mean = rows.groupby("carts").mean(numeric_only=True)
        x = mean.index.to_numpy()
        if name != "oracle":
            top.plot(x, mean["regret"], color=colour, lw=1.8, label=name)
        share = (mean["gain"] / mean["ceiling"].where(mean["ceiling"] > 0)).clip(-0.25, 1.5)
        bottom.plot(x, share, color=colour, lw=1.8, label=name)
    shadow = frame.groupby("carts")["shadow_regret"].mean()
    top.plot(
        shadow.index,
        shadow.to_numpy(),
        color="black",
        ls="--",
        lw=1.2,
        label="full information (shadow, all runs)",
    )
    bottom.axhline(target_share, color="grey", ls=":", lw=1.2, label=f"{target_share:.0%} target")
    bottom.axhline(0.0, color="grey", lw=0.8)
    for ax in (top, bottom):
        if shift_at is not None:
            ax.axvline(shift_at, color="tab:red", ls="-.", lw=1.2, label="mixture shift")
        ax.grid(alpha=0.3)
    top.set_ylabel("regret to oracle (USD / cart)")
    top.set_ylim(bottom=0)
    top.set_title(title, fontsize=12)
    bottom.set_ylabel("share of full-information gain")
    bottom.set_xlabel("carts seen")
    bottom.set_ylim(-0.25, 1.5)
    handles, labels = bottom.get_legend_handles_labels()
    extra_h, extra_l = top.get_legend_handles_labels()
    for h, lab in zip(extra_h, extra_l, strict=True):
        if lab not in labels:
            handles.append(h)
            labels.append(lab)
    figure.legend(handles, labels, loc="outside right center", fontsize=9, frameon=False)
    return save_figure(figure, path)


def _colours(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]
