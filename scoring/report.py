"""The run report: one self-contained HTML page beside the scores, for the people who check a night's run.

What moved (score distribution against the training reference, score adjustments), what was decided
(limit actions by score band, collection treatments by days past due) and what drifted (PSI and CSI),
from the counts the job kept -- the scored rows are not read again.
"""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from scoring.tally import NO_SCORE


def run_report(manifest: dict, score_reference: dict | None, score_counts: np.ndarray | None) -> str:
    """The report's HTML text (matplotlib is imported here only: the workers never need it)."""
    from validation.report import Report, new_figure

    m = manifest
    rows = m["rows"]
    rep = Report(f"Scoring run as of {m['as_of']}")
    rep.add_text(f"Data folder `{m['input']['data']}` (input fingerprint `{m['input']['fingerprint'][:12]}`). "
                 f"Model `{m['model']['version']}` ({m['model']['uri']}), policy hash `{m['policy']['hash'][:12]}`. "
                 f"{rows['scored']:,} accounts scored, "
                 f"{rows.get('adverse', 0):,} adverse decisions with reasons, {rows.get('early_warning', 0):,} "
                 f"early warnings, {rows.get('control_cell', 0):,} accounts in the collection control cell. "
                 f"Previous score: {m['previous']['source']}.")
    rep.add_section("Decisions")
    for key in ("limit_action", "collection_treatment", "status"):
        rep.add_table(key.replace("_", " "), pd.DataFrame({"accounts": rows[key]}).rename_axis(key),
                      fmt={"accounts": "{:,}"})
    dist = m["distributions"]
    band = pd.DataFrame(dist["limit_action_by_score_band"]).T.fillna(0).astype(int)
    if not band.empty:
        band = band.loc[sorted(band.index, key=_band_order)]
        order = ["increase", "keep", "decrease", "freeze", "closed", "none"]
        band = band[[a for a in order if a in band] + [a for a in band if a not in order]]
        fig, ax = new_figure(7.0, 4.0)
        bottom = np.zeros(len(band))
        for action in band.columns:
            ax.bar(band.index, band[action], bottom=bottom, label=action)
            bottom += band[action].to_numpy()
        ax.set_xlabel("score band")
        ax.set_ylabel("accounts")
        ax.legend(fontsize=8)
        rep.add_figure("Limit actions by score band", fig)
    treat = pd.DataFrame(dist["collection_treatment_by_dpd"]).T.fillna(0).astype(int)
    if not treat.empty:
        treat = treat.loc[sorted(treat.index, key=lambda s: int(s.split("-")[0].split("+")[0]))]
        rep.add_table("Collection treatment by days past due (accounts late now, not charged off)",
                      treat.rename_axis("days past due"),
                      fmt=dict.fromkeys(treat.columns, "{:,}"))

    rep.add_section("Scores")
    adj = dist["score_adjustment"]
    if sum(adj["counts"]):
        fig, ax = new_figure(7.0, 3.5)
        edges = np.asarray(adj["edges"], dtype=float)
        centers = np.concatenate([[edges[0] - 5], (edges[:-1] + edges[1:]) / 2, [edges[-1] + 5]])
        ax.bar(centers, adj["counts"], width=9.0)
        ax.set_xlabel("score adjustment since the previous cycle (points; outer bars: beyond +-200)")
        ax.set_ylabel("accounts")
        rep.add_figure("Score adjustments", fig)
    if score_reference is not None and score_counts is not None and score_reference.get("kind") == "numeric":
        ref = np.append(np.asarray(score_reference["shares"]), score_reference["missing"])
        now = np.asarray(score_counts, dtype=float) / max(float(np.sum(score_counts)), 1.0)
        e = score_reference["edges"]
        labels = [f"<= {e[0]:.0f}", *[f"{a:.0f}-{b:.0f}" for a, b in itertools.pairwise(e)],
                  f"> {e[-1]:.0f}", "missing"]
        fig, ax = new_figure(7.0, 3.5)
        x = np.arange(len(labels))
        ax.bar(x - 0.2, ref, width=0.4, label="training reference")
        ax.bar(x + 0.2, now, width=0.4, label=f"as of {m['as_of']}")
        ax.set_xticks(x, labels, rotation=45, fontsize=7)
        ax.set_ylabel("share of accounts")
        ax.legend(fontsize=8)
        d = m["drift"]["score"]
        rep.add_figure(f"Score distribution (PSI {d['psi']:.3f}, {d['level']})", fig)

    rep.add_section("Drift")
    feats = pd.DataFrame(m["drift"]["features"]).T
    if not feats.empty:
        feats = feats.assign(_macro=feats["level"] == "one value per date").sort_values(
            ["_macro", "psi"], ascending=[True, False]).drop(columns="_macro").head(20)
        rep.add_table("Feature CSI against the training reference (highest 20; warning above 0.1, alert above "
                      "0.25)", feats.rename_axis("feature"), fmt={"psi": ".3f"})
    return rep.render()


def _band_order(label: str) -> float:
    """Score bands by their lower edge; accounts without a score (charged off) first."""
    return float("-inf") if label == NO_SCORE else float(label.split("-")[0].rstrip("+"))
