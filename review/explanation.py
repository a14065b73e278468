"""Explanation: what each model leans on, whether it keeps the directions it was trained to keep, and which
reasons the adverse decisions gave.

Importance is LightGBM's gain beside the mean |TreeSHAP| contribution on the replayed sample; the sweep moves
every constrained feature over its observed quantiles for each sampled row (all else fixed) and counts any step
against the constraint the model text records, on the raw score and on the calibrated probability.
"""
from __future__ import annotations

from features.catalog import default_catalog
from features.targets import BY_NAME
from models.bundle import Bundle
from models.explain import importance, monotonicity_sweep, reason_frequencies
from models.latent_state import LatentStateFilter, with_latent
from review.evidence import Evidence
from review.pack import Section, floats
from review.thresholds import Thresholds

TOP = 15  # features shown per model


def section(ev: Evidence, bundle: Bundle, thresholds: Thresholds) -> Section:
    s = Section("explanation", "Explanation")
    X = ev.features
    if X is None or not len(X):
        s.missing("importance and the monotonicity sweep: no replayed sample of the window's rows")
    else:
        for target in ev.targets:
            _model(s, bundle, target, X[bundle.feature_names], thresholds)
    if ev.reasons is not None and len(ev.reasons):
        reasons = reason_frequencies(ev.reasons)
        s.table(f"Reasons given with adverse decisions ({len(ev.reasons):,} accounts × month ends; rows: decisions "
                "naming the reason in any of the four places)", reasons.head(20),
                {"share": "{:.1%}", "first_share": "{:.1%}"})
        s.numbers["reasons"] = reasons
    else:
        s.missing("reason codes: the predictions carry no adverse decisions")
    return s


def _model(s: Section, bundle: Bundle, target: str, X, thresholds: Thresholds) -> None:
    model = bundle.models[target]
    latent = LatentStateFilter.from_dict(bundle.latent) if bundle.latent else None
    imp = importance(model, X, catalog=with_latent(default_catalog(), latent))
    s.table(f"{target}: what the model leans on (top {TOP} by mean |TreeSHAP| on {int(imp['rows'].iloc[0]):,} "
            "rows)", imp.head(TOP).drop(columns=["rows"]), floats(imp, ".4f"))
    sweep = monotonicity_sweep(model, X)
    constrained = sweep[sweep["constraint"] != 0]
    violations = int(constrained.filter(like="violating_rows").sum().sum()) if len(constrained) else 0
    direction = "falls" if BY_NAME[target].good_outcome else "rises"
    s.text(f"{target}: {len(constrained)} constrained features swept over {int(sweep['grid_points'].max())} "
           f"quantiles on {int(sweep['rows'].max()):,} rows (a risk-raising feature's probability never falls as "
           f"it grows: this one {direction} with risk); rows moving against a constraint: {violations}.")
    bad = constrained[constrained.filter(like="violating_rows").sum(axis=1) > 0]
    if len(bad):
        s.table(f"{target}: features whose sweep moved against the constraint", bad)
    s.numbers[f"{target}_importance"] = imp
    s.numbers[f"{target}_sweep"] = sweep
    s.check(f"{target}: monotonicity sweep, rows against a constraint", violations,
            f"≤ {thresholds.monotonicity_violations}", violations <= thresholds.monotonicity_violations,
            finding=True)
