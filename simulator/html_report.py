"""Building blocks of Cartwise's self-contained HTML reports (figures embedded as base64)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table.grid { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1.5em; }
table.grid th, table.grid td { border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: right; }
table.grid th { background: #f3f3f3; }
.ship { color: #17692b; font-weight: bold; } .no { color: #a31515; font-weight: bold; }
.note { color: #555; font-size: 0.9em; max-width: 70em; }
figure { margin: 1em 0; } img { max-width: 100%; border: 1px solid #eee; }
"""


def embed_png(path: Path) -> str:
    """A ``<figure>`` holding the PNG at ``path`` inline."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(Path(path).stem)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(Path(path).name)}</figcaption></figure>\n"
    )


def frame_html(frame: pd.DataFrame, float_format: str = "{:.3f}", index: bool = False) -> str:
    """A pandas table in the reports' grid style."""
    return frame.to_html(
        index=index,
        border=0,
        classes="grid",
        na_rep="-",
        float_format=float_format.format,
        escape=True,
    )


def section(title: str) -> str:
    """A section heading, the title HTML-escaped."""
    return f"<h2>{html.escape(title)}</h2>\n"


def page(title: str, body: str) -> str:
    """A complete HTML document."""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>\n{body}</body></html>\n"
    )
