"""Drift of a scoring run: the score's PSI, every feature's CSI and the economy against its training range.

Chunks return histograms on the reference's bins (validation.metrics.bin_counts) and, for the features the
reference records a training range for, their lowest and highest value on the book; the job adds them up and
judges them here, so the figures do not depend on how the accounts were chunked.

Levels: 'stable', 'warning', 'alert'. The score and the account's own features are judged by PSI / CSI
(warning above 0.1, alert above 0.25). A one-value-per-date feature (the economy, the calendar) is the same for
the whole book, so its CSI against a reference spread over many months is large by construction: the economy's
levels (`Feature.judged_by_range`) are judged by the range they took in training instead (warning outside it,
alert beyond it by more than `RANGE_MARGIN` of its width), and the others -- the calendar month, or any
indicator of a bundle that records no range -- get the level 'one value per date': reported, never an alert.
A feature whose values follow the day the job runs (`Feature.run_day`: days since the newest bill fell due)
gets 'set by the run day': its CSI is reported, never judged.
"""
from __future__ import annotations

import logging

import numpy as np

from features.catalog import default_catalog
from validation.metrics import DRIFT_THRESHOLDS, RANGE_MARGIN, drift_level, outside, psi_from_counts, range_level

log = logging.getLogger("dynascore.scoring")
ONE_VALUE_PER_DATE = "one value per date"
RUN_DAY = "set by the run day"  # a feature whose values follow the day the job runs (Feature.run_day)


def drift_summary(reference: dict, counts: dict[str, np.ndarray],
                  extremes: dict[str, np.ndarray] | None = None) -> dict:
    """PSI of the score and CSI of every feature against the bundle's training reference, with levels.

    extremes: [lowest, highest] on the book of each feature whose reference records a training range
    (scoring.chunk); such a feature is judged by the value farthest outside that range, and its entry says the
    value, the training range and the margin. One missing on every row is judged by its CSI (its missing share);
    without extremes, a one-value-per-date feature is reported as such.
    """
    per_date = {f.name for f in default_catalog() if f.one_value_per_date}
    by_run_day = {f.name for f in default_catalog() if f.run_day}
    extremes = extremes or {}
    out: dict = {"features": {}}
    for name, c in counts.items():
        ref = reference["score"] if name == "score" else reference["features"][name]
        value = psi_from_counts(ref, c)
        entry = {"psi": round(value, 5)}
        if name == "score":
            out["score"] = {**entry, "level": drift_level(value)}
            continue
        seen = extremes.get(name)
        ranged = "range" in ref and seen is not None
        if ranged and not np.isnan(seen).all():
            entry.update(_against_range(ref["range"], seen))
        elif name in per_date and not ranged:  # no training range, or no value to hold against it
            entry["level"] = ONE_VALUE_PER_DATE
        elif name in by_run_day:
            entry["level"] = RUN_DAY
        else:
            entry["level"] = drift_level(value)
        out["features"][name] = entry
    out["warning"] = sorted(n for n, e in out["features"].items() if e["level"] == "warning")
    out["alert"] = sorted(n for n, e in out["features"].items() if e["level"] == "alert")
    return out


def _against_range(training: list[float], seen: np.ndarray) -> dict:
    """The level of the book's value farthest outside the training range, and what it was judged on."""
    value = float(max(seen, key=lambda v: outside(float(v), training)))
    lo, hi = training
    return {"level": range_level(value, training), "value": value, "training_range": [lo, hi],
            "margin": float(f"{RANGE_MARGIN * (hi - lo):.6g}")}


def judged_by_range(entry: dict) -> bool:
    """Whether a feature's drift entry was judged by its training range rather than by its CSI."""
    return "training_range" in entry


def range_text(name: str, entry: dict) -> str:
    """What is wrong with a range-judged feature, in one line (its level is 'warning' or 'alert')."""
    value, (lo, hi), margin = entry["value"], entry["training_range"], entry["margin"]
    gap = outside(value, [lo, hi])
    where = f"{name} {value:.4g} is outside the training range [{lo:.4g}, {hi:.4g}] by {gap:.3g}"
    if entry["level"] == "alert":
        return (f"{where}, more than the {margin:.3g} allowed: the models never saw such a value and score it as "
                "the range's edge")
    return f"{where}, within the {margin:.3g} allowed"


def worst(drift: dict, level: str, most: int) -> list[str]:
    """The features at `level`, those out of their training range first, then by CSI, highest first."""
    features = drift["features"]
    return sorted(drift[level], key=lambda n: (not judged_by_range(features[n]), -features[n]["psi"]))[:most]


def log_drift(drift: dict) -> None:
    score = drift.get("score")
    if score and score["level"] != "stable":
        log.warning("score PSI %.3f against the training reference: %s", score["psi"], score["level"])
    features = drift["features"]
    for name in worst(drift, "alert", len(features)) + worst(drift, "warning", len(features)):
        if judged_by_range(features[name]):
            log.warning(range_text(name, features[name]))
    by_csi = [n for n, e in features.items() if not judged_by_range(e) and e["level"] not in (ONE_VALUE_PER_DATE,
                                                                                              RUN_DAY)]
    for level, above in zip(("warning", "alert"), DRIFT_THRESHOLDS, strict=True):
        csi = [n for n in worst(drift, level, len(features)) if not judged_by_range(features[n])]
        if csi:
            log.warning("feature CSI %s (above %s) for %d of %d features judged by CSI, highest: %s; all in the "
                        "manifest", level, above, len(csi), len(by_csi),
                        ", ".join(f"{n} {features[n]['psi']:.2f}" for n in csi[:5]))
