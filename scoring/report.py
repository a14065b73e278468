"""The run report: one self-contained HTML page beside the scores, for the people who check a night's run.

First what an operator checks each morning: which data was scored, how the night's action counts moved
since the last run, how much credit the limit actions granted and took back and what that did to the
expected loss, which guardrails held raises back, and which reasons the adverse decisions gave. Then what
was decided (limit actions by score band, collection treatments by days past due), what moved (score
distribution against the training reference, score adjustments) and what drifted (the economy against its
training range, the features' CSI). All from the counts the job kept -- the scored rows are not read again.
"""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from policy.rules import ALREADY_CLOSED
from scoring.drift import ONE_VALUE_PER_DATE, judged_by_range, range_text
from scoring.previous import COMPARED
from scoring.tally import NO_SCORE
from validation.metrics import RANGE_MARGIN

TOP_REASONS = 15


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
    rep.add_section("The night at a glance")
    _change(rep, m)
    _limits(rep, m["limits"])
    _guardrails(rep, m["guardrails"])
    _reasons(rep, m["reasons"])
    rep.add_section("Decisions")
    for key in ("limit_action", "collection_treatment", "status"):
        rep.add_table(key.replace("_", " "), pd.DataFrame({"accounts": rows[key]}).rename_axis(key),
                      fmt={"accounts": "{:,}"})
    dist = m["distributions"]
    band = pd.DataFrame(dist["limit_action_by_score_band"]).T.fillna(0).astype(int)
    if not band.empty:
        band = band.loc[sorted(band.index, key=_band_order)]
        order = ["increase", "keep", "decrease", "freeze", "closed", ALREADY_CLOSED, "none"]
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
        rep.add_table("Collection treatment by days past due (accounts late now, closed ones too; charged-off "
                      "ones are in recovery)",
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
    _drift(rep, m["drift"]["features"])
    return rep.render()


def _drift(rep, features: dict) -> None:
    """The economy against its training range first (one value per date: its CSI says nothing), then the
    other features' CSI, highest first."""
    economy = {n: e for n, e in sorted(features.items(), key=lambda ne: (not judged_by_range(ne[1]), ne[0]))
               if judged_by_range(e) or e["level"] == ONE_VALUE_PER_DATE}
    if economy:
        rows = []
        for name, e in economy.items():
            lo, hi = e.get("training_range", (np.nan, np.nan))
            rows.append({"feature": name, "value": e.get("value", np.nan), "training min": lo, "training max": hi,
                         "level": e["level"]})
        frame = pd.DataFrame(rows).set_index("feature")
        rep.add_table(f"The economy against its training range (one value per date: warning outside the range, "
                      f"alert beyond it by more than {RANGE_MARGIN:.0%} of its width; '{ONE_VALUE_PER_DATE}': "
                      "not judged)", frame, fmt=dict.fromkeys(["value", "training min", "training max"], ".4g"))
        for name in (n for n, e in economy.items() if e["level"] in ("warning", "alert")):
            rep.add_text(range_text(name, economy[name]) + ".")
    feats = pd.DataFrame({n: e for n, e in features.items() if n not in economy}).T
    if not feats.empty:
        feats = feats[["psi", "level"]].sort_values("psi", ascending=False).head(20)
        rep.add_table("Feature CSI against the training reference (highest 20; warning above 0.1, alert above "
                      "0.25)", feats.rename_axis("feature"), fmt={"psi": ".3f"})


def _change(rep, m: dict) -> None:
    """Tonight's action counts against the last run's, and what that run was."""
    change = m["change"]
    was = change["compared_with"]
    if was is None:
        rep.add_text(f"Nothing to compare tonight's counts with: {change['note']}.")
        return
    ours = {"data": m["input"]["data"], "model": m["model"]["version"], "policy": m["policy"]["hash"]}
    other = [f"{what} `{was[key][:12] if key == 'policy' else was[key]}`" for key, what in
             (("data", "data folder"), ("model", "model"), ("policy", "policy hash"))
             if was.get(key) not in (None, ours[key])]
    rep.add_text(f"Compared with the run as of {was['as_of']} (`{was['manifest']}`, {was['how']})."
                 + (f" That run had another {', '.join(other)}." if other else ""))
    labels = {**COMPARED, "accounts": "accounts"}
    frame = pd.DataFrame([{"what": labels.get(group, group), "": name, "before": v["before"], "now": v["now"],
                           "change": v["change"]}
                          for group, counts in change["counts"].items() for name, v in counts.items()])
    rep.add_table("Action counts since the last run", frame.set_index(["what", ""]),
                  fmt={"before": "{:,}", "now": "{:,}", "change": "{:+,}"})


def _limits(rep, limits: dict) -> None:
    """Net limit change (raises, cuts; closed lines apart) and the expected loss before and after."""
    up, down, closed, el = limits["increases"], limits["decreases"], limits["closed"], limits["expected_loss"]
    gone = limits[ALREADY_CLOSED]
    rep.add_text(f"Net limit change {limits['net_change']:+,.0f}: raises {up['change']:+,.0f} on {up['accounts']:,} "
                 f"lines, cuts {down['change']:+,.0f} on {down['accounts']:,}. Lines of charged-off accounts "
                 f"closed: {closed['change']:+,.0f} on {closed['accounts']:,}; lines closed by their holders or "
                 f"repaid: {gone['change']:+,.0f} on {gone['accounts']:,} (both set to 0 again on every run, so not "
                 f"in the net change). Expected loss (PD x LGD {el['lgd']:g} x EAD, EAD = balance + CCF "
                 f"{el['ccf']:g} x undrawn limit; {el['accounts']:,} accounts with a PD): {el['before']:,.0f} at the "
                 f"current limits, {el['after']:,.0f} at the new ones ({el['change']:+,.0f}).")
    frame = pd.DataFrame([{"product": product, "limit action": action, "accounts": v["accounts"],
                           "limit": v["limit"], "new limit": v["new_limit"], "change": v["change"],
                           "expected loss": v["expected_loss"], "at the new limit": v["new_expected_loss"]}
                          for product, actions in limits["by_product"].items() for action, v in actions.items()])
    if not frame.empty:
        rep.add_table("Limits and expected loss by product and limit action", frame.set_index(
            ["product", "limit action"]), fmt={"accounts": "{:,}", "change": "{:+,.0f}",
                                                **dict.fromkeys(["limit", "new limit", "expected loss",
                                                                 "at the new limit"], "{:,.0f}")})


def _guardrails(rep, guardrails: dict) -> None:
    """Accounts where each guardrail held the limit back, by the limit action that resulted."""
    frame = pd.DataFrame([{"rule": code, "guardrail": g["title"], "accounts": g["accounts"], **g["limit_action"]}
                          for code, g in guardrails.items()]).fillna(0)
    order = ["increase", "keep", "decrease"]
    actions = sorted((c for c in frame.columns if c not in ("rule", "guardrail", "accounts")),
                     key=lambda a: (order.index(a) if a in order else len(order), a))
    frame = frame[["rule", "guardrail", "accounts", *actions]]
    frame[actions] = frame[actions].astype(int)
    rep.add_table("Guardrails that held limits back (accounts where the rule acted and no freeze, new line, cash "
                  "loan, closing or charge-off set the limit instead; by the limit action that resulted: the no-raise "
                  "rules block a raise, the budget and the bounds trim raises and cuts)", frame.set_index("rule"),
                  fmt=dict.fromkeys(["accounts", *actions], "{:,}"))


def _reasons(rep, reasons: dict) -> None:
    """The most frequent reason codes of the adverse decisions."""
    codes = reasons["codes"][:TOP_REASONS]
    if not codes:
        rep.add_text("No adverse decision, so no reasons.")
        return
    frame = pd.DataFrame([{"code": c["code"], "reason": c["title"], "accounts": c["accounts"], "share": c["share"],
                           "as the first reason": c["first"]} for c in codes])
    rep.add_table(f"Reason codes of the {reasons['adverse']:,} adverse decisions (the {len(codes)} most frequent; "
                  "share of adverse decisions giving the code)", frame.set_index("code"),
                  fmt={"accounts": "{:,}", "share": "{:.1%}", "as the first reason": "{:,}"})


def _band_order(label: str) -> float:
    """Score bands by their lower edge; accounts without a score (charged off or closed) first."""
    return float("-inf") if label == NO_SCORE else float(label.split("-")[0].rstrip("+"))
