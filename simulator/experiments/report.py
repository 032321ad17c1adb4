"""The terminal table and the self-contained HTML report of a simulated experiment."""

from __future__ import annotations

import html
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from engine import abtest
from simulator.experiments.analysis import TRUE_EFFECT_NOTE, Analysis
from simulator.experiments.experiment import ExperimentResult
from simulator.experiments.plots import cumulative_plot, profit_effects_plot
from simulator.html_report import embed_png as _img
from simulator.html_report import frame_html as _frame_html
from simulator.html_report import page, section

__all__ = ["format_table", "summary_table", "write_report"]

logger = logging.getLogger(__name__)


def _num(value: float, digits: int = 3, signed: bool = True) -> str:
    if value is None or not np.isfinite(value):
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _interval(low: float, high: float, digits: int = 3) -> str:
    if not (np.isfinite(low) and np.isfinite(high)):
        return "-"
    if low > high:  # a running intersection of confidence sequences can come out empty
        return "empty"
    return f"[{low:+.{digits}f}, {high:+.{digits}f}]"


def _p(value: float) -> str:
    if not np.isfinite(value):
        return "-"
    return f"{value:.3f}" if value >= 0.001 else f"{value:.1e}"


def summary_table(analysis: Analysis) -> pd.DataFrame:
    """One formatted row per (metric, arm), as strings for the terminal and the HTML report.

    Columns: effect, CI, p, CUPED, always-valid CS, true effect, OPE pre-screen.
    """
    rows = []
    for _, r in analysis.table.iterrows():
        cuped = "-"
        if np.isfinite(r.get("cuped_abs_effect", np.nan)):
            cuped = (
                f"{_num(r['cuped_abs_effect'])} {_interval(r['cuped_ci_low'], r['cuped_ci_high'])}"
                f" p={_p(r['cuped_p_value'])}"
            )
        ope = "-"
        if np.isfinite(r["ope_effect"]):
            ope = (
                f"{_num(r['ope_effect'])} {_interval(r['ope_ci_low'], r['ope_ci_high'])}"
                f" (true {_num(r['ope_true_effect'])})"
            )
        rows.append(
            {
                "metric": r["metric"],
                "arm": r["arm"],
                "effect": _num(r["abs_effect"]),
                "CI": _interval(r["ci_low"], r["ci_high"]),
                "p": _p(r["p_value"]),
                "CUPED": cuped,
                "CS": _interval(r["cs_low"], r["cs_high"]),
                "true effect": _num(r["true_effect"]),
                "OPE": ope,
            }
        )
    return pd.DataFrame(rows)


def format_table(analysis: Analysis) -> str:
    """The terminal report: the effect table, SRM and the decisions."""
    level = f"{analysis.confidence:.0%}"
    lines = [
        f"Effects per cart vs control '{analysis.control}' ({level} intervals; CS = always-valid "
        "confidence sequence over daily looks; OPE = pre-screen DR estimate on the "
        "pre-period log, with its true value):"
    ]
    lines.append(summary_table(analysis).to_string(index=False))
    lines.append(
        "true effect = difference in mean true_profit per cart (the simulator's expected "
        "profit of the chosen actions: purchase noise removed)"
    )
    srm = analysis.srm
    lines.append(
        f"SRM: units per arm {srm['counts']}, p = {srm['p_value']:.3g}"
        + (" -> MISMATCH, results not trustworthy" if srm["flagged"] else " (ok)")
    )
    for arm, verdict in analysis.verdicts.items():
        seq = analysis.sequential_verdicts[arm].decision
        lines.append(
            f"Decision for {arm}: {verdict.decision.upper()} (sequential: {seq}); "
            f"{verdict.reasons[0]}"
        )
    return "\n".join(lines)


