"""Figures without a display: matplotlib's object API on the Agg canvas (no pyplot state).

matplotlib is imported only when a figure is made, so importing Cartwise stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 110


def new_figure(width: float, height: float) -> Figure:
    """A blank figure of ``width`` x ``height`` inches."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def save_figure(figure: Figure, path: str | Path, tight: bool = False) -> Path:
    """Render ``figure`` to a PNG at ``path`` (parent folders created); return the path.

    ``tight`` crops the page to the drawn content (the image size then depends on it).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    figure.savefig(target, format="png", dpi=DPI, bbox_inches="tight" if tight else None)
    return target
