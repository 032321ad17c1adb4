"""The main job's HTML report and terminal summary."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from engine.ope.merge import describe_intervals
from simulator.html_report import embed_png, frame_html, page, section
from simulator.job.config import RunConfig
from simulator.shop.constants import ACTION_NAMES
from simulator.training.intent import decile_table


def engine_intent_table(decisions: pd.DataFrame) -> pd.DataFrame:
    """Per intent decile (true ``p_return``) of the given decisions: coupon share and profit.

    The share of carts given a coupon and the true profit per cart of the engine, the rule and the
    oracle on the same carts.
    """
    er = decisions[[f"er_{a}" for a in ACTION_NAMES]].to_numpy()
    engine = decisions["action"].map({a: i for i, a in enumerate(ACTION_NAMES)}).to_numpy()
    chosen = {
        "engine": engine,
        "rule": decisions["rule_action"].to_numpy(),
        "oracle": decisions["oracle_action"].to_numpy(),
    }
    return decile_table(decisions["p_return"].to_numpy(), er, chosen)


def summary_lines(result) -> list[str]:
    """The short table printed on the terminal at the end of ``cartwise run``."""
    d = result.engine.decisions
    tail = d.iloc[-max(len(d) // 5, 1) :]
    gain = tail["oracle"].mean() - tail["none"].mean()
    share = (tail["value"].mean() - tail["none"].mean()) / gain if gain > 0 else float("nan")
    board = result.scoreboard.set_index("policy")
    w = result.warmup
    lines = [
        f"Cartwise run: report in {result.out / 'report.html'}",
        f"  CF precision@10 {w.cf_precision:.3f} vs popularity {w.popularity_precision:.3f};"
        f" risk-model AUC {w.risk_auc:.2f} (truth {w.truth_auc:.2f}), ECE {w.risk_ece:.3f}",
        f"  Engine ({len(d)} carts, last 20%): {tail['value'].mean():.2f} USD/cart"
        f" vs none {tail['none'].mean():.2f} and oracle {tail['oracle'].mean():.2f}"
        f" -> {share:.0%} of the oracle's gain; fallbacks {int(d['fallback'].sum())}",
        "  Scoreboard, expected profit per cart on the last 20% "
        "(each run's own shop: its baselines beside it):",
        f"    {'policy':<10} {'value':>6} {'none':>6} {'static':>6} {'full-info':>9} {'oracle':>6}"
        "  share of full-info gain",
    ]
    for name, r in board.iterrows():
        lines.append(
            f"    {name:<10} {r['value_last']:6.2f} {r['none']:6.2f} {r['best_static']:6.2f} "
            f"{r['full_information']:9.2f} {r['oracle']:6.2f}  {r['gain_share']:6.0%}"
        )
    dr = result.ope[result.ope["estimator"] == "dr"]
    covered = int(dr["covered"].sum())
    lines.append(
        f"  Off-policy (DR) on the engine log: {covered}/{len(dr)} targets' 95% intervals"
        " cover the true value"
    )
    if "warning" in result.ope.columns:
        warned = result.ope[result.ope["warning"] != ""].drop_duplicates("target")
        lines.extend(f"  Warning ({r['target']}): {r['warning']}" for _, r in warned.iterrows())
    lines.append("  Steps (s): " + ", ".join(f"{k} {v}" for k, v in result.seconds.items()))
    return lines


def _interval_note(ope) -> str:
    """One sentence saying which intervals the OPE table shows (what each estimator got)."""
    ci = ope.attrs.get("ci", "auto")
    words = describe_intervals(ci, ope.attrs.get("ci_methods"))
    why = " (why: docs/ope-engine-logs.md)" if ci == "auto" else ""
    return f"Intervals: {words}{why}."


def _ope_warnings_html(ope) -> str:
    """One plain warning per target whose importance weights make its estimates untrustworthy."""
    if "warning" not in ope.columns:
        return ""
    warned = ope[ope["warning"] != ""].drop_duplicates("target")
    if warned.empty:
        return (
            "<p>Importance weights are healthy for every target (columns <code>ess</code>, "
            "<code>max_weight</code>, <code>rare_share</code>).</p>\n"
        )
    items = "".join(
        f"<li><b>{html.escape(str(r['target']))}</b>: {html.escape(str(r['warning']))}</li>"
        for _, r in warned.iterrows()
    )
    return f"<p class='note'><b>Do not trust these estimates blindly:</b></p><ul>{items}</ul>\n"


def write_job_report(result, cfg: RunConfig, abtest_html: Path) -> Path:
    """Write ``report.html`` beside the figures (all embedded)."""
    d = result.engine.decisions
    parts = [
        "<h1>Cartwise: abandoned-cart recovery on a simulated shop</h1>\n",
        f"<p class='note'>Seed {cfg.seed}; {cfg.shop.n_shoppers} shoppers, "
        f"{cfg.shop.n_items} items; coupon conditioning "
        f"{'on' if cfg.shop.coupon_conditioning else 'off'}. Values are the simulator's "
        "true expected profit per cart (USD), so they are free of purchase noise.</p>\n",
        "<pre>" + html.escape("\n".join(summary_lines(result))) + "</pre>\n",
    ]
    parts.append(section("1. Before Cartwise: what the shop's data supports"))
    w = result.warmup
    parts.append(
        f"<p>{w.carts} carts under current practice (a reminder to everyone, a 30% holdout). "
        f"Collaborative filtering ranks held-out purchases with precision@10 {w.cf_precision:.3f} "
        f"against {w.popularity_precision:.3f} for popularity. The abandonment-risk model (return "
        f"and buy unprompted) reaches AUC {w.risk_auc:.2f} on held-out holdout carts, against "
        f"{w.truth_auc:.2f} for the carts' true return probability on the same returns (the "
        f"ceiling: {w.risk_auc / w.truth_auc:.0%} of it); its expected calibration error is "
        f"{w.risk_ece:.3f}.</p>\n"
    )
    parts.append(embed_png(result.figures["risk"]))
    parts.append(section("2. The embedded engine on live checkout traffic"))
    parts.append(
        f"<p>{len(d)} carts served by <code>DecisionEngine</code> (learner "
        f"<code>{html.escape(cfg.engine.learner)}</code>, "
        f"exploration floor {cfg.engine.exploration_floor}), "
        f"every decision logged; model saved as <code>model.cw</code> "
        f"(<code>{html.escape(result.engine.model_version)}</code>).</p>\n"
    )
    parts.append(embed_png(result.figures["engine_curve"]))
    parts.append(embed_png(result.figures["by_type"]))
    tail = d.iloc[-max(len(d) // 5, 1) :]
    mix = tail.groupby("type")["action"].value_counts(normalize=True).unstack(fill_value=0.0)
    parts.append(
        "<p>What the engine chose in the last 20% of carts, by hidden type (shares):</p>\n"
    )
    parts.append(frame_html(mix.reset_index(), "{:.2f}"))
    parts.append(
        "<p>Decisions by purchase intent (deciles of the cart's true probability of returning to "
        "buy unprompted, last 20% of carts): share of carts given a coupon and expected profit per "
        "cart, for the engine, the hand rule and the oracle on the same carts.</p>\n"
    )
    parts.append(frame_html(engine_intent_table(tail), "{:.3f}"))
    parts.append(section("3. Scoreboard: policies learning online in the simulator"))
    parts.append(frame_html(result.scoreboard, "{:.3f}"))
    parts.append(embed_png(result.figures["by_policy"]))
    parts.append(embed_png(result.figures["scoreboard"]))
    parts.append(section("4. Off-policy evaluation on the engine's decision log"))
    parts.append(
        f"<p>{result.ope.attrs.get('rows')} logged decisions with rewards; candidate policies "
        "scored without deploying them, beside their true value on the same carts. "
        f"{html.escape(_interval_note(result.ope))}</p>\n"
    )
    parts.append(frame_html(result.ope, "{:.3f}"))
    parts.append(_ope_warnings_html(result.ope))
    parts.append(embed_png(result.figures["ope"]))
    parts.append(section("5. Simulated A/B test"))
    parts.append("<pre>" + html.escape(result.abtest_summary) + "</pre>\n")
    parts.append(embed_png(result.figures["abtest"]))
    parts.append(
        "<p>Full A/B report: "
        f"<a href='{html.escape(abtest_html.relative_to(result.out).as_posix())}'>"
        "abtest/abtest.html</a>.</p>\n"
    )
    if result.sequence is not None:
        parts.append(section("6. Multi-touch recovery flows"))
        t = result.touches
        parts.append(
            f"<p>{cfg.sequence.carts} flows per policy on <code>CartRecoverySequence-v0</code> "
            "(touches at 60, 720 and 1440 minutes after abandonment); value = true expected "
            "return per cart over the last 20% of flows, against the exact dynamic-programming "
            "optimum on the same carts. Incremental value of touch 2 / touch 3 (exact, on the "
            "first carts of a fresh shop): "
            f"optimum {t['optimum_increment'].iloc[1]:.3f} / "
            f"{t['optimum_increment'].iloc[2]:.3f} USD per "
            f"cart, reminders {t['reminders_increment'].iloc[1]:.3f} / "
            f"{t['reminders_increment'].iloc[2]:.3f}. The myopic optimum (each touch's best "
            "action for that touch alone, hidden shopper known) reaches "
            f"{_myopic_share(t):.1%} of the optimum's gain over sending nothing: what looking "
            "ahead can add is the rest.</p>\n"
        )
        parts.append(frame_html(result.sequence, "{:.3f}"))
        parts.append(frame_html(t, "{:.3f}"))
    target = result.out / "report.html"
    target.write_text(page("Cartwise report", "".join(parts)), encoding="utf-8")
    return target


def _myopic_share(touches: pd.DataFrame) -> float:
    """Share of the optimum's gain over none that the myopic optimum reaches (all touches)."""
    last = touches.iloc[-1]
    return float((last["myopic_optimum"] - last["none"]) / (last["optimum"] - last["none"]))