def write_report(result: ExperimentResult, analysis: Analysis, out_dir: str | Path) -> Path:
    """Write ``out_dir/abtest.html`` (PNGs embedded as base64 and also saved beside it)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = [
        profit_effects_plot(analysis, out / "abtest_profit_effects.png"),
        abtest.effects_plot(analysis.table, out / "abtest_effects_all_metrics.png"),
        abtest.sequence_plot(analysis.sequence, out / "abtest_sequence.png", metric="profit"),
        cumulative_plot(analysis, out / "abtest_cumulative.png"),
    ]
    s = result.settings
    parts = ["<h1>Simulated A/B test</h1>\n"]
    parts.append(
        f"<p>{len(result.arms)} arms ({html.escape(', '.join(result.arms))}; control "
        f"<b>{html.escape(result.control)}</b>), {s.get('users')} shoppers, {s.get('days')} test "
        f"days after a {s.get('pre_days')}-day pre-period logged by "
        f"<i>{html.escape(str(s.get('logging_policy')))}</i>; seed {s.get('seed')}, "
        f"{len(result.carts)} test carts, {len(result.pre_log)} pre-period carts. Shoppers are "
        f"assigned by a salted hash of their id (salt <code>{html.escape(result.salt)}</code>)."
        "</p>\n"
    )
    parts.append(section("Decisions (primary metric: profit per cart)"))
    parts.append("<ul>\n")
    for arm, verdict in analysis.verdicts.items():
        css = "ship" if verdict.ship else "no" if verdict.decision == "do not ship" else ""
        seq = analysis.sequential_verdicts[arm].decision
        reasons = "; ".join(verdict.reasons)
        parts.append(
            f"<li><b>{html.escape(str(arm))}</b>: <span class='{css}'>"
            f"{html.escape(verdict.decision)}</span> (always-valid sequence: "
            f"{html.escape(seq)}). {html.escape(reasons)}</li>\n"
        )
    srm = analysis.srm
    parts.append(
        f"<li>Sample ratio check: units {html.escape(str(srm['counts']))}, "
        f"p = {srm['p_value']:.3g}{' <b>MISMATCH</b>' if srm['flagged'] else ' (ok)'}"
        "</li>\n</ul>\n"
    )
    parts.append(section("Effects per cart"))
    parts.append(_frame_html(summary_table(analysis)))
    parts.append(f"<p class='note'>{html.escape(TRUE_EFFECT_NOTE)}</p>\n")
    if analysis.covariates:
        vr = analysis.table.loc[analysis.table["metric"] == "profit", "variance_reduction"]
        parts.append(
            f"<p class='note'>CUPED covariate(s): {html.escape(', '.join(analysis.covariates))}"
            f" (per-user pre-period totals); variance reduction on profit "
            f"{vr.min():.1%} to {vr.max():.1%}.</p>\n"
        )
    parts.extend(_img(path) for path in figures)
    parts.append(section("Arms"))
    parts.append(_frame_html(analysis.arms.reset_index(names="arm")))
    if result.prescreen is not None:
        parts.append(section("Off-policy pre-screen on the pre-period log"))
        parts.append(_frame_html(result.prescreen))
        parts.append(
            "<p class='note'>Values are profit per cart on the pre-period carts (logging value "
            f"{result.prescreen.attrs.get('logging_value', float('nan')):.3f}). Policies that do "
            "not learn are evaluated on every logged cart with their exact probabilities; a "
            "learning arm is trained on the first half of the pre-period and evaluated, frozen, on "
            "the second half. <i>effect</i> is the paired DR difference with the control on the "
            "same carts; <i>true_value</i>/<i>true_effect</i> use the simulator's expected rewards "
            "on those carts. The OPE effect is measured before the test on other carts, with "
            "learners trained on a log and without the arms' longer-run effects on shoppers, so it "
            "need not match the A/B effect.</p>\n"
        )
    target = out / "abtest.html"
    target.write_text(page("Cartwise A/B test", "".join(parts)), encoding="utf-8")
    logger.info("wrote %s", target)
    return target
