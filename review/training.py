"""The pack of a training run, on its held-out rows: what train.py writes beside the model.

Each target's held-out rows (its own out-of-time test slice, as the targets' performance windows differ, or
every row scored out of fold when it was cross-validated over accounts) are joined into one frame:
p_<target>, y_<target>, the benchmark scorecard's and the oracle's probabilities where the training measured
them, and the segments read from the tables. Drift compares the training reference with the held-out
features. There are no logged decisions: that section says so.
"""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from features.builders import Prepared, to_days
from features.targets import LabelConfig
from review.evidence import Evidence, segments, variant_outcomes
from review.pack import Pack
from validation.metrics import bin_counts
from validation.portfolio import portfolio_frame

KEYS = ["account_id", "as_of"]


def evidence(result, tables) -> Evidence:
    """The evidence of a training result (training.trainer.TrainResult) and the tables it was trained on."""
    prep = Prepared(tables)
    rows = None
    features = []
    for target, r in result.targets.items():
        pred = r.predictions.rename(columns={"p": f"p_{target}", "y": f"y_{target}",
                                             "scorecard_p": f"scorecard_{target}", "oracle_p": f"oracle_{target}"})
        pred = pred[[c for c in pred.columns if c in KEYS or c.endswith(f"_{target}")]]
        rows = pred if rows is None else rows.merge(pred, on=KEYS, how="outer")
        if r.test_features is not None:
            features.append(r.test_features)
    feats = pd.concat(features).drop_duplicates(KEYS) if features else None
    rows = rows.sort_values(KEYS, kind="stable").reset_index(drop=True)
    if feats is not None:
        rows = rows.merge(feats, on=KEYS, how="left")
    # segments from the tables, not the rows' features: a feature the training left out is no column here
    pos = np.searchsorted(prep.account_id, rows["account_id"].to_numpy(np.int64))
    rows = rows.assign(product=np.where(prep.is_installment[pos], "installment", "revolving"),
                       **segments(rows, prep, pos, to_days(rows["as_of"].to_numpy())))
    labels = LabelConfig(**result.bundle.info.get("label_config", {}))
    rows, exclusions = variant_outcomes(rows, prep)
    months = sorted(pd.to_datetime(rows["as_of"]).dt.to_period("M").dt.to_timestamp("M").unique())
    held_out = sorted({r.plan.held_out for r in result.targets.values()})
    ev = Evidence(f"the training's {' and '.join(held_out)} rows", rows, list(result.targets), labels, exclusions,
                  reference=result.bundle.reference, drift_counts=_drift_counts(rows, result.bundle),
                  features=rows, feature_info=None, cohort_latest_row=True)
    ev.portfolio = portfolio_frame(prep, [m for m in months if m <= prep.extraction])
    return ev


def _drift_counts(rows: pd.DataFrame, bundle) -> dict:
    """The out-of-time rows' histograms on the reference's bins, month by month, as a scoring run records them."""
    out = {}
    month = pd.to_datetime(rows["as_of"]).dt.to_period("M").dt.to_timestamp("M")
    for m, g in rows.groupby(month):
        counts = {n: bin_counts(ref, g[n].to_numpy(np.float64)).tolist()
                  for n, ref in bundle.reference.get("features", {}).items() if n in g}
        if "score" in bundle.reference and "p_default" in g:
            p = g["p_default"].dropna().to_numpy()
            counts["score"] = bin_counts(bundle.reference["score"], bundle.scale.score(p)[0]).tolist()
        out[m] = counts
    return out


def training_pack(result, tables, *, n_boot: int = 100, seed: int = 0) -> Pack:
    from review.contents import sections
    from review.job import feature_info, hyper_parameters
    from review.thresholds import THRESHOLDS

    t = THRESHOLDS

    ev = evidence(result, tables)
    ev.feature_info = feature_info(result.bundle)
    parts = sections(ev, result.bundle, t, n_boot=n_boot, seed=seed)
    days = ev.as_of
    header = {"model": "trained now (registered after this page)", "data fingerprint": result.fingerprint,
              "training seed": result.bundle.info.get("seed", "n/a"),
              "held-out rows": f"{days[0].date()} to {days[-1].date()}; "
                                  + "; ".join(f"{k}: {r.plan.describe()}" for k, r in result.targets.items()),
              "bootstrap": f"{n_boot} account-level resamples, seed {seed}",
              "hyper-parameters": "; ".join(f"{k}: " + ", ".join(f"{a}={b}" for a, b in v.items())
                                            for k, v in hyper_parameters(result.bundle).items())}
    return Pack("Validation pack: training run", header, parts, ev)


def write_training_pack(result, tables, folder: Path, *, n_boot: int = 100) -> Path:
    """The training run's pack in `folder` (validation-<stamp>-<data fingerprint>.html and .json); the page."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    html, _ = training_pack(result, tables, n_boot=n_boot).write(Path(folder) / f"validation-{stamp}-"
                                                                 f"{result.fingerprint}.html")
    return html
