"""The validation report of a training run: what a model validation reviewer reads first.

Per target: the time slices and embargoes, discrimination and calibration on every slice with the
out-of-time bootstrap interval, the benchmark scorecard beside LightGBM, the gap to the Bayes-optimal
oracle on synthetic data, decile and calibration tables, ROC and calibration plots, calibration by as-of
month and by segment (where a level miss sits), and what drives the model. It reads the training result's
plain attributes (metrics, tables, predictions), nothing else.
"""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from validation.metrics import calibration_by_segment
from validation.report import (
    Report,
    calibration_figure,
    calibration_over_time_figure,
    decile_table,
    roc_figure,
    score_distribution_figure,
)

# segments of the out-of-time calibration check: the model's strongest features, and always the product split
# (revolving lines and cash loans), where every portfolio review starts
SEGMENT_TOP, SEGMENT_ALWAYS = 6, ("is_installment",)
METRICS = ("n", "bad_rate", "mean_p", "oe_ratio", "auc", "auc_lo", "auc_hi", "gini", "ks", "brier", "log_loss", "ece")


def _metrics_table(result) -> pd.DataFrame:
    rows = []
    for slice_name, m in result.metrics.items():
        rows.append({"model": "LightGBM", "slice": slice_name, **{k: m.get(k, np.nan) for k in METRICS}})
    for slice_name, m in result.scorecard.items():
        rows.append({"model": "benchmark scorecard", "slice": slice_name, **{k: m.get(k, np.nan) for k in METRICS}})
    return pd.DataFrame(rows)


def _importance(result, top: int = 15) -> pd.DataFrame:
    model = result.booster if hasattr(result, "booster") else None
    if model is None:
        return pd.DataFrame()
    gain = model.feature_importance("gain")
    frame = pd.DataFrame({"feature": model.feature_name(), "gain": gain})
    frame["share"] = frame["gain"] / max(frame["gain"].sum(), 1e-12)
    return frame.sort_values("gain", ascending=False).head(top).reset_index(drop=True)


def _segment_features(importance: pd.DataFrame, available) -> list[str]:
    """The features whose bands the out-of-time calibration is split by (see SEGMENT_TOP)."""
    top = list(importance["feature"].head(SEGMENT_TOP)) if len(importance) else []
    available = set(available)
    return [n for n in dict.fromkeys([*top, *SEGMENT_ALWAYS]) if n in available]


def build_training_report(train_result, title: str = "dynascore validation report") -> Report:
    rep = Report(title)
    created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    bundle = train_result.bundle
    rep.add_text(f"<p>Created {created}. Data fingerprint <code>{train_result.fingerprint}</code>, catalog version "
                 f"<code>{bundle.catalog_version}</code>, {len(bundle.feature_names)} features, targets "
                 f"{', '.join(bundle.targets)}. Panel {train_result.timings.get('panel_s', 0):.1f} s, fitting "
                 f"{train_result.timings.get('fit_s', 0):.1f} s.</p>")
    rep.add_table("Panel: rows per target (a row whose performance window is unfinished is left out)",
                  train_result.panel_counts)
    for target, r in train_result.targets.items():
        rep.add_section(f"Target: {target}")
        rep.add_text(f"<p>Slices: {r.plan.describe()}. Rows: "
                     + ", ".join(f"{k} {v:,}" for k, v in r.rows.items())
                     + f". Best iteration {r.best_iteration}; calibration "
                     f"<code>{bundle.models[target].calibrator.method}</code>.</p>")
        rep.add_table("Discrimination and calibration by slice (AUC interval: account-level bootstrap, 95 %)",
                      _metrics_table(r))
        if r.oracle:
            rep.add_table("Gap to the Bayes-optimal oracle on the out-of-time rows as of month ends, where the "
                          "synthetic truth lives (the other rows are as of days spread over the month)",
                          pd.DataFrame([{k: v for k, v in r.oracle.items() if not k.startswith("_")}]))
        rep.add_table("Calibration on the out-of-time slice (10 equal-frequency bins)", r.calibration)
        test = r.predictions
        y, p = test["y"].to_numpy(), test["p"].to_numpy()
        scores = bundle.scale.score(p)[0] if target == "default" else None
        rep.add_table("Deciles on the out-of-time slice", decile_table(y, p, scores))
        curves = {"LightGBM": (y, p), "benchmark scorecard": (y, test["scorecard_p"].to_numpy())}
        if "oracle_p" in test:
            ok = test["oracle_p"].notna().to_numpy()
            curves["Bayes-optimal oracle"] = (y[ok], test["oracle_p"].to_numpy()[ok])
        rep.add_figure("ROC, out-of-time", roc_figure(curves))
        rep.add_figure("Calibration, out-of-time", calibration_figure({"LightGBM": (y, p)}))
        by_month = getattr(r, "by_month", None)
        if by_month is not None and len(by_month):
            rep.add_figure("Calibration over time: every slice by as-of month (training rows in-sample)",
                           calibration_over_time_figure(by_month))
            rep.add_table("Calibration by as-of month (oe_ratio = observed / predicted)", by_month)
        if scores is not None:
            rep.add_figure("Score distribution, out-of-time", score_distribution_figure(scores, y))
        imp = _importance(bundle.models[target])
        feats = getattr(r, "test_features", None)
        segments = _segment_features(imp, feats.columns) if feats is not None else []
        if segments:
            oracle = test["oracle_p"].to_numpy() if "oracle_p" in test else None
            rep.add_table("Calibration by segment, out-of-time: the strongest features and the product split, in "
                          "bands of equal rows (oe_ratio = observed / predicted; a level miss shows where it sits"
                          + ("; oracle = the Bayes-optimal mean" if oracle is not None else "") + ")",
                          calibration_by_segment(y, p, feats[segments], oracle=oracle))
        if len(imp):
            rep.add_table("What drives the model: gain importance (top 15)", imp)
        card = getattr(r, "scorecard_model", None)
        if card is not None and hasattr(card, "summary"):
            rep.add_table("Benchmark scorecard: selected features", card.summary())
    return rep


def write_training_report(train_result, folder: Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    path = folder / f"validation-{stamp}-{train_result.fingerprint}.html"
    build_training_report(train_result).write(path)
    return path
